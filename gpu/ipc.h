/*
 * ipc.h - device memory shared among the processes of one host through CUDA IPC: what a rank
 * publishes about a buffer (its allocation's handle and the offset in it), a bounded cache of
 * the peers' allocations it opened, and the device work an operation on them needs (an
 * internal stream, copies, pinned scratch). Knows nothing of collectives.
 * The cache builds in every build and takes its open/close as callbacks, so CPU tests drive it.
 */
#ifndef WEFT_GPU_IPC_H
#define WEFT_GPU_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft.h"

/* cudaIpcMemHandle_t's size (CUDA_IPC_HANDLE_SIZE); opaque bytes to everyone but ipc.c. */
#define WEFT_IPC_HANDLE_BYTES 64

struct weft_ipc_handle {
    unsigned char bytes[WEFT_IPC_HANDLE_BYTES];
};

/* One buffer as its owner publishes it: the handle of the allocation holding it (handles are
 * per allocation) and where the buffer starts in that allocation. */
struct weft_ipc_buf {
    struct weft_ipc_handle handle;
    uint64_t offset;
};

/* ---- the cache of opened handles (host only, every build) ------------------------------ */

/* How the cache maps and unmaps a peer's allocation: open sets *base to the mapping's local
 * address; close undoes one successful open. */
struct weft_ipc_opener {
    void *ctx;
    weft_result_t (*open)(void *ctx, int peer, const struct weft_ipc_handle *h, void **base);
    void (*close)(void *ctx, int peer, void *base);
};

struct weft_ipc_cache;

/* A cache for peers 0..npeers-1 keeping up to per_peer open mappings each (per_peer below 2
 * counts as 2: one operation maps a peer's send and receive allocations together). */
weft_result_t weft_ipc_cache_create(int npeers, size_t per_peer,
                                    const struct weft_ipc_opener *opener,
                                    struct weft_ipc_cache **out);
/* The local address of peer's allocation `h`: a hit returns the mapping opened before; a miss
 * opens it, first closing the peer's least recently used mapping when the peer has per_peer.
 * A failed open leaves the cache as it was and returns the opener's error. The address stays
 * valid until per_peer other handles of that peer were asked for, or the cache is destroyed. */
weft_result_t weft_ipc_cache_get(struct weft_ipc_cache *c, int peer,
                                 const struct weft_ipc_handle *h, void **base);
/* Open mappings of `peer` (tests and logs). */
size_t weft_ipc_cache_count(const struct weft_ipc_cache *c, int peer);
/* Closes every mapping and frees the cache. NULL is ignored. */
void weft_ipc_cache_destroy(struct weft_ipc_cache *c);

/* ---- a rank's IPC state (CUDA builds; WEFT_ERR_UNSUPPORTED otherwise) ------------------- */

/* Per communicator: the device (the current one when created), the internal stream, the cache
 * (WEFT_GPU_IPC_CACHE per peer), pinned scratch. Used by one thread at a time. */
struct weft_ipc;

/* Creates the state on the calling thread's current device: a non-blocking stream (so that
 * it never waits for the user's streams, which wait for us), the cache of nranks peers. */
weft_result_t weft_ipc_create(int rank, int nranks, struct weft_ipc **out);
/* Closes every mapping, destroys the stream (after what runs on it) and frees. NULL ignored. */
void weft_ipc_destroy(struct weft_ipc *ipc);
int weft_ipc_device(const struct weft_ipc *ipc);

/* Publishes ptr (device memory of this rank's device): WEFT_OK and *out, or
 * WEFT_ERR_UNSUPPORTED when it cannot be shared (not cudaMalloc'd device memory, another
 * device, memory from cudaMallocAsync pools or the VMM API that cudaIpcGetMemHandle refuses),
 * with the reason in weft_last_error(). */
weft_result_t weft_ipc_export(struct weft_ipc *ipc, const void *ptr, struct weft_ipc_buf *out);
/* The local address of peer's buffer `b` (mapped through the cache). */
weft_result_t weft_ipc_import(struct weft_ipc *ipc, int peer, const struct weft_ipc_buf *b,
                              void **ptr);

/* The internal stream (a cudaStream_t) for the kernels of gpu/gpu.h. */
void *weft_ipc_stream(const struct weft_ipc *ipc);
/* Enqueues a copy of `bytes` (any kind of memory, peers' mappings included) on the stream. */
weft_result_t weft_ipc_copy(struct weft_ipc *ipc, void *dst, const void *src, size_t bytes);
/* Enqueues a copy of `rows` rows of `width` bytes, the rows `dpitch` / `spitch` bytes apart
 * in dst / src (a column of blocks: one chunk of every rank's block). */
weft_result_t weft_ipc_copy_rows(struct weft_ipc *ipc, void *dst, size_t dpitch, const void *src,
                                 size_t spitch, size_t width, size_t rows);
/* Marks 0..WEFT_IPC_MARKS-1: mark(i) enqueues a point on the stream (an event), wait_mark(i)
 * returns once the stream got past the last point marked i, within timeout_s (WEFT_OK right
 * away for a mark never set). The staged pipeline's per-slot "copied in" points. */
#define WEFT_IPC_MARKS 4
weft_result_t weft_ipc_mark(struct weft_ipc *ipc, int i);
weft_result_t weft_ipc_wait_mark(struct weft_ipc *ipc, int i, double timeout_s);
/* Waits until the stream has done everything enqueued: WEFT_OK, WEFT_ERR_TIMEOUT after
 * timeout_s, WEFT_ERR_SYSTEM when the work failed. */
weft_result_t weft_ipc_sync(struct weft_ipc *ipc, double timeout_s);
/* Pinned host memory of at least `bytes`, kept until a larger request or destroy. */
weft_result_t weft_ipc_scratch(struct weft_ipc *ipc, size_t bytes, void **buf);

#endif /* WEFT_GPU_IPC_H */
