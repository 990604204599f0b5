/*
 * coll_gpu_check.c - run under weft-run on a GPU host (several ranks may share one GPU):
 * every collective and send/recv on cudaMalloc'd buffers on a non-default stream, every
 * dtype x op, counts 0, 1, primes and large, in place and out of place, checked against a
 * reference every rank computes for itself. Each case also checks stream semantics: the
 * stream is held by a host function while the call is made, a kernel on the stream writes
 * the input right before the call (from a copy of host data written only after the call
 * returned), another kernel reads the output right after, with no synchronization in
 * between. Then a group of several calls, host and managed buffers on a stream, and the
 * refusals (mixed groups, two streams, device memory without a stream).
 * Without a GPU it prints "skip: gpu: <reason>" and exits 77 (skipped: it tested nothing).
 *   coll_gpu_check [--quick]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/dtype.h"
#include "gpu/gpu.h"
#include "tests/integration/coll_values.h"
#include "weft.h"

#ifdef WEFT_HAVE_CUDA
#include <cuda_runtime_api.h>

#define CUDA_OK(call)                                                                              \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "rank %d: %s:%d: %s: %s\n", rank, __FILE__, __LINE__, #call,           \
                    cudaGetErrorString(e_));                                                       \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define GUARD 64 /* bytes before and after each output that must stay untouched */

static int rank, nranks;
static long passed, failed;

static void check(int ok, const char *what, const char *detail)
{
    if (ok) {
        passed++;
        return;
    }
    failed++;
    printf("not ok - rank %d: %s: %s\n", rank, what, detail);
}

/* ---- holding a stream: a host function that waits for a flag the test sets later --------- */

struct hold {
    int open;
    int timed_out;
};

static void CUDART_CB hold_main(void *arg)
{
    struct hold *h = arg;
    const struct timespec ts = {0, 200000};
    for (int i = 0; i < 150000 && !__atomic_load_n(&h->open, __ATOMIC_ACQUIRE); i++)
        nanosleep(&ts, NULL); /* about 30 s at most */
    if (!__atomic_load_n(&h->open, __ATOMIC_ACQUIRE))
        __atomic_store_n(&h->timed_out, 1, __ATOMIC_RELEASE);
}

/* ---- one case -------------------------------------------------------------------------- */

enum kind { ALLREDUCE, BROADCAST, REDUCE, ALLGATHER, REDUCE_SCATTER, ALLTOALL, SENDRECV, NKINDS };
static const char *const kind_names[NKINDS] = {"allreduce", "broadcast",      "reduce",
                                               "allgather", "reduce_scatter", "alltoall",
                                               "sendrecv"};

static int has_op(enum kind k)
{
    return k == ALLREDUCE || k == REDUCE || k == REDUCE_SCATTER;
}

struct bufs {
    cudaStream_t stream;
    uint8_t *din, *dout; /* device */
    uint8_t *dsrc, *dchk; /* device: what the kernels before and after the call read, write */
    uint8_t *hin, *hout; /* pinned host */
    uint8_t *hsend;      /* pinned host: the send buffer read back after the call */
    uint8_t *dout_base;  /* dout - GUARD: the guard before the output */
    size_t max;          /* bytes of each, guards included */
};

static weft_result_t call(weft_comm_t comm, enum kind k, const void *sbuf, void *rbuf,
                          size_t count, weft_dtype_t t, weft_op_t op, int root, cudaStream_t s)
{
    switch (k) {
    case ALLREDUCE: return weft_allreduce(sbuf, rbuf, count, t, op, comm, s);
    case BROADCAST: return weft_broadcast(sbuf, rbuf, count, t, root, comm, s);
    case REDUCE: return weft_reduce(sbuf, rbuf, count, t, op, root, comm, s);
    case ALLGATHER: return weft_allgather(sbuf, rbuf, count, t, comm, s);
    case REDUCE_SCATTER: return weft_reduce_scatter(sbuf, rbuf, count, t, op, comm, s);
    case ALLTOALL: return weft_alltoall(sbuf, rbuf, count, t, comm, s);
    default:
        weft_group_start();
        weft_send(sbuf, count, t, (rank + 1) % nranks, comm, s);
        weft_recv(rbuf, count, t, (rank + nranks - 1) % nranks, comm, s);
        return weft_group_end();
    }
}

/* The expected value of output element i. */
static double expected(enum kind k, weft_dtype_t t, weft_op_t op, size_t count, int root,
                       size_t i, unsigned salt)
{
    switch (k) {
    case ALLREDUCE:
    case REDUCE: return coll_reference(t, op, nranks, i, salt);
    case BROADCAST: return coll_input(t, op, root, i, salt);
    case ALLGATHER: return coll_input(t, op, (int)(i / count), i % count, salt);
    case REDUCE_SCATTER: return coll_reference(t, op, nranks, (size_t)rank * count + i, salt);
    case ALLTOALL:
        return coll_input(t, op, (int)(i / count), (size_t)rank * count + i % count, salt);
    default: return coll_input(t, op, (rank + nranks - 1) % nranks, i, salt);
    }
}

/* Returns 0 when the call failed (the communicator is then broken). */
static int run_case(weft_comm_t comm, struct bufs *b, enum kind k, weft_dtype_t t, weft_op_t op,
                    size_t count, int inplace, unsigned salt)
{
    const size_t es = weft_dtype_size(t), n = (size_t)nranks;
    const int root = (int)(count % n);
    size_t in_elems = count, out_elems = count;
    if (k == ALLGATHER)
        out_elems = count * n;
    if (k == REDUCE_SCATTER)
        in_elems = count * n;
    if (k == ALLTOALL)
        in_elems = out_elems = count * n;
    const size_t in_bytes = in_elems * es, out_bytes = out_elems * es;
    char what[160];
    snprintf(what, sizeof(what), "%s %s %s count %zu %s", kind_names[k], weft_dtype_name(t),
             has_op(k) ? weft_op_name(op) : "", count, inplace ? "in-place" : "out-of-place");

    /* Where the input goes on the device, and the buffers of the call. */
    uint8_t *dst_in = b->din;
    const void *sbuf = b->din;
    void *rbuf = b->dout;
    uint8_t *res = b->dout; /* the device range holding the result */
    if (inplace) {
        if (k == ALLGATHER) {
            dst_in = b->dout + (size_t)rank * count * es;
            sbuf = dst_in;
        } else if (k == REDUCE_SCATTER) {
            rbuf = b->din + (size_t)rank * count * es;
            res = rbuf;
        } else {
            dst_in = b->dout;
            sbuf = b->dout;
        }
    }

    /* Poisoned host buffers: only the stream's copies may change them. */
    memset(b->hin, 0xee, in_bytes);
    memset(b->hout, 0x3c, out_bytes + GUARD);
    struct hold *h = calloc(1, sizeof(*h));
    CUDA_OK(cudaLaunchHostFunc(b->stream, hold_main, h));
    CUDA_OK(cudaMemsetAsync(b->dout_base, 0xa5, GUARD + out_bytes + GUARD, b->stream));
    /* max(x, x) = x bit for bit (a NaN comes back as is): a kernel that copies. */
    if (in_bytes) {
        CUDA_OK(cudaMemcpyAsync(b->dsrc, b->hin, in_bytes, cudaMemcpyHostToDevice, b->stream));
        weft_result_t k_in = weft_gpu_reduce(dst_in, b->dsrc, b->dsrc, in_elems, t, WEFT_MAX,
                                             b->stream);
        check(k_in == WEFT_OK, what, "the kernel that writes the input launched");
    }
    weft_result_t r = call(comm, k, sbuf, rbuf, count, t, op, root, b->stream);
    const weft_result_t k_out = weft_gpu_reduce(b->dchk, res, res, out_elems, t, WEFT_MAX,
                                                b->stream);
    check(k_out == WEFT_OK, what, "the kernel that reads the output launched");
    CUDA_OK(cudaMemcpyAsync(b->hout, b->dchk, out_bytes, cudaMemcpyDeviceToHost, b->stream));
    if (res == b->dout) {
        CUDA_OK(cudaMemcpyAsync(b->hout + out_bytes, res + out_bytes, GUARD,
                                cudaMemcpyDeviceToHost, b->stream));
        CUDA_OK(cudaMemcpyAsync(b->hout + out_bytes + GUARD, b->dout_base, GUARD,
                                cudaMemcpyDeviceToHost, b->stream));
    }
    /* The send buffer, read back after the call: unchanged out of place (and outside this
     * rank's block in an in-place reduce-scatter). */
    const int reread = (!inplace || k == REDUCE_SCATTER) && in_bytes;
    if (reread)
        CUDA_OK(cudaMemcpyAsync(b->hsend, b->din, in_bytes, cudaMemcpyDeviceToHost, b->stream));
    /* The stream has not reached the call yet: the inputs are written only now. */
    for (size_t i = 0; i < in_elems; i++)
        weft_dtype_store(t, b->hin, i, coll_input(t, op, rank, i, salt));
    __atomic_store_n(&h->open, 1, __ATOMIC_RELEASE);
    CUDA_OK(cudaStreamSynchronize(b->stream));
    check(!h->timed_out, what, "the call blocked until its stream reached it");
    free(h);
    if (r != WEFT_OK) {
        char detail[1200];
        snprintf(detail, sizeof(detail), "call failed: %s: %s", weft_strerror(r),
                 weft_last_error());
        check(0, what, detail);
        return 0;
    }

    const int nonroot = k == REDUCE && rank != root;
    const int checked = !nonroot || inplace; /* in place, a non-root keeps its input */
    size_t wrong = 0, first = 0;
    double got = 0, want = 0;
    for (size_t i = 0; checked && i < out_elems; i++) {
        const double w = nonroot ? coll_input(t, op, rank, i, salt)
                                 : expected(k, t, op, count, root, i, salt);
        const double g = weft_dtype_load(t, b->hout, i);
        if (!coll_same(t, nranks, g, w) && wrong++ == 0) {
            first = i;
            got = g;
            want = w;
        }
    }
    char detail[200];
    snprintf(detail, sizeof(detail), "%zu wrong, first at %zu: got %g, want %g", wrong, first,
             got, want);
    check(wrong == 0, what, detail);
    if (res == b->dout) {
        int after_ok = 1, before_ok = 1, nonroot_ok = 1;
        for (size_t i = 0; i < GUARD; i++) {
            after_ok &= b->hout[out_bytes + i] == 0xa5;
            before_ok &= b->hout[out_bytes + GUARD + i] == 0xa5;
        }
        check(after_ok, what, "wrote past the end of recvbuf");
        check(before_ok, what, "wrote before the start of recvbuf");
        for (size_t i = 0; nonroot && !inplace && i < out_bytes; i++)
            nonroot_ok &= b->hout[i] == 0xa5;
        check(nonroot_ok, what, "wrote recvbuf on a rank not the root");
    }
    if (reread) {
        const size_t skip_from = inplace ? (size_t)rank * count * es : in_bytes;
        const size_t skip_to = inplace ? skip_from + count * es : in_bytes;
        size_t at = in_bytes;
        for (size_t i = 0; i < in_bytes && at == in_bytes; i++)
            if ((i < skip_from || i >= skip_to) && b->hsend[i] != b->hin[i])
                at = i;
        snprintf(detail, sizeof(detail), "changed its send buffer at byte %zu of %zu", at,
                 in_bytes);
        check(at == in_bytes, what, detail);
    }
    return 1;
}

/* ---- the rest --------------------------------------------------------------------------- */

/* One group: an allreduce, a broadcast and a ring exchange, all on one stream. */
static void group_case(weft_comm_t comm, struct bufs *b)
{
    const size_t count = 1031;
    const unsigned salt = 99;
    const size_t es = sizeof(float);
    uint8_t *ar_in = b->din, *bc_in = b->din + count * es, *sr_in = b->din + 2 * count * es;
    uint8_t *ar_out = b->dout, *bc_out = b->dout + count * es, *sr_out = b->dout + 2 * count * es;
    memset(b->hout, 0, 3 * count * es);
    struct hold *h = calloc(1, sizeof(*h));
    CUDA_OK(cudaLaunchHostFunc(b->stream, hold_main, h));
    CUDA_OK(cudaMemcpyAsync(b->din, b->hin, 3 * count * es, cudaMemcpyHostToDevice, b->stream));
    weft_group_start();
    weft_allreduce(ar_in, ar_out, count, WEFT_FLOAT32, WEFT_SUM, comm, b->stream);
    weft_broadcast(bc_in, bc_out, count, WEFT_FLOAT32, nranks - 1, comm, b->stream);
    weft_send(sr_in, count, WEFT_FLOAT32, (rank + 1) % nranks, comm, b->stream);
    weft_recv(sr_out, count, WEFT_FLOAT32, (rank + nranks - 1) % nranks, comm, b->stream);
    weft_result_t r = weft_group_end();
    CUDA_OK(cudaMemcpyAsync(b->hout, b->dout, 3 * count * es, cudaMemcpyDeviceToHost,
                            b->stream));
    const weft_dtype_t f32 = WEFT_FLOAT32;
    for (size_t i = 0; i < count; i++) {
        weft_dtype_store(f32, b->hin, i, coll_input(f32, WEFT_SUM, rank, i, salt));
        weft_dtype_store(f32, b->hin + count * es, i, coll_input(f32, WEFT_SUM, rank, i, salt + 1));
        weft_dtype_store(f32, b->hin + 2 * count * es, i,
                         coll_input(f32, WEFT_SUM, rank, i, salt + 2));
    }
    __atomic_store_n(&h->open, 1, __ATOMIC_RELEASE);
    CUDA_OK(cudaStreamSynchronize(b->stream));
    check(!h->timed_out, "group", "weft_group_end blocked until its stream reached it");
    free(h);
    check(r == WEFT_OK, "group of allreduce, broadcast, send, recv", weft_last_error());
    size_t wrong = 0;
    for (size_t i = 0; i < count; i++) {
        const int left = (rank + nranks - 1) % nranks;
        wrong += !coll_same(f32, nranks, weft_dtype_load(f32, b->hout, i),
                            coll_reference(f32, WEFT_SUM, nranks, i, salt));
        wrong += !coll_same(f32, nranks, weft_dtype_load(f32, b->hout + count * es, i),
                            coll_input(f32, WEFT_SUM, nranks - 1, i, salt + 1));
        wrong += !coll_same(f32, nranks, weft_dtype_load(f32, b->hout + 2 * count * es, i),
                            coll_input(f32, WEFT_SUM, left, i, salt + 2));
    }
    char detail[64];
    snprintf(detail, sizeof(detail), "%zu wrong values", wrong);
    check(wrong == 0, "group results", detail);
}

/* Host (pinned and pageable) and managed buffers on a stream are used in place. */
static void host_and_managed_case(weft_comm_t comm, struct bufs *b)
{
    const size_t count = 4097;
    double *m_in, *m_out;
    CUDA_OK(cudaMallocManaged((void **)&m_in, count * sizeof(double), cudaMemAttachGlobal));
    CUDA_OK(cudaMallocManaged((void **)&m_out, count * sizeof(double), cudaMemAttachGlobal));
    double *p_in = malloc(count * sizeof(double)), *p_out = malloc(count * sizeof(double));
    for (size_t i = 0; i < count; i++)
        m_in[i] = p_in[i] = coll_input(WEFT_FLOAT64, WEFT_MAX, rank, i, 5);
    weft_result_t r1 = weft_allreduce(m_in, m_out, count, WEFT_FLOAT64, WEFT_MAX, comm,
                                      b->stream);
    weft_result_t r2 = weft_allreduce(p_in, p_out, count, WEFT_FLOAT64, WEFT_MAX, comm,
                                      b->stream);
    weft_result_t r3 = weft_barrier(comm, b->stream);
    CUDA_OK(cudaStreamSynchronize(b->stream));
    check(r1 == WEFT_OK && r2 == WEFT_OK && r3 == WEFT_OK, "managed/host buffers on a stream",
          weft_last_error());
    size_t wrong = 0;
    for (size_t i = 0; i < count; i++) {
        const double w = coll_reference(WEFT_FLOAT64, WEFT_MAX, nranks, i, 5);
        wrong += m_out[i] != w;
        wrong += p_out[i] != w;
    }
    check(wrong == 0, "managed/host buffer results", "wrong values");
    CUDA_OK(cudaFree(m_in));
    CUDA_OK(cudaFree(m_out));
    free(p_in);
    free(p_out);
}

/* Refused on every rank alike, so the communicator stays usable. */
static void refusals(weft_comm_t comm, struct bufs *b)
{
    float host[8] = {0}, host_out[8];
    char detail[1200];
    weft_result_t r = weft_allreduce(b->din, b->dout, 8, WEFT_FLOAT32, WEFT_SUM, comm, NULL);
    snprintf(detail, sizeof(detail), "got %s: %s", weft_strerror(r), weft_last_error());
    check(r == WEFT_ERR_UNSUPPORTED && strstr(weft_last_error(), "needs a stream"),
          "device memory with stream NULL is refused", detail);

    weft_group_start();
    weft_allreduce(b->din, b->dout, 8, WEFT_FLOAT32, WEFT_SUM, comm, b->stream);
    r = weft_allreduce(host, host_out, 8, WEFT_FLOAT32, WEFT_SUM, comm, NULL);
    snprintf(detail, sizeof(detail), "got %s: %s", weft_strerror(r), weft_last_error());
    check(r == WEFT_ERR_INVALID_ARG && strstr(weft_last_error(), "cannot mix"),
          "a group mixing stream and NULL is refused", detail);
    r = weft_group_end();
    check(r == WEFT_ERR_INVALID_ARG && strstr(weft_last_error(), "nothing ran"),
          "the mixed group's end is refused", weft_last_error());

    cudaStream_t other;
    CUDA_OK(cudaStreamCreateWithFlags(&other, cudaStreamNonBlocking));
    weft_group_start();
    weft_allreduce(b->din, b->dout, 8, WEFT_FLOAT32, WEFT_SUM, comm, b->stream);
    r = weft_allreduce(b->din, b->dout, 8, WEFT_FLOAT32, WEFT_SUM, comm, other);
    snprintf(detail, sizeof(detail), "got %s: %s", weft_strerror(r), weft_last_error());
    check(r == WEFT_ERR_INVALID_ARG && strstr(weft_last_error(), "one stream per communicator"),
          "two streams on one communicator in a group are refused", detail);
    check(weft_group_end() == WEFT_ERR_INVALID_ARG, "the two-stream group's end is refused",
          weft_last_error());
    CUDA_OK(cudaStreamDestroy(other));
}

int main(int argc, char **argv)
{
    const int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    if (!weft_gpu_available()) {
        printf("skip: gpu: %s\n", weft_gpu_describe());
        return 77;
    }
    int ndev = 0;
    CUDA_OK(cudaGetDeviceCount(&ndev));
    const char *local = getenv("WEFT_LOCAL_RANK");
    CUDA_OK(cudaSetDevice(local ? atoi(local) % ndev : 0));
    weft_comm_t comm;
    weft_result_t r = weft_comm_init_env(&comm);
    if (r != WEFT_OK) {
        fprintf(stderr, "coll_gpu_check: init failed: %s: %s\n", weft_strerror(r),
                weft_last_error());
        return 1;
    }
    weft_comm_rank(comm, &rank);
    weft_comm_size(comm, &nranks);

    static const size_t counts[] = {0, 1, 7, 97, 1031, (1u << 17) + 3};
    const size_t ncounts = sizeof(counts) / sizeof(counts[0]);
    struct bufs b;
    b.max = counts[ncounts - 1] * 8 * (size_t)nranks + 2 * GUARD;
    CUDA_OK(cudaStreamCreateWithFlags(&b.stream, cudaStreamNonBlocking));
    CUDA_OK(cudaMalloc((void **)&b.din, b.max));
    CUDA_OK(cudaMalloc((void **)&b.dout_base, b.max + GUARD));
    b.dout = b.dout_base + GUARD;
    CUDA_OK(cudaMalloc((void **)&b.dsrc, b.max));
    CUDA_OK(cudaMalloc((void **)&b.dchk, b.max));
    CUDA_OK(cudaMallocHost((void **)&b.hin, b.max));
    CUDA_OK(cudaMallocHost((void **)&b.hout, b.max));
    CUDA_OK(cudaMallocHost((void **)&b.hsend, b.max));

    int alive = 1;
    unsigned salt = 0;
    for (int k = 0; k < NKINDS && alive; k++)
        for (int t = 0; t < WEFT_NUM_DTYPES && alive; t++)
            for (int op = 0; op < (has_op(k) ? WEFT_NUM_OPS : 1) && alive; op++)
                for (size_t c = 0; c < ncounts && alive; c++) {
                    /* the largest count once per dtype (SUM) keeps the run short */
                    if (c == ncounts - 1 && (quick || op > 0))
                        continue;
                    const int variants = k == ALLTOALL || k == SENDRECV ? 1 : 2;
                    for (int inplace = 0; inplace < variants && alive; inplace++)
                        alive = run_case(comm, &b, (enum kind)k, (weft_dtype_t)t, (weft_op_t)op,
                                         counts[c], inplace, ++salt % 7);
                }
    if (alive) {
        group_case(comm, &b);
        host_and_managed_case(comm, &b);
        refusals(comm, &b);
        weft_result_t async = WEFT_OK;
        weft_comm_get_async_error(comm, &async);
        check(async == WEFT_OK, "no async error", weft_strerror(async));
        /* Everyone's tally (on the host), so rank 0 prints the job's totals. */
        long tally[2] = {passed, failed}, sum[2];
        if (weft_allreduce(tally, sum, 2, WEFT_INT64, WEFT_SUM, comm, NULL) == WEFT_OK &&
            rank == 0)
            printf("coll_gpu_check: %d ranks: %ld checks passed, %ld failed\n", nranks, sum[0],
                   sum[1]);
        r = weft_comm_destroy(comm);
        check(r == WEFT_OK, "destroy", weft_last_error());
    } else {
        weft_comm_abort(comm);
    }
    CUDA_OK(cudaFreeHost(b.hin));
    CUDA_OK(cudaFreeHost(b.hout));
    CUDA_OK(cudaFreeHost(b.hsend));
    CUDA_OK(cudaFree(b.din));
    CUDA_OK(cudaFree(b.dout_base));
    CUDA_OK(cudaFree(b.dsrc));
    CUDA_OK(cudaFree(b.dchk));
    CUDA_OK(cudaStreamDestroy(b.stream));
    return failed || !alive ? 1 : 0;
}

#else /* !WEFT_HAVE_CUDA */

int main(void)
{
    printf("skip: gpu: %s\n", weft_gpu_describe());
    return 77;
}

#endif
