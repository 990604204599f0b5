/*
 * gpu_reduce_bench.cu - weft_gpu_reduce bandwidth (bytes read plus written) against
 * cudaMemcpy device-to-device (bytes read plus written) in the same run, on one GPU.
 *   gpu_reduce_bench [BYTES [ITERS]]     default 256 MiB per operand, 20 timed iterations
 * Prints one table row per dtype x op: time per call, GB/s, and the ratio to the copy.
 */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

extern "C" {
#include "gpu/gpu.h"
#include "weft.h"
}

#define CUDA_OK(call)                                                                       \
    do {                                                                                    \
        cudaError_t e_ = (call);                                                            \
        if (e_ != cudaSuccess) {                                                            \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,                   \
                    cudaGetErrorString(e_));                                                \
            exit(1);                                                                        \
        }                                                                                   \
    } while (0)

/* Milliseconds per call of fn over iters calls after 3 warm-up calls, timed with events. */
template <typename F> static float time_ms(int iters, F fn)
{
    cudaEvent_t t0, t1;
    CUDA_OK(cudaEventCreate(&t0));
    CUDA_OK(cudaEventCreate(&t1));
    for (int i = 0; i < 3; i++)
        fn();
    CUDA_OK(cudaEventRecord(t0));
    for (int i = 0; i < iters; i++)
        fn();
    CUDA_OK(cudaEventRecord(t1));
    CUDA_OK(cudaEventSynchronize(t1));
    float ms = 0;
    CUDA_OK(cudaEventElapsedTime(&ms, t0, t1));
    CUDA_OK(cudaEventDestroy(t0));
    CUDA_OK(cudaEventDestroy(t1));
    return ms / (float)iters;
}

int main(int argc, char **argv)
{
    const size_t bytes = argc > 1 ? strtoull(argv[1], NULL, 0) : (size_t)256 << 20;
    const int iters = argc > 2 ? atoi(argv[2]) : 20;
    if (!weft_gpu_available()) {
        printf("skip - gpu: %s\n", weft_gpu_describe());
        return 0;
    }
    printf("gpu: %s\n", weft_gpu_describe());
    char *a, *b, *d;
    CUDA_OK(cudaMalloc(&a, bytes));
    CUDA_OK(cudaMalloc(&b, bytes));
    CUDA_OK(cudaMalloc(&d, bytes));
    CUDA_OK(cudaMemset(a, 0x3c, bytes)); /* finite values in every float format */
    CUDA_OK(cudaMemset(b, 0x3c, bytes));

    const float copy_ms = time_ms(iters, [&] { CUDA_OK(cudaMemcpy(d, a, bytes, cudaMemcpyDeviceToDevice)); });
    const double copy_gbs = 2.0 * (double)bytes / (copy_ms * 1e6);
    printf("\n%zu MiB per operand, %d iterations, cudaMemcpy D2D: %.3f ms, %.1f GB/s "
           "(read + written)\n\n",
           bytes >> 20, iters, copy_ms, copy_gbs);
    printf("| dtype | op | ms | GB/s (2 read + 1 written) | vs copy |\n|---|---|---|---|---|\n");

    struct { weft_dtype_t dt; weft_op_t op; } rows[] = {
        {WEFT_FLOAT32, WEFT_SUM}, {WEFT_BFLOAT16, WEFT_SUM}, {WEFT_FLOAT16, WEFT_SUM},
        {WEFT_FLOAT64, WEFT_SUM}, {WEFT_INT8, WEFT_SUM},     {WEFT_INT32, WEFT_SUM},
        {WEFT_INT64, WEFT_SUM},   {WEFT_FLOAT32, WEFT_MAX},  {WEFT_BFLOAT16, WEFT_PROD},
        {WEFT_BFLOAT16, WEFT_MIN},
    };
    int status = 0;
    for (auto &r : rows) {
        const size_t n = bytes / weft_dtype_size(r.dt);
        weft_result_t res = WEFT_OK;
        const float ms = time_ms(iters, [&] {
            if (res == WEFT_OK)
                res = weft_gpu_reduce(d, a, b, n, r.dt, r.op, NULL);
        });
        CUDA_OK(cudaGetLastError());
        if (res != WEFT_OK) {
            fprintf(stderr, "weft_gpu_reduce: %s\n", weft_last_error());
            status = 1;
            continue;
        }
        const double gbs = 3.0 * (double)bytes / (ms * 1e6);
        printf("| %s | %s | %.3f | %.1f | %.1f%% |\n", weft_dtype_name(r.dt), weft_op_name(r.op),
               ms, gbs, 100.0 * gbs / copy_gbs);
    }
    printf("\ngoal (issue 6): float32 and bfloat16 sum at 256 MiB at least 90%% of the copy\n");
    CUDA_OK(cudaFree(a));
    CUDA_OK(cudaFree(b));
    CUDA_OK(cudaFree(d));
    return status;
}
