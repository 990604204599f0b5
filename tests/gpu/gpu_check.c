/*
 * gpu_check.c - weft_gpu_reduce against the host kernels (core/reduce.c), bit for bit, for
 * every dtype x op, awkward sizes, misaligned and in-place buffers; weft_gpu_reduce_n over 1
 * to 19 inputs (one launch and chained ones) against the host's left fold; and dma-buf export of
 * cudaMalloc'd memory (skipped, and said so, where the driver or device has no dma-buf).
 * Without a GPU (or without CUDA in the build) it prints "skip: gpu: <reason>" and exits 77,
 * the suite's "skipped" (it tested nothing). Under the fake CUDA (tests/fakecuda) the
 * "kernels" are the host kernels, so there it checks only the copies, streams and refusals.
 *   gpu_check [--quick]     --quick: sizes up to 4097 only (for compute-sanitizer)
 *   gpu_check --probe       exits 0 when there is a GPU to test, else says why and exits 77
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/reduce.h"
#include "gpu/gpu.h"
#include "weft.h"

#ifdef WEFT_HAVE_CUDA
#include <cuda_runtime_api.h>

#define CUDA_OK(call)                                                                              \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Finite values: random bits for integers; floats in [-4, 4) with random low bits, so sums
 * and products round and exercise the rounding, without NaNs (whose payloads may differ). */
static void fill(void *buf, size_t n, weft_dtype_t dt)
{
    for (size_t i = 0; i < n; i++) {
        const uint64_t r = next();
        const float f = (float)((double)(r >> 11) / (double)(1ull << 53) * 8.0 - 4.0);
        switch (dt) {
        case WEFT_FLOAT16:
            ((uint16_t *)buf)[i] = weft_float_to_half(f);
            break;
        case WEFT_BFLOAT16:
            ((uint16_t *)buf)[i] = weft_float_to_bf16(f);
            break;
        case WEFT_FLOAT32:
            ((float *)buf)[i] = f;
            break;
        case WEFT_FLOAT64:
            ((double *)buf)[i] = (double)f * (1.0 + (double)(r & 0xfff) / 9e6);
            break;
        default:
            memcpy((char *)buf + i * weft_dtype_size(dt), &r, weft_dtype_size(dt));
            break;
        }
    }
}

/* One case: a at element offset oa, b at ob, dst at od (or dst == a when inplace). */
static int check(weft_dtype_t dt, weft_op_t op, size_t n, size_t oa, size_t ob, size_t od,
                 int inplace, void *dev, size_t devbytes)
{
    const size_t es = weft_dtype_size(dt), bytes = n * es;
    const size_t region = devbytes / 3;
    char *da = (char *)dev + oa * es, *db = (char *)dev + region + ob * es;
    char *dd = inplace ? da : (char *)dev + 2 * region + od * es;
    char *ha = malloc(bytes + 1), *hb = malloc(bytes + 1), *want = malloc(bytes + 1),
         *got = malloc(bytes + 1);
    if (!ha || !hb || !want || !got) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    fill(ha, n, dt);
    fill(hb, n, dt);
    weft_reduce_local(want, ha, hb, n, dt, op);
    CUDA_OK(cudaMemcpy(da, ha, bytes, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(db, hb, bytes, cudaMemcpyHostToDevice));
    int bad = 0;
    if (weft_gpu_reduce(dd, da, db, n, dt, op, NULL) != WEFT_OK) {
        fprintf(stderr, "weft_gpu_reduce: %s\n", weft_last_error());
        bad = 1;
    } else {
        CUDA_OK(cudaDeviceSynchronize());
        CUDA_OK(cudaMemcpy(got, dd, bytes, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < n && !bad; i++) {
            if (memcmp(got + i * es, want + i * es, es) == 0)
                continue;
            uint64_t g = 0, w = 0;
            memcpy(&g, got + i * es, es);
            memcpy(&w, want + i * es, es);
            fprintf(stderr,
                    "MISMATCH %s %s n=%zu offsets a=%zu b=%zu dst=%zu%s: element %zu: got 0x%llx, "
                    "host 0x%llx\n",
                    weft_dtype_name(dt), weft_op_name(op), n, oa, ob, od,
                    inplace ? " in place" : "", i, (unsigned long long)g, (unsigned long long)w);
            bad = 1;
        }
    }
    free(ha);
    free(hb);
    free(want);
    free(got);
    return bad;
}

/* weft_gpu_reduce_n over nsrc inputs of n elements, the k-th at element offset `mis` * k
 * (mis 0: all aligned; else unequally, the scalar path), dst in place over input 0 or not,
 * against the host's left fold. dev holds (nsrc + 1) * (n + 16) elements. */
static int check_n(weft_dtype_t dt, weft_op_t op, size_t n, int nsrc, size_t mis, int inplace,
                   char *dev)
{
    const size_t es = weft_dtype_size(dt), bytes = n * es, slot = (n + 16) * es;
    const void *src[24];
    char *host = malloc((size_t)nsrc * bytes + 1), *want = malloc(bytes + 1),
         *got = malloc(bytes + 1);
    if (!host || !want || !got || nsrc > 24) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (int k = 0; k < nsrc; k++) {
        char *h = host + (size_t)k * bytes;
        fill(h, n, dt);
        src[k] = dev + (size_t)k * slot + (mis * (size_t)k % 16) * es;
        CUDA_OK(cudaMemcpy((void *)(uintptr_t)src[k], h, bytes, cudaMemcpyHostToDevice));
        if (k == 0)
            memcpy(want, h, bytes);
        else
            weft_reduce_local(want, want, h, n, dt, op);
    }
    char *dst = inplace ? (char *)(uintptr_t)src[0] : dev + (size_t)nsrc * slot;
    int bad = 0;
    if (weft_gpu_reduce_n(dst, src, nsrc, n, dt, op, NULL) != WEFT_OK) {
        fprintf(stderr, "weft_gpu_reduce_n: %s\n", weft_last_error());
        bad = 1;
    } else {
        CUDA_OK(cudaDeviceSynchronize());
        CUDA_OK(cudaMemcpy(got, dst, bytes, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < n && !bad; i++) {
            if (memcmp(got + i * es, want + i * es, es) != 0) {
                fprintf(stderr, "MISMATCH weft_gpu_reduce_n %s %s n=%zu over %d inputs%s%s: "
                                "element %zu\n",
                        weft_dtype_name(dt), weft_op_name(op), n, nsrc,
                        mis ? " misaligned" : "", inplace ? " in place" : "", i);
                bad = 1;
            }
        }
    }
    free(host);
    free(want);
    free(got);
    return bad;
}

/* weft_gpu_dmabuf_export on cudaMalloc'd memory: a dma-buf at least as large as the range
 * widened to pages, and the offset of the pointer in it, for aligned and unaligned ranges;
 * host memory refused. Returns the failures and adds the cases run to *cases. */
static int check_dmabuf(int *cases)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE), bytes = 8u << 20;
    /* {offset into the allocation, length} */
    const size_t ranges[][2] = {
        {0, bytes}, {2 * page + 123, 3 * page}, {bytes - 10, 10}, {page - 1, 2}, {5, 0}};
    char *dev;
    int failed = 0;
    CUDA_OK(cudaMalloc((void **)&dev, bytes));
    if ((uintptr_t)dev % page) {
        /* The expected offsets below assume it; the driver places 8 MiB on 2 MiB pages. */
        fprintf(stderr, "dma-buf: cudaMalloc(%zu) returned %p, not page-aligned\n", bytes,
                (void *)dev);
        CUDA_OK(cudaFree(dev));
        (*cases)++;
        return 1;
    }
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        const size_t off = ranges[i][0], len = ranges[i][1];
        int fd = -1;
        uint64_t offset = UINT64_MAX;
        const weft_result_t r = weft_gpu_dmabuf_export(dev + off, len, &fd, &offset);
        const char *msg = weft_last_error();
        if (i == 0 && r == WEFT_ERR_UNSUPPORTED &&
            (strstr(msg, "does not support dma-buf") || strstr(msg, "CUDA driver has no") ||
             strstr(msg, "CUDA_ERROR_NOT_SUPPORTED"))) {
            printf("# skip - dma-buf export: %s\n", msg);
            break;
        }
        (*cases)++;
        if (r != WEFT_OK) {
            fprintf(stderr, "dma-buf export of [+%zu, +%zu): %s\n", off, len, msg);
            failed++;
            continue;
        }
        const size_t want_offset = off % page, need = want_offset + (len ? len : 1);
        const off_t size = lseek(fd, 0, SEEK_END);
        if (fd < 0 || offset != want_offset || size < 0 || (size_t)size < need ||
            (size_t)size % page) {
            fprintf(stderr,
                    "dma-buf export of [+%zu, +%zu): fd %d, offset %llu (want %zu), dma-buf "
                    "size %lld (want at least %zu, whole pages)\n",
                    off, len, fd, (unsigned long long)offset, want_offset, (long long)size, need);
            failed++;
        }
        if (fd >= 0)
            close(fd);
    }
    char host[64];
    int fd = -1;
    uint64_t offset = 0;
    (*cases)++;
    if (weft_gpu_dmabuf_export(host, sizeof(host), &fd, &offset) != WEFT_ERR_INVALID_ARG ||
        fd != -1) {
        fprintf(stderr, "dma-buf export of host memory was not refused\n");
        failed++;
    }
    CUDA_OK(cudaFree(dev));
    return failed;
}

int main(int argc, char **argv)
{
    const int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    const int probe = argc > 1 && strcmp(argv[1], "--probe") == 0;
    if (!weft_gpu_available()) {
        printf("skip: gpu: %s\n", weft_gpu_describe());
        return 77;
    }
    if (probe) {
        printf("gpu: %s\n", weft_gpu_describe());
        return 0;
    }
    printf("gpu: %s\n", weft_gpu_describe());
    static const size_t sizes[] = {0, 1, 7, 4097, (1u << 20) + 3};
    const size_t nsizes = quick ? 4 : 5;
    /* {a, b, dst} element offsets: aligned, equally misaligned (vector path after a scalar
     * head), and unequally misaligned (scalar path). */
    static const size_t offs[][3] = {{0, 0, 0}, {3, 3, 3}, {1, 0, 5}};
    const size_t maxbytes = ((1u << 20) + 3 + 16) * 8;
    void *dev;
    CUDA_OK(cudaMalloc(&dev, 3 * maxbytes));
    int cases = 0, failed = 0;
    /* The rejected inputs first: they must fail cleanly, not launch. */
    if (weft_gpu_reduce((char *)dev + 1, dev, dev, 4, WEFT_FLOAT32, WEFT_SUM, NULL) !=
        WEFT_ERR_INVALID_ARG) {
        fprintf(stderr, "a misaligned float32 buffer was not refused\n");
        failed++;
    }
    if (weft_gpu_reduce(dev, dev, dev, 4, WEFT_NUM_DTYPES, WEFT_SUM, NULL) !=
        WEFT_ERR_INVALID_ARG) {
        fprintf(stderr, "an invalid dtype was not refused\n");
        failed++;
    }
    for (int dt = 0; dt < WEFT_NUM_DTYPES; dt++) {
        for (int op = 0; op < WEFT_NUM_OPS; op++) {
            for (size_t s = 0; s < nsizes; s++) {
                for (size_t o = 0; o < sizeof(offs) / sizeof(offs[0]); o++) {
                    for (int inplace = 0; inplace < 2; inplace++) {
                        cases++;
                        failed += check((weft_dtype_t)dt, (weft_op_t)op, sizes[s], offs[o][0],
                                        offs[o][1], offs[o][2], inplace, dev, 3 * maxbytes);
                    }
                }
            }
        }
    }
    /* n inputs: one launch (up to 8) and chained ones; every dtype with SUM, every op with
     * bfloat16 and int32. */
    static const int nsrcs[] = {1, 3, 8, 9, 19};
    const size_t nn = quick ? 4097 : (1u << 17) + 5; /* 20 slots fit in dev */
    for (size_t i = 0; i < sizeof(nsrcs) / sizeof(nsrcs[0]); i++) {
        for (int dt = 0; dt < WEFT_NUM_DTYPES; dt++) {
            for (int op = 0; op < WEFT_NUM_OPS; op++) {
                if (op != WEFT_SUM && dt != WEFT_BFLOAT16 && dt != WEFT_INT32)
                    continue;
                for (int variant = 0; variant < 3; variant++) {
                    cases++;
                    failed += check_n((weft_dtype_t)dt, (weft_op_t)op, nn, nsrcs[i],
                                      variant == 1 ? 1 : 0, variant == 2, dev);
                }
            }
        }
    }
    CUDA_OK(cudaFree(dev));
    cases += 2; /* the two refusals */
    failed += check_dmabuf(&cases);
    printf("%d passed, %d failed\n", cases - failed, failed);
    return failed ? 1 : 0;
}

#else /* !WEFT_HAVE_CUDA */

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("skip: gpu: %s\n", weft_gpu_describe());
    return 77;
}

#endif
