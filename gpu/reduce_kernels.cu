/*
 * reduce_kernels.cu - device reductions dst = a op b for every dtype x op: 16-byte vector
 * loads and stores, several in flight per thread, grid-stride loops, scalar head and tail.
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

/*
 * Elements [head, head + nvec * V) move as 16-byte vectors (all three pointers are 16-byte
 * aligned there); the nscalar others, [0, head) and the tail after the vectors, one by one.
 * When the pointers are not equally aligned, nvec is 0 and everything is scalar. Each thread
 * keeps UNROLL vector loads of each operand in flight. Element i is read and written by one
 * thread only, so dst may alias a or b.
 */
template <typename T, typename Op>
__global__ void __launch_bounds__(THREADS)
    reduce_kernel(T *dst, const T *a, const T *b, size_t head, size_t nvec, size_t nscalar)
{
    constexpr size_t V = sizeof(uint4) / sizeof(T);
    Op op;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    uint4 *vd = reinterpret_cast<uint4 *>(dst + head);
    const uint4 *va = reinterpret_cast<const uint4 *>(a + head);
    const uint4 *vb = reinterpret_cast<const uint4 *>(b + head);

    size_t i = tid;
    for (; i + (UNROLL - 1) * stride < nvec; i += UNROLL * stride) {
        uint4 x[UNROLL], y[UNROLL];
#pragma unroll
        for (int u = 0; u < UNROLL; u++) {
            x[u] = va[i + u * stride];
            y[u] = vb[i + u * stride];
        }
#pragma unroll
        for (int u = 0; u < UNROLL; u++)
            vd[i + u * stride] = combine<T>(x[u], y[u], op);
    }
    for (; i < nvec; i += stride) {
        const uint4 x = va[i], y = vb[i];
        vd[i] = combine<T>(x, y, op);
    }

    const size_t tail0 = head + nvec * V;
    for (size_t j = tid; j < nscalar; j += stride) {
        const size_t e = j < head ? j : tail0 + (j - head);
        dst[e] = op(a[e], b[e]);
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
static void launch(void *vdst, const void *va, const void *vb, size_t n, cudaStream_t stream)
{
    constexpr size_t V = sizeof(uint4) / sizeof(T);
    T *dst = static_cast<T *>(vdst);
    const T *a = static_cast<const T *>(va);
    const T *b = static_cast<const T *>(vb);
    const uintptr_t mis = (uintptr_t)dst % 16;
    size_t head = n, nvec = 0;
    if ((uintptr_t)a % 16 == mis && (uintptr_t)b % 16 == mis) {
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
    reduce_kernel<T, Op><<<(unsigned)blocks, THREADS, 0, stream>>>(dst, a, b, head, nvec, nscalar);
}

template <typename T>
static void launch_op(weft_op_t op, void *dst, const void *a, const void *b, size_t n,
                      cudaStream_t stream)
{
    switch (op) {
    case WEFT_SUM:
    case WEFT_AVG: launch<T, Sum>(dst, a, b, n, stream); break;
    case WEFT_PROD: launch<T, Prod>(dst, a, b, n, stream); break;
    case WEFT_MIN: launch<T, Min>(dst, a, b, n, stream); break;
    case WEFT_MAX: launch<T, Max>(dst, a, b, n, stream); break;
    default: break;
    }
}

extern "C" void weft_gpu_reduce_launch(void *dst, const void *a, const void *b, size_t count,
                                       weft_dtype_t dtype, weft_op_t op, void *stream)
{
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    switch (dtype) {
    case WEFT_INT8: launch_op<int8_t>(op, dst, a, b, count, s); break;
    case WEFT_UINT8: launch_op<uint8_t>(op, dst, a, b, count, s); break;
    case WEFT_INT32: launch_op<int32_t>(op, dst, a, b, count, s); break;
    case WEFT_UINT32: launch_op<uint32_t>(op, dst, a, b, count, s); break;
    case WEFT_INT64: launch_op<int64_t>(op, dst, a, b, count, s); break;
    case WEFT_UINT64: launch_op<uint64_t>(op, dst, a, b, count, s); break;
    case WEFT_FLOAT16: launch_op<__half>(op, dst, a, b, count, s); break;
    case WEFT_BFLOAT16: launch_op<__nv_bfloat16>(op, dst, a, b, count, s); break;
    case WEFT_FLOAT32: launch_op<float>(op, dst, a, b, count, s); break;
    case WEFT_FLOAT64: launch_op<double>(op, dst, a, b, count, s); break;
    default: break;
    }
}
