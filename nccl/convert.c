/*
 * convert.c - NCCL's datatypes, operations, streams and devices in Weft's terms. The CUDA
 * runtime is the one libweft links (the fake one in a fake-CUDA build); without CUDA every
 * answer is "no GPU".
 */
#include <pthread.h>

#include "internal.h"

#ifdef WEFT_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

bool weft_nccl_dtype(ncclDataType_t in, weft_dtype_t *out)
{
    /* Indexed by NCCL's values, which differ from Weft's order. */
    static const weft_dtype_t table[ncclNumTypes] = {
        [ncclInt8] = WEFT_INT8,         [ncclUint8] = WEFT_UINT8,     [ncclInt32] = WEFT_INT32,
        [ncclUint32] = WEFT_UINT32,     [ncclInt64] = WEFT_INT64,     [ncclUint64] = WEFT_UINT64,
        [ncclFloat16] = WEFT_FLOAT16,   [ncclFloat32] = WEFT_FLOAT32, [ncclFloat64] = WEFT_FLOAT64,
        [ncclBfloat16] = WEFT_BFLOAT16,
    };
    if ((unsigned)in >= (unsigned)ncclNumTypes)
        return false;
    *out = table[in];
    return true;
}

bool weft_nccl_op(ncclRedOp_t in, weft_op_t *out)
{
    switch (in) {
    case ncclSum:
        *out = WEFT_SUM;
        return true;
    case ncclProd:
        *out = WEFT_PROD;
        return true;
    case ncclMax:
        *out = WEFT_MAX;
        return true;
    case ncclMin:
        *out = WEFT_MIN;
        return true;
    case ncclAvg:
        *out = WEFT_AVG;
        return true;
    default:
        return false;
    }
}

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static bool have_gpu;

static void probe(void)
{
#ifdef WEFT_HAVE_CUDA
    int n = 0;
    have_gpu = cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
    if (!have_gpu)
        (void)cudaGetLastError(); /* leave no sticky "no device" for the program */
#endif
}

bool weft_nccl_have_gpu(void)
{
    pthread_once(&probe_once, probe);
    return have_gpu;
}

weft_stream_t weft_nccl_stream(cudaStream_t stream)
{
    if (stream || !weft_nccl_have_gpu())
        return (weft_stream_t)stream;
#ifdef WEFT_HAVE_CUDA
    return (weft_stream_t)cudaStreamLegacy;
#else
    return NULL;
#endif
}

int weft_nccl_current_device(void)
{
#ifdef WEFT_HAVE_CUDA
    int dev;
    if (weft_nccl_have_gpu() && cudaGetDevice(&dev) == cudaSuccess)
        return dev;
#endif
    return -1;
}

int weft_nccl_use_device(int device)
{
    const int previous = weft_nccl_current_device();
#ifdef WEFT_HAVE_CUDA
    if (device >= 0 && previous >= 0 && previous != device)
        (void)cudaSetDevice(device);
#else
    (void)device;
#endif
    return previous;
}

void weft_nccl_restore_device(int previous, int device)
{
#ifdef WEFT_HAVE_CUDA
    if (device >= 0 && previous >= 0 && previous != device)
        (void)cudaSetDevice(previous);
#else
    (void)previous;
    (void)device;
#endif
}
