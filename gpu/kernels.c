/*
 * kernels.c - the device kernels' entry points: argument checks before the launch and the
 * launch's error after, the same whichever launcher is linked (gpu/kernels.h); without CUDA in
 * the build they say so.
 */
#include <stdint.h>
#include <stdio.h>

#include "core/error.h"
#include "gpu/gpu.h"
#include "gpu/ipc.h"

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

weft_result_t weft_gpu_reduce(void *dst, const void *a, const void *b, size_t count,
                              weft_dtype_t dtype, weft_op_t op, void *stream)
{
    const size_t esize = weft_dtype_size(dtype);
    if (esize == 0 || (unsigned)op >= WEFT_NUM_OPS)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_gpu_reduce: invalid dtype %d or op %d",
                          (int)dtype, (int)op);
    if (count == 0)
        return WEFT_OK;
    if (!dst || !a || !b)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_gpu_reduce: a NULL buffer with count %zu",
                          count);
    if (((uintptr_t)dst | (uintptr_t)a | (uintptr_t)b) % esize != 0)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "weft_gpu_reduce: buffers %p, %p, %p are not aligned to the %zu-byte "
                          "%s elements (device loads must be)",
                          dst, a, b, esize, weft_dtype_name(dtype));
    if (!weft_gpu_available())
        return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "weft_gpu_reduce: no GPU: %s",
                          weft_gpu_describe());
    weft_gpu_reduce_launch(dst, a, b, count, dtype, op, stream);
    char what[96];
    snprintf(what, sizeof(what), "weft_gpu_reduce: %zu x %s %s", count, weft_dtype_name(dtype),
             weft_op_name(op));
    return launch_error(what);
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

weft_result_t weft_gpu_reduce(void *dst, const void *a, const void *b, size_t count,
                              weft_dtype_t dtype, weft_op_t op, void *stream)
{
    (void)dst, (void)a, (void)b, (void)count, (void)dtype, (void)op, (void)stream;
    return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "weft_gpu_reduce: not built with CUDA");
}

weft_result_t weft_gpu_avg_finish(void *buf, size_t count, weft_dtype_t dtype, int nranks,
                                  void *stream)
{
    (void)buf, (void)count, (void)dtype, (void)nranks, (void)stream;
    return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "weft_gpu_avg_finish: not built with CUDA");
}

#endif
