/*
 * test_collectives.c - every collective algorithm over the in-process fake net (threads as
 * ranks), checked element by element against a double reference on every rank.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collectives/collectives.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/dtype.h"
#include "core/reduce.h"

void fake_net_stats_reset(struct weft_net *any, int sample_heap);
void fake_net_stats(struct weft_net *any, int *max_sends, int *max_recvs, size_t *heap_peak);
weft_result_t fake_net_create_group(int nranks, int rendezvous, double timeout_s,
                                    struct weft_net **nets);

#define MAX_RANKS 9
#define BIG_COUNT ((size_t)65536 + 3)
#define POISON 0xA5

static const int rank_counts[] = {1, 2, 3, 4, 5, 8};
static const size_t small_counts[] = {0, 1, 2, 7, 97, 1031};

enum {
    K_ALLREDUCE = 1 << 0,
    K_BROADCAST = 1 << 1,
    K_REDUCE = 1 << 2,
    K_ALLGATHER = 1 << 3,
    K_REDUCE_SCATTER = 1 << 4,
    K_ALLTOALL = 1 << 5,
    K_BARRIER = 1 << 6,
    K_P2P = 1 << 7,
    K_ALL = (1 << 8) - 1,
};

/* What one configuration runs. */
struct coverage {
    unsigned kinds;
    unsigned dtypes; /* bit per weft_dtype_t */
    bool big;        /* also BIG_COUNT for a subset of dtype x op */
};

struct world {
    int n;
    struct weft_net *nets[MAX_RANKS];
    pthread_barrier_t bar;
    int failures;
    const struct coverage *cov;
    void (*body)(struct world *w, int rank, struct weft_coll_ctx *ctx);
    void *shared[MAX_RANKS];
    int counter;
    weft_result_t results[MAX_RANKS];
};

struct thread_arg {
    struct world *w;
    int rank;
};

static int total_reported;

static void report(struct world *w, int rank, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(struct world *w, int rank, const char *fmt, ...)
{
    __atomic_add_fetch(&w->failures, 1, __ATOMIC_RELAXED);
    if (__atomic_fetch_add(&total_reported, 1, __ATOMIC_RELAXED) >= 20)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "FAIL n=%d rank %d: %s\n", w->n, rank, msg);
}

/* ---- values ----------------------------------------------------------------------------- */

static bool is_float(weft_dtype_t dt)
{
    return dt == WEFT_FLOAT16 || dt == WEFT_BFLOAT16 || dt == WEFT_FLOAT32 ||
           dt == WEFT_FLOAT64;
}

static bool is_unsigned(weft_dtype_t dt)
{
    return dt == WEFT_UINT8 || dt == WEFT_UINT32 || dt == WEFT_UINT64;
}

/* Small integers, so that sums of up to 8 ranks are exact in every dtype (int8 and bf16
 * included) and products stay within 4 in magnitude. */
static double input(weft_dtype_t dt, weft_op_t op, int rank, size_t i)
{
    /* 8-bit AVG: values near the ends of the range, whose sums overflow the element type
     * (same sign at i % 3 < 2, mixed otherwise); the average itself always fits. */
    if (op == WEFT_AVG && dt == WEFT_UINT8)
        return (double)(200 + (i * 3 + (size_t)rank * 5) % 56);
    if (op == WEFT_AVG && dt == WEFT_INT8) {
        const double v = (double)((i * 3 + (size_t)rank * 5) % 28);
        if (i % 3 == 2)
            return (i + (size_t)rank) % 2 ? 127 - v : -128 + v;
        return i % 3 == 0 ? 100 + v : -100 - v;
    }
    if (op == WEFT_PROD) {
        double v = (i + (size_t)rank) % 4 == 0 ? 2 : 1;
        if (!is_unsigned(dt) && (i * 7 + (size_t)rank) % 5 == 0)
            v = -v;
        return v;
    }
    if (is_unsigned(dt))
        return (double)((i * 3 + (size_t)rank * 5) % 16);
    return (double)((i * 3 + (size_t)rank * 5) % 31) - 15;
}

/* A value that names its source and destination (broadcast, allgather, alltoall, p2p). */
static double tagged(int src, int dst, size_t i)
{
    return (double)(((size_t)(src * MAX_RANKS + dst) * 7 + i * 3) % 101);
}

static double combine(weft_op_t op, double a, double b)
{
    switch (op) {
    case WEFT_PROD: return a * b;
    case WEFT_MIN: return a < b ? a : b;
    case WEFT_MAX: return a > b ? a : b;
    default: return a + b;
    }
}

static double expected(weft_dtype_t dt, weft_op_t op, int n, size_t i)
{
    double acc = input(dt, op, 0, i);
    for (int r = 1; r < n; r++)
        acc = combine(op, acc, input(dt, op, r, i));
    if (op == WEFT_AVG)
        acc = is_float(dt) ? acc / n : trunc(acc / n);
    return acc;
}

static double tolerance(weft_dtype_t dt)
{
    switch (dt) {
    case WEFT_FLOAT16: return 2e-3;
    case WEFT_BFLOAT16: return 1e-2;
    case WEFT_FLOAT32: return 1e-6;
    case WEFT_FLOAT64: return 1e-12;
    default: return 0;
    }
}

static bool close_enough(weft_dtype_t dt, double got, double want)
{
    if (!is_float(dt))
        return got == want;
    return fabs(got - want) <= tolerance(dt) * fmax(1.0, fabs(want));
}

static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    memset(p, POISON, bytes ? bytes : 1);
    return p;
}

static weft_result_t run1(struct weft_coll_ctx *ctx, enum weft_coll_kind kind, const void *send,
                          void *recv, size_t count, weft_dtype_t dt, weft_op_t op, int root)
{
    const struct weft_coll_op o = {kind, send, recv, count, dt, op, root};
    return weft_coll_run(ctx, &o, 1);
}

#define RUN_OK(w, rank, call, what, ...)                                                   \
    do {                                                                                   \
        weft_result_t r_ = (call);                                                         \
        if (r_ != WEFT_OK) {                                                               \
            report((w), (rank), what " failed: %s: %s", __VA_ARGS__, weft_strerror(r_),      \
                 weft_error_message());                                                    \
            return;                                                                        \
        }                                                                                  \
    } while (0)

/* ---- one case per collective -------------------------------------------------------------- */

static void case_allreduce(struct world *w, int rank, struct weft_coll_ctx *ctx, weft_dtype_t dt,
                           weft_op_t op, size_t count, bool inplace)
{
    const size_t es = weft_dtype_size(dt);
    char *send = xmalloc(count * es), *recv = inplace ? send : xmalloc(count * es);
    for (size_t i = 0; i < count; i++)
        weft_dtype_store(dt, send, i, input(dt, op, rank, i));
    weft_result_t r = run1(ctx, WEFT_COLL_ALLREDUCE, send, recv, count, dt, op, 0);
    if (r != WEFT_OK) {
        report(w, rank, "allreduce %s %s count %zu failed: %s", weft_dtype_name(dt),
             weft_op_name(op), count, weft_error_message());
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        double got = weft_dtype_load(dt, recv, i), want = expected(dt, op, w->n, i);
        if (!close_enough(dt, got, want)) {
            report(w, rank, "allreduce %s %s count %zu %s: [%zu] = %g, want %g",
                 weft_dtype_name(dt), weft_op_name(op), count, inplace ? "in-place" : "",
                 i, got, want);
            break;
        }
        if (!inplace && weft_dtype_load(dt, send, i) != input(dt, op, rank, i)) {
            report(w, rank, "allreduce %s count %zu changed sendbuf[%zu]", weft_dtype_name(dt),
                 count, i);
            break;
        }
    }
out:
    if (!inplace)
        free(recv);
    free(send);
}

static void case_broadcast(struct world *w, int rank, struct weft_coll_ctx *ctx, weft_dtype_t dt,
                           size_t count, int root, bool inplace)
{
    const size_t es = weft_dtype_size(dt);
    char *recv = xmalloc(count * es);
    char *send = inplace ? recv : rank == root ? xmalloc(count * es) : NULL;
    if (rank == root) {
        for (size_t i = 0; i < count; i++)
            weft_dtype_store(dt, send, i, tagged(root, 0, i));
    }
    weft_result_t r = run1(ctx, WEFT_COLL_BROADCAST, send, recv, count, dt, WEFT_SUM, root);
    if (r != WEFT_OK) {
        report(w, rank, "broadcast count %zu root %d failed: %s", count, root,
             weft_error_message());
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        if (weft_dtype_load(dt, recv, i) != tagged(root, 0, i)) {
            report(w, rank, "broadcast %s count %zu root %d %s: [%zu] = %g, want %g",
                 weft_dtype_name(dt), count, root, inplace ? "in-place" : "", i,
                 weft_dtype_load(dt, recv, i), tagged(root, 0, i));
            break;
        }
    }
out:
    if (send != recv)
        free(send);
    free(recv);
}

static void case_reduce(struct world *w, int rank, struct weft_coll_ctx *ctx, weft_dtype_t dt,
                        weft_op_t op, size_t count, int root, bool inplace)
{
    const size_t es = weft_dtype_size(dt);
    char *send = xmalloc(count * es);
    /* Non-roots get a poisoned recvbuf that must stay untouched. */
    char *recv = inplace && rank == root ? send : xmalloc(count * es);
    for (size_t i = 0; i < count; i++)
        weft_dtype_store(dt, send, i, input(dt, op, rank, i));
    weft_result_t r = run1(ctx, WEFT_COLL_REDUCE, send, recv, count, dt, op, root);
    if (r != WEFT_OK) {
        report(w, rank, "reduce count %zu root %d failed: %s", count, root, weft_error_message());
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        if (rank != root) {
            if ((unsigned char)recv[i * es] != POISON) {
                report(w, rank, "reduce root %d wrote recvbuf of non-root", root);
                break;
            }
            continue;
        }
        double got = weft_dtype_load(dt, recv, i), want = expected(dt, op, w->n, i);
        if (!close_enough(dt, got, want)) {
            report(w, rank, "reduce %s %s count %zu root %d %s: [%zu] = %g, want %g",
                 weft_dtype_name(dt), weft_op_name(op), count, root, inplace ? "in-place" : "",
                 i, got, want);
            break;
        }
    }
out:
    if (recv != send)
        free(recv);
    free(send);
}

static void case_allgather(struct world *w, int rank, struct weft_coll_ctx *ctx, weft_dtype_t dt,
                           size_t count, bool inplace)
{
    const size_t es = weft_dtype_size(dt), n = (size_t)w->n;
    char *recv = xmalloc(n * count * es);
    char *send = inplace ? recv + (size_t)rank * count * es : xmalloc(count * es);
    for (size_t i = 0; i < count; i++)
        weft_dtype_store(dt, send, i, tagged(rank, 0, i));
    weft_result_t r = run1(ctx, WEFT_COLL_ALLGATHER, send, recv, count, dt, WEFT_SUM, 0);
    if (r != WEFT_OK) {
        report(w, rank, "allgather count %zu failed: %s", count, weft_error_message());
        goto out;
    }
    for (size_t j = 0; j < n * count; j++) {
        int p = (int)(j / count);
        if (weft_dtype_load(dt, recv, j) != tagged(p, 0, j % count)) {
            report(w, rank, "allgather %s count %zu %s: block %d [%zu] = %g, want %g",
                 weft_dtype_name(dt), count, inplace ? "in-place" : "", p, j % count,
                 weft_dtype_load(dt, recv, j), tagged(p, 0, j % count));
            break;
        }
    }
out:
    if (!inplace)
        free(send);
    free(recv);
}

static void case_reduce_scatter(struct world *w, int rank, struct weft_coll_ctx *ctx,
                                weft_dtype_t dt, weft_op_t op, size_t count, bool inplace)
{
    const size_t es = weft_dtype_size(dt), n = (size_t)w->n;
    char *send = xmalloc(n * count * es);
    char *recv = inplace ? send + (size_t)rank * count * es : xmalloc(count * es);
    for (size_t j = 0; j < n * count; j++)
        weft_dtype_store(dt, send, j, input(dt, op, rank, j));
    weft_result_t r = run1(ctx, WEFT_COLL_REDUCE_SCATTER, send, recv, count, dt, op, 0);
    if (r != WEFT_OK) {
        report(w, rank, "reduce_scatter count %zu failed: %s", count, weft_error_message());
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        double got = weft_dtype_load(dt, recv, i);
        double want = expected(dt, op, w->n, (size_t)rank * count + i);
        if (!close_enough(dt, got, want)) {
            report(w, rank, "reduce_scatter %s %s count %zu %s: [%zu] = %g, want %g",
                 weft_dtype_name(dt), weft_op_name(op), count, inplace ? "in-place" : "", i,
                 got, want);
            break;
        }
    }
out:
    if (!inplace)
        free(recv);
    free(send);
}

static void case_alltoall(struct world *w, int rank, struct weft_coll_ctx *ctx, weft_dtype_t dt,
                          size_t count)
{
    const size_t es = weft_dtype_size(dt), n = (size_t)w->n;
    char *send = xmalloc(n * count * es), *recv = xmalloc(n * count * es);
    for (size_t j = 0; j < n * count; j++)
        weft_dtype_store(dt, send, j, tagged(rank, (int)(j / count), j % count));
    weft_result_t r = run1(ctx, WEFT_COLL_ALLTOALL, send, recv, count, dt, WEFT_SUM, 0);
    if (r != WEFT_OK) {
        report(w, rank, "alltoall count %zu failed: %s", count, weft_error_message());
        goto out;
    }
    for (size_t j = 0; j < n * count; j++) {
        double want = tagged((int)(j / count), rank, j % count);
        if (weft_dtype_load(dt, recv, j) != want) {
            report(w, rank, "alltoall %s count %zu: block %zu [%zu] = %g, want %g",
                 weft_dtype_name(dt), count, j / count, j % count, weft_dtype_load(dt, recv, j),
                 want);
            break;
        }
    }
out:
    free(recv);
    free(send);
}

static void case_barrier(struct world *w, int rank, struct weft_coll_ctx *ctx)
{
    for (int round = 0; round < 8; round++) {
        __atomic_add_fetch(&w->counter, 1, __ATOMIC_SEQ_CST);
        RUN_OK(w, rank, run1(ctx, WEFT_COLL_BARRIER, NULL, NULL, 0, WEFT_UINT8, WEFT_SUM, 0),
               "barrier round %d", round);
        int seen = __atomic_load_n(&w->counter, __ATOMIC_SEQ_CST);
        if (seen < w->n * (round + 1)) {
            report(w, rank, "barrier round %d returned after only %d arrivals", round, seen);
            return;
        }
    }
}

/* A group with two sends around the ring, a collective between them, and self sends. */
static void case_p2p(struct world *w, int rank, struct weft_coll_ctx *ctx, size_t count)
{
    const int n = w->n, next = (rank + 1) % n, prev = (rank + n - 1) % n;
    int32_t *a = xmalloc(count * 4), *b = xmalloc(count * 4), *c = xmalloc(count * 4);
    int32_t *d = xmalloc(count * 4), *self_out = xmalloc(count * 4), *self_in = xmalloc(count * 4);
    int32_t sum_in[7], sum_out[7];
    for (size_t i = 0; i < count; i++) {
        a[i] = (int32_t)tagged(rank, next, i);
        c[i] = (int32_t)tagged(rank, next, i + 1000);
        self_out[i] = (int32_t)tagged(rank, rank, i + 7);
    }
    for (int i = 0; i < 7; i++)
        sum_in[i] = rank + i;
    const struct weft_coll_op ops[] = {
        {WEFT_COLL_RECV, NULL, self_in, count, WEFT_INT32, WEFT_SUM, rank},
        {WEFT_COLL_SEND, a, NULL, count, WEFT_INT32, WEFT_SUM, next},
        {WEFT_COLL_RECV, NULL, b, count, WEFT_INT32, WEFT_SUM, prev},
        {WEFT_COLL_ALLREDUCE, sum_in, sum_out, 7, WEFT_INT32, WEFT_SUM, 0},
        {WEFT_COLL_SEND, c, NULL, count, WEFT_INT32, WEFT_SUM, next},
        {WEFT_COLL_RECV, NULL, d, count, WEFT_INT32, WEFT_SUM, prev},
        {WEFT_COLL_SEND, self_out, NULL, count, WEFT_INT32, WEFT_SUM, rank},
    };
    weft_result_t r = weft_coll_run(ctx, ops, sizeof(ops) / sizeof(ops[0]));
    if (r != WEFT_OK) {
        report(w, rank, "p2p group count %zu failed: %s", count, weft_error_message());
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        /* With one rank every op is a self op: receives pair with sends in group order. */
        const bool solo = n == 1;
        double want_b = solo ? tagged(rank, next, i + 1000) : tagged(prev, rank, i);
        double want_d = solo ? tagged(rank, rank, i + 7) : tagged(prev, rank, i + 1000);
        double want_self = solo ? tagged(rank, next, i) : tagged(rank, rank, i + 7);
        if (b[i] != want_b || d[i] != want_d || self_in[i] != want_self) {
            report(w, rank, "p2p count %zu [%zu]: got %d %d %d, want %g %g %g", count, i, b[i],
                 d[i], self_in[i], want_b, want_d, want_self);
            break;
        }
    }
    for (int i = 0; i < 7; i++) {
        if (sum_out[i] != n * (n - 1) / 2 + n * i) {
            report(w, rank, "allreduce inside a p2p group: [%d] = %d", i, sum_out[i]);
            break;
        }
    }
out:
    free(a);
    free(b);
    free(c);
    free(d);
    free(self_out);
    free(self_in);
}

/* ---- suites ------------------------------------------------------------------------------- */

/* dtype x op pairs that also run at BIG_COUNT (every pair runs at the small counts). */
static bool big_pair(weft_dtype_t dt, weft_op_t op)
{
    return (dt == WEFT_FLOAT32 && (op == WEFT_SUM || op == WEFT_AVG)) ||
           (dt == WEFT_INT32 && op == WEFT_SUM) || (dt == WEFT_FLOAT16 && op == WEFT_SUM) ||
           (dt == WEFT_BFLOAT16 && op == WEFT_MAX) || (dt == WEFT_FLOAT64 && op == WEFT_PROD) ||
           (dt == WEFT_UINT8 && op == WEFT_MIN) || (dt == WEFT_INT64 && op == WEFT_AVG) ||
           (dt == WEFT_INT8 && op == WEFT_AVG);
}

static void suite_body(struct world *w, int rank, struct weft_coll_ctx *ctx)
{
    const struct coverage *cov = w->cov;
    const int n = w->n, other_root = n - 1, mid_root = n / 2;
    const size_t ncounts = sizeof(small_counts) / sizeof(small_counts[0]);

    for (int dti = 0; dti < WEFT_NUM_DTYPES; dti++) {
        const weft_dtype_t dt = (weft_dtype_t)dti;
        if (!(cov->dtypes & (1u << dti)))
            continue;
        for (size_t ci = 0; ci <= ncounts; ci++) {
            const bool big = ci == ncounts;
            const size_t count = big ? BIG_COUNT : small_counts[ci];
            if (big && !cov->big)
                continue;
            for (int opi = 0; opi < WEFT_NUM_OPS; opi++) {
                const weft_op_t op = (weft_op_t)opi;
                if (big && !big_pair(dt, op))
                    continue;
                for (int inplace = 0; inplace < 2; inplace++) {
                    if (cov->kinds & K_ALLREDUCE)
                        case_allreduce(w, rank, ctx, dt, op, count, inplace);
                    if (cov->kinds & K_REDUCE)
                        case_reduce(w, rank, ctx, dt, op, count, inplace ? 0 : mid_root,
                                    inplace);
                    if ((cov->kinds & K_REDUCE_SCATTER) && (!big || n <= 4))
                        case_reduce_scatter(w, rank, ctx, dt, op, count, inplace);
                }
            }
            /* Data movement does not depend on the op: one pass per dtype and count. */
            if (big && dt != WEFT_FLOAT32 && dt != WEFT_INT8)
                continue;
            for (int inplace = 0; inplace < 2; inplace++) {
                if (cov->kinds & K_BROADCAST) {
                    case_broadcast(w, rank, ctx, dt, count, 0, inplace);
                    case_broadcast(w, rank, ctx, dt, count, other_root, inplace);
                }
                if ((cov->kinds & K_ALLGATHER) && (!big || n <= 4))
                    case_allgather(w, rank, ctx, dt, count, inplace);
            }
            if ((cov->kinds & K_ALLTOALL) && (!big || n <= 4))
                case_alltoall(w, rank, ctx, dt, count);
        }
    }
    if (cov->kinds & K_BARRIER)
        case_barrier(w, rank, ctx);
    if (cov->kinds & K_P2P) {
        for (size_t ci = 0; ci < ncounts; ci++)
            case_p2p(w, rank, ctx, small_counts[ci]);
    }
}

/* ---- worlds of threads -------------------------------------------------------------------- */

static void *rank_main(void *p)
{
    const struct thread_arg *arg = p;
    struct world *w = arg->w;
    struct weft_coll_ctx ctx;
    weft_log_set_rank(arg->rank);
    weft_result_t r = weft_coll_ctx_init(&ctx, w->nets[arg->rank]);
    if (r != WEFT_OK) {
        report(w, arg->rank, "ctx init: %s", weft_error_message());
        w->results[arg->rank] = r;
    } else {
        w->body(w, arg->rank, &ctx);
        weft_coll_ctx_fini(&ctx);
    }
    weft_net_destroy(w->nets[arg->rank]);
    return NULL;
}

/* Runs body on n threads over a fresh fake net; returns the number of failed checks. */
static int run_world(struct world *w, int n, int rendezvous, double timeout_s)
{
    pthread_t threads[MAX_RANKS];
    struct thread_arg args[MAX_RANKS];
    w->n = n;
    w->failures = 0;
    w->counter = 0;
    assert_int_equal(fake_net_create_group(n, rendezvous, timeout_s, w->nets), WEFT_OK);
    assert_int_equal(pthread_barrier_init(&w->bar, NULL, (unsigned)n), 0);
    for (int r = 0; r < n; r++) {
        args[r] = (struct thread_arg){w, r};
        w->results[r] = WEFT_OK;
        assert_int_equal(pthread_create(&threads[r], NULL, rank_main, &args[r]), 0);
    }
    for (int r = 0; r < n; r++)
        pthread_join(threads[r], NULL);
    pthread_barrier_destroy(&w->bar);
    return w->failures;
}

static void configure(const char *algo, const char *small, const char *chunk, const char *depth)
{
    setenv("WEFT_ALGO", algo, 1);
    setenv("WEFT_SMALL_MSG_SIZE", small, 1);
    setenv("WEFT_CHUNK_SIZE", chunk, 1);
    setenv("WEFT_PIPELINE_DEPTH", depth, 1);
    assert_int_equal(weft_config_reload(), WEFT_OK);
}

static void run_suite(const struct coverage *cov, int rendezvous)
{
    for (size_t i = 0; i < sizeof(rank_counts) / sizeof(rank_counts[0]); i++) {
        struct world w = {.cov = cov, .body = suite_body};
        int failures = run_world(&w, rank_counts[i], rendezvous, 30.0);
        if (failures)
            fprintf(stderr, "%d failed checks with %d ranks\n", failures, rank_counts[i]);
        assert_int_equal(failures, 0);
    }
}

#define ALL_DTYPES ((1u << WEFT_NUM_DTYPES) - 1)
#define SOME_DTYPES \
    ((1u << WEFT_INT8) | (1u << WEFT_FLOAT16) | (1u << WEFT_FLOAT32) | (1u << WEFT_UINT64))

/* Defaults: auto picks recursive doubling for these sizes, trees for broadcast/reduce. */
static void test_defaults(void **state)
{
    (void)state;
    configure("auto", "64K", "256K", "4");
    const struct coverage cov = {K_ALL, ALL_DTYPES, true};
    run_suite(&cov, 0);
}

/* Ring with many small chunks, chains for broadcast/reduce, rendezvous sends. */
static void test_ring_pipelined(void **state)
{
    (void)state;
    configure("ring", "0", "1K", "2");
    const struct coverage cov = {K_ALL & ~K_BARRIER, ALL_DTYPES, true};
    run_suite(&cov, 1);
}

static void test_rd_rendezvous(void **state)
{
    (void)state;
    configure("rd", "64K", "256K", "4");
    const struct coverage cov = {K_ALLREDUCE, ALL_DTYPES, true};
    run_suite(&cov, 1);
}

/* Depth 1 and odd chunk sizes: the pipeline must still make progress. */
static void test_depth1_odd_chunks(void **state)
{
    (void)state;
    configure("auto", "300", "100", "1");
    const struct coverage cov = {K_ALLREDUCE | K_BROADCAST | K_REDUCE | K_ALLGATHER |
                                     K_REDUCE_SCATTER,
                                 SOME_DTYPES, false};
    run_suite(&cov, 1);
    configure("auto", "300", "3", "64");
    run_suite(&cov, 0);
}

/* Every algorithm WEFT_ALGO can force, at 2 to 9 ranks: the new ones with small and odd
 * chunks (many in flight, uneven last ones) and the default chunk. */
static void test_forced_algorithms(void **state)
{
    (void)state;
    static const struct {
        const char *algo, *chunk, *depth;
        unsigned kinds;
    } runs[] = {
        {"allreduce=tree,broadcast=scatter_allgather,allgather=bruck,reduce_scatter=halving",
         "100", "2", K_ALLREDUCE | K_BROADCAST | K_ALLGATHER | K_REDUCE_SCATTER},
        {"tree", "1K", "8", K_ALLREDUCE},
        {"allreduce=rabenseifner,broadcast=scatter_allgather", "256K", "4",
         K_ALLREDUCE | K_BROADCAST},
        {"ring,binomial", "1K", "3", K_ALLREDUCE | K_BROADCAST | K_REDUCE | K_ALLGATHER |
                                          K_REDUCE_SCATTER},
        {"rd,chain", "1K", "3", K_ALLREDUCE | K_BROADCAST | K_REDUCE},
    };
    for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
        configure(runs[i].algo, "0", runs[i].chunk, runs[i].depth);
        const struct coverage cov = {runs[i].kinds, (1u << WEFT_INT8) | (1u << WEFT_FLOAT32),
                                     i == 0};
        for (int n = 2; n <= 9; n++) {
            /* the algorithms of before at a few rank counts only */
            if (i >= 3 && n != 3 && n != 6 && n != 9)
                continue;
            struct world w = {.cov = &cov, .body = suite_body};
            int failures = run_world(&w, n, (int)(i % 2), 30.0);
            if (failures)
                fprintf(stderr, "WEFT_ALGO=%s: %d failed checks with %d ranks\n",
                        runs[i].algo, failures, n);
            assert_int_equal(failures, 0);
        }
    }
}

/* ---- float results are the same bits on every rank ---------------------------------------- */

static void consistency_body(struct world *w, int rank, struct weft_coll_ctx *ctx)
{
    static const weft_dtype_t dts[] = {WEFT_FLOAT16, WEFT_BFLOAT16, WEFT_FLOAT32, WEFT_FLOAT64};
    static const size_t cnts[] = {1031, BIG_COUNT};
    for (size_t di = 0; di < 4; di++) {
        for (size_t ci = 0; ci < 2; ci++) {
            for (int avg = 0; avg < 2; avg++) {
                const weft_dtype_t dt = dts[di];
                const size_t count = cnts[ci], es = weft_dtype_size(dt);
                const weft_op_t op = avg ? WEFT_AVG : WEFT_SUM;
                char *send = xmalloc(count * es), *recv = xmalloc(count * es);
                for (size_t i = 0; i < count; i++)
                    weft_dtype_store(dt, send, i, sin((double)i * 0.37 + rank * 1.3) * 100);
                weft_result_t r = run1(ctx, WEFT_COLL_ALLREDUCE, send, recv, count, dt, op, 0);
                if (r != WEFT_OK)
                    report(w, rank, "allreduce failed: %s", weft_error_message());
                w->shared[rank] = recv;
                pthread_barrier_wait(&w->bar);
                if (rank == 0) {
                    for (int p = 1; p < w->n; p++) {
                        if (memcmp(w->shared[0], w->shared[p], count * es))
                            report(w, rank, "%s %s count %zu: rank %d has other bits than 0",
                                 weft_dtype_name(dt), weft_op_name(op), count, p);
                    }
                }
                /* And the value is right: reference from the dtype-rounded inputs. */
                for (size_t i = 0; i < count; i++) {
                    double sum = 0, mag = 0;
                    for (int p = 0; p < w->n; p++) {
                        char one[8];
                        weft_dtype_store(dt, one, 0, sin((double)i * 0.37 + p * 1.3) * 100);
                        sum += weft_dtype_load(dt, one, 0);
                        mag += fabs(weft_dtype_load(dt, one, 0));
                    }
                    double want = avg ? sum / w->n : sum;
                    double tol = tolerance(dt) * (mag + 1) * w->n;
                    if (fabs(weft_dtype_load(dt, recv, i) - want) > tol) {
                        report(w, rank, "%s %s [%zu] = %g, want %g", weft_dtype_name(dt),
                             weft_op_name(op), i, weft_dtype_load(dt, recv, i), want);
                        break;
                    }
                }
                pthread_barrier_wait(&w->bar);
                free(send);
                free(recv);
            }
        }
    }
}

static void test_float_bits_consistent(void **state)
{
    (void)state;
    static const char *const algos[] = {"ring", "rd", "auto"};
    static const int ns[] = {2, 3, 5, 8};
    for (int a = 0; a < 3; a++) {
        configure(algos[a], "64K", "4K", "4");
        for (int i = 0; i < 4; i++) {
            struct world w = {.body = consistency_body};
            assert_int_equal(run_world(&w, ns[i], 0, 30.0), 0);
        }
    }
}

/* ---- failures end with errors, not hangs -------------------------------------------------- */

static void mismatch_count_body(struct world *w, int rank, struct weft_coll_ctx *ctx)
{
    int32_t in[9] = {0}, out[9];
    w->results[rank] = run1(ctx, WEFT_COLL_ALLREDUCE, in, out, 7 + (size_t)rank, WEFT_INT32,
                            WEFT_SUM, 0);
}

static void test_length_mismatch_fails(void **state)
{
    (void)state;
    configure("auto", "64K", "256K", "4");
    struct world w = {.body = mismatch_count_body};
    run_world(&w, 2, 0, 5.0);
    assert_int_not_equal(w.results[0], WEFT_OK);
    assert_int_not_equal(w.results[1], WEFT_OK);
    assert_true(w.results[0] == WEFT_ERR_INVALID_ARG || w.results[1] == WEFT_ERR_INVALID_ARG);
}

static void mismatch_kind_body(struct world *w, int rank, struct weft_coll_ctx *ctx)
{
    int32_t buf[4] = {1, 2, 3, 4};
    if (rank == 0)
        w->results[rank] = run1(ctx, WEFT_COLL_BARRIER, NULL, NULL, 0, WEFT_UINT8, WEFT_SUM, 0);
    else
        w->results[rank] = run1(ctx, WEFT_COLL_BROADCAST, buf, buf, 4, WEFT_INT32,
                                WEFT_SUM, 0);
    if (rank == 1 && !strstr(weft_error_message(), "different orders"))
        report(w, rank, "unexpected message: %s", weft_error_message());
}

static void test_order_mismatch_fails(void **state)
{
    (void)state;
    configure("auto", "64K", "256K", "4");
    struct world w = {.body = mismatch_kind_body};
    run_world(&w, 2, 0, 5.0);
    assert_int_not_equal(w.results[0], WEFT_OK);
    assert_int_equal(w.results[1], WEFT_ERR_REMOTE);
    assert_int_equal(w.failures, 0);
}

static void lonely_body(struct world *w, int rank, struct weft_coll_ctx *ctx)
{
    if (rank == 0)
        w->results[0] = run1(ctx, WEFT_COLL_BARRIER, NULL, NULL, 0, WEFT_UINT8, WEFT_SUM, 0);
}

static void test_missing_peer_times_out(void **state)
{
    (void)state;
    configure("auto", "64K", "256K", "4");
    struct world w = {.body = lonely_body};
    run_world(&w, 2, 1, 0.2);
    assert_int_equal(w.results[0], WEFT_ERR_TIMEOUT);
}

static void unmatched_self_body(struct world *w, int rank, struct weft_coll_ctx *ctx)
{
    int32_t v = 1;
    w->results[rank] = run1(ctx, WEFT_COLL_SEND, &v, NULL, 1, WEFT_INT32, WEFT_SUM, rank);
}

static void test_unmatched_self_send_fails(void **state)
{
    (void)state;
    struct world w = {.body = unmatched_self_body};
    run_world(&w, 1, 0, 1.0);
    assert_int_equal(w.results[0], WEFT_ERR_INVALID_ARG);
}

static void test_bad_algo_rejected(void **state)
{
    (void)state;
    struct weft_net *nets[1];
    struct weft_coll_ctx ctx;
    configure("butterfly", "64K", "256K", "4");
    assert_int_equal(fake_net_create_group(1, 0, 1.0, nets), WEFT_OK);
    assert_int_equal(weft_coll_ctx_init(&ctx, nets[0]), WEFT_ERR_INVALID_ARG);
    assert_non_null(strstr(weft_error_message(), "WEFT_ALGO"));
    weft_net_destroy(nets[0]);
}

/* ---- WEFT_PIPELINE_DEPTH bounds sends and receives; no allocation per chunk ----------------- */

static const enum weft_coll_kind window_kinds[] = {
    WEFT_COLL_ALLREDUCE, WEFT_COLL_BROADCAST,      WEFT_COLL_REDUCE,
    WEFT_COLL_ALLGATHER, WEFT_COLL_REDUCE_SCATTER, WEFT_COLL_ALLTOALL,
};
#define NWINDOW_KINDS (sizeof(window_kinds) / sizeof(window_kinds[0]))

static int window_depth;
static size_t window_heap_growth[NWINDOW_KINDS][2]; /* [kind][small count, large count] */

/* Runs kind on float32 buffers big enough for any kind at `count`; with measure, rank 0 records
 * the heap in use during the call beyond what it was just before. */
static void window_call(struct world *w, int rank, struct weft_coll_ctx *ctx, size_t ki,
                        size_t count, int measure)
{
    const enum weft_coll_kind kind = window_kinds[ki];
    const size_t n = (size_t)w->n, root = n - 1;
    float *send = xmalloc(count * n * sizeof(float)), *recv = xmalloc(count * n * sizeof(float));
    for (size_t i = 0; i < count * n; i++)
        send[i] = (float)(i % 7);
    size_t base = 0;
    pthread_barrier_wait(&w->bar);
    if (rank == 0) {
        struct mallinfo2 mi = mallinfo2();
        base = mi.uordblks + mi.hblkhd;
        fake_net_stats_reset(w->nets[0], measure);
    }
    pthread_barrier_wait(&w->bar);
    weft_result_t r = run1(ctx, kind, send, recv, count, WEFT_FLOAT32, WEFT_SUM, (int)root);
    if (r != WEFT_OK)
        report(w, rank, "%s count %zu depth %d: %s", weft_coll_call_name(kind), count,
               window_depth, weft_error_message());
    pthread_barrier_wait(&w->bar);
    if (rank == 0) {
        int max_sends, max_recvs;
        size_t peak;
        fake_net_stats(w->nets[0], &max_sends, &max_recvs, &peak);
        if (max_sends > window_depth || max_recvs > window_depth)
            report(w, rank, "%s count %zu: %d sends and %d receives in flight to one peer, "
                   "WEFT_PIPELINE_DEPTH=%d", weft_coll_call_name(kind), count, max_sends,
                   max_recvs, window_depth);
        if (measure)
            window_heap_growth[ki][measure - 1] = peak > base ? peak - base : 0;
    }
    pthread_barrier_wait(&w->bar);
    free(send);
    free(recv);
}

/* Chunks of 64 bytes: 1K floats are 64 chunks, 8K floats 512 chunks. */
#define WINDOW_SMALL 1024
#define WINDOW_LARGE (8 * WINDOW_SMALL)

static void window_body(struct world *w, int rank, struct weft_coll_ctx *ctx)
{
    for (size_t ki = 0; ki < NWINDOW_KINDS; ki++) {
        /* the large call first, so scratch kept across calls is at its size already */
        window_call(w, rank, ctx, ki, WINDOW_LARGE, 0);
        window_call(w, rank, ctx, ki, 97, 0);
        window_call(w, rank, ctx, ki, WINDOW_SMALL, 1);
        window_call(w, rank, ctx, ki, WINDOW_LARGE, 2);
    }
}

static void test_depth_bounds_sends_and_receives(void **state)
{
    (void)state;
    /* depth, rendezvous: eager sends finish at once (the fake net copies them), so only
     * rendezvous shows what the collectives themselves keep in memory */
    static const struct {
        const char *depth;
        int rendezvous;
    } runs[] = {{"1", 1}, {"3", 1}, {"2", 0}};
    for (size_t d = 0; d < sizeof(runs) / sizeof(runs[0]); d++) {
        configure("auto", "0", "64", runs[d].depth);
        window_depth = atoi(runs[d].depth);
        struct world w = {.body = window_body};
        memset(window_heap_growth, 0, sizeof(window_heap_growth));
        assert_int_equal(run_world(&w, 4, runs[d].rendezvous, 30.0), 0);
        /* 8 times the chunks may not need more heap: nothing is allocated per chunk (a
         * request each would be 50 KB or more on a rank) */
        for (size_t ki = 0; runs[d].rendezvous && ki < NWINDOW_KINDS; ki++) {
            const size_t small = window_heap_growth[ki][0], large = window_heap_growth[ki][1];
            if (large > small + 24 * 1024)
                fail_msg("%s depth %d: the heap grew by %zu bytes during a call of %d chunks "
                         "but by %zu bytes during one of %d chunks",
                         weft_coll_call_name(window_kinds[ki]), window_depth, large,
                         WINDOW_LARGE / 16, small, WINDOW_SMALL / 16);
        }
    }
}

/* A pipelined call whose peer never comes: the ranks that wait with a receive and a send in
 * flight give up after WEFT_TIMEOUT (the pipeline's own wait), not never. */
static void silent_ring_body(struct world *w, int rank, struct weft_coll_ctx *ctx)
{
    if (rank == w->n - 1)
        return;
    float *send = xmalloc(4096 * sizeof(float)), *recv = xmalloc(4096 * sizeof(float));
    memset(send, 0, 4096 * sizeof(float));
    w->results[rank] = run1(ctx, WEFT_COLL_ALLREDUCE, send, recv, 4096, WEFT_FLOAT32, WEFT_SUM, 0);
    free(send);
    free(recv);
}

static void test_pipeline_wait_times_out(void **state)
{
    (void)state;
    configure("ring", "0", "64", "2");
    setenv("WEFT_TIMEOUT", "1", 1);
    assert_int_equal(weft_config_reload(), WEFT_OK);
    struct world w = {.body = silent_ring_body};
    const time_t t0 = time(NULL);
    /* the fake net's own waits give up later, so the pipeline's deadline is the one seen */
    run_world(&w, 3, 1, 60.0);
    const time_t took = time(NULL) - t0;
    unsetenv("WEFT_TIMEOUT");
    assert_int_equal(weft_config_reload(), WEFT_OK);
    for (int r = 0; r < 2; r++)
        assert_true(w.results[r] == WEFT_ERR_TIMEOUT || w.results[r] == WEFT_ERR_REMOTE);
    assert_true(w.results[0] == WEFT_ERR_TIMEOUT || w.results[1] == WEFT_ERR_TIMEOUT);
    assert_true(took <= 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_ring_pipelined),
        cmocka_unit_test(test_rd_rendezvous),
        cmocka_unit_test(test_depth1_odd_chunks),
        cmocka_unit_test(test_forced_algorithms),
        cmocka_unit_test(test_depth_bounds_sends_and_receives),
        cmocka_unit_test(test_pipeline_wait_times_out),
        cmocka_unit_test(test_float_bits_consistent),
        cmocka_unit_test(test_length_mismatch_fails),
        cmocka_unit_test(test_order_mismatch_fails),
        cmocka_unit_test(test_missing_peer_times_out),
        cmocka_unit_test(test_unmatched_self_send_fails),
        cmocka_unit_test(test_bad_algo_rejected),
    };
    /* WEFT_TEST_FILTER=test_forced*: one test while working on it */
    if (getenv("WEFT_TEST_FILTER"))
        cmocka_set_test_filter(getenv("WEFT_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
