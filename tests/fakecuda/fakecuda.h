/*
 * fakecuda.h - what the files of the fake CUDA runtime (tests/fakecuda/) share. The fake is a
 * test double: the library, compiled with -DWEFT_HAVE_CUDA against the real CUDA headers,
 * links it instead of libcudart_static and the .cu kernels of gpu/, so that its stream, staging
 * and IPC code runs on hosts without a GPU. Device memory is a memfd mapped twice: the address
 * handed out is PROT_NONE (the CPU faults on it, as on a GPU), a read-write "shadow" mapping
 * is what copies and kernels use. Streams are FIFOs, each run by its own thread. It proves the
 * host-side control flow, not the kernels, the driver, real IPC or timing.
 */
#ifndef WEFT_FAKECUDA_H
#define WEFT_FAKECUDA_H

#include <cuda.h>
#include <cuda_runtime_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- runtime.c: errors, devices, settings ------------------------------------------------ */

/* FAKECUDA_DEVICES is clamped to this. */
#define WEFT_FAKE_MAX_DEVICES 16

/* The start of every runtime call: the first call reads the FAKECUDA_* settings; a call from
 * a host function (which CUDA forbids) gets cudaErrorNotPermitted; a process whose device
 * work faulted gets its sticky error; FAKECUDA_DEVICES=0 gets cudaErrorNoDevice. Returns
 * cudaSuccess or the error, already recorded as the thread's last error. */
cudaError_t weft_fake_enter(const char *call);
/* Records e as the calling thread's last error (unless cudaSuccess) and returns it. */
cudaError_t weft_fake_fail(cudaError_t e);
/* A fault of device work (a kernel touching memory the device cannot reach): every later call
 * of the process fails with e, as after a fault on a GPU. Says why on stderr, once. */
void weft_fake_fault(cudaError_t e, const char *what);
/* The sticky error, or cudaSuccess. */
cudaError_t weft_fake_sticky(void);
int weft_fake_ndevices(void);
/* The calling thread's current device (cudaSetDevice; 0 by default). */
int weft_fake_device(void);
/* Seconds after which a wait of the fake (a stream waiting for a value, a host function, a
 * synchronization) says on stderr what it waits for: FAKECUDA_WATCHDOG_S, default 120. */
double weft_fake_watchdog_s(void);
/* Total device memory per device: FAKECUDA_MEM_MIB (default 16384 MiB). */
size_t weft_fake_mem_bytes(void);
/* FAKECUDA_IMPLICIT_SYNC=1: the CUDA programming guide's implicit synchronization, taken
 * literally (see weft_fake_implicit_sync). Off by default. */
bool weft_fake_strict_sync(void);
/* Marks the calling thread as the one running host functions (no CUDA calls allowed). */
void weft_fake_set_hostfn_thread(void);

/* ---- memory.c: allocations and address translation --------------------------------------- */

enum weft_fake_mem {
    WEFT_FAKE_UNREGISTERED = 0, /* plain host memory: the device cannot reach it */
    WEFT_FAKE_DEVICE,           /* cudaMalloc: PROT_NONE to the CPU, used through the shadow */
    WEFT_FAKE_IMPORTED,         /* cudaIpcOpenMemHandle: a peer's device memory, likewise */
    WEFT_FAKE_MANAGED,          /* cudaMallocManaged: ordinary memory, both sides */
    WEFT_FAKE_PINNED            /* cudaHostAlloc / cudaMallocHost: ordinary, device-mapped */
};

/* One allocation as the registry holds it. */
struct weft_fake_alloc {
    enum weft_fake_mem kind;
    uintptr_t base;  /* the address the program sees */
    size_t size;     /* bytes asked for */
    size_t map_len;  /* bytes mapped (whole pages) */
    char *shadow;    /* read-write view of base (== base for host-reachable kinds) */
    int device;      /* the device current when it was made */
    int fd;          /* DEVICE: the memfd (kept open for IPC); else -1 */
    uint64_t id;     /* DEVICE: unique in the process; IMPORTED: the exporter's id */
    int owner;       /* IMPORTED: the exporting process's pid */
    unsigned refs;   /* IMPORTED: opens not yet closed */
    unsigned flags;  /* cudaHostAlloc / cudaMallocManaged flags */
};

/* The allocation holding p (an address anywhere inside it): true and *out, else false. */
bool weft_fake_lookup(const void *p, struct weft_fake_alloc *out);
/* The address the fake itself reads or writes for [p, p+len): the shadow for device memory,
 * p for host-reachable memory. device_side: the address must be one the device can reach
 * (device, imported, managed, pinned): else cudaErrorInvalidValue. A range that starts in an
 * allocation but leaves it is cudaErrorInvalidValue too. */
cudaError_t weft_fake_translate(const void *p, size_t len, bool device_side, void **out);
/* The kind of memory at p. */
enum weft_fake_mem weft_fake_kind(const void *p);
/* For ipc.c: adds a mapping of another process's allocation (kind IMPORTED, refs 1). */
cudaError_t weft_fake_register(const struct weft_fake_alloc *a);
/* For ipc.c: the imported allocation of (owner, id) gets one more reference; true and its
 * base when it is mapped already. */
bool weft_fake_import_ref(int owner, uint64_t id, uintptr_t *base);
/* For ipc.c: drops one reference of the imported allocation at base; at zero it is removed
 * and *gone says so (the caller unmaps). cudaErrorInvalidValue when base is none. */
cudaError_t weft_fake_import_unref(uintptr_t base, struct weft_fake_alloc *gone, bool *last);
/* Maps fd twice, PROT_NONE (returned) and read-write (*shadow); NULL on failure. */
void *weft_fake_map_twice(int fd, size_t len, char **shadow);

/* ---- stream.c: streams, the work they run ------------------------------------------------ */

/* What a stream does, in order. Addresses are the fake's own (translated when enqueued). */
enum weft_fake_op_type {
    WEFT_FAKE_OP_NOP,        /* a marker (synchronizing the legacy stream) */
    WEFT_FAKE_OP_COPY,       /* memmove(dst, src, len), or `rows` rows of len bytes at
                              * dpitch / spitch strides; frees `owned` after */
    WEFT_FAKE_OP_MEMSET,     /* memset(dst, value, len) */
    WEFT_FAKE_OP_KERNEL,     /* fn(arg) on the stream's thread */
    WEFT_FAKE_OP_FAULT,      /* a kernel that faults: weft_fake_fault(err, what) */
    WEFT_FAKE_OP_HOSTFN,     /* fn(arg) on the process's host-function thread */
    WEFT_FAKE_OP_RECORD,     /* event record number `rec` completes, time stamped */
    WEFT_FAKE_OP_WAIT_EVENT, /* waits until the event's record `rec` completed */
    WEFT_FAKE_OP_WAIT_VALUE  /* waits until *word passes `value` under `flags` */
};

struct CUevent_st; /* below */
struct CUstream_st; /* stream.c */

/* An implicit wait: until stream s has done its op number seq. */
struct weft_fake_dep {
    struct CUstream_st *s;
    uint64_t seq;
};

struct weft_fake_op {
    struct weft_fake_op *next;
    enum weft_fake_op_type type;
    uint64_t seq; /* its place in its stream (set by weft_fake_submit) */
    struct weft_fake_dep *deps; /* implicit waits of the legacy default stream */
    size_t ndeps;
    void *dst;
    const void *src;
    size_t len;
    size_t rows, dpitch, spitch; /* a 2D copy when rows > 0 */
    int value;
    void *owned;
    void (*fn)(void *arg);
    void *arg;
    cudaError_t err;
    char what[200];
    struct CUevent_st *event;
    uint64_t rec;
    const uint32_t *word;
    uint32_t want;
    unsigned flags;
};

/* An event: records enqueued and completed, the time of the last completion. */
struct CUevent_st {
    uint32_t magic;
    unsigned flags;
    uint64_t recorded; /* records enqueued (under the lock) */
    uint64_t done;     /* the last record completed */
    double stamp;      /* CLOCK_MONOTONIC seconds when `done` completed */
    struct CUevent_st *dead_next; /* destroyed events, kept on a list (event.c) */
};
#define WEFT_FAKE_EVENT_MAGIC 0x45464b57u

/* A zeroed op, or NULL. */
struct weft_fake_op *weft_fake_op_new(enum weft_fake_op_type type);
void weft_fake_op_free(struct weft_fake_op *op);
/* The stream behind a handle: NULL and cudaStreamLegacy are the current device's legacy
 * default stream, cudaStreamPerThread the thread's own; a destroyed or unknown handle is
 * cudaErrorInvalidResourceHandle (recorded). */
cudaError_t weft_fake_stream(cudaStream_t h, cudaStream_t *out);
/* Appends op to s (op is the stream's then, even on failure) and sets *seq to its place;
 * fails with the sticky error. The legacy stream's ops wait for the blocking streams' earlier
 * work, the blocking streams' ops for the legacy stream's. */
cudaError_t weft_fake_submit(cudaStream_t s, struct weft_fake_op *op, uint64_t *seq);
/* Waits until s has done its op number seq (or the device faulted). */
void weft_fake_wait_seq(cudaStream_t s, uint64_t seq, const char *call);
/* Waits until every op enqueued so far on the legacy stream of s's device, and what it waits
 * for, is done: a marker op through it. */
void weft_fake_drain_legacy(int device, const char *call);
/* The fake's one lock over streams and events; waits for any op's completion under it,
 * saying on stderr what waits once it has waited the watchdog's time since t0. */
void weft_fake_lock(void);
void weft_fake_unlock(void);
void weft_fake_wait_progress(double t0, bool *warned, const char *what);
double weft_fake_now(void);

/* Enqueues fn(arg) on stream s (NULL: the legacy default stream), as a kernel launch: it runs
 * on the stream's thread in stream order; fn owns arg once this succeeded. Returns the
 * launch error (recorded as the last error). */
cudaError_t weft_fake_launch(cudaStream_t s, void (*fn)(void *arg), void *arg);
/* Enqueues a kernel that faults with e when it runs (what a GPU does with an address it
 * cannot reach): every later call then fails with e. `what` is said on stderr. */
cudaError_t weft_fake_launch_fault(cudaStream_t s, cudaError_t e, const char *what);
/* Waits until every stream of `device` has done the work enqueued before the call (what
 * cudaDeviceSynchronize, cudaFree and cudaFreeHost do). */
void weft_fake_sync_device(int device);
/* With FAKECUDA_IMPLICIT_SYNC=1, called after a pinned or device allocation and a cudaMemset:
 * "two commands from different streams cannot run concurrently if one of these is issued
 * in-between", so work enqueued afterwards on any stream of `device` waits for the work of
 * the other streams enqueued before. Drivers may be laxer; this mode shows whether the
 * library depends on them being so. */
void weft_fake_implicit_sync(int device);

#endif /* WEFT_FAKECUDA_H */
