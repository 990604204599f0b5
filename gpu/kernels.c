/*
 * kernels.c - the device kernels' entry points: argument checks before the launch and the
 * launch's error after, the same whichever launcher is linked (gpu/kernels.h); without CUDA in
 * the build they say so.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/error.h"
#include "gpu/gpu.h"

#ifdef WEFT_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "gpu/kernels.h"

static weft_result_t launch_error(const char *what)
{
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess)
        return WEFT_ERROR(WEFT_ERR_SYSTEM, "%s: kernel launch: %s (%s)", what,
                          cudaGetErrorString(err), cudaGetErrorName(err));
    return WEFT_OK;
}

weft_result_t weft_gpu_reduce_n(void *dst, const void *const *src, int nsrc, size_t count,
                                weft_dtype_t dtype, weft_op_t op, void *stream)
{
    const size_t esize = weft_dtype_size(dtype);
    if (esize == 0 || (unsigned)op >= WEFT_NUM_OPS || nsrc < 1 || !src)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "weft_gpu_reduce: invalid dtype %d, op %d or %d inputs", (int)dtype,
                          (int)op, nsrc);
    if (count == 0)
        return WEFT_OK;
    uintptr_t bits = (uintptr_t)dst;
    bool null = !dst;
    for (int k = 0; k < nsrc; k++) {
        bits |= (uintptr_t)src[k];
        null |= !src[k];
    }
    if (null)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_gpu_reduce: a NULL buffer with count %zu",
                          count);
    if (bits % esize != 0)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "weft_gpu_reduce: a buffer (dst %p, first input %p) is not aligned "
                          "to the %zu-byte %s elements (device loads must be)",
                          dst, src[0], esize, weft_dtype_name(dtype));
    if (!weft_gpu_available())
        return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "weft_gpu_reduce: no GPU: %s",
                          weft_gpu_describe());
    /* Launches of up to the maximum; each after the first folds on from dst. */
    const void *batch[WEFT_GPU_REDUCE_MAX_SRCS];
    int done = 0;
    while (done < nsrc) {
        int n = 0;
        if (done > 0)
            batch[n++] = dst;
        while (n < WEFT_GPU_REDUCE_MAX_SRCS && done < nsrc)
            batch[n++] = src[done++];
        weft_gpu_reduce_launch(dst, batch, n, count, dtype, op, stream);
        char what[128];
        snprintf(what, sizeof(what), "weft_gpu_reduce: %zu x %s %s over %d inputs", count,
                 weft_dtype_name(dtype), weft_op_name(op), n);
        WEFT_CHECK(launch_error(what));
    }
    return WEFT_OK;
}

weft_result_t weft_gpu_avg_finish(void *buf, size_t count, weft_dtype_t dtype, int nranks,
                                  void *stream)
{
    if (weft_dtype_size(dtype) == 0)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_gpu_avg_finish: invalid dtype %d",
                          (int)dtype);
    if (count == 0 || nranks <= 1)
        return WEFT_OK; /* dividing by 1 changes nothing, as on the host */
    weft_gpu_avg_launch(buf, count, dtype, nranks, stream);
    char what[96];
    snprintf(what, sizeof(what), "weft_gpu_avg_finish: %zu x %s / %d", count,
             weft_dtype_name(dtype), nranks);
    return launch_error(what);
}

#else /* !WEFT_HAVE_CUDA */

weft_result_t weft_gpu_reduce_n(void *dst, const void *const *src, int nsrc, size_t count,
                                weft_dtype_t dtype, weft_op_t op, void *stream)
{
    (void)dst, (void)src, (void)nsrc, (void)count, (void)dtype, (void)op, (void)stream;
    return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "weft_gpu_reduce: not built with CUDA");
}

weft_result_t weft_gpu_avg_finish(void *buf, size_t count, weft_dtype_t dtype, int nranks,
                                  void *stream)
{
    (void)buf, (void)count, (void)dtype, (void)nranks, (void)stream;
    return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "weft_gpu_avg_finish: not built with CUDA");
}

#endif

weft_result_t weft_gpu_reduce(void *dst, const void *a, const void *b, size_t count,
                              weft_dtype_t dtype, weft_op_t op, void *stream)
{
    const void *src[2] = {a, b};
    return weft_gpu_reduce_n(dst, src, 2, count, dtype, op, stream);
}
