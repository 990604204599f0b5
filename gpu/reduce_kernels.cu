/*
 * reduce_kernels.cu - device reductions dst = src[0] op ... op src[n-1] (n up to
 * WEFT_GPU_REDUCE_MAX_SRCS) for every dtype x op: 16-byte vector loads and stores, several in
 * flight per thread and input, grid-stride loops, scalar head and tail.
 */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "gpu/kernels.h"
}

/*
 * Exactness: float16 and bfloat16 use native arithmetic (__hadd, __hmul), which rounds the
 * exact result once. The host kernels (core/reduce.c) compute in float and round again; float
 * has at least 2p+2 significand bits for both formats, so the two agree bit for bit. MIN and
 * MAX follow the host rule: a NaN in a is returned as is, else the comparison picks one
 * operand. Integers wrap (computed in the unsigned type), as on the host.
 */
#define INT_OPS(T, U)                                                                      \
    __device__ __forceinline__ T op_sum(T x, T y) { return (T)(U)((U)x + (U)y); }          \
    __device__ __forceinline__ T op_prod(T x, T y) { return (T)(U)((U)x * (U)y); }         \
    __device__ __forceinline__ T op_min(T x, T y) { return x < y ? x : y; }                \
    __device__ __forceinline__ T op_max(T x, T y) { return x > y ? x : y; }
INT_OPS(int8_t, uint8_t)
INT_OPS(uint8_t, uint8_t)
INT_OPS(int32_t, uint32_t)
INT_OPS(uint32_t, uint32_t)
INT_OPS(int64_t, uint64_t)
INT_OPS(uint64_t, uint64_t)

#define FLT_OPS(T)                                                                         \
    __device__ __forceinline__ T op_sum(T x, T y) { return x + y; }                        \
    __device__ __forceinline__ T op_prod(T x, T y) { return x * y; }                       \
    __device__ __forceinline__ T op_min(T x, T y) { return x != x ? x : (x < y ? x : y); } \
    __device__ __forceinline__ T op_max(T x, T y) { return x != x ? x : (x > y ? x : y); }
FLT_OPS(float)
FLT_OPS(double)

#define HALF_OPS(T)                                                                        \
    __device__ __forceinline__ T op_sum(T x, T y) { return __hadd(x, y); }                 \
    __device__ __forceinline__ T op_prod(T x, T y) { return __hmul(x, y); }                \
    __device__ __forceinline__ T op_min(T x, T y) { return __hisnan(x) || __hlt(x, y) ? x : y; } \
    __device__ __forceinline__ T op_max(T x, T y) { return __hisnan(x) || __hgt(x, y) ? x : y; }
HALF_OPS(__half)
HALF_OPS(__nv_bfloat16)

struct Sum {
    template <typename T> __device__ __forceinline__ T operator()(T x, T y) const { return op_sum(x, y); }
};
struct Prod {
    template <typename T> __device__ __forceinline__ T operator()(T x, T y) const { return op_prod(x, y); }
};
struct Min {
    template <typename T> __device__ __forceinline__ T operator()(T x, T y) const { return op_min(x, y); }
};
struct Max {
    template <typename T> __device__ __forceinline__ T operator()(T x, T y) const { return op_max(x, y); }
};

enum { THREADS = 256, UNROLL = 4 };

template <typename T, typename Op>
__device__ __forceinline__ uint4 combine(uint4 x, uint4 y, Op op)
{
    T *ex = reinterpret_cast<T *>(&x);
    const T *ey = reinterpret_cast<const T *>(&y);
#pragma unroll
    for (unsigned k = 0; k < sizeof(uint4) / sizeof(T); k++)
        ex[k] = op(ex[k], ey[k]);
    return x;
}

/* The inputs of one launch, by value (kernel parameters): dst = src[0] op ... op src[n-1]. */
template <typename T> struct Srcs {
    const T *p[WEFT_GPU_REDUCE_MAX_SRCS];
    int n;
};

/*
 * Elements [head, head + nvec * V) move as 16-byte vectors (all pointers are 16-byte aligned
 * there); the nscalar others, [0, head) and the tail after the vectors, one by one. When the
 * pointers are not equally aligned, nvec is 0 and everything is scalar. Each thread keeps
 * UNROLL vector loads of each input in flight and folds the inputs left to right, as chained
 * two-input reductions would (the same roundings). Element i is read and written by one
 * thread only, and all its inputs are read before it is written, so dst may alias any input.
 */
template <typename T, typename Op>
__global__ void __launch_bounds__(THREADS)
    reduce_kernel(T *dst, Srcs<T> src, size_t head, size_t nvec, size_t nscalar)
{
    constexpr size_t V = sizeof(uint4) / sizeof(T);
    Op op;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    uint4 *vd = reinterpret_cast<uint4 *>(dst + head);

    size_t i = tid;
    for (; i + (UNROLL - 1) * stride < nvec; i += UNROLL * stride) {
        uint4 x[UNROLL], y[UNROLL];
        const uint4 *v0 = reinterpret_cast<const uint4 *>(src.p[0] + head);
#pragma unroll
        for (int u = 0; u < UNROLL; u++)
            x[u] = v0[i + u * stride];
        for (int k = 1; k < src.n; k++) {
            const uint4 *vk = reinterpret_cast<const uint4 *>(src.p[k] + head);
#pragma unroll
            for (int u = 0; u < UNROLL; u++)
                y[u] = vk[i + u * stride];
#pragma unroll
            for (int u = 0; u < UNROLL; u++)
                x[u] = combine<T>(x[u], y[u], op);
        }
#pragma unroll
        for (int u = 0; u < UNROLL; u++)
            vd[i + u * stride] = x[u];
    }
    for (; i < nvec; i += stride) {
        uint4 x = reinterpret_cast<const uint4 *>(src.p[0] + head)[i];
        for (int k = 1; k < src.n; k++)
            x = combine<T>(x, reinterpret_cast<const uint4 *>(src.p[k] + head)[i], op);
        vd[i] = x;
    }

    const size_t tail0 = head + nvec * V;
    for (size_t j = tid; j < nscalar; j += stride) {
        const size_t e = j < head ? j : tail0 + (j - head);
        T x = src.p[0][e];
        for (int k = 1; k < src.n; k++)
            x = op(x, src.p[k][e]);
        dst[e] = x;
    }
}

/* The most blocks of `kernel` resident at once on the current device: a grid-stride grid
 * larger than that would run in a second, partly empty wave. */
static size_t max_resident_blocks(const void *kernel)
{
    int dev = 0, sms = 0, per_sm = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, THREADS, 0) !=
            cudaSuccess ||
        sms <= 0 || per_sm <= 0) {
        cudaGetLastError();
        return 132 * 4;
    }
    return (size_t)sms * (size_t)per_sm;
}

template <typename T, typename Op>
static void launch(void *vdst, const void *const *vsrc, int nsrc, size_t n, cudaStream_t stream)
{
    constexpr size_t V = sizeof(uint4) / sizeof(T);
    T *dst = static_cast<T *>(vdst);
    Srcs<T> src = {};
    src.n = nsrc;
    const uintptr_t mis = (uintptr_t)dst % 16;
    bool same = true;
    for (int k = 0; k < nsrc; k++) {
        src.p[k] = static_cast<const T *>(vsrc[k]);
        same = same && (uintptr_t)src.p[k] % 16 == mis;
    }
    size_t head = n, nvec = 0;
    if (same) {
        head = (16 - mis) % 16 / sizeof(T);
        if (head > n)
            head = n;
        nvec = (n - head) / V;
    }
    const size_t nscalar = n - nvec * V;
    const size_t work = nvec > nscalar ? nvec : nscalar;
    size_t blocks = (work + THREADS * UNROLL - 1) / (THREADS * UNROLL);
    const size_t cap = max_resident_blocks(reinterpret_cast<const void *>(reduce_kernel<T, Op>));
    if (blocks > cap)
        blocks = cap;
    if (blocks == 0)
        blocks = 1;
    reduce_kernel<T, Op><<<(unsigned)blocks, THREADS, 0, stream>>>(dst, src, head, nvec, nscalar);
}

template <typename T>
static void launch_op(weft_op_t op, void *dst, const void *const *src, int nsrc, size_t n,
                      cudaStream_t stream)
{
    switch (op) {
    case WEFT_SUM:
    case WEFT_AVG: launch<T, Sum>(dst, src, nsrc, n, stream); break;
    case WEFT_PROD: launch<T, Prod>(dst, src, nsrc, n, stream); break;
    case WEFT_MIN: launch<T, Min>(dst, src, nsrc, n, stream); break;
    case WEFT_MAX: launch<T, Max>(dst, src, nsrc, n, stream); break;
    default: break;
    }
}

extern "C" void weft_gpu_reduce_launch(void *dst, const void *const *src, int nsrc, size_t count,
                                       weft_dtype_t dtype, weft_op_t op, void *stream)
{
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    switch (dtype) {
    case WEFT_INT8: launch_op<int8_t>(op, dst, src, nsrc, count, s); break;
    case WEFT_UINT8: launch_op<uint8_t>(op, dst, src, nsrc, count, s); break;
    case WEFT_INT32: launch_op<int32_t>(op, dst, src, nsrc, count, s); break;
    case WEFT_UINT32: launch_op<uint32_t>(op, dst, src, nsrc, count, s); break;
    case WEFT_INT64: launch_op<int64_t>(op, dst, src, nsrc, count, s); break;
    case WEFT_UINT64: launch_op<uint64_t>(op, dst, src, nsrc, count, s); break;
    case WEFT_FLOAT16: launch_op<__half>(op, dst, src, nsrc, count, s); break;
    case WEFT_BFLOAT16: launch_op<__nv_bfloat16>(op, dst, src, nsrc, count, s); break;
    case WEFT_FLOAT32: launch_op<float>(op, dst, src, nsrc, count, s); break;
    case WEFT_FLOAT64: launch_op<double>(op, dst, src, nsrc, count, s); break;
    default: break;
    }
}
