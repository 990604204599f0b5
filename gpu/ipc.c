/*
 * ipc.c - CUDA IPC among the ranks of one host: the bounded per-peer cache of opened handles
 * (host only, built everywhere), and the thin CUDA part: exporting a buffer as its
 * allocation's handle plus offset, opening peers' handles, the internal stream and its work.
 */
#include "gpu/ipc.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"

/* ---- the cache ------------------------------------------------------------------------- */

struct cache_entry {
    struct weft_ipc_handle handle;
    void *base;
    uint64_t used; /* the cache's clock at the last get: least recently used goes first */
    bool live;
};

struct weft_ipc_cache {
    int npeers;
    size_t per_peer;
    struct weft_ipc_opener opener;
    uint64_t clock;
    struct cache_entry *entries; /* npeers rows of per_peer */
};

weft_result_t weft_ipc_cache_create(int npeers, size_t per_peer,
                                    const struct weft_ipc_opener *opener,
                                    struct weft_ipc_cache **out)
{
    if (npeers < 1 || !opener || !opener->open || !opener->close)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "IPC cache: %d peers or no opener", npeers);
    if (per_peer < 2)
        per_peer = 2;
    if (per_peer > SIZE_MAX / sizeof(struct cache_entry) / (size_t)npeers)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "IPC cache: %d peers x %zu entries overflows",
                          npeers, per_peer);
    struct weft_ipc_cache *c = calloc(1, sizeof(*c));
    struct cache_entry *e = calloc((size_t)npeers * per_peer, sizeof(*e));
    if (!c || !e) {
        free(c);
        free(e);
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "IPC cache: %d peers x %zu entries", npeers,
                          per_peer);
    }
    *c = (struct weft_ipc_cache){npeers, per_peer, *opener, 0, e};
    *out = c;
    return WEFT_OK;
}

weft_result_t weft_ipc_cache_get(struct weft_ipc_cache *c, int peer,
                                 const struct weft_ipc_handle *h, void **base)
{
    if (peer < 0 || peer >= c->npeers)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "IPC cache: peer %d is not in [0, %d)", peer,
                          c->npeers);
    struct cache_entry *row = &c->entries[(size_t)peer * c->per_peer];
    struct cache_entry *victim = NULL;
    for (size_t i = 0; i < c->per_peer; i++) {
        struct cache_entry *e = &row[i];
        if (e->live && memcmp(e->handle.bytes, h->bytes, sizeof(h->bytes)) == 0) {
            e->used = ++c->clock;
            *base = e->base;
            return WEFT_OK;
        }
        /* A free entry first, else the least recently used. */
        if (!victim || (victim->live && (!e->live || e->used < victim->used)))
            victim = e;
    }
    void *mapped = NULL;
    WEFT_CHECK(c->opener.open(c->opener.ctx, peer, h, &mapped));
    if (victim->live) {
        WEFT_TRACE(GPU, "IPC cache: peer %d has %zu mappings: closing the least recently used",
                   peer, c->per_peer);
        c->opener.close(c->opener.ctx, peer, victim->base);
    }
    *victim = (struct cache_entry){*h, mapped, ++c->clock, true};
    *base = mapped;
    return WEFT_OK;
}

size_t weft_ipc_cache_count(const struct weft_ipc_cache *c, int peer)
{
    size_t n = 0;
    if (peer < 0 || peer >= c->npeers)
        return 0;
    for (size_t i = 0; i < c->per_peer; i++)
        n += c->entries[(size_t)peer * c->per_peer + i].live;
    return n;
}

void weft_ipc_cache_destroy(struct weft_ipc_cache *c)
{
    if (!c)
        return;
    for (int p = 0; p < c->npeers; p++)
        for (size_t i = 0; i < c->per_peer; i++) {
            struct cache_entry *e = &c->entries[(size_t)p * c->per_peer + i];
            if (e->live)
                c->opener.close(c->opener.ctx, p, e->base);
        }
    free(c->entries);
    free(c);
}

/* ---- the CUDA part --------------------------------------------------------------------- */

#ifdef WEFT_HAVE_CUDA
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <sched.h>
#include <time.h>

#include "core/clock.h"
#include "core/config.h"
#include "gpu/gpu.h"
#include "gpu/stream.h"

typedef CUresult (*addr_range_fn)(CUdeviceptr *base, size_t *size, CUdeviceptr ptr);

struct weft_ipc {
    int rank;
    int device;
    cudaStream_t stream;
    struct weft_ipc_cache *cache;
    addr_range_fn addr_range; /* cuMemGetAddressRange; NULL: the driver lacks it */
    void *scratch;            /* pinned */
    size_t scratch_cap;
    struct weft_pinned_retired retired; /* outgrown scratch blocks, freed by destroy */
    cudaEvent_t marks[WEFT_IPC_MARKS]; /* created by their first weft_ipc_mark */
    bool marked[WEFT_IPC_MARKS];
};

static weft_result_t cuda_fail(const struct weft_ipc *ipc, weft_result_t code, const char *call,
                               cudaError_t e, const char *what)
{
    cudaGetLastError(); /* a non-sticky error must not be reported by a later call */
    return WEFT_ERROR(code, "rank %d: %s: %s: %s (%s)", ipc->rank, what, call,
                      cudaGetErrorString(e), cudaGetErrorName(e));
}

/* The cache's opener: peers' allocations mapped with peer access enabled on first use (ranks
 * on other devices), unmapped by cudaIpcCloseMemHandle. */
static weft_result_t open_handle(void *ctx, int peer, const struct weft_ipc_handle *h, void **base)
{
    struct weft_ipc *ipc = ctx;
    cudaIpcMemHandle_t mh;
    memcpy(&mh, h->bytes, sizeof(mh));
    void *p = NULL;
    cudaError_t e = cudaIpcOpenMemHandle(&p, mh, cudaIpcMemLazyEnablePeerAccess);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return WEFT_ERROR(WEFT_ERR_UNSUPPORTED,
                          "rank %d: cannot map peer %d's device buffer on GPU %d: "
                          "cudaIpcOpenMemHandle: %s (%s)",
                          ipc->rank, peer, ipc->device, cudaGetErrorString(e),
                          cudaGetErrorName(e));
    }
    WEFT_TRACE(GPU, "rank %d: mapped an allocation of peer %d at %p", ipc->rank, peer, p);
    *base = p;
    return WEFT_OK;
}

static void close_handle(void *ctx, int peer, void *base)
{
    struct weft_ipc *ipc = ctx;
    cudaError_t e = cudaIpcCloseMemHandle(base);
    if (e != cudaSuccess) {
        cudaGetLastError();
        WEFT_WARN(GPU, "rank %d: unmapping peer %d's allocation at %p: cudaIpcCloseMemHandle: %s",
                  ipc->rank, peer, base, cudaGetErrorString(e));
    }
}

weft_result_t weft_ipc_create(int rank, int nranks, struct weft_ipc **out)
{
    struct weft_ipc *ipc = calloc(1, sizeof(*ipc));
    if (!ipc)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: cannot allocate the IPC state", rank);
    ipc->rank = rank;
    weft_result_t r = WEFT_OK;
    cudaError_t e = cudaGetDevice(&ipc->device);
    if (e != cudaSuccess) {
        r = cuda_fail(ipc, WEFT_ERR_SYSTEM, "cudaGetDevice", e, "IPC setup");
        goto fail;
    }
    /* Non-blocking: a blocking stream would wait for the legacy default stream, and a user's
     * legacy-stream work may be what waits for this operation to finish. */
    e = cudaStreamCreateWithFlags(&ipc->stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        r = cuda_fail(ipc, WEFT_ERR_SYSTEM, "cudaStreamCreateWithFlags", e, "IPC setup");
        ipc->stream = NULL;
        goto fail;
    }
    const struct weft_ipc_opener opener = {ipc, open_handle, close_handle};
    const int64_t per_peer = weft_config_int(WEFT_CFG_GPU_IPC_CACHE);
    WEFT_CHECK_GOTO(weft_ipc_cache_create(nranks, per_peer > 0 ? (size_t)per_peer : 0, &opener,
                                          &ipc->cache),
                    r, fail);
    /* The runtime has no call for an allocation's range; the driver's, found through the
     * runtime so that nothing links libcuda. */
    void *fn = NULL;
    enum cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
    e = cudaGetDriverEntryPointByVersion("cuMemGetAddressRange", &fn, 12000, cudaEnableDefault,
                                         &q);
    if (e == cudaSuccess && fn && q == cudaDriverEntryPointSuccess)
        ipc->addr_range = (addr_range_fn)(uintptr_t)fn;
    else
        cudaGetLastError();
    *out = ipc;
    return WEFT_OK;

fail:
    if (ipc->stream)
        cudaStreamDestroy(ipc->stream);
    free(ipc);
    return r;
}

void weft_ipc_destroy(struct weft_ipc *ipc)
{
    if (!ipc)
        return;
    /* The caller's thread may have another device current: restore it after. */
    int old = -1;
    if (cudaGetDevice(&old) != cudaSuccess)
        old = -1;
    cudaSetDevice(ipc->device);
    if (weft_ipc_sync(ipc, weft_config_double(WEFT_CFG_TIMEOUT)) != WEFT_OK)
        WEFT_WARN(GPU, "rank %d: %s; unmapping the peers' buffers anyway", ipc->rank,
                  weft_error_message());
    weft_ipc_cache_destroy(ipc->cache);
    for (int i = 0; i < WEFT_IPC_MARKS; i++)
        if (ipc->marks[i])
            cudaEventDestroy(ipc->marks[i]);
    cudaStreamDestroy(ipc->stream);
    if (ipc->scratch)
        cudaFreeHost(ipc->scratch);
    weft_pinned_free_all(&ipc->retired);
    if (old >= 0)
        cudaSetDevice(old);
    cudaGetLastError();
    free(ipc);
}

int weft_ipc_device(const struct weft_ipc *ipc)
{
    return ipc->device;
}

void *weft_ipc_stream(const struct weft_ipc *ipc)
{
    return ipc->stream;
}

weft_result_t weft_ipc_export(struct weft_ipc *ipc, const void *ptr, struct weft_ipc_buf *out)
{
    struct cudaPointerAttributes attr;
    cudaError_t e = cudaPointerGetAttributes(&attr, ptr);
    if (e != cudaSuccess)
        return cuda_fail(ipc, WEFT_ERR_UNSUPPORTED, "cudaPointerGetAttributes", e,
                         "sharing a buffer by CUDA IPC");
    if (attr.type != cudaMemoryTypeDevice)
        return WEFT_ERROR(WEFT_ERR_UNSUPPORTED,
                          "rank %d: %p is %s memory; CUDA IPC shares cudaMalloc'd device memory",
                          ipc->rank, ptr, attr.type == cudaMemoryTypeManaged ? "managed" : "host");
    if (attr.device != ipc->device)
        return WEFT_ERROR(WEFT_ERR_UNSUPPORTED,
                          "rank %d: %p is on GPU %d, but this communicator works on GPU %d",
                          ipc->rank, ptr, attr.device, ipc->device);
    if (!ipc->addr_range)
        return WEFT_ERROR(WEFT_ERR_UNSUPPORTED,
                          "rank %d: the CUDA driver has no cuMemGetAddressRange (entry point "
                          "not found), so a buffer's allocation is unknown",
                          ipc->rank);
    CUdeviceptr base = 0;
    size_t size = 0;
    CUresult cr = ipc->addr_range(&base, &size, (CUdeviceptr)(uintptr_t)ptr);
    if (cr != CUDA_SUCCESS)
        return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "rank %d: %p: cuMemGetAddressRange: CUresult %d",
                          ipc->rank, ptr, (int)cr);
    /* Refused for memory of cudaMallocAsync pools and of the VMM API (cuMemCreate): those
     * need their own export, which this path does not do. */
    cudaIpcMemHandle_t mh;
    e = cudaIpcGetMemHandle(&mh, (void *)(uintptr_t)base);
    if (e != cudaSuccess)
        return cuda_fail(ipc, WEFT_ERR_UNSUPPORTED, "cudaIpcGetMemHandle", e,
                         "sharing a buffer by CUDA IPC (memory from cudaMallocAsync pools or "
                         "cuMemCreate is refused)");
    _Static_assert(sizeof(mh) == WEFT_IPC_HANDLE_BYTES, "cudaIpcMemHandle_t is 64 bytes");
    memcpy(out->handle.bytes, &mh, sizeof(mh));
    out->offset = (uint64_t)((uintptr_t)ptr - (uintptr_t)base);
    return WEFT_OK;
}

weft_result_t weft_ipc_import(struct weft_ipc *ipc, int peer, const struct weft_ipc_buf *b,
                              void **ptr)
{
    void *base = NULL;
    WEFT_CHECK(weft_ipc_cache_get(ipc->cache, peer, &b->handle, &base));
    *ptr = (char *)base + b->offset;
    return WEFT_OK;
}

weft_result_t weft_ipc_copy(struct weft_ipc *ipc, void *dst, const void *src, size_t bytes)
{
    if (bytes == 0 || dst == src)
        return WEFT_OK;
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, ipc->stream);
    if (e != cudaSuccess)
        return cuda_fail(ipc, WEFT_ERR_SYSTEM, "cudaMemcpyAsync", e, "IPC copy");
    return WEFT_OK;
}

weft_result_t weft_ipc_copy_rows(struct weft_ipc *ipc, void *dst, size_t dpitch, const void *src,
                                 size_t spitch, size_t width, size_t rows)
{
    if (width == 0 || rows == 0 || dst == src)
        return WEFT_OK;
    /* Pitches are bounded (cudaDevAttrMaxPitch: 2^31 - 1 on current GPUs): rows of blocks
     * that large go one copy each. */
    if (rows == 1 || dpitch > INT_MAX || spitch > INT_MAX) {
        for (size_t r = 0; r < rows; r++)
            WEFT_CHECK(weft_ipc_copy(ipc, (char *)dst + r * dpitch,
                                     (const char *)src + r * spitch, width));
        return WEFT_OK;
    }
    cudaError_t e =
        cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, rows, cudaMemcpyDefault, ipc->stream);
    if (e != cudaSuccess)
        return cuda_fail(ipc, WEFT_ERR_SYSTEM, "cudaMemcpy2DAsync", e, "IPC copy");
    return WEFT_OK;
}

/* Polls `done` (a cudaStreamQuery or cudaEventQuery of the internal stream) until it answers
 * cudaSuccess, within timeout_s. A deadline, so no cudaStreamSynchronize: spin briefly (small
 * operations end within microseconds), then sleep with backoff up to a millisecond. */
static weft_result_t poll_done(struct weft_ipc *ipc, cudaError_t (*done)(void *), void *what,
                               const char *call, double timeout_s)
{
    const double deadline = weft_now_s() + timeout_s;
    long sleep_ns = 0;
    for (unsigned spins = 0;; spins++) {
        cudaError_t e = done(what);
        if (e == cudaSuccess)
            return WEFT_OK;
        if (e != cudaErrorNotReady)
            return cuda_fail(ipc, WEFT_ERR_SYSTEM, call, e, "device work of an operation");
        if (weft_now_s() > deadline)
            return WEFT_ERROR(WEFT_ERR_TIMEOUT,
                              "rank %d: the device work of an operation is not done after "
                              "WEFT_TIMEOUT=%g s (GPU %d)",
                              ipc->rank, timeout_s, ipc->device);
        if (spins < 1000) {
            sched_yield();
            continue;
        }
        sleep_ns = sleep_ns ? (sleep_ns < 1000000 ? sleep_ns * 2 : sleep_ns) : 1000;
        const struct timespec ts = {0, sleep_ns};
        nanosleep(&ts, NULL);
    }
}

static cudaError_t stream_done(void *stream)
{
    return cudaStreamQuery(stream);
}

static cudaError_t event_done(void *event)
{
    return cudaEventQuery(event);
}

weft_result_t weft_ipc_sync(struct weft_ipc *ipc, double timeout_s)
{
    return poll_done(ipc, stream_done, ipc->stream, "cudaStreamQuery", timeout_s);
}

static weft_result_t mark_index(const struct weft_ipc *ipc, int i)
{
    if (i < 0 || i >= WEFT_IPC_MARKS)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "rank %d: IPC mark %d is not in [0, %d)",
                          ipc->rank, i, WEFT_IPC_MARKS);
    return WEFT_OK;
}

weft_result_t weft_ipc_mark(struct weft_ipc *ipc, int i)
{
    WEFT_CHECK(mark_index(ipc, i));
    if (!ipc->marks[i]) {
        cudaError_t e = cudaEventCreateWithFlags(&ipc->marks[i], cudaEventDisableTiming);
        if (e != cudaSuccess) {
            ipc->marks[i] = NULL;
            return cuda_fail(ipc, WEFT_ERR_SYSTEM, "cudaEventCreateWithFlags", e, "IPC mark");
        }
    }
    cudaError_t e = cudaEventRecord(ipc->marks[i], ipc->stream);
    if (e != cudaSuccess)
        return cuda_fail(ipc, WEFT_ERR_SYSTEM, "cudaEventRecord", e, "IPC mark");
    ipc->marked[i] = true;
    return WEFT_OK;
}

weft_result_t weft_ipc_wait_mark(struct weft_ipc *ipc, int i, double timeout_s)
{
    WEFT_CHECK(mark_index(ipc, i));
    if (!ipc->marked[i])
        return WEFT_OK;
    return poll_done(ipc, event_done, ipc->marks[i], "cudaEventQuery", timeout_s);
}

/* The scratch may grow while the user's stream waits for this operation, so the outgrown
 * block is retired, not freed (gpu/stream.h). Growing at least twofold bounds how many are. */
weft_result_t weft_ipc_scratch(struct weft_ipc *ipc, size_t bytes, void **buf)
{
    if (bytes > ipc->scratch_cap) {
        size_t cap = ipc->scratch_cap <= SIZE_MAX / 2 ? 2 * ipc->scratch_cap : SIZE_MAX;
        if (cap < bytes)
            cap = bytes;
        void *block = NULL;
        WEFT_CHECK(weft_gpu_pin(ipc->rank, cap, &block));
        if (ipc->scratch)
            weft_pinned_retire(ipc->rank, &ipc->retired, ipc->scratch);
        ipc->scratch = block;
        ipc->scratch_cap = cap;
    }
    *buf = ipc->scratch;
    return WEFT_OK;
}

#else /* !WEFT_HAVE_CUDA */

static const char no_cuda[] = "CUDA IPC: not built with CUDA";

weft_result_t weft_ipc_create(int rank, int nranks, struct weft_ipc **out)
{
    (void)nranks, (void)out;
    return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "rank %d: %s", rank, no_cuda);
}

void weft_ipc_destroy(struct weft_ipc *ipc)
{
    (void)ipc;
}

int weft_ipc_device(const struct weft_ipc *ipc)
{
    (void)ipc;
    return -1;
}

void *weft_ipc_stream(const struct weft_ipc *ipc)
{
    (void)ipc;
    return NULL;
}

weft_result_t weft_ipc_export(struct weft_ipc *ipc, const void *ptr, struct weft_ipc_buf *out)
{
    (void)ipc, (void)out;
    return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "%s (%p)", no_cuda, ptr);
}

weft_result_t weft_ipc_import(struct weft_ipc *ipc, int peer, const struct weft_ipc_buf *b,
                              void **ptr)
{
    (void)ipc, (void)b, (void)ptr;
    return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "%s (peer %d)", no_cuda, peer);
}

weft_result_t weft_ipc_copy(struct weft_ipc *ipc, void *dst, const void *src, size_t bytes)
{
    (void)ipc, (void)dst, (void)src, (void)bytes;
    return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "%s", no_cuda);
}

weft_result_t weft_ipc_copy_rows(struct weft_ipc *ipc, void *dst, size_t dpitch, const void *src,
                                 size_t spitch, size_t width, size_t rows)
{
    (void)ipc, (void)dst, (void)dpitch, (void)src, (void)spitch, (void)width, (void)rows;
    return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "%s", no_cuda);
}

weft_result_t weft_ipc_mark(struct weft_ipc *ipc, int i)
{
    (void)ipc, (void)i;
    return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "%s", no_cuda);
}

weft_result_t weft_ipc_wait_mark(struct weft_ipc *ipc, int i, double timeout_s)
{
    (void)ipc, (void)i, (void)timeout_s;
    return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "%s", no_cuda);
}

weft_result_t weft_ipc_sync(struct weft_ipc *ipc, double timeout_s)
{
    (void)ipc, (void)timeout_s;
    return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "%s", no_cuda);
}

weft_result_t weft_ipc_scratch(struct weft_ipc *ipc, size_t bytes, void **buf)
{
    (void)ipc, (void)bytes, (void)buf;
    return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "%s", no_cuda);
}

#endif
