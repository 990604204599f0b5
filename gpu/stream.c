/*
 * stream.c - host staging of device buffers on a CUDA stream: a per-communicator pool of
 * pinned buffers, the copies around the host operation, the event the worker polls and the
 * stream's wait for the worker (cuStreamWaitValue32 on host-mapped memory, else a host
 * function that waits for the ticket). The layout and the ticket gate build without CUDA.
 */
#include "gpu/stream.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "gpu/gpu.h"

/* Staging regions start at this alignment plus their device address's remainder. */
#define STAGE_ALIGN 256u

/* ---- layout ---------------------------------------------------------------------------- */

static int by_address(const void *a, const void *b)
{
    const uintptr_t x = (uintptr_t)(*(const struct weft_stage_buf *const *)a)->dev;
    const uintptr_t y = (uintptr_t)(*(const struct weft_stage_buf *const *)b)->dev;
    return x < y ? -1 : x > y;
}

weft_result_t weft_stage_layout(struct weft_stage_buf *bufs, size_t n, size_t *total)
{
    *total = 0;
    if (n == 0)
        return WEFT_OK;
    for (size_t i = 0; i < n; i++)
        if (bufs[i].bytes == 0 || (uintptr_t)bufs[i].dev > UINTPTR_MAX - bufs[i].bytes)
            return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                              "staging: buffer %p of %zu bytes is empty or wraps the address "
                              "space",
                              bufs[i].dev, bufs[i].bytes);
    struct weft_stage_buf **order = malloc(n * sizeof(*order));
    if (!order)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "staging: cannot sort %zu buffers", n);
    for (size_t i = 0; i < n; i++)
        order[i] = &bufs[i];
    qsort(order, n, sizeof(*order), by_address);

    size_t cursor = 0;
    weft_result_t r = WEFT_OK;
    for (size_t i = 0; i < n && r == WEFT_OK;) {
        /* One region: every buffer that overlaps the ones before it. */
        const uintptr_t start = (uintptr_t)order[i]->dev;
        uintptr_t end = start + order[i]->bytes;
        size_t j = i + 1;
        for (; j < n && (uintptr_t)order[j]->dev < end; j++) {
            const uintptr_t e = (uintptr_t)order[j]->dev + order[j]->bytes;
            end = e > end ? e : end;
        }
        const size_t aligned = (cursor + STAGE_ALIGN - 1) / STAGE_ALIGN * STAGE_ALIGN;
        const size_t base = aligned + start % STAGE_ALIGN;
        if (aligned < cursor || end - start > SIZE_MAX - base) {
            r = WEFT_ERROR(WEFT_ERR_INVALID_ARG, "staging: %zu buffers overflow size_t", n);
            break;
        }
        for (size_t k = i; k < j; k++)
            order[k]->offset = base + ((uintptr_t)order[k]->dev - start);
        cursor = base + (end - start);
        i = j;
    }
    free(order);
    if (r == WEFT_OK)
        *total = cursor;
    return r;
}

/* ---- the ticket gate -------------------------------------------------------------------- */

void weft_ticket_gate_init(struct weft_ticket_gate *g)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* weft_now_s's clock */
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, &ca);
    pthread_condattr_destroy(&ca);
    g->released = 0;
}

void weft_ticket_gate_fini(struct weft_ticket_gate *g)
{
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->lock);
}

void weft_ticket_gate_release(struct weft_ticket_gate *g, uint32_t ticket)
{
    pthread_mutex_lock(&g->lock);
    g->released = ticket;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

weft_result_t weft_ticket_gate_wait(struct weft_ticket_gate *g, uint32_t ticket, double timeout_s)
{
    /* The operations queued before this one may take long in all: only a pause of
     * timeout_s without any release gives up. */
    double deadline = weft_now_s() + timeout_s;
    pthread_mutex_lock(&g->lock);
    uint32_t seen = g->released;
    while (!weft_ticket_passed(g->released, ticket)) {
        const double now = weft_now_s();
        if (g->released != seen) {
            seen = g->released;
            deadline = now + timeout_s;
        } else if (now >= deadline) {
            pthread_mutex_unlock(&g->lock);
            return WEFT_ERROR(WEFT_ERR_TIMEOUT,
                              "stream operation %u: no operation was released for "
                              "WEFT_TIMEOUT=%g s (last released: %u)",
                              ticket, timeout_s, seen);
        }
        struct timespec ts;
        ts.tv_sec = (time_t)deadline;
        ts.tv_nsec = (long)((deadline - (double)ts.tv_sec) * 1e9);
        if (ts.tv_nsec >= 1000000000L)
            ts.tv_nsec = 999999999L;
        pthread_cond_timedwait(&g->cond, &g->lock, &ts);
    }
    pthread_mutex_unlock(&g->lock);
    return WEFT_OK;
}

#ifdef WEFT_HAVE_CUDA
#include <cuda.h>
#include <cuda_runtime_api.h>

/* Blocks are powers of two from 64 KiB, so that a slot serves the next, slightly larger
 * call, and its blocks, kept and retired (outgrown blocks are freed only with the gate: see
 * weft_pinned_retire), stay under four times its largest need. */
#define STAGE_MIN ((size_t)64 << 10)

typedef CUresult (*wait_value32_fn)(CUstream stream, CUdeviceptr addr, cuuint32_t value,
                                    unsigned int flags);

enum slot_state {
    SLOT_FREE = 0,  /* the last stream that used it is past its copies back */
    SLOT_FILLING,   /* being enqueued by this call */
    SLOT_IN_FLIGHT, /* `done` recorded, not yet seen complete */
    SLOT_BROKEN     /* an enqueue or a query failed: never reused, freed only at the end */
};

/* A staging block and the two events of the operation using it. */
struct slot {
    void *host; /* pinned, cap bytes (NULL when cap is 0) */
    size_t cap;
    cudaEvent_t ready; /* after the copies in: the worker may run */
    cudaEvent_t done;  /* after the copies back: the block may be reused */
    enum slot_state state;
};

struct weft_stream_gate {
    int rank;
    int device;
    double timeout_s;
    bool memops;
    wait_value32_fn wait_value32;
    uint32_t *word;                    /* pinned, host-mapped: the last ticket released (memops) */
    CUdeviceptr word_dev;              /* its device address */
    struct weft_ticket_gate host_gate; /* the host functions' gate (fallback) */
    uint32_t last_ticket;
    struct slot *slots;
    size_t nslots;
    struct weft_pinned_retired retired; /* outgrown staging blocks, freed with the gate */
    char mechanism[192];
};

/* What a host function on the stream needs; freed by it. */
struct host_wait {
    struct weft_stream_gate *gate;
    uint32_t ticket;
};

/* The fallback's wait runs on CUDA's callback thread, so it blocks that thread (and other
 * host functions) while the operation runs: that is why it is only the fallback. */
static void CUDART_CB host_wait_main(void *arg)
{
    struct host_wait *w = arg;
    if (weft_ticket_gate_wait(&w->gate->host_gate, w->ticket, w->gate->timeout_s) != WEFT_OK)
        WEFT_WARN(GPU, "rank %d: %s; the stream goes on without the operation's result",
                  w->gate->rank, weft_error_message());
    free(w);
}

weft_result_t weft_gpu_pin(int rank, size_t bytes, void **out)
{
    void *p = NULL;
    cudaError_t e = cudaHostAlloc(&p, bytes, cudaHostAllocPortable);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY,
                          "rank %d: cannot pin %zu bytes of host memory to stage device "
                          "buffers: cudaHostAlloc: %s",
                          rank, bytes, cudaGetErrorString(e));
    }
    *out = p;
    return WEFT_OK;
}

void weft_pinned_retire(int rank, struct weft_pinned_retired *r, void *block)
{
    void **more = realloc(r->blocks, (r->n + 1) * sizeof(*more));
    if (!more) {
        WEFT_WARN(GPU, "rank %d: cannot keep an outgrown pinned block: leaking it", rank);
        return;
    }
    r->blocks = more;
    r->blocks[r->n++] = block;
}

void weft_pinned_free_all(struct weft_pinned_retired *r)
{
    for (size_t i = 0; i < r->n; i++)
        cudaFreeHost(r->blocks[i]);
    free(r->blocks);
    *r = (struct weft_pinned_retired){0};
}

static weft_result_t cuda_error(const struct weft_stream_gate *g, const char *call,
                                const char *what, cudaError_t e)
{
    cudaGetLastError(); /* clear a non-sticky error so later calls do not report it */
    return WEFT_ERROR(WEFT_ERR_SYSTEM, "%s: rank %d: %s: %s (%s)", what, g->rank, call,
                      cudaGetErrorString(e), cudaGetErrorName(e));
}

/* Stream memory operations: the driver's cuStreamWaitValue32 (through the runtime's entry
 * point lookup, so that no libcuda symbol is linked) on a pinned, host-mapped word. */
static bool memops_setup(struct weft_stream_gate *g, char *why, size_t len)
{
    void *fn = NULL;
    enum cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
    cudaError_t e =
        cudaGetDriverEntryPointByVersion("cuStreamWaitValue32", &fn, 12000, cudaEnableDefault, &q);
    if (e != cudaSuccess || !fn || q != cudaDriverEntryPointSuccess) {
        snprintf(why, len, "cuStreamWaitValue32 not found in the driver: %s, query result %d",
                 cudaGetErrorString(e), (int)q);
        cudaGetLastError();
        return false;
    }
    void *word = NULL;
    e = cudaHostAlloc(&word, 64, cudaHostAllocMapped | cudaHostAllocPortable);
    if (e != cudaSuccess) {
        snprintf(why, len, "cudaHostAlloc(mapped): %s", cudaGetErrorString(e));
        cudaGetLastError();
        return false;
    }
    void *dev = NULL;
    e = cudaHostGetDevicePointer(&dev, word, 0);
    if (e != cudaSuccess) {
        snprintf(why, len, "cudaHostGetDevicePointer: %s", cudaGetErrorString(e));
        cudaGetLastError();
        cudaFreeHost(word);
        return false;
    }
    g->word = word;
    __atomic_store_n(g->word, 0u, __ATOMIC_RELEASE);
    g->word_dev = (CUdeviceptr)(uintptr_t)dev;
    g->wait_value32 = (wait_value32_fn)(uintptr_t)fn;
    g->memops = true;
    return true;
}

weft_result_t weft_stream_gate_create(int rank, struct weft_stream_gate **out)
{
    if (!weft_gpu_available())
        return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "rank %d: a stream needs a GPU: %s", rank,
                          weft_gpu_describe());
    const char *want = weft_config_str(WEFT_CFG_GPU_STREAM_RELEASE);
    if (strcmp(want, "auto") != 0 && strcmp(want, "memops") != 0 && strcmp(want, "hostfn") != 0)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "rank %d: WEFT_GPU_STREAM_RELEASE=%s: want auto, memops or hostfn", rank,
                          want);
    struct weft_stream_gate *g = calloc(1, sizeof(*g));
    if (!g)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: cannot allocate the stream gate", rank);
    g->rank = rank;
    g->timeout_s = weft_config_double(WEFT_CFG_TIMEOUT);
    cudaError_t e = cudaGetDevice(&g->device);
    if (e != cudaSuccess) {
        weft_result_t r = cuda_error(g, "cudaGetDevice", "stream setup", e);
        free(g);
        return r;
    }
    weft_ticket_gate_init(&g->host_gate);
    char why[160] = "WEFT_GPU_STREAM_RELEASE=hostfn";
    if (strcmp(want, "hostfn") != 0 && !memops_setup(g, why, sizeof(why)) &&
        strcmp(want, "memops") == 0) {
        weft_ticket_gate_fini(&g->host_gate);
        free(g);
        return WEFT_ERROR(WEFT_ERR_UNSUPPORTED,
                          "rank %d: WEFT_GPU_STREAM_RELEASE=memops, but stream memory "
                          "operations are not usable: %s",
                          rank, why);
    }
    if (g->memops)
        snprintf(g->mechanism, sizeof(g->mechanism),
                 "stream memory operations (cuStreamWaitValue32 on host-mapped memory)");
    else
        snprintf(g->mechanism, sizeof(g->mechanism), "host functions (cudaLaunchHostFunc: %s)",
                 why);
    WEFT_INFO(GPU,
              "rank %d: device buffers on streams are staged through pinned host memory on "
              "device %d; streams wait for the host by %s",
              rank, g->device, g->mechanism);
    *out = g;
    return WEFT_OK;
}

const char *weft_stream_gate_mechanism(const struct weft_stream_gate *g)
{
    return g ? g->mechanism : "none";
}

/* A slot in flight whose copies back completed is free again. */
static void slot_poll(struct slot *s)
{
    if (s->state != SLOT_IN_FLIGHT)
        return;
    cudaError_t e = cudaEventQuery(s->done);
    if (e == cudaSuccess)
        s->state = SLOT_FREE;
    else if (e != cudaErrorNotReady) {
        cudaGetLastError();
        s->state = SLOT_BROKEN;
    }
}

/* A free slot with at least `bytes` of staging: the smallest that fits, else a free one
 * regrown, else a new one. */
static weft_result_t slot_get(struct weft_stream_gate *g, size_t bytes, struct slot **out)
{
    struct slot *fit = NULL, *any = NULL;
    for (size_t i = 0; i < g->nslots; i++) {
        struct slot *s = &g->slots[i];
        slot_poll(s);
        if (s->state != SLOT_FREE)
            continue;
        if (s->cap >= bytes && (!fit || s->cap < fit->cap))
            fit = s;
        if (!any || s->cap > any->cap)
            any = s;
    }
    struct slot *s = fit ? fit : any;
    if (!s) {
        struct slot *more = realloc(g->slots, (g->nslots + 1) * sizeof(*more));
        if (!more)
            return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: cannot grow the staging pool", g->rank);
        g->slots = more;
        s = &g->slots[g->nslots];
        memset(s, 0, sizeof(*s));
        cudaError_t e = cudaEventCreateWithFlags(&s->ready, cudaEventDisableTiming);
        if (e != cudaSuccess)
            return cuda_error(g, "cudaEventCreateWithFlags", "staging", e);
        e = cudaEventCreateWithFlags(&s->done, cudaEventDisableTiming);
        if (e != cudaSuccess) {
            cudaEventDestroy(s->ready);
            return cuda_error(g, "cudaEventCreateWithFlags", "staging", e);
        }
        g->nslots++;
    }
    if (s->cap < bytes) {
        size_t cap = STAGE_MIN;
        while (cap < bytes && cap <= SIZE_MAX / 2)
            cap *= 2;
        if (cap < bytes)
            cap = bytes;
        void *block = NULL;
        WEFT_CHECK(weft_gpu_pin(g->rank, cap, &block));
        if (s->host)
            weft_pinned_retire(g->rank, &g->retired, s->host);
        s->host = block;
        s->cap = cap;
    }
    s->state = SLOT_FILLING;
    *out = s;
    return WEFT_OK;
}

weft_result_t weft_stream_enqueue(struct weft_stream_gate *g, void *stream,
                                  struct weft_stage_buf *bufs, size_t n, const char *call,
                                  struct weft_stream_ticket *ticket, bool *armed)
{
    *armed = false;
    int dev = -1;
    cudaError_t e = cudaGetDevice(&dev);
    if (e != cudaSuccess)
        return cuda_error(g, "cudaGetDevice", call, e);
    if (dev != g->device)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "%s: rank %d: the current CUDA device is %d, but this communicator "
                          "stages for device %d (its first stream call's): one communicator, "
                          "one device",
                          call, g->rank, dev, g->device);
    size_t total;
    WEFT_CHECK(weft_stage_layout(bufs, n, &total));
    struct slot *s = NULL;
    WEFT_CHECK(slot_get(g, total, &s));
    for (size_t i = 0; i < n; i++)
        bufs[i].host = (char *)s->host + bufs[i].offset;

    cudaStream_t st = (cudaStream_t)stream;
    weft_result_t r = WEFT_OK;
    for (size_t i = 0; i < n; i++) {
        if (!(bufs[i].dir & WEFT_STAGE_IN))
            continue;
        e = cudaMemcpyAsync(bufs[i].host, bufs[i].dev, bufs[i].bytes, cudaMemcpyDefault, st);
        if (e != cudaSuccess) {
            r = cuda_error(g, "cudaMemcpyAsync (device to staging)", call, e);
            goto fail;
        }
    }
    e = cudaEventRecord(s->ready, st);
    if (e != cudaSuccess) {
        r = cuda_error(g, "cudaEventRecord", call, e);
        goto fail;
    }
    const uint32_t t = g->last_ticket + 1;
    if (g->memops) {
        CUresult cr = g->wait_value32((CUstream)st, g->word_dev, t, CU_STREAM_WAIT_VALUE_GEQ);
        if (cr != CUDA_SUCCESS) {
            r = WEFT_ERROR(WEFT_ERR_SYSTEM, "%s: rank %d: cuStreamWaitValue32: CUresult %d", call,
                           g->rank, (int)cr);
            goto fail;
        }
    } else {
        struct host_wait *w = malloc(sizeof(*w));
        if (!w) {
            r = WEFT_ERROR(WEFT_ERR_NO_MEMORY, "%s: rank %d: host function argument", call,
                           g->rank);
            goto fail;
        }
        *w = (struct host_wait){g, t};
        e = cudaLaunchHostFunc(st, host_wait_main, w);
        if (e != cudaSuccess) {
            free(w);
            r = cuda_error(g, "cudaLaunchHostFunc", call, e);
            goto fail;
        }
    }
    /* From here on the stream waits for ticket t: it must be released even on failure. */
    g->last_ticket = t;
    *ticket = (struct weft_stream_ticket){g, t, (void *)s->ready};
    *armed = true;
    for (size_t i = 0; i < n; i++) {
        if (!(bufs[i].dir & WEFT_STAGE_OUT))
            continue;
        e = cudaMemcpyAsync((void *)(uintptr_t)bufs[i].dev, bufs[i].host, bufs[i].bytes,
                            cudaMemcpyDefault, st);
        if (e != cudaSuccess) {
            r = cuda_error(g, "cudaMemcpyAsync (staging to device)", call, e);
            goto fail;
        }
    }
    e = cudaEventRecord(s->done, st);
    if (e != cudaSuccess) {
        cudaGetLastError();
        s->state = SLOT_BROKEN;
        return cuda_error(g, "cudaEventRecord", call, e);
    }
    s->state = SLOT_IN_FLIGHT;
    return WEFT_OK;

fail:
    /* Copies already enqueued may still use the block: reuse it only after them. */
    if (cudaEventRecord(s->done, st) == cudaSuccess) {
        s->state = SLOT_IN_FLIGHT;
    } else {
        cudaGetLastError();
        s->state = SLOT_BROKEN;
    }
    return r;
}

weft_result_t weft_stream_ready(const struct weft_stream_ticket *t)
{
    /* A thread's first runtime call would otherwise make device 0 current on it. */
    static _Thread_local int bound = -1;
    if (bound != t->gate->device && cudaSetDevice(t->gate->device) == cudaSuccess)
        bound = t->gate->device;
    cudaError_t e = cudaEventQuery((cudaEvent_t)t->ready);
    if (e == cudaSuccess)
        return WEFT_OK;
    if (e == cudaErrorNotReady)
        return WEFT_ERR_IN_PROGRESS;
    return cuda_error(t->gate, "cudaEventQuery", "stream operation's inputs", e);
}

void weft_stream_release(const struct weft_stream_ticket *t)
{
    struct weft_stream_gate *g = t->gate;
    /* Release order: the staging writes of the operation happen before the stream sees it. */
    if (g->memops)
        __atomic_store_n(g->word, t->ticket, __ATOMIC_RELEASE);
    else
        weft_ticket_gate_release(&g->host_gate, t->ticket);
}

void weft_stream_gate_destroy(struct weft_stream_gate *g, double timeout_s)
{
    if (!g)
        return;
    const double deadline = weft_now_s() + timeout_s;
    long sleep_ns = 10000;
    for (;;) {
        bool busy = false;
        for (size_t i = 0; i < g->nslots; i++) {
            slot_poll(&g->slots[i]);
            busy |= g->slots[i].state == SLOT_IN_FLIGHT;
        }
        if (!busy)
            break;
        if (weft_now_s() > deadline) {
            WEFT_WARN(GPU,
                      "rank %d: streams still use the staging of this communicator after "
                      "WEFT_TIMEOUT=%g s; leaving %zu staging blocks allocated",
                      g->rank, timeout_s, g->nslots);
            return;
        }
        const struct timespec ts = {0, sleep_ns};
        nanosleep(&ts, NULL);
        sleep_ns = sleep_ns < 10000000 ? sleep_ns * 2 : sleep_ns;
    }
    for (size_t i = 0; i < g->nslots; i++) {
        /* A broken slot's copies may never end: its block stays, its events go. */
        if (g->slots[i].host && g->slots[i].state != SLOT_BROKEN)
            cudaFreeHost(g->slots[i].host);
        cudaEventDestroy(g->slots[i].ready);
        cudaEventDestroy(g->slots[i].done);
    }
    weft_pinned_free_all(&g->retired);
    if (g->word)
        cudaFreeHost(g->word);
    cudaGetLastError();
    weft_ticket_gate_fini(&g->host_gate);
    free(g->slots);
    free(g);
}

#else /* !WEFT_HAVE_CUDA */

weft_result_t weft_gpu_pin(int rank, size_t bytes, void **out)
{
    (void)out;
    return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "rank %d: cannot pin %zu bytes: %s", rank, bytes,
                      weft_gpu_describe());
}

weft_result_t weft_stream_gate_create(int rank, struct weft_stream_gate **out)
{
    (void)out;
    return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "rank %d: a stream needs a GPU: %s", rank,
                      weft_gpu_describe());
}

void weft_stream_gate_destroy(struct weft_stream_gate *gate, double timeout_s)
{
    (void)gate, (void)timeout_s;
}

const char *weft_stream_gate_mechanism(const struct weft_stream_gate *gate)
{
    (void)gate;
    return "none";
}

weft_result_t weft_stream_enqueue(struct weft_stream_gate *gate, void *stream,
                                  struct weft_stage_buf *bufs, size_t n, const char *call,
                                  struct weft_stream_ticket *ticket, bool *armed)
{
    (void)gate, (void)stream, (void)bufs, (void)n, (void)ticket;
    *armed = false;
    return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "%s: a stream needs a GPU: %s", call,
                      weft_gpu_describe());
}

weft_result_t weft_stream_ready(const struct weft_stream_ticket *t)
{
    (void)t;
    return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "stream operations: %s", weft_gpu_describe());
}

void weft_stream_release(const struct weft_stream_ticket *t)
{
    (void)t;
}

#endif
