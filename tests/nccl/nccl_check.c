/*
 * nccl_check.c - an NCCL program (nccl.h and the CUDA runtime only) that checks Weft's
 * libnccl.so.2 under weft-run at 2 to 4 ranks. The ranks share their unique ids through a
 * file, as MPI-less nccl-tests-style programs do. With a GPU (or the fake CUDA runtime)
 * buffers are cudaMalloc'd and calls go on a stream; without one, stream NULL and host
 * buffers (Weft's host mode). Results are checked exactly, float16/bfloat16 as bit patterns.
 *   nccl_check [api]    every call of nccl.h: results, bad arguments, properties, groups,
 *                       split, registration, ncclMemAlloc, ncclCommInitAll, finalize
 *   nccl_check mismatch with WEFT_CHECK=1: ranks calling different collectives get
 *                       ncclInvalidUsage (host: from the call; stream: as the async error)
 *   nccl_check dead-peer  the last rank exits; the others see an error and an async error
 *   nccl_check abort    ncclCommAbort from another thread unblocks a call that cannot match
 * NCCL_CHECK_ID_FILE names the file for the ids (default: $TMPDIR/weft-nccl-id.<weft-run pid>).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nccl.h>

#ifdef WEFT_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

static int rank, nranks, gpu;
static long passed, failed;
static cudaStream_t stream;

static void check(int ok, const char *what, const char *detail)
{
    if (ok) {
        passed++;
        return;
    }
    failed++;
    printf("not ok - rank %d: %s: %s\n", rank, what, detail ? detail : "");
    fflush(stdout);
}

static void expect(ncclResult_t got, ncclResult_t want, const char *what)
{
    char detail[1400];
    snprintf(detail, sizeof(detail), "got %d (%s), want %d (%s); last error: %s", (int)got,
             ncclGetErrorString(got), (int)want, ncclGetErrorString(want), ncclGetLastError(NULL));
    check(got == want, what, detail);
}

static void die(const char *what)
{
    printf("not ok - rank %d: %s (%s)\n", rank, what, ncclGetLastError(NULL));
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- buffers: device memory with a GPU, host memory without --------------------------- */

#ifdef WEFT_HAVE_CUDA
#define CUDA_OK(call)                                                                    \
    do {                                                                                 \
        cudaError_t e_ = (call);                                                         \
        if (e_ != cudaSuccess) {                                                         \
            printf("not ok - rank %d: %s:%d: %s: %s\n", rank, __FILE__, __LINE__, #call, \
                   cudaGetErrorString(e_));                                              \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)
#endif

static void *dev_alloc(size_t bytes)
{
    void *p = NULL;
#ifdef WEFT_HAVE_CUDA
    if (gpu) {
        CUDA_OK(cudaMalloc(&p, bytes ? bytes : 1));
        return p;
    }
#endif
    p = calloc(1, bytes ? bytes : 1);
    if (!p)
        die("out of memory");
    return p;
}

static void dev_free(void *p)
{
#ifdef WEFT_HAVE_CUDA
    if (gpu) {
        CUDA_OK(cudaFree(p));
        return;
    }
#endif
    free(p);
}

static void sync_stream(void)
{
#ifdef WEFT_HAVE_CUDA
    if (gpu)
        CUDA_OK(cudaStreamSynchronize(stream));
#endif
}

static void to_dev(void *d, const void *h, size_t bytes)
{
#ifdef WEFT_HAVE_CUDA
    /* On the test's stream: a plain cudaMemcpy goes on the legacy stream, which a
     * non-blocking stream does not wait for (and may return before a pageable upload is done). */
    if (gpu) {
        CUDA_OK(cudaMemcpyAsync(d, h, bytes, cudaMemcpyHostToDevice, stream));
        CUDA_OK(cudaStreamSynchronize(stream));
        return;
    }
#endif
    memcpy(d, h, bytes);
}

static void from_dev(void *h, const void *d, size_t bytes)
{
    sync_stream();
#ifdef WEFT_HAVE_CUDA
    if (gpu) {
        CUDA_OK(cudaMemcpyAsync(h, d, bytes, cudaMemcpyDeviceToHost, stream));
        CUDA_OK(cudaStreamSynchronize(stream));
        return;
    }
#endif
    memcpy(h, d, bytes);
}

/* ---- values: small integers, exact in every type ---------------------------------------- */

static const ncclDataType_t dtypes[] = {ncclInt8,    ncclUint8,   ncclInt32,   ncclUint32,
                                        ncclInt64,   ncclUint64,  ncclFloat16, ncclFloat32,
                                        ncclFloat64, ncclBfloat16};
static const char *const dtype_names[] = {"int8",   "uint8",   "int32",   "uint32",  "int64",
                                          "uint64", "float16", "float32", "float64", "bfloat16"};
#define NDTYPES (sizeof(dtypes) / sizeof(dtypes[0]))
static const ncclRedOp_t ops[] = {ncclSum, ncclProd, ncclMax, ncclMin, ncclAvg};
static const char *const op_names[] = {"sum", "prod", "max", "min", "avg"};

static size_t dsize(ncclDataType_t t)
{
    switch (t) {
    case ncclInt8:
    case ncclUint8:
        return 1;
    case ncclFloat16:
    case ncclBfloat16:
        return 2;
    case ncclInt32:
    case ncclUint32:
    case ncclFloat32:
        return 4;
    default:
        return 8;
    }
}

/* IEEE binary16 of a non-negative integer below 2048 (exact). */
static uint16_t f16_bits(long k)
{
    if (k == 0)
        return 0;
    int e = 0;
    while ((k >> (e + 1)) != 0)
        e++;
    return (uint16_t)(((e + 15) << 10) | ((k << (10 - e)) & 0x3ff));
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

/* Element i of buf, of type t, set to the integer v (exact: |v| < 256). */
static void store(void *buf, ncclDataType_t t, size_t i, long v)
{
    char *p = (char *)buf + i * dsize(t);
    union {
        int8_t i8;
        uint8_t u8;
        int32_t i32;
        uint32_t u32;
        int64_t i64;
        uint64_t u64;
        uint16_t h;
        float f;
        double d;
    } u;
    switch (t) {
    case ncclInt8:
        u.i8 = (int8_t)v;
        break;
    case ncclUint8:
        u.u8 = (uint8_t)v;
        break;
    case ncclInt32:
        u.i32 = (int32_t)v;
        break;
    case ncclUint32:
        u.u32 = (uint32_t)v;
        break;
    case ncclInt64:
        u.i64 = v;
        break;
    case ncclUint64:
        u.u64 = (uint64_t)v;
        break;
    case ncclFloat16:
        u.h = f16_bits(v);
        break;
    case ncclBfloat16:
        u.h = (uint16_t)(f32_bits((float)v) >> 16);
        break;
    case ncclFloat32:
        u.f = (float)v;
        break;
    default:
        u.d = (double)v;
        break;
    }
    memcpy(p, &u, dsize(t));
}

/* What rank r contributes at index i for op: products stay small, averages divide evenly. */
static long value(ncclRedOp_t op, int r, size_t i)
{
    if (op == ncclProd)
        return 1 + (long)((i + (size_t)r) % 2);
    if (op == ncclAvg)
        return (long)(i % 11) + (r == 0 ? nranks : 0);
    return (long)((i * 7 + (size_t)r * 3) % 11);
}

static long reduced(ncclRedOp_t op, size_t i, int n)
{
    long acc = value(op, 0, i);
    for (int r = 1; r < n; r++) {
        const long v = value(op, r, i);
        switch (op) {
        case ncclProd:
            acc *= v;
            break;
        case ncclMax:
            acc = v > acc ? v : acc;
            break;
        case ncclMin:
            acc = v < acc ? v : acc;
            break;
        default:
            acc += v;
            break;
        }
    }
    return op == ncclAvg ? acc / n : acc;
}

/* Compares count elements of got (host) with want (host), both of type t. */
static void compare(const void *got, const void *want, size_t count, ncclDataType_t t,
                    const char *what)
{
    const size_t es = dsize(t);
    for (size_t i = 0; i < count; i++) {
        if (memcmp((const char *)got + i * es, (const char *)want + i * es, es) != 0) {
            char detail[160];
            uint64_t g = 0, w = 0;
            memcpy(&g, (const char *)got + i * es, es);
            memcpy(&w, (const char *)want + i * es, es);
            snprintf(detail, sizeof(detail), "element %zu of %zu is 0x%llx, want 0x%llx", i, count,
                     (unsigned long long)g, (unsigned long long)w);
            check(0, what, detail);
            return;
        }
    }
    check(1, what, NULL);
}

/* ---- unique ids through a file ----------------------------------------------------------- */

static void share_ids(ncclUniqueId *ids, int n)
{
    char path[512];
    const char *env = getenv("NCCL_CHECK_ID_FILE");
    if (env)
        snprintf(path, sizeof(path), "%s", env);
    else
        snprintf(path, sizeof(path), "%s/weft-nccl-id.%d",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getppid());
    if (rank == 0) {
        for (int i = 0; i < n; i++)
            if (ncclGetUniqueId(&ids[i]) != ncclSuccess)
                die("ncclGetUniqueId");
        char tmp[600];
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        FILE *f = fopen(tmp, "wb");
        if (!f || fwrite(ids, sizeof(*ids), (size_t)n, f) != (size_t)n || fclose(f) != 0 ||
            rename(tmp, path) != 0)
            die("cannot write the id file");
        return;
    }
    const double deadline = now_s() + 60;
    for (;;) {
        FILE *f = fopen(path, "rb");
        if (f) {
            size_t got = fread(ids, sizeof(*ids), (size_t)n, f);
            fclose(f);
            if (got == (size_t)n)
                return;
        }
        if (now_s() > deadline)
            die("no id file from rank 0 within 60 s");
        const struct timespec ms = {0, 10 * 1000 * 1000};
        nanosleep(&ms, NULL);
    }
}

static void unlink_ids(void)
{
    char path[512];
    const char *env = getenv("NCCL_CHECK_ID_FILE");
    if (env)
        snprintf(path, sizeof(path), "%s", env);
    else
        snprintf(path, sizeof(path), "%s/weft-nccl-id.%d",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getppid());
    if (rank == 0)
        unlink(path);
}

/* ---- the collectives --------------------------------------------------------------------- */

static const size_t counts[] = {1, 7, 1000};
#define NCOUNTS (sizeof(counts) / sizeof(counts[0]))
#define GUARD 16 /* elements after each output that must stay untouched */

static void check_allreduce(ncclComm_t comm, ncclDataType_t t, ncclRedOp_t op, size_t count,
                            int in_place, const char *label)
{
    const size_t es = dsize(t), bytes = (count + GUARD) * es;
    char *h = malloc(bytes), *want = malloc(bytes), *got = malloc(bytes);
    void *send = dev_alloc(bytes), *recv = in_place ? send : dev_alloc(bytes);
    for (size_t i = 0; i < count + GUARD; i++) {
        store(h, t, i, i < count ? value(op, rank, i) : 99);
        store(want, t, i, i < count ? reduced(op, i, nranks) : 99);
    }
    to_dev(send, h, bytes);
    if (!in_place)
        to_dev(recv, h, bytes); /* the guard */
    char what[160];
    snprintf(what, sizeof(what), "ncclAllReduce %s count %zu%s", label, count,
             in_place ? " in place" : "");
    expect(ncclAllReduce(send, recv, count, t, op, comm, stream), ncclSuccess, what);
    from_dev(got, recv, bytes);
    compare(got, want, count + GUARD, t, what);
    dev_free(send);
    if (!in_place)
        dev_free(recv);
    free(h), free(want), free(got);
}

static void check_rooted_and_gathers(ncclComm_t comm, ncclDataType_t t, const char *tname)
{
    const size_t count = 37, es = dsize(t), n = (size_t)nranks;
    char what[160];
    char *h = malloc(n * count * es), *want = malloc(n * count * es), *got = malloc(n * count * es);
    void *a = dev_alloc(n * count * es), *b = dev_alloc(n * count * es);

    /* ncclReduce (max) to the last rank. */
    const int root = nranks - 1;
    for (size_t i = 0; i < count; i++) {
        store(h, t, i, value(ncclMax, rank, i));
        store(want, t, i, reduced(ncclMax, i, nranks));
    }
    to_dev(a, h, count * es);
    snprintf(what, sizeof(what), "ncclReduce max %s to root %d", tname, root);
    expect(ncclReduce(a, b, count, t, ncclMax, root, comm, stream), ncclSuccess, what);
    from_dev(got, b, count * es);
    if (rank == root)
        compare(got, want, count, t, what);

    /* ncclBroadcast from rank 1 % nranks, then ncclBcast in place from rank 0. */
    const int broot = 1 % nranks;
    for (size_t i = 0; i < count; i++) {
        store(h, t, i, value(ncclSum, rank, i));
        store(want, t, i, value(ncclSum, broot, i));
    }
    to_dev(a, h, count * es);
    snprintf(what, sizeof(what), "ncclBroadcast %s from %d", tname, broot);
    expect(ncclBroadcast(a, b, count, t, broot, comm, stream), ncclSuccess, what);
    from_dev(got, b, count * es);
    compare(got, want, count, t, what);
    for (size_t i = 0; i < count; i++)
        store(want, t, i, value(ncclSum, 0, i));
    to_dev(a, h, count * es);
    snprintf(what, sizeof(what), "ncclBcast %s from 0", tname);
    expect(ncclBcast(a, count, t, 0, comm, stream), ncclSuccess, what);
    from_dev(got, a, count * es);
    compare(got, want, count, t, what);

    /* ncclAllGather: block r from rank r. */
    for (size_t i = 0; i < count; i++)
        store(h, t, i, value(ncclSum, rank, i));
    for (size_t r = 0; r < n; r++)
        for (size_t i = 0; i < count; i++)
            store(want, t, r * count + i, value(ncclSum, (int)r, i));
    to_dev(a, h, count * es);
    snprintf(what, sizeof(what), "ncclAllGather %s", tname);
    expect(ncclAllGather(a, b, count, t, comm, stream), ncclSuccess, what);
    from_dev(got, b, n * count * es);
    compare(got, want, n * count, t, what);

    /* ncclReduceScatter (sum and avg): rank r gets the reduction of block r. */
    for (int k = 0; k < 2; k++) {
        const ncclRedOp_t op = k == 0 ? ncclSum : ncclAvg;
        for (size_t i = 0; i < n * count; i++)
            store(h, t, i, value(op, rank, i));
        for (size_t i = 0; i < count; i++)
            store(want, t, i, reduced(op, (size_t)rank * count + i, nranks));
        to_dev(a, h, n * count * es);
        snprintf(what, sizeof(what), "ncclReduceScatter %s %s", op_names[op], tname);
        expect(ncclReduceScatter(a, b, count, t, op, comm, stream), ncclSuccess, what);
        from_dev(got, b, count * es);
        compare(got, want, count, t, what);
    }

    /* ncclSend/ncclRecv around a ring, in a group (nested, as libraries do). */
    const int next = (rank + 1) % nranks, prev = (rank + nranks - 1) % nranks;
    for (size_t i = 0; i < count; i++) {
        store(h, t, i, value(ncclSum, rank, i) + 1);
        store(want, t, i, value(ncclSum, prev, i) + 1);
    }
    to_dev(a, h, count * es);
    snprintf(what, sizeof(what), "ncclSend/ncclRecv ring %s in a nested group", tname);
    expect(ncclGroupStart(), ncclSuccess, "ncclGroupStart");
    expect(ncclGroupStart(), ncclSuccess, "nested ncclGroupStart");
    expect(ncclSend(a, count, t, next, comm, stream), ncclSuccess, "ncclSend");
    expect(ncclGroupEnd(), ncclSuccess, "nested ncclGroupEnd");
    expect(ncclRecv(b, count, t, prev, comm, stream), ncclSuccess, "ncclRecv");
    expect(ncclGroupEnd(), ncclSuccess, what);
    from_dev(got, b, count * es);
    compare(got, want, count, t, what);

    dev_free(a), dev_free(b);
    free(h), free(want), free(got);
}

static void check_collectives(ncclComm_t comm)
{
    for (size_t d = 0; d < NDTYPES; d++) {
        for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
            char label[64];
            snprintf(label, sizeof(label), "%s %s", op_names[o], dtype_names[d]);
            for (size_t c = 0; c < NCOUNTS; c++)
                check_allreduce(comm, dtypes[d], ops[o], counts[c], 0, label);
            check_allreduce(comm, dtypes[d], ops[o], 7, 1, label);
        }
        check_rooted_and_gathers(comm, dtypes[d], dtype_names[d]);
    }
    /* Count 0 moves nothing and needs no buffers. */
    expect(ncclAllReduce(NULL, NULL, 0, ncclFloat, ncclSum, comm, stream), ncclSuccess,
           "ncclAllReduce count 0, NULL buffers");
}

/* ---- the other calls --------------------------------------------------------------------- */

static void check_bad_arguments(ncclComm_t comm)
{
    void *a = dev_alloc(64), *b = dev_alloc(64);
    int v = 0;
    expect(ncclGetVersion(NULL), ncclInvalidArgument, "ncclGetVersion(NULL)");
    expect(ncclGetUniqueId(NULL), ncclInvalidArgument, "ncclGetUniqueId(NULL)");
    expect(ncclAllReduce(a, b, 4, ncclFloat, ncclSum, NULL, stream), ncclInvalidArgument,
           "ncclAllReduce on a NULL comm");
    check(strstr(ncclGetLastError(NULL), "ncclAllReduce") != NULL,
          "ncclGetLastError names the call", ncclGetLastError(NULL));
    expect(ncclAllReduce(a, b, 4, (ncclDataType_t)ncclNumTypes, ncclSum, comm, stream),
           ncclInvalidArgument, "ncclAllReduce with datatype ncclNumTypes (fp8 on newer NCCL)");
    expect(ncclAllReduce(a, b, 4, (ncclDataType_t)-1, ncclSum, comm, stream), ncclInvalidArgument,
           "ncclAllReduce with datatype -1");
    expect(ncclAllReduce(a, b, 4, ncclFloat, (ncclRedOp_t)ncclNumOps, comm, stream),
           ncclInvalidArgument, "ncclAllReduce with an operation never created");
    expect(ncclAllReduce(NULL, b, 4, ncclFloat, ncclSum, comm, stream), ncclInvalidArgument,
           "ncclAllReduce with a NULL sendbuff");
    expect(ncclBroadcast(a, b, 4, ncclFloat, nranks, comm, stream), ncclInvalidArgument,
           "ncclBroadcast with root == nranks");
    expect(ncclReduce(a, b, 4, ncclFloat, ncclSum, -1, comm, stream), ncclInvalidArgument,
           "ncclReduce with root -1");
    expect(ncclSend(a, 4, ncclFloat, nranks, comm, stream), ncclInvalidArgument,
           "ncclSend to peer nranks");
    expect(ncclCommCount(comm, NULL), ncclInvalidArgument, "ncclCommCount(comm, NULL)");
    expect(ncclCommUserRank(NULL, &v), ncclInvalidArgument, "ncclCommUserRank(NULL, ...)");
    expect(ncclCommCuDevice(NULL, &v), ncclInvalidArgument, "ncclCommCuDevice(NULL, ...)");
    expect(ncclCommGetAsyncError(comm, NULL), ncclInvalidArgument,
           "ncclCommGetAsyncError(comm, NULL)");
    expect(ncclGroupEnd(), ncclInvalidUsage, "ncclGroupEnd without ncclGroupStart");
    ncclRedOp_t op;
    float scalar = 0.5f;
    expect(ncclRedOpCreatePreMulSum(&op, &scalar, ncclFloat, ncclScalarHostImmediate, comm),
           ncclInvalidUsage, "ncclRedOpCreatePreMulSum (unsupported on Weft)");
    check(strstr(ncclGetLastError(NULL), "unsupported") != NULL,
          "ncclGetLastError says unsupported", ncclGetLastError(NULL));
    expect(ncclRedOpCreatePreMulSum(NULL, &scalar, ncclFloat, ncclScalarHostImmediate, comm),
           ncclInvalidArgument, "ncclRedOpCreatePreMulSum(NULL, ...)");
    expect(ncclRedOpDestroy(ncclSum, comm), ncclInvalidArgument, "ncclRedOpDestroy(ncclSum)");
    ncclComm_t bad = NULL;
    ncclUniqueId id;
    memset(&id, 0, sizeof(id));
    expect(ncclCommInitRank(&bad, 2, id, 2), ncclInvalidArgument,
           "ncclCommInitRank with rank == nranks");
    expect(ncclCommInitRank(NULL, 2, id, 0), ncclInvalidArgument, "ncclCommInitRank(NULL, ...)");
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.magic = 0;
    expect(ncclCommInitRankConfig(&bad, 2, id, 0, &config), ncclInvalidArgument,
           "ncclCommInitRankConfig with a config not from NCCL_CONFIG_INITIALIZER");
    expect(ncclCommInitAll(NULL, 2, NULL), ncclInvalidArgument, "ncclCommInitAll(NULL, ...)");
    expect(ncclMemAlloc(NULL, 16), ncclInvalidArgument, "ncclMemAlloc(NULL, ...)");
    /* None of that broke the communicator. */
    check_allreduce(comm, ncclFloat, ncclSum, 5, 0, "sum float32 after the bad calls");
    dev_free(a), dev_free(b);
}

static void check_error_strings(void)
{
    for (int i = 0; i < ncclNumResults; i++) {
        const char *s = ncclGetErrorString((ncclResult_t)i);
        int distinct = s && *s;
        for (int j = 0; j < i && distinct; j++)
            distinct = strcmp(s, ncclGetErrorString((ncclResult_t)j)) != 0;
        check(distinct, "ncclGetErrorString: one distinct string per result", s);
    }
}

static void check_properties(ncclComm_t comm, int want_device)
{
    int count = -1, r = -1, dev = -2;
    expect(ncclCommCount(comm, &count), ncclSuccess, "ncclCommCount");
    expect(ncclCommUserRank(comm, &r), ncclSuccess, "ncclCommUserRank");
    expect(ncclCommCuDevice(comm, &dev), ncclSuccess, "ncclCommCuDevice");
    char detail[128];
    snprintf(detail, sizeof(detail), "count %d rank %d device %d, want %d %d %d", count, r, dev,
             nranks, rank, want_device);
    check(count == nranks && r == rank && dev == want_device, "communicator properties", detail);
    ncclResult_t async = ncclInternalError;
    expect(ncclCommGetAsyncError(comm, &async), ncclSuccess, "ncclCommGetAsyncError");
    expect(async, ncclSuccess, "no asynchronous error");
}

static void check_split(ncclComm_t comm)
{
    /* Two colors, reversed order within each; the last rank of 3+ opts out. */
    const int out = nranks >= 3 && rank == nranks - 1;
    const int color = out ? NCCL_SPLIT_NOCOLOR : rank % 2;
    ncclComm_t sub = (ncclComm_t)&sub;
    expect(ncclCommSplit(comm, color, -rank, &sub, NULL), ncclSuccess, "ncclCommSplit");
    if (out) {
        check(sub == NULL, "ncclCommSplit with NCCL_SPLIT_NOCOLOR gives NULL", NULL);
        return;
    }
    int members = 0, my = 0;
    for (int q = 0; q < nranks; q++) {
        if ((nranks >= 3 && q == nranks - 1) || q % 2 != color)
            continue;
        members++;
        if (q > rank)
            my++; /* key -rank: higher old ranks first */
    }
    int count = -1, r = -1;
    ncclCommCount(sub, &count);
    ncclCommUserRank(sub, &r);
    char detail[128];
    snprintf(detail, sizeof(detail), "count %d rank %d, want %d %d", count, r, members, my);
    check(count == members && r == my, "ncclCommSplit: size and order by key", detail);
    /* A sum over the sub-communicator: every member adds its old rank. */
    int32_t h = rank, want = 0, got = -1;
    for (int q = 0; q < nranks; q++)
        if (!(nranks >= 3 && q == nranks - 1) && q % 2 == color)
            want += q;
    int32_t *d = dev_alloc(sizeof(h));
    to_dev(d, &h, sizeof(h));
    expect(ncclAllReduce(d, d, 1, ncclInt32, ncclSum, sub, stream), ncclSuccess,
           "ncclAllReduce on the split communicator");
    from_dev(&got, d, sizeof(got));
    check(got == want, "ncclAllReduce on the split communicator: result", NULL);
    dev_free(d);
    expect(ncclCommDestroy(sub), ncclSuccess, "ncclCommDestroy of the split communicator");
}

static void check_memory(ncclComm_t comm)
{
    const size_t n = 4096;
    float *buf = NULL;
    expect(ncclMemAlloc((void **)&buf, n * sizeof(float)), ncclSuccess, "ncclMemAlloc");
    void *handle = NULL;
    expect(ncclCommRegister(comm, buf, n * sizeof(float), &handle), ncclSuccess,
           "ncclCommRegister");
    float *h = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        h[i] = (float)value(ncclSum, rank, i);
        want[i] = (float)reduced(ncclSum, i, nranks);
    }
    to_dev(buf, h, n * sizeof(float));
    expect(ncclAllReduce(buf, buf, n, ncclFloat, ncclSum, comm, stream), ncclSuccess,
           "ncclAllReduce on a registered ncclMemAlloc buffer");
    from_dev(h, buf, n * sizeof(float));
    compare(h, want, n, ncclFloat, "ncclAllReduce on a registered ncclMemAlloc buffer: result");
    expect(ncclCommDeregister(comm, handle), ncclSuccess, "ncclCommDeregister");
    expect(ncclMemFree(buf), ncclSuccess, "ncclMemFree");
    free(h), free(want);
}

/* Two communicators of this process (ncclCommInitAll): properties, and with streams an
 * allreduce over both in one group, as one thread driving two devices does. */
static void check_init_all(void)
{
    ncclComm_t c[2] = {NULL, NULL};
    const int devs[2] = {0, 0}; /* the one (fake) GPU for both */
    const char *tp = getenv("WEFT_TRANSPORT");
    if (!tp || strcmp(tp, "tcp") != 0) {
        /* Weft's shm transport serves one rank per process: refused, with the reason. */
        expect(ncclCommInitAll(c, 2, gpu ? devs : NULL), ncclInvalidUsage,
               "ncclCommInitAll(2) without WEFT_TRANSPORT=tcp");
        check(strstr(ncclGetLastError(NULL), "WEFT_TRANSPORT=tcp") != NULL,
              "ncclGetLastError says what to do", ncclGetLastError(NULL));
        return;
    }
    expect(ncclCommInitAll(c, 2, gpu ? devs : NULL), ncclSuccess, "ncclCommInitAll(2)");
    if (!c[0] || !c[1])
        return;
    for (int i = 0; i < 2; i++) {
        int count = -1, r = -1;
        ncclCommCount(c[i], &count);
        ncclCommUserRank(c[i], &r);
        check(count == 2 && r == i, "ncclCommInitAll: sizes and ranks", NULL);
    }
#ifdef WEFT_HAVE_CUDA
    if (gpu) {
        /* One stream per communicator, as per device in NCCL programs: on one stream the
         * second would wait for the first, which waits for the second. */
        int32_t *d[2], h[2] = {3, 4}, got = 0;
        cudaStream_t s[2];
        expect(ncclGroupStart(), ncclSuccess, "ncclGroupStart");
        for (int i = 0; i < 2; i++) {
            CUDA_OK(cudaStreamCreateWithFlags(&s[i], cudaStreamNonBlocking));
            d[i] = dev_alloc(sizeof(int32_t));
            to_dev(d[i], &h[i], sizeof(int32_t));
            expect(ncclAllReduce(d[i], d[i], 1, ncclInt32, ncclSum, c[i], s[i]), ncclSuccess,
                   "ncclAllReduce on an ncclCommInitAll communicator");
        }
        expect(ncclGroupEnd(), ncclSuccess, "ncclGroupEnd over two communicators");
        for (int i = 0; i < 2; i++) {
            CUDA_OK(cudaStreamSynchronize(s[i]));
            from_dev(&got, d[i], sizeof(got));
            check(got == 7, "ncclCommInitAll: allreduce over both in one group", NULL);
            dev_free(d[i]);
            CUDA_OK(cudaStreamDestroy(s[i]));
        }
    }
#endif
    for (int i = 0; i < 2; i++)
        expect(ncclCommDestroy(c[i]), ncclSuccess, "ncclCommDestroy of an ncclCommInitAll one");
}

static void api(void)
{
    check_error_strings();
    int version = 0;
    expect(ncclGetVersion(&version), ncclSuccess, "ncclGetVersion");
    check(version == NCCL_VERSION_CODE && version == 22105, "ncclGetVersion is 2.21.5", NULL);

    ncclUniqueId ids[2];
    share_ids(ids, 2);
    /* The first communicator as nccl-tests makes it: config, inside a group. */
    ncclComm_t comm = NULL;
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 1;
    expect(ncclGroupStart(), ncclSuccess, "ncclGroupStart");
    expect(ncclCommInitRankConfig(&comm, nranks, ids[0], rank, &config), ncclSuccess,
           "ncclCommInitRankConfig in a group");
    expect(ncclGroupEnd(), ncclSuccess, "ncclGroupEnd runs the init");
    /* The second plainly. */
    ncclComm_t comm2 = NULL;
    expect(ncclCommInitRank(&comm2, nranks, ids[1], rank), ncclSuccess, "ncclCommInitRank");
    unlink_ids();
    if (!comm || !comm2)
        die("no communicator");

    int device = -1;
#ifdef WEFT_HAVE_CUDA
    if (gpu)
        CUDA_OK(cudaGetDevice(&device));
#endif
    check_properties(comm, device);
    check_bad_arguments(comm);
    check_collectives(comm);
    check_split(comm);
    check_memory(comm);
    check_allreduce(comm2, ncclInt64, ncclMax, 100, 0, "max int64 on the second communicator");
    check_init_all();

    expect(ncclCommFinalize(comm), ncclSuccess, "ncclCommFinalize");
    expect(ncclAllReduce(NULL, NULL, 0, ncclFloat, ncclSum, comm, stream), ncclInvalidUsage,
           "a call after ncclCommFinalize");
    expect(ncclCommDestroy(comm), ncclSuccess, "ncclCommDestroy after ncclCommFinalize");
    expect(ncclCommDestroy(comm2), ncclSuccess, "ncclCommDestroy");
}

/* ---- the error paths that need the whole job ---------------------------------------------- */

static ncclComm_t init_one(void)
{
    ncclUniqueId id;
    share_ids(&id, 1);
    ncclComm_t comm = NULL;
    if (ncclCommInitRank(&comm, nranks, id, rank) != ncclSuccess)
        die("ncclCommInitRank");
    unlink_ids();
    return comm;
}

/* The ranks call allreduces of different counts; WEFT_CHECK=1 notices. */
static void mismatch(void)
{
    ncclComm_t comm = init_one();
    const size_t count = rank == 0 ? 8 : 9;
    void *d = dev_alloc(16 * sizeof(float));
    ncclResult_t r = ncclAllReduce(d, d, count, ncclFloat, ncclSum, comm, stream);
    ncclResult_t async = ncclSuccess;
    if (r == ncclSuccess) { /* on a stream the mismatch comes afterwards */
        sync_stream();
        expect(ncclCommGetAsyncError(comm, &async), ncclSuccess, "ncclCommGetAsyncError");
        r = async;
    } else {
        check(strstr(ncclGetLastError(NULL), "different") != NULL,
              "ncclGetLastError says the ranks called different collectives",
              ncclGetLastError(NULL));
    }
    expect(r, ncclInvalidUsage, "allreduce counts that differ between ranks");
    if (!gpu) {
        /* On the host the communicator stays usable. */
        check_allreduce(comm, ncclFloat, ncclSum, 8, 0, "sum float32 after the mismatch");
        expect(ncclCommDestroy(comm), ncclSuccess, "ncclCommDestroy");
    } else {
        /* Let the slowest rank's worker meet the mismatch before this rank goes away. */
        const struct timespec wait = {2, 0};
        nanosleep(&wait, NULL);
        expect(ncclCommAbort(comm), ncclSuccess, "ncclCommAbort after the mismatch");
    }
    dev_free(d);
}

/* The last rank leaves without a word after one allreduce; the others must see an error. */
static void dead_peer(void)
{
    ncclComm_t comm = init_one();
    const size_t n = 1024;
    void *d = dev_alloc(n * sizeof(float));
    expect(ncclAllReduce(d, d, n, ncclFloat, ncclSum, comm, stream), ncclSuccess,
           "allreduce before the peer dies");
    sync_stream();
    if (rank == nranks - 1)
        _exit(0);
    const double t0 = now_s();
    ncclResult_t r = ncclSuccess, async = ncclSuccess;
    for (int i = 0; i < 200 && r == ncclSuccess && async == ncclSuccess; i++) {
        r = ncclAllReduce(d, d, n, ncclFloat, ncclSum, comm, stream);
#ifdef WEFT_HAVE_CUDA
        if (gpu && r == ncclSuccess)
            (void)cudaStreamSynchronize(stream); /* the stream is released either way */
#endif
        ncclCommGetAsyncError(comm, &async);
    }
    const double took = now_s() - t0;
    char detail[1400];
    snprintf(detail, sizeof(detail), "call %d, async %d after %.1f s: %s", (int)r, (int)async, took,
             ncclGetLastError(NULL));
    check((r != ncclSuccess || async != ncclSuccess) && took < 30, "a dead peer gives an error",
          detail);
    expect(ncclCommGetAsyncError(comm, &async), ncclSuccess, "ncclCommGetAsyncError");
    check(async == ncclRemoteError || async == ncclSystemError, "ncclCommGetAsyncError reports it",
          ncclGetErrorString(async));
    expect(ncclCommAbort(comm), ncclSuccess, "ncclCommAbort after the failure");
    dev_free(d);
}

struct aborter {
    ncclComm_t comm;
    ncclResult_t result;
    int calling; /* set by the main thread just before its call */
};

static void *abort_main(void *arg)
{
    struct aborter *a = arg;
    /* Abort only once the call is under way (then 1 s more, for it to block): aborting
     * first would free the communicator the call is about to use. */
    const struct timespec ms = {0, 1000 * 1000}, wait = {1, 0};
    while (!__atomic_load_n(&a->calling, __ATOMIC_ACQUIRE))
        nanosleep(&ms, NULL);
    nanosleep(&wait, NULL);
    a->result = ncclCommAbort(a->comm);
    return NULL;
}

/* Rank 0 calls an allreduce nobody else joins; another thread aborts it after 1 s. */
static void abort_case(void)
{
    ncclComm_t comm = init_one();
    if (rank != 0) {
        /* Wait for rank 0's abort, then leave this communicator without a destroy. */
        const struct timespec wait = {3, 0};
        nanosleep(&wait, NULL);
        expect(ncclCommAbort(comm), ncclSuccess, "ncclCommAbort on the ranks that waited");
        return;
    }
    void *d = dev_alloc(64 * sizeof(float));
    struct aborter a = {comm, ncclInternalError, 0};
    pthread_t t;
    if (pthread_create(&t, NULL, abort_main, &a) != 0)
        die("pthread_create");
    const double t0 = now_s();
    __atomic_store_n(&a.calling, 1, __ATOMIC_RELEASE);
    ncclResult_t r = ncclAllReduce(d, d, 64, ncclFloat, ncclSum, comm, stream);
#ifdef WEFT_HAVE_CUDA
    if (gpu && r == ncclSuccess)
        CUDA_OK(cudaStreamSynchronize(stream)); /* released by the abort */
#endif
    const double took = now_s() - t0;
    pthread_join(t, NULL);
    char detail[1400];
    snprintf(detail, sizeof(detail), "returned %d after %.1f s: %s", (int)r, took,
             ncclGetLastError(NULL));
    check(took < 20 && (gpu || r != ncclSuccess), "ncclCommAbort unblocks the call", detail);
    expect(a.result, ncclSuccess, "ncclCommAbort from another thread");
    dev_free(d);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "api";
    const char *r = getenv("WEFT_RANK"), *n = getenv("WEFT_NRANKS");
    if (!r || !n) {
        printf("nccl_check: run it under weft-run (WEFT_RANK and WEFT_NRANKS are not set)\n");
        return 2;
    }
    rank = atoi(r);
    nranks = atoi(n);
#ifdef WEFT_HAVE_CUDA
    int ndev = 0;
    gpu = cudaGetDeviceCount(&ndev) == cudaSuccess && ndev > 0;
    if (gpu) {
        CUDA_OK(cudaSetDevice(0)); /* several ranks share one GPU in the tests */
        /* NCCL_CHECK_NULL_STREAM=1: every call on stream 0, CUDA's legacy default stream. */
        if (!getenv("NCCL_CHECK_NULL_STREAM"))
            CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    } else {
        (void)cudaGetLastError();
    }
#endif
    if (!strcmp(mode, "api"))
        api();
    else if (!strcmp(mode, "mismatch"))
        mismatch();
    else if (!strcmp(mode, "dead-peer"))
        dead_peer();
    else if (!strcmp(mode, "abort"))
        abort_case();
    else {
        printf("nccl_check: unknown mode %s (api, mismatch, dead-peer, abort)\n", mode);
        return 2;
    }
#ifdef WEFT_HAVE_CUDA
    if (gpu && stream)
        CUDA_OK(cudaStreamDestroy(stream));
#endif
    printf("nccl_check %s (%s): rank %d: %ld checks passed, %ld failed\n", mode,
           gpu ? (stream ? "device buffers on a stream" : "device buffers on stream 0")
               : "host buffers, stream NULL",
           rank, passed, failed);
    return failed ? 1 : 0;
}
