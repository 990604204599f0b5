/*
 * ipc_kernels.cu - the last step of WEFT_AVG on the device, buf[i] /= nranks, rounded as the
 * host's weft_reduce_avg_finish rounds: integers divide in 64 bits and truncate toward zero,
 * float and double divide once (IEEE division; nvcc's default -prec-div=true), float16 and
 * bfloat16 divide in float and round to nearest even on store.
 */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "gpu/kernels.h"
}

template <typename T, typename W> struct IntDiv {
    __device__ __forceinline__ T operator()(T x, int n) const { return (T)((W)x / (W)n); }
};
template <typename T> struct FltDiv {
    __device__ __forceinline__ T operator()(T x, int n) const { return x / (T)n; }
};
struct HalfDiv {
    __device__ __forceinline__ __half operator()(__half x, int n) const
    {
        return __float2half_rn(__half2float(x) / (float)n);
    }
};
struct Bf16Div {
    __device__ __forceinline__ __nv_bfloat16 operator()(__nv_bfloat16 x, int n) const
    {
        return __float2bfloat16_rn(__bfloat162float(x) / (float)n);
    }
};

enum { AVG_THREADS = 256, AVG_MAX_BLOCKS = 4096 };

template <typename T, typename Div>
__global__ void __launch_bounds__(AVG_THREADS) avg_kernel(T *buf, size_t n, int nranks)
{
    Div div;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        buf[i] = div(buf[i], nranks);
}

template <typename T, typename Div>
static void launch(void *buf, size_t n, int nranks, cudaStream_t s)
{
    size_t blocks = (n + AVG_THREADS - 1) / AVG_THREADS;
    if (blocks > AVG_MAX_BLOCKS)
        blocks = AVG_MAX_BLOCKS;
    avg_kernel<T, Div><<<(unsigned)blocks, AVG_THREADS, 0, s>>>(static_cast<T *>(buf), n, nranks);
}

extern "C" void weft_gpu_avg_launch(void *buf, size_t count, weft_dtype_t dtype, int nranks,
                                    void *stream)
{
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    switch (dtype) {
    case WEFT_INT8: launch<int8_t, IntDiv<int8_t, int64_t>>(buf, count, nranks, s); break;
    case WEFT_UINT8: launch<uint8_t, IntDiv<uint8_t, uint64_t>>(buf, count, nranks, s); break;
    case WEFT_INT32: launch<int32_t, IntDiv<int32_t, int64_t>>(buf, count, nranks, s); break;
    case WEFT_UINT32: launch<uint32_t, IntDiv<uint32_t, uint64_t>>(buf, count, nranks, s); break;
    case WEFT_INT64: launch<int64_t, IntDiv<int64_t, int64_t>>(buf, count, nranks, s); break;
    case WEFT_UINT64: launch<uint64_t, IntDiv<uint64_t, uint64_t>>(buf, count, nranks, s); break;
    case WEFT_FLOAT16: launch<__half, HalfDiv>(buf, count, nranks, s); break;
    case WEFT_BFLOAT16: launch<__nv_bfloat16, Bf16Div>(buf, count, nranks, s); break;
    case WEFT_FLOAT32: launch<float, FltDiv<float>>(buf, count, nranks, s); break;
    case WEFT_FLOAT64: launch<double, FltDiv<double>>(buf, count, nranks, s); break;
    default: break;
    }
}
