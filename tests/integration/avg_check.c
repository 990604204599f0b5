/*
 * avg_check.c - run under weft-run: int8/uint8 AVG whose sums overflow the element type (100
 * and more on every rank) gives the truncated mean on every algorithm: recursive doubling,
 * ring, reduce tree and chain, reduce-scatter; in place and out of place.
 *   avg_check          host buffers
 *   avg_check stream   device buffers on a stream: on one host these would take CUDA IPC, whose
 *                      kernels sum in the element type, so they stage (exit 77 without a GPU)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/gpu.h"
#include "weft.h"

#ifdef WEFT_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

static int rank, nranks, passed, failed;
static weft_stream_t stream; /* NULL: host buffers */
static uint8_t *dev_in, *dev_out;

/* The call's buffers: the host ones, or device copies of them. */
static void to_device(uint8_t **in, uint8_t **out, size_t in_bytes, size_t out_bytes)
{
#ifdef WEFT_HAVE_CUDA
    if (stream) {
        /* on the stream: a plain cudaMemcpy is not ordered with a non-blocking stream */
        cudaMemcpyAsync(dev_in, *in, in_bytes, cudaMemcpyHostToDevice, (cudaStream_t)stream);
        cudaStreamSynchronize((cudaStream_t)stream);
        cudaMemcpyAsync(dev_out, *out, out_bytes, cudaMemcpyHostToDevice, (cudaStream_t)stream);
        cudaStreamSynchronize((cudaStream_t)stream);
        *in = dev_in;
        *out = dev_out;
    }
#else
    (void)in;
    (void)out;
    (void)in_bytes;
    (void)out_bytes;
#endif
}

static void from_device(uint8_t *in, uint8_t *out, size_t in_bytes, size_t out_bytes)
{
#ifdef WEFT_HAVE_CUDA
    if (stream) {
        cudaStreamSynchronize((cudaStream_t)stream);
        /* on the stream: a plain cudaMemcpy is not ordered with a non-blocking stream */
        cudaMemcpyAsync(in, dev_in, in_bytes, cudaMemcpyDeviceToHost, (cudaStream_t)stream);
        cudaStreamSynchronize((cudaStream_t)stream);
        cudaMemcpyAsync(out, dev_out, out_bytes, cudaMemcpyDeviceToHost, (cudaStream_t)stream);
        cudaStreamSynchronize((cudaStream_t)stream);
    }
#else
    (void)in;
    (void)out;
    (void)in_bytes;
    (void)out_bytes;
#endif
}

/* Rank r's value at i: near the top (or bottom) of the range, so that any sum overflows. */
static int value(weft_dtype_t t, int r, size_t i)
{
    const int v = (int)((i * 7 + (size_t)r * 3) % 27);
    if (t == WEFT_UINT8)
        return 200 + v + (int)(i % 29);
    return i % 2 ? 100 + v : -101 - v;
}

static int mean(weft_dtype_t t, size_t i)
{
    long sum = 0;
    for (int r = 0; r < nranks; r++)
        sum += value(t, r, i);
    (void)t;
    return (int)(sum / nranks); /* C division truncates toward zero, as documented */
}

static int load(weft_dtype_t t, const void *buf, size_t i)
{
    return t == WEFT_INT8 ? ((const int8_t *)buf)[i] : ((const uint8_t *)buf)[i];
}

static void run_case(weft_comm_t comm, const char *kind, weft_dtype_t t, size_t count, int inplace)
{
    const size_t n = (size_t)nranks;
    const int root = (int)(count % n);
    const int rs = strcmp(kind, "reduce_scatter") == 0, red = strcmp(kind, "reduce") == 0;
    const size_t in_elems = rs ? count * n : count;
    uint8_t *in = malloc(in_elems), *out = malloc(count);
    for (size_t i = 0; i < in_elems; i++)
        in[i] = (uint8_t)value(t, rank, i);
    memset(out, 0x5a, count);
    uint8_t *din = in, *dout = out;
    to_device(&din, &dout, in_elems, count);
    const void *sbuf = din;
    void *rbuf = inplace ? (rs ? din + (size_t)rank * count : din) : dout;
    weft_result_t r;
    if (rs)
        r = weft_reduce_scatter(sbuf, rbuf, count, t, WEFT_AVG, comm, stream);
    else if (red)
        r = weft_reduce(sbuf, rbuf, count, t, WEFT_AVG, root, comm, stream);
    else
        r = weft_allreduce(sbuf, rbuf, count, t, WEFT_AVG, comm, stream);
    from_device(in, out, in_elems, count);
    if (stream) /* the result as the host sees it */
        rbuf = inplace ? (rs ? in + (size_t)rank * count : in) : out;
    size_t wrong = 0, first = 0;
    int got = 0, want = 0;
    for (size_t i = 0; r == WEFT_OK && !(red && rank != root) && i < count; i++) {
        const size_t at = rs ? (size_t)rank * count + i : i;
        const int g = load(t, rbuf, i), w = mean(t, at);
        if (g != w && wrong++ == 0) {
            first = i;
            got = g;
            want = w;
        }
    }
    if (r == WEFT_OK && wrong == 0) {
        passed++;
    } else {
        failed++;
        printf("not ok - rank %d: %s %s avg count %zu %s: %s %s; %zu wrong, first [%zu] = %d, "
               "want %d\n",
               rank, kind, weft_dtype_name(t), count, inplace ? "in place" : "out of place",
               weft_strerror(r), r == WEFT_OK ? "" : weft_last_error(), wrong, first, got, want);
    }
    free(in);
    free(out);
}

static int stream_setup(void)
{
#ifdef WEFT_HAVE_CUDA
    int ndev = 0;
    cudaStream_t s;
    if (!weft_gpu_available() || cudaGetDeviceCount(&ndev) != cudaSuccess || ndev < 1) {
        printf("skip: no GPU for stream calls: %s\n", weft_gpu_describe());
        return 77;
    }
    const char *local = getenv("WEFT_LOCAL_RANK");
    /* room for the largest reduce_scatter input at 64 ranks */
    const size_t bytes = (size_t)600000 * 64;
    if (cudaSetDevice(local ? atoi(local) % ndev : 0) != cudaSuccess ||
        cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) != cudaSuccess ||
        cudaMalloc((void **)&dev_in, bytes) != cudaSuccess ||
        cudaMalloc((void **)&dev_out, bytes) != cudaSuccess) {
        fprintf(stderr, "avg_check: cannot set up CUDA\n");
        return 1;
    }
    stream = s;
    return 0;
#else
    printf("skip: built without CUDA: no stream calls to check\n");
    return 77;
#endif
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "stream") == 0) {
        const int rc = stream_setup();
        if (rc)
            return rc;
    }
    /* 1, 7: recursive doubling and trees; 100000: rings and chains (above WEFT_SMALL_MSG_SIZE);
     * 600000: more than one 256K-element widened chunk. */
    static const size_t counts[] = {1, 7, 100000, 600000};
    static const char *const kinds[] = {"allreduce", "reduce", "reduce_scatter"};
    weft_comm_t comm;
    weft_result_t r = weft_comm_init_env(&comm);
    if (r != WEFT_OK) {
        fprintf(stderr, "avg_check: init failed: %s: %s\n", weft_strerror(r), weft_last_error());
        return 1;
    }
    weft_comm_rank(comm, &rank);
    weft_comm_size(comm, &nranks);
    for (size_t k = 0; k < 3; k++)
        for (int t = 0; t < 2; t++)
            for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++)
                for (int inplace = 0; inplace < 2; inplace++)
                    run_case(comm, kinds[k], t ? WEFT_UINT8 : WEFT_INT8, counts[c], inplace);
    int tally[2] = {passed, failed}, sum[2] = {0, 0};
    r = weft_allreduce(tally, sum, 2, WEFT_INT32, WEFT_SUM, comm, NULL);
    if (r == WEFT_OK && rank == 0)
        printf("avg_check%s: %d ranks: %d checks passed, %d failed\n", stream ? " (stream)" : "",
               nranks, sum[0], sum[1]);
    r = weft_comm_destroy(comm);
    return failed || r != WEFT_OK ? 1 : 0;
}
