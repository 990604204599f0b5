/*
 * overlap_check.c - run under weft-run: every overlap of sendbuf and recvbuf that the API does
 * not support is refused with WEFT_ERR_INVALID_ARG and a message on every rank, and every
 * supported in-place layout gives exact results (small and pipelined sizes).
 *   overlap_check            host buffers, stream NULL
 *   overlap_check stream     device buffers on a stream (exit 77 without a GPU or fake CUDA)
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

static int rank, nranks, failed, passed;
static weft_stream_t stream; /* NULL: host buffers */

/* Memory of the kind under test, and copies to and from it. */
static void *buf_alloc(size_t bytes)
{
#ifdef WEFT_HAVE_CUDA
    if (stream) {
        void *p = NULL;
        return cudaMalloc(&p, bytes) == cudaSuccess ? p : NULL;
    }
#endif
    return calloc(1, bytes);
}

static void buf_free(void *p)
{
#ifdef WEFT_HAVE_CUDA
    if (stream) {
        cudaFree(p);
        return;
    }
#endif
    free(p);
}

static void put(void *dst, const void *host, size_t bytes)
{
#ifdef WEFT_HAVE_CUDA
    if (stream) {
        /* on the stream: a plain cudaMemcpy is not ordered with a non-blocking stream */
        cudaMemcpyAsync(dst, host, bytes, cudaMemcpyHostToDevice, (cudaStream_t)stream);
        cudaStreamSynchronize((cudaStream_t)stream);
        return;
    }
#endif
    if (dst != host)
        memcpy(dst, host, bytes);
}

/* Waits for the stream (the call has run once it returns), then copies back. */
static void get(void *host, const void *src, size_t bytes)
{
#ifdef WEFT_HAVE_CUDA
    if (stream) {
        cudaStreamSynchronize((cudaStream_t)stream);
        /* on the stream: a plain cudaMemcpy is not ordered with a non-blocking stream */
        cudaMemcpyAsync(host, src, bytes, cudaMemcpyDeviceToHost, (cudaStream_t)stream);
        cudaStreamSynchronize((cudaStream_t)stream);
        return;
    }
#endif
    if (src != host)
        memcpy(host, src, bytes);
}

static void expect(int ok, const char *what)
{
    if (ok) {
        passed++;
        return;
    }
    failed++;
    printf("not ok - rank %d: %s\n", rank, what);
}

/* A refused call: INVALID_ARG, a message that says what overlaps and what is supported. */
static void refused(weft_result_t r, const char *what, const char *supported)
{
    char line[1400];
    const char *msg = weft_last_error();
    snprintf(line, sizeof(line), "%s: got %s: %s", what, weft_strerror(r), msg);
    const int group = strncmp(what, "group", 5) == 0; /* names one buffer per call */
    expect(r == WEFT_ERR_INVALID_ARG && strstr(msg, "overlap") &&
               (group || (strstr(msg, "sendbuf") && strstr(msg, "recvbuf"))) &&
               strstr(msg, supported),
           line);
}

static int32_t input(int r, size_t i)
{
    return (int32_t)(r * 1000 + (int)(i % 997));
}

static void check_refusals(weft_comm_t comm, size_t count)
{
    const size_t es = sizeof(int32_t), n = (size_t)nranks;
    /* Room for the largest layout plus slack for shifted windows. */
    char *arena = buf_alloc((4 * n * count + 64) * es);
    char *base = arena + 16 * es;
    const size_t block = count * es;
    weft_result_t r;

    r = weft_alltoall(base, base, count, WEFT_INT32, comm, stream);
    refused(r, "in-place alltoall", "no in-place form");
    r = weft_alltoall(base, base + block, count, WEFT_INT32, comm, stream);
    refused(r, "alltoall shifted by a block", "no in-place form");
    r = weft_allreduce(base, base + es, count, WEFT_INT32, WEFT_SUM, comm, stream);
    refused(r, "allreduce shifted by an element", "sendbuf == recvbuf");
    r = weft_allreduce(base + es, base, count, WEFT_INT32, WEFT_SUM, comm, stream);
    refused(r, "allreduce shifted back by an element", "sendbuf == recvbuf");
    /* Only a broadcast root reads sendbuf and only a reduce root writes recvbuf, so only the
     * root refuses; the others would wait for it, so they make no call. */
    if (rank == 0) {
        r = weft_broadcast(base, base + es, count, WEFT_INT32, 0, comm, stream);
        refused(r, "broadcast root with shifted buffers", "sendbuf == recvbuf");
        r = weft_reduce(base, base + es, count, WEFT_INT32, WEFT_SUM, 0, comm, stream);
        refused(r, "reduce root with shifted buffers", "sendbuf == recvbuf");
    }
    const size_t other = (size_t)((rank + 1) % nranks);
    r = weft_allgather(base + other * block, base, count, WEFT_INT32, comm, stream);
    refused(r, "allgather sendbuf at another rank's block", "recvbuf + rank * count");
    r = weft_allgather(base + (size_t)rank * block + es, base, count, WEFT_INT32, comm, stream);
    refused(r, "allgather sendbuf off its block by an element", "recvbuf + rank * count");
    r = weft_allgather(base, base + es, count, WEFT_INT32, comm, stream);
    refused(r, "allgather recvbuf shifted by an element", "recvbuf + rank * count");
    r = weft_reduce_scatter(base, base + other * block, count, WEFT_INT32, WEFT_SUM, comm, stream);
    refused(r, "reduce_scatter recvbuf at another rank's block", "sendbuf + rank * recvcount");
    r = weft_reduce_scatter(base, base + (size_t)rank * block + es, count, WEFT_INT32, WEFT_SUM,
                            comm, stream);
    refused(r, "reduce_scatter recvbuf off its block", "sendbuf + rank * recvcount");
    r = weft_reduce_scatter(base + es, base, count, WEFT_INT32, WEFT_SUM, comm, stream);
    refused(r, "reduce_scatter sendbuf shifted by an element", "sendbuf + rank * recvcount");
    /* A group's send and receive in one buffer (sendrecv "in place"): the receive would
     * write while the send reads. Every rank makes the same group, so every rank refuses. */
    weft_group_start();
    weft_send(base, count, WEFT_INT32, (rank + 1) % nranks, comm, stream);
    weft_recv(base + es, count, WEFT_INT32, (rank + nranks - 1) % nranks, comm, stream);
    r = weft_group_end();
    refused(r, "group: receive into the send's buffer", "in a group, a receive may not write");
    /* ... and a collective writing where a send of its group reads */
    weft_group_start();
    weft_send(base, count, WEFT_INT32, (rank + 1) % nranks, comm, stream);
    weft_recv(base + 2 * n * block, count, WEFT_INT32, (rank + nranks - 1) % nranks, comm,
              stream);
    weft_allreduce(base + 3 * n * block, base + es, count, WEFT_INT32, WEFT_SUM, comm, stream);
    r = weft_group_end();
    refused(r, "group: allreduce output over a send's buffer", "nor a collective write");
    buf_free(arena);
}

/* The supported in-place layouts, exactly: `h` is the host mirror of `buf` (the same memory
 * for host calls). */
static void check_in_place(weft_comm_t comm, size_t count)
{
    const size_t n = (size_t)nranks, bytes = n * count * sizeof(int32_t);
    int32_t *h = malloc(bytes), *buf = stream ? buf_alloc(bytes) : h;
    char what[160];
    weft_result_t r;
    size_t wrong;

    for (size_t i = 0; i < count; i++)
        h[i] = input(rank, i);
    put(buf, h, count * sizeof(int32_t));
    r = weft_allreduce(buf, buf, count, WEFT_INT32, WEFT_SUM, comm, stream);
    get(h, buf, count * sizeof(int32_t));
    wrong = 0;
    for (size_t i = 0; i < count; i++) {
        int64_t want = 0;
        for (int q = 0; q < nranks; q++)
            want += input(q, i);
        wrong += h[i] != (int32_t)want;
    }
    snprintf(what, sizeof(what), "in-place allreduce count %zu: %s, %zu wrong", count,
             weft_strerror(r), wrong);
    expect(r == WEFT_OK && wrong == 0, what);

    const int root = (int)(count % n);
    for (size_t i = 0; i < count; i++)
        h[i] = input(rank, i);
    put(buf, h, count * sizeof(int32_t));
    r = weft_broadcast(buf, buf, count, WEFT_INT32, root, comm, stream);
    get(h, buf, count * sizeof(int32_t));
    wrong = 0;
    for (size_t i = 0; i < count; i++)
        wrong += h[i] != input(root, i);
    snprintf(what, sizeof(what), "in-place broadcast count %zu: %s, %zu wrong", count,
             weft_strerror(r), wrong);
    expect(r == WEFT_OK && wrong == 0, what);

    for (size_t i = 0; i < count; i++)
        h[i] = input(rank, i);
    put(buf, h, count * sizeof(int32_t));
    r = weft_reduce(buf, buf, count, WEFT_INT32, WEFT_MAX, root, comm, stream);
    get(h, buf, count * sizeof(int32_t));
    wrong = 0;
    for (size_t i = 0; rank == root && i < count; i++)
        wrong += h[i] != input(nranks - 1, i);
    snprintf(what, sizeof(what), "in-place reduce count %zu: %s, %zu wrong", count,
             weft_strerror(r), wrong);
    expect(r == WEFT_OK && wrong == 0, what);

    memset(h, 0x5a, bytes);
    for (size_t i = 0; i < count; i++)
        h[(size_t)rank * count + i] = input(rank, i);
    put(buf, h, bytes);
    r = weft_allgather(buf + (size_t)rank * count, buf, count, WEFT_INT32, comm, stream);
    get(h, buf, bytes);
    wrong = 0;
    for (size_t i = 0; i < n * count; i++)
        wrong += h[i] != input((int)(i / count), i % count);
    snprintf(what, sizeof(what), "in-place allgather count %zu: %s, %zu wrong", count,
             weft_strerror(r), wrong);
    expect(r == WEFT_OK && wrong == 0, what);

    for (size_t i = 0; i < n * count; i++)
        h[i] = input(rank, i);
    put(buf, h, bytes);
    r = weft_reduce_scatter(buf, buf + (size_t)rank * count, count, WEFT_INT32, WEFT_SUM, comm,
                            stream);
    get(h, buf, bytes);
    wrong = 0;
    for (size_t i = 0; i < count; i++) {
        int64_t want = 0;
        for (int q = 0; q < nranks; q++)
            want += input(q, (size_t)rank * count + i);
        wrong += h[(size_t)rank * count + i] != (int32_t)want;
    }
    snprintf(what, sizeof(what), "in-place reduce_scatter count %zu: %s, %zu wrong", count,
             weft_strerror(r), wrong);
    expect(r == WEFT_OK && wrong == 0, what);
    if (stream)
        buf_free(buf);
    free(h);
}

/* Device buffers on a stream: the GPU of this local rank, or a skip. */
static int stream_setup(void)
{
#ifdef WEFT_HAVE_CUDA
    int ndev = 0;
    if (!weft_gpu_available() || cudaGetDeviceCount(&ndev) != cudaSuccess || ndev < 1) {
        printf("skip: no GPU for stream calls: %s\n", weft_gpu_describe());
        return 77;
    }
    const char *local = getenv("WEFT_LOCAL_RANK");
    cudaStream_t s;
    if (cudaSetDevice(local ? atoi(local) % ndev : 0) != cudaSuccess ||
        cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) != cudaSuccess) {
        fprintf(stderr, "overlap_check: cannot set up a CUDA stream\n");
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
    /* 1 and 7: trees and recursive doubling; 300000 (1.2 MB): rings and chains, pipelined. */
    static const size_t counts[] = {1, 7, 300000};
    if (argc > 1 && strcmp(argv[1], "stream") == 0) {
        const int rc = stream_setup();
        if (rc)
            return rc;
    }
    weft_comm_t comm;
    weft_result_t r = weft_comm_init_env(&comm);
    if (r != WEFT_OK) {
        fprintf(stderr, "overlap_check: init failed: %s: %s\n", weft_strerror(r),
                weft_last_error());
        return 1;
    }
    weft_comm_rank(comm, &rank);
    weft_comm_size(comm, &nranks);
    for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
        /* count 1 has no partial overlap by an element: shifted buffers are disjoint */
        check_refusals(comm, counts[c] < 2 ? 2 : counts[c]);
        check_in_place(comm, counts[c]);
    }
    /* A refusal must leave the communicator usable: it ran nothing. */
    r = weft_barrier(comm, NULL);
    expect(r == WEFT_OK, "barrier after the refusals");
    int tally[2] = {passed, failed}, sum[2] = {0, 0};
    r = weft_allreduce(tally, sum, 2, WEFT_INT32, WEFT_SUM, comm, NULL);
    if (r == WEFT_OK && rank == 0)
        printf("overlap_check%s: %d ranks: %d checks passed, %d failed\n",
               stream ? " (stream)" : "", nranks, sum[0], sum[1]);
    r = weft_comm_destroy(comm);
    return failed || r != WEFT_OK ? 1 : 0;
}
