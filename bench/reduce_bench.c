/*
 * reduce_bench.c - throughput of the host reduction kernels at 64 MiB against memcpy.
 * Not built by make: cc -O2 -Iinclude -I. bench/reduce_bench.c core/reduce.c core/dtype.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/reduce.h"

#define BYTES (64u << 20)
#define REPS 10

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* GB/s of BYTES (one buffer's worth) per call, best of REPS. */
static double best_gbps(void *dst, const void *a, const void *b, weft_dtype_t dtype,
                        int memcpy_only)
{
    double best = 1e30;
    size_t count = BYTES / weft_dtype_size(dtype);

    for (int r = 0; r < REPS; r++) {
        double t0 = now();
        if (memcpy_only)
            memcpy(dst, a, BYTES);
        else
            weft_reduce_local(dst, a, b, count, dtype, WEFT_SUM);
        double t = now() - t0;
        if (t < best)
            best = t;
    }
    return BYTES / best / 1e9;
}

int main(void)
{
    unsigned char *d = malloc(BYTES), *a = malloc(BYTES), *b = malloc(BYTES);

    if (!d || !a || !b)
        return 1;
    /* small values so sums stay finite and no denormal slow paths are hit */
    for (size_t i = 0; i < BYTES; i++) {
        a[i] = (unsigned char)(i % 61 + 1) & 0x3f;
        b[i] = (unsigned char)(i % 53 + 1) & 0x3f;
        d[i] = 0;
    }
    printf("memcpy             %6.2f GB/s\n", best_gbps(d, a, b, WEFT_FLOAT32, 1));
    printf("float32 sum        %6.2f GB/s (dst, a, b distinct)\n",
           best_gbps(d, a, b, WEFT_FLOAT32, 0));
    printf("float32 sum inplace %5.2f GB/s (dst == a)\n", best_gbps(a, a, b, WEFT_FLOAT32, 0));
    printf("bfloat16 sum       %6.2f GB/s\n", best_gbps(d, a, b, WEFT_BFLOAT16, 0));
    printf("float16 sum        %6.2f GB/s\n", best_gbps(d, a, b, WEFT_FLOAT16, 0));
    printf("int32 sum          %6.2f GB/s\n", best_gbps(d, a, b, WEFT_INT32, 0));
    free(d);
    free(a);
    free(b);
    return 0;
}
