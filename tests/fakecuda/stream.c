/*
 * stream.c - the fake CUDA runtime's streams: FIFOs of operations, each run by its own
 * thread; the legacy default stream's implicit ordering with the blocking streams; host
 * functions run one at a time on one thread per process (CUDA may serialize them too);
 * stream waits on a 32-bit value (cuStreamWaitValue32); synchronization and queries. Every
 * wait says on stderr what it waits for once it has waited FAKECUDA_WATCHDOG_S.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/fakecuda/fakecuda.h"

#define STREAM_MAGIC 0x53464b57u
#define DEAD_MAGIC 0xdeadu

struct CUstream_st {
    uint32_t magic;
    unsigned id;
    int device;
    bool nonblocking; /* cudaStreamNonBlocking: no implicit order with the legacy stream */
    bool legacy;      /* the legacy default stream of its device */
    bool dead;        /* destroyed: its thread ends once the queue is empty */
    struct weft_fake_op *head, *tail;
    uint64_t enq, done; /* ops enqueued; the last op done */
    pthread_cond_t work;
    struct CUstream_st *next; /* every stream ever made (never freed: a stale handle is seen) */
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t progress; /* broadcast whenever an op or a host function completes */
static struct CUstream_st *streams;
static unsigned nstreams;
static struct CUstream_st *legacy[WEFT_FAKE_MAX_DEVICES];
static _Thread_local struct CUstream_st *per_thread[WEFT_FAKE_MAX_DEVICES];
/* FAKECUDA_IMPLICIT_SYNC=1: each stream's work before the last implicit synchronization. */
static struct weft_fake_dep *barrier[WEFT_FAKE_MAX_DEVICES];
static size_t nbarrier[WEFT_FAKE_MAX_DEVICES];

/* The host-function thread's queue. */
struct hostfn_job {
    struct hostfn_job *next;
    void (*fn)(void *arg);
    void *arg;
    bool done;
};
static pthread_cond_t hostfn_work;
static struct hostfn_job *hostfn_head, *hostfn_tail;
static bool hostfn_started;

static void init(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&progress, &ca);
    pthread_cond_init(&hostfn_work, &ca);
    pthread_condattr_destroy(&ca);
}

double weft_fake_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void weft_fake_lock(void)
{
    pthread_once(&init_once, init);
    pthread_mutex_lock(&lock);
}

void weft_fake_unlock(void)
{
    pthread_mutex_unlock(&lock);
}

void weft_fake_wait_progress(double t0, bool *warned, const char *what)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += 1;
    pthread_cond_timedwait(&progress, &lock, &ts);
    const double waited = weft_fake_now() - t0;
    if (!*warned && waited > weft_fake_watchdog_s()) {
        *warned = true;
        fprintf(stderr, "fakecuda: watchdog: %s has waited %.0f s (and goes on waiting)\n", what,
                waited);
    }
}

struct weft_fake_op *weft_fake_op_new(enum weft_fake_op_type type)
{
    struct weft_fake_op *op = calloc(1, sizeof(*op));
    if (op)
        op->type = type;
    return op;
}

void weft_fake_op_free(struct weft_fake_op *op)
{
    if (!op)
        return;
    free(op->deps);
    free(op->owned);
    free(op);
}

/* ---- running ops ------------------------------------------------------------------------- */

static bool value_passes(uint32_t v, uint32_t want, unsigned flags)
{
    switch (flags & 3u) {
    case CU_STREAM_WAIT_VALUE_GEQ: return (int32_t)(v - want) >= 0;
    case CU_STREAM_WAIT_VALUE_EQ: return v == want;
    case CU_STREAM_WAIT_VALUE_AND: return (v & want) != 0;
    default: return ~(v | want) != 0; /* NOR */
    }
}

/* Polls the word: yields first (a release usually comes within microseconds), then sleeps up
 * to 100 us between looks. Gives up only when the device faulted. */
static void wait_value(const struct CUstream_st *s, const struct weft_fake_op *op)
{
    const double t0 = weft_fake_now();
    bool warned = false;
    long sleep_ns = 1000;
    for (unsigned i = 0;; i++) {
        if (value_passes(__atomic_load_n(op->word, __ATOMIC_ACQUIRE), op->want, op->flags))
            return;
        if (weft_fake_sticky() != cudaSuccess)
            return;
        if (i < 200) {
            sched_yield();
            continue;
        }
        const struct timespec ts = {0, sleep_ns};
        nanosleep(&ts, NULL);
        sleep_ns = sleep_ns < 100000 ? sleep_ns * 2 : sleep_ns;
        if (!warned && weft_fake_now() - t0 > weft_fake_watchdog_s()) {
            warned = true;
            fprintf(stderr,
                    "fakecuda: watchdog: stream %u has waited %.0f s in cuStreamWaitValue32 for "
                    "the word at %p to pass %u (flags %#x); it holds %u (and goes on waiting)\n",
                    s->id, weft_fake_now() - t0, (const void *)op->word, op->want, op->flags,
                    __atomic_load_n(op->word, __ATOMIC_ACQUIRE));
        }
    }
}

static void *hostfn_main(void *unused)
{
    (void)unused;
    weft_fake_set_hostfn_thread();
    pthread_mutex_lock(&lock);
    for (;;) {
        while (!hostfn_head)
            pthread_cond_wait(&hostfn_work, &lock);
        struct hostfn_job *job = hostfn_head;
        hostfn_head = job->next;
        if (!hostfn_head)
            hostfn_tail = NULL;
        pthread_mutex_unlock(&lock);
        job->fn(job->arg);
        pthread_mutex_lock(&lock);
        job->done = true;
        pthread_cond_broadcast(&progress);
    }
    return NULL;
}

/* Hands fn(arg) to the host-function thread and waits for it: the stream goes on after. */
static void run_hostfn(const struct CUstream_st *s, const struct weft_fake_op *op)
{
    struct hostfn_job job = {NULL, op->fn, op->arg, false};
    char what[96];
    snprintf(what, sizeof(what), "stream %u, running a host function,", s->id);
    const double t0 = weft_fake_now();
    bool warned = false;
    pthread_mutex_lock(&lock);
    if (!hostfn_started) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, hostfn_main, NULL) != 0) {
            fprintf(stderr, "fakecuda: cannot start the host-function thread\n");
            abort();
        }
        pthread_attr_destroy(&attr);
        pthread_setname_np(t, "fakecuda-hostfn");
        hostfn_started = true;
    }
    if (hostfn_tail)
        hostfn_tail->next = &job;
    else
        hostfn_head = &job;
    hostfn_tail = &job;
    pthread_cond_signal(&hostfn_work);
    while (!job.done)
        weft_fake_wait_progress(t0, &warned, what);
    pthread_mutex_unlock(&lock);
}

static void wait_event(const struct CUstream_st *s, const struct weft_fake_op *op)
{
    char what[96];
    snprintf(what, sizeof(what), "stream %u, in cudaStreamWaitEvent,", s->id);
    const double t0 = weft_fake_now();
    bool warned = false;
    pthread_mutex_lock(&lock);
    while (op->event->done < op->rec && weft_fake_sticky() == cudaSuccess)
        weft_fake_wait_progress(t0, &warned, what);
    pthread_mutex_unlock(&lock);
}

static void run_op(const struct CUstream_st *s, struct weft_fake_op *op)
{
    /* After a fault the device does nothing more (a kernel still runs to free its work). */
    const bool faulted = weft_fake_sticky() != cudaSuccess;
    switch (op->type) {
    case WEFT_FAKE_OP_NOP: break;
    case WEFT_FAKE_OP_COPY:
        /* An aligned 4-byte copy is one store, as the copy engine makes it: a stream may be
         * polling the word (cuStreamWaitValue32), which ThreadSanitizer would call a race. */
        if (!faulted && !op->rows && op->len == 4 && ((uintptr_t)op->dst & 3) == 0) {
            uint32_t v;
            memcpy(&v, op->src, 4);
            __atomic_store_n((uint32_t *)op->dst, v, __ATOMIC_RELEASE);
        } else if (!faulted && !op->rows) {
            memmove(op->dst, op->src, op->len);
        }
        for (size_t r = 0; !faulted && r < op->rows; r++)
            memmove((char *)op->dst + r * op->dpitch, (const char *)op->src + r * op->spitch,
                    op->len);
        break;
    case WEFT_FAKE_OP_MEMSET:
        if (!faulted)
            memset(op->dst, op->value, op->len);
        break;
    case WEFT_FAKE_OP_KERNEL: op->fn(op->arg); break;
    case WEFT_FAKE_OP_FAULT: weft_fake_fault(op->err, op->what); break;
    case WEFT_FAKE_OP_HOSTFN:
        if (!faulted)
            run_hostfn(s, op);
        break;
    case WEFT_FAKE_OP_RECORD:
        pthread_mutex_lock(&lock);
        if (op->rec > op->event->done) {
            op->event->done = op->rec;
            op->event->stamp = weft_fake_now();
        }
        pthread_mutex_unlock(&lock);
        break;
    case WEFT_FAKE_OP_WAIT_EVENT: wait_event(s, op); break;
    case WEFT_FAKE_OP_WAIT_VALUE: wait_value(s, op); break;
    }
}

/* Under the lock: waits until the op's implicit dependencies are done. */
static void wait_deps(const struct CUstream_st *s, const struct weft_fake_op *op)
{
    char what[128];
    snprintf(what, sizeof(what),
             "stream %u%s, waiting for other streams (legacy stream order or implicit "
             "synchronization),",
             s->id, s->legacy ? " (legacy)" : "");
    const double t0 = weft_fake_now();
    bool warned = false;
    for (size_t i = 0; i < op->ndeps; i++)
        while (op->deps[i].s->done < op->deps[i].seq && weft_fake_sticky() == cudaSuccess)
            weft_fake_wait_progress(t0, &warned, what);
}

static void *stream_main(void *arg)
{
    struct CUstream_st *s = arg;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (!s->head && !s->dead)
            pthread_cond_wait(&s->work, &lock);
        if (!s->head)
            break;
        struct weft_fake_op *op = s->head;
        wait_deps(s, op);
        pthread_mutex_unlock(&lock);
        run_op(s, op);
        pthread_mutex_lock(&lock);
        s->head = op->next;
        if (!s->head)
            s->tail = NULL;
        s->done = op->seq;
        pthread_cond_broadcast(&progress);
        weft_fake_op_free(op);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

/* ---- streams ------------------------------------------------------------------------------ */

/* Under the lock. */
static cudaError_t stream_new(int device, bool nonblocking, bool is_legacy,
                              struct CUstream_st **out)
{
    struct CUstream_st *s = calloc(1, sizeof(*s));
    if (!s)
        return cudaErrorMemoryAllocation;
    s->magic = STREAM_MAGIC;
    s->id = ++nstreams;
    s->device = device;
    s->nonblocking = nonblocking;
    s->legacy = is_legacy;
    pthread_cond_init(&s->work, NULL);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    const int rc = pthread_create(&t, &attr, stream_main, s);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        pthread_cond_destroy(&s->work);
        free(s);
        return cudaErrorMemoryAllocation;
    }
    char name[16];
    snprintf(name, sizeof(name), "fakecuda-s%u", s->id);
    pthread_setname_np(t, name);
    s->next = streams;
    streams = s;
    *out = s;
    return cudaSuccess;
}

cudaError_t weft_fake_stream(cudaStream_t h, cudaStream_t *out)
{
    const int dev = weft_fake_device();
    if (h && h != cudaStreamLegacy && h != cudaStreamPerThread) {
        if (h->magic != STREAM_MAGIC)
            return weft_fake_fail(cudaErrorInvalidResourceHandle);
        *out = h;
        return cudaSuccess;
    }
    struct CUstream_st **slot = h == cudaStreamPerThread ? &per_thread[dev] : &legacy[dev];
    cudaError_t e = cudaSuccess;
    weft_fake_lock();
    if (!*slot)
        e = stream_new(dev, false, slot == &legacy[dev], slot);
    *out = *slot;
    weft_fake_unlock();
    return weft_fake_fail(e);
}

cudaError_t weft_fake_submit(cudaStream_t s, struct weft_fake_op *op, uint64_t *seq)
{
    weft_fake_lock();
    cudaError_t e = weft_fake_sticky();
    if (e == cudaSuccess && s->legacy) {
        /* The legacy stream waits for the blocking streams' earlier work. */
        size_t n = 0;
        for (struct CUstream_st *t = streams; t; t = t->next)
            n += !t->legacy && !t->nonblocking && t->device == s->device && t->done < t->enq;
        op->deps = n ? calloc(n, sizeof(*op->deps)) : NULL;
        if (n && !op->deps)
            e = cudaErrorMemoryAllocation;
        for (struct CUstream_st *t = streams; t && op->deps; t = t->next)
            if (!t->legacy && !t->nonblocking && t->device == s->device && t->done < t->enq)
                op->deps[op->ndeps++] = (struct weft_fake_dep){t, t->enq};
    } else if (e == cudaSuccess && !s->nonblocking) {
        /* A blocking stream waits for the legacy stream's earlier work. */
        struct CUstream_st *l = legacy[s->device];
        if (l && l->done < l->enq) {
            op->deps = calloc(1, sizeof(*op->deps));
            if (!op->deps)
                e = cudaErrorMemoryAllocation;
            else
                op->deps[op->ndeps++] = (struct weft_fake_dep){l, l->enq};
        }
    }
    /* Implicit synchronization: the other streams' work from before it. */
    for (size_t i = 0; e == cudaSuccess && i < nbarrier[s->device]; i++) {
        const struct weft_fake_dep b = barrier[s->device][i];
        if (b.s == s || b.s->done >= b.seq)
            continue;
        struct weft_fake_dep *more = realloc(op->deps, (op->ndeps + 1) * sizeof(*more));
        if (!more)
            e = cudaErrorMemoryAllocation;
        else
            (op->deps = more)[op->ndeps++] = b;
    }
    if (e != cudaSuccess) {
        weft_fake_unlock();
        weft_fake_op_free(op);
        return weft_fake_fail(e);
    }
    if (op->type == WEFT_FAKE_OP_RECORD)
        op->rec = ++op->event->recorded;
    op->seq = ++s->enq;
    if (seq)
        *seq = op->seq;
    if (s->tail)
        s->tail->next = op;
    else
        s->head = op;
    s->tail = op;
    pthread_cond_signal(&s->work);
    weft_fake_unlock();
    return cudaSuccess;
}

void weft_fake_wait_seq(cudaStream_t s, uint64_t seq, const char *call)
{
    char what[96];
    snprintf(what, sizeof(what), "%s on stream %u", call, s->id);
    const double t0 = weft_fake_now();
    bool warned = false;
    weft_fake_lock();
    while (s->done < seq && weft_fake_sticky() == cudaSuccess)
        weft_fake_wait_progress(t0, &warned, what);
    weft_fake_unlock();
}

void weft_fake_drain_legacy(int device, const char *call)
{
    cudaStream_t l = NULL;
    weft_fake_lock();
    if (!legacy[device] && stream_new(device, false, true, &legacy[device]) != cudaSuccess) {
        weft_fake_unlock();
        return;
    }
    l = legacy[device];
    weft_fake_unlock();
    uint64_t seq;
    struct weft_fake_op *op = weft_fake_op_new(WEFT_FAKE_OP_NOP);
    if (op && weft_fake_submit(l, op, &seq) == cudaSuccess)
        weft_fake_wait_seq(l, seq, call);
}

void weft_fake_sync_device(int device)
{
    weft_fake_lock();
    size_t n = 0;
    for (struct CUstream_st *t = streams; t; t = t->next)
        n += t->device == device;
    struct weft_fake_dep *d = calloc(n ? n : 1, sizeof(*d));
    n = 0;
    for (struct CUstream_st *t = streams; t && d; t = t->next)
        if (t->device == device)
            d[n++] = (struct weft_fake_dep){t, t->enq};
    const double t0 = weft_fake_now();
    bool warned = false;
    char what[64];
    snprintf(what, sizeof(what), "a device synchronization of device %d", device);
    for (size_t i = 0; i < n; i++)
        while (d[i].s->done < d[i].seq && weft_fake_sticky() == cudaSuccess)
            weft_fake_wait_progress(t0, &warned, what);
    weft_fake_unlock();
    free(d);
}

void weft_fake_implicit_sync(int device)
{
    if (!weft_fake_strict_sync())
        return;
    weft_fake_lock();
    size_t n = 0;
    for (struct CUstream_st *t = streams; t; t = t->next)
        n += t->device == device && t->done < t->enq;
    struct weft_fake_dep *d = n ? calloc(n, sizeof(*d)) : NULL;
    n = 0;
    for (struct CUstream_st *t = streams; t && d; t = t->next)
        if (t->device == device && t->done < t->enq)
            d[n++] = (struct weft_fake_dep){t, t->enq};
    free(barrier[device]);
    barrier[device] = d;
    nbarrier[device] = n;
    weft_fake_unlock();
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *pStream, unsigned int flags)
{
    cudaError_t e = weft_fake_enter("cudaStreamCreateWithFlags");
    if (e != cudaSuccess)
        return e;
    if (!pStream || (flags & ~(unsigned)cudaStreamNonBlocking))
        return weft_fake_fail(cudaErrorInvalidValue);
    weft_fake_lock();
    e = stream_new(weft_fake_device(), flags & cudaStreamNonBlocking, false, pStream);
    weft_fake_unlock();
    return weft_fake_fail(e);
}

cudaError_t cudaStreamCreate(cudaStream_t *pStream)
{
    return cudaStreamCreateWithFlags(pStream, cudaStreamDefault);
}

/* As CUDA: returns at once; the stream's thread finishes the queued work, then ends. */
cudaError_t cudaStreamDestroy(cudaStream_t stream)
{
    const cudaError_t e = weft_fake_enter("cudaStreamDestroy");
    if (e != cudaSuccess)
        return e;
    if (!stream || stream == cudaStreamLegacy || stream == cudaStreamPerThread ||
        stream->magic != STREAM_MAGIC)
        return weft_fake_fail(cudaErrorInvalidResourceHandle);
    weft_fake_lock();
    stream->magic = DEAD_MAGIC;
    stream->dead = true;
    pthread_cond_signal(&stream->work);
    weft_fake_unlock();
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
    cudaError_t e = weft_fake_enter("cudaStreamSynchronize");
    cudaStream_t s;
    if (e != cudaSuccess || (e = weft_fake_stream(stream, &s)) != cudaSuccess)
        return e;
    if (s->legacy) {
        weft_fake_drain_legacy(s->device, "cudaStreamSynchronize");
    } else {
        weft_fake_lock();
        const uint64_t seq = s->enq;
        weft_fake_unlock();
        weft_fake_wait_seq(s, seq, "cudaStreamSynchronize");
    }
    return weft_fake_fail(weft_fake_sticky());
}

cudaError_t cudaStreamQuery(cudaStream_t stream)
{
    cudaError_t e = weft_fake_enter("cudaStreamQuery");
    cudaStream_t s;
    if (e != cudaSuccess || (e = weft_fake_stream(stream, &s)) != cudaSuccess)
        return e;
    weft_fake_lock();
    const bool idle = s->done == s->enq;
    weft_fake_unlock();
    /* Not ready is an answer, not an error: it is not kept for cudaGetLastError. */
    return idle ? cudaSuccess : cudaErrorNotReady;
}

cudaError_t cudaDeviceSynchronize(void)
{
    const cudaError_t e = weft_fake_enter("cudaDeviceSynchronize");
    if (e != cudaSuccess)
        return e;
    weft_fake_sync_device(weft_fake_device());
    return weft_fake_fail(weft_fake_sticky());
}

cudaError_t cudaLaunchHostFunc(cudaStream_t stream, cudaHostFn_t fn, void *userData)
{
    cudaError_t e = weft_fake_enter("cudaLaunchHostFunc");
    cudaStream_t s;
    if (e != cudaSuccess || (e = weft_fake_stream(stream, &s)) != cudaSuccess)
        return e;
    if (!fn)
        return weft_fake_fail(cudaErrorInvalidValue);
    struct weft_fake_op *op = weft_fake_op_new(WEFT_FAKE_OP_HOSTFN);
    if (!op)
        return weft_fake_fail(cudaErrorMemoryAllocation);
    op->fn = fn;
    op->arg = userData;
    return weft_fake_submit(s, op, NULL);
}

cudaError_t weft_fake_launch(cudaStream_t stream, void (*fn)(void *arg), void *arg)
{
    cudaError_t e = weft_fake_enter("a kernel launch");
    cudaStream_t s;
    if (e != cudaSuccess || (e = weft_fake_stream(stream, &s)) != cudaSuccess)
        return e;
    struct weft_fake_op *op = weft_fake_op_new(WEFT_FAKE_OP_KERNEL);
    if (!op)
        return weft_fake_fail(cudaErrorMemoryAllocation);
    op->fn = fn;
    op->arg = arg;
    return weft_fake_submit(s, op, NULL);
}

cudaError_t weft_fake_launch_fault(cudaStream_t stream, cudaError_t err, const char *what)
{
    cudaError_t e = weft_fake_enter("a kernel launch");
    cudaStream_t s;
    if (e != cudaSuccess || (e = weft_fake_stream(stream, &s)) != cudaSuccess)
        return e;
    struct weft_fake_op *op = weft_fake_op_new(WEFT_FAKE_OP_FAULT);
    if (!op)
        return weft_fake_fail(cudaErrorMemoryAllocation);
    op->err = err;
    snprintf(op->what, sizeof(op->what), "%s", what);
    return weft_fake_submit(s, op, NULL);
}

/* The driver's stream memory operation, as cudaGetDriverEntryPointByVersion hands it out. The
 * word must be memory the device reaches (device, pinned or managed), 4-byte aligned. */
CUresult cuStreamWaitValue32(CUstream stream, CUdeviceptr addr, cuuint32_t value,
                             unsigned int flags)
{
    if (weft_fake_enter("cuStreamWaitValue32") != cudaSuccess)
        return CUDA_ERROR_INVALID_CONTEXT;
    void *word = NULL;
    cudaStream_t s;
    if ((flags & ~(3u | (unsigned)CU_STREAM_WAIT_VALUE_FLUSH)) || addr % 4 ||
        weft_fake_translate((const void *)(uintptr_t)addr, 4, true, &word) != cudaSuccess)
        return CUDA_ERROR_INVALID_VALUE;
    if (weft_fake_stream(stream, &s) != cudaSuccess) {
        cudaGetLastError();
        return CUDA_ERROR_INVALID_HANDLE;
    }
    struct weft_fake_op *op = weft_fake_op_new(WEFT_FAKE_OP_WAIT_VALUE);
    if (!op)
        return CUDA_ERROR_OUT_OF_MEMORY;
    op->word = word;
    op->want = value;
    op->flags = flags;
    return weft_fake_submit(s, op, NULL) == cudaSuccess ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
