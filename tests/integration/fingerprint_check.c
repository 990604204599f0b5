/*
 * fingerprint_check.c - run under weft-run with WEFT_CHECK=1: calls that differ between ranks
 * in kind, count, dtype, op or root (and groups that differ) fail with WEFT_ERR_INVALID_ARG on
 * every rank, naming both calls and both ranks; the communicator stays usable, and matched
 * calls (point-to-point groups included) give exact results.
 *   fingerprint_check           host calls
 *   fingerprint_check stream    a matched and a mismatched call on device buffers on a stream:
 *                               the mismatch is the communicator's async error on every rank,
 *                               and the next call names both calls (exit 77 without a GPU)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gpu/gpu.h"
#include "weft.h"

#ifdef WEFT_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

static int rank, nranks, passed, failed;
static weft_comm_t comm;
static float *a, *b; /* room for any call below */
#define COUNT 1024

static void expect(int ok, const char *what, const char *detail)
{
    if (ok) {
        passed++;
        return;
    }
    failed++;
    printf("not ok - rank %d: %s%s%s\n", rank, what, detail[0] ? ": " : "", detail);
}

/* The call each case makes: rank `odd` makes `theirs`, the others `ours`. */
struct call {
    const char *name;
    size_t count;
    weft_dtype_t dtype;
    weft_op_t op;
    int root;
};

static weft_result_t make(const struct call *c)
{
    if (!strcmp(c->name, "allreduce"))
        return weft_allreduce(a, b, c->count, c->dtype, c->op, comm, NULL);
    if (!strcmp(c->name, "broadcast"))
        return weft_broadcast(a, b, c->count, c->dtype, c->root, comm, NULL);
    if (!strcmp(c->name, "reduce"))
        return weft_reduce(a, b, c->count, c->dtype, c->op, c->root, comm, NULL);
    if (!strcmp(c->name, "allgather"))
        return weft_allgather(a, b, c->count, c->dtype, comm, NULL);
    if (!strcmp(c->name, "barrier"))
        return weft_barrier(comm, NULL);
    return WEFT_ERR_INTERNAL;
}

static void mismatch(const char *what, int odd, const struct call *ours, const struct call *theirs,
                     const char *want_ours, const char *want_theirs)
{
    const weft_result_t r = make(rank == odd ? theirs : ours);
    char want[400];
    /* rank 0 is the reference every rank compares with */
    snprintf(want, sizeof(want), "rank 0 called %s but rank %d called %s", want_ours, odd,
             want_theirs);
    const char *msg = weft_last_error();
    char detail[1400];
    snprintf(detail, sizeof(detail), "got %s: \"%s\", want INVALID_ARG with \"%s\"",
             weft_strerror(r), msg, want);
    expect(r == WEFT_ERR_INVALID_ARG && strstr(msg, want) != NULL, what, detail);
}

static void matched(void)
{
    char detail[1200] = "";
    for (int i = 0; i < COUNT; i++)
        a[i] = (float)(rank + i % 5);
    weft_result_t r = weft_allreduce(a, b, COUNT, WEFT_FLOAT32, WEFT_SUM, comm, NULL);
    int wrong = 0;
    for (int i = 0; r == WEFT_OK && i < COUNT; i++)
        wrong += b[i] != (float)(nranks * (nranks - 1) / 2 + nranks * (i % 5));
    if (r != WEFT_OK)
        snprintf(detail, sizeof(detail), "%s", weft_last_error());
    expect(r == WEFT_OK && !wrong, "matched allreduce with WEFT_CHECK=1", detail);
    r = weft_broadcast(a, b, COUNT, WEFT_FLOAT32, nranks - 1, comm, NULL);
    wrong = 0;
    for (int i = 0; r == WEFT_OK && i < COUNT; i++)
        wrong += b[i] != (float)(nranks - 1 + i % 5);
    expect(r == WEFT_OK && !wrong, "matched broadcast with WEFT_CHECK=1", "");
    expect(weft_barrier(comm, NULL) == WEFT_OK, "matched barrier with WEFT_CHECK=1", "");
    /* point-to-point alone is not checked: only two ranks take part, with different calls */
    if (rank < 2) {
        weft_group_start();
        weft_send(a, 16, WEFT_FLOAT32, 1 - rank, comm, NULL);
        weft_recv(b, 16, WEFT_FLOAT32, 1 - rank, comm, NULL);
        r = weft_group_end();
        wrong = 0;
        for (int i = 0; r == WEFT_OK && i < 16; i++)
            wrong += b[i] != (float)(1 - rank + i % 5);
        expect(r == WEFT_OK && !wrong, "send/recv pair with WEFT_CHECK=1", "");
    }
    /* a group of collectives, the same everywhere */
    weft_group_start();
    weft_allreduce(a, b, 8, WEFT_FLOAT32, WEFT_MAX, comm, NULL);
    weft_broadcast(a + 8, b + 8, 8, WEFT_FLOAT32, 0, comm, NULL);
    r = weft_group_end();
    expect(r == WEFT_OK && b[0] == (float)(nranks - 1) && b[8] == 3.0f,
           "matched group with WEFT_CHECK=1", "");
}

#ifdef WEFT_HAVE_CUDA
static int stream_main(void)
{
    int ndev = 0;
    cudaStream_t s;
    float *d = NULL;
    if (!weft_gpu_available() || cudaGetDeviceCount(&ndev) != cudaSuccess || ndev < 1) {
        printf("skip: no GPU for stream calls: %s\n", weft_gpu_describe());
        return 77;
    }
    const char *local = getenv("WEFT_LOCAL_RANK");
    if (cudaSetDevice(local ? atoi(local) % ndev : 0) != cudaSuccess ||
        cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) != cudaSuccess ||
        cudaMalloc((void **)&d, 2 * COUNT * sizeof(float)) != cudaSuccess) {
        fprintf(stderr, "fingerprint_check: cannot set up CUDA\n");
        return 1;
    }
    weft_result_t r = weft_comm_init_env(&comm);
    if (r != WEFT_OK) {
        fprintf(stderr, "fingerprint_check: init failed: %s\n", weft_last_error());
        return 1;
    }
    weft_comm_rank(comm, &rank);
    weft_comm_size(comm, &nranks);
    float h[COUNT];
    for (int i = 0; i < COUNT; i++)
        h[i] = (float)(rank + i % 3);
    /* on the stream: a plain cudaMemcpy is not ordered with a non-blocking stream */
    cudaMemcpyAsync(d, h, sizeof(h), cudaMemcpyHostToDevice, s);
    cudaStreamSynchronize(s);
    r = weft_allreduce(d, d + COUNT, COUNT, WEFT_FLOAT32, WEFT_SUM, comm, s);
    cudaStreamSynchronize(s);
    /* on the stream: a plain cudaMemcpy is not ordered with a non-blocking stream */
    cudaMemcpyAsync(h, d + COUNT, sizeof(h), cudaMemcpyDeviceToHost, s);
    cudaStreamSynchronize(s);
    weft_result_t async = WEFT_OK;
    weft_comm_get_async_error(comm, &async);
    int wrong = 0;
    for (int i = 0; i < COUNT; i++)
        wrong += h[i] != (float)(nranks * (nranks - 1) / 2 + nranks * (i % 3));
    expect(r == WEFT_OK && async == WEFT_OK && !wrong, "matched allreduce on a stream", "");

    /* the last rank broadcasts while the others allreduce */
    const int last = nranks - 1;
    if (rank == last)
        r = weft_broadcast(d, d + COUNT, COUNT, WEFT_FLOAT32, 0, comm, s);
    else
        r = weft_allreduce(d, d + COUNT, COUNT, WEFT_FLOAT32, WEFT_SUM, comm, s);
    cudaStreamSynchronize(s);
    expect(r == WEFT_OK, "a mismatched stream call is enqueued", weft_last_error());
    weft_comm_get_async_error(comm, &async);
    char want[300], detail[1400];
    snprintf(want, sizeof(want),
             "rank 0 called weft_allreduce(count=1024, float32, sum) but rank %d called "
             "weft_broadcast(count=1024, float32, root 0)", last);
    r = weft_barrier(comm, NULL);
    snprintf(detail, sizeof(detail), "async error %s, next call %s: \"%s\", want \"%s\"",
             weft_strerror(async), weft_strerror(r), weft_last_error(), want);
    expect(async == WEFT_ERR_INVALID_ARG && r == WEFT_ERR_INVALID_ARG &&
               strstr(weft_last_error(), want) != NULL,
           "mismatched stream call", detail);
    if (failed)
        printf("not ok - rank %d: %d stream checks failed\n", rank, failed);
    else
        printf("ok - rank %d: %d stream checks passed\n", rank, passed);
    /* The communicator keeps the error, so it is aborted; an abort tells the peers at once,
     * and a peer whose worker has not yet collected this rank's last fingerprint (already
     * sent) would then see WEFT_ERR_REMOTE instead: give the others time to finish. */
    sleep(2);
    weft_comm_abort(comm);
    cudaFree(d);
    return failed ? 1 : 0;
}
#endif

int main(int argc, char **argv)
{
    const char *check = getenv("WEFT_CHECK");
    if (!check || strcmp(check, "1") != 0) {
        printf("skip: fingerprint_check needs WEFT_CHECK=1 in its environment\n");
        return 77;
    }
    if (argc > 1 && strcmp(argv[1], "stream") == 0) {
#ifdef WEFT_HAVE_CUDA
        return stream_main();
#else
        printf("skip: built without CUDA: no stream calls to check\n");
        return 77;
#endif
    }
    weft_result_t r = weft_comm_init_env(&comm);
    if (r != WEFT_OK) {
        fprintf(stderr, "fingerprint_check: init failed: %s: %s\n", weft_strerror(r),
                weft_last_error());
        return 1;
    }
    weft_comm_rank(comm, &rank);
    weft_comm_size(comm, &nranks);
    a = calloc((size_t)nranks * COUNT, sizeof(double));
    b = calloc((size_t)nranks * COUNT, sizeof(double));
    const int last = nranks - 1;

    matched();
    const struct call ar = {"allreduce", COUNT, WEFT_FLOAT32, WEFT_SUM, 0};
    const struct call bc = {"broadcast", COUNT, WEFT_FLOAT32, WEFT_SUM, 0};
    mismatch("kind", last, &ar, &bc, "weft_allreduce(count=1024, float32, sum)",
             "weft_broadcast(count=1024, float32, root 0)");
    const struct call ar_count = {"allreduce", 1000, WEFT_FLOAT32, WEFT_SUM, 0};
    mismatch("count", 1, &ar, &ar_count, "weft_allreduce(count=1024, float32, sum)",
             "weft_allreduce(count=1000, float32, sum)");
    const struct call ar_dtype = {"allreduce", COUNT, WEFT_INT32, WEFT_SUM, 0};
    mismatch("dtype", last, &ar, &ar_dtype, "weft_allreduce(count=1024, float32, sum)",
             "weft_allreduce(count=1024, int32, sum)");
    const struct call ar_op = {"allreduce", COUNT, WEFT_FLOAT32, WEFT_MAX, 0};
    mismatch("op", 1, &ar, &ar_op, "weft_allreduce(count=1024, float32, sum)",
             "weft_allreduce(count=1024, float32, max)");
    const struct call bc_root = {"broadcast", COUNT, WEFT_FLOAT32, WEFT_SUM, 1};
    mismatch("root", last, &bc, &bc_root, "weft_broadcast(count=1024, float32, root 0)",
             "weft_broadcast(count=1024, float32, root 1)");
    const struct call rd = {"reduce", COUNT, WEFT_FLOAT64, WEFT_MIN, 0};
    const struct call rd_root = {"reduce", COUNT, WEFT_FLOAT64, WEFT_MIN, 2 % nranks};
    mismatch("reduce root", 1, &rd, &rd_root, "weft_reduce(count=1024, float64, min, root 0)",
             "weft_reduce(count=1024, float64, min, root 2)");
    const struct call bar = {"barrier", 0, WEFT_UINT8, WEFT_SUM, 0};
    const struct call ag = {"allgather", 7, WEFT_UINT8, WEFT_SUM, 0};
    mismatch("barrier against allgather", last, &bar, &ag, "weft_barrier()",
             "weft_allgather(count=7, uint8)");
    /* the communicator is still in step: a matched call after the refusals */
    matched();

    int tally[2] = {passed, failed}, sum[2] = {0, 0};
    r = weft_allreduce(tally, sum, 2, WEFT_INT32, WEFT_SUM, comm, NULL);
    if (r == WEFT_OK && rank == 0)
        printf("fingerprint_check: %d ranks: %d checks passed, %d failed\n", nranks, sum[0],
               sum[1]);
    r = weft_comm_destroy(comm);
    free(a);
    free(b);
    return failed || r != WEFT_OK ? 1 : 0;
}
