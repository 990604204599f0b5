/*
 * gpu.h - what the rest of Weft may ask of the GPU layer: is there a usable GPU (probed once,
 * logged once), what kind of memory a pointer is, and device reductions. Every call is safe
 * in a build without CUDA and on a host with no GPU or no driver: it answers "no GPU".
 */
#ifndef WEFT_GPU_GPU_H
#define WEFT_GPU_GPU_H

#include <stdbool.h>
#include <stddef.h>

#include "weft.h"

enum weft_gpu_mem {
    WEFT_GPU_MEM_HOST = 0, /* ordinary, pinned or registered host memory */
    WEFT_GPU_MEM_DEVICE,   /* cudaMalloc'd: the CPU cannot dereference it */
    WEFT_GPU_MEM_MANAGED   /* cudaMallocManaged: reachable from both sides */
};

/* True when this build has CUDA and the driver reports at least one device. The first call
 * probes (cudaGetDeviceCount) and logs the outcome once at INFO; no device and no or an old
 * driver mean "no GPU", never an error. Thread-safe. */
bool weft_gpu_available(void);
/* One line for weft-info and skip messages: the devices found, or why there are none. */
const char *weft_gpu_describe(void);
/* The kind of memory behind ptr; WEFT_GPU_MEM_HOST whenever no GPU is available. */
enum weft_gpu_mem weft_gpu_pointer_kind(const void *ptr);

/* dst[i] = a[i] op b[i] for i < count, on device (or managed) memory, enqueued on `stream`
 * (a cudaStream_t; NULL is the legacy default stream). Same contract as weft_reduce_local:
 * dst may alias a or b exactly, WEFT_AVG reduces as WEFT_SUM, float16/bfloat16 results are
 * correctly rounded, so results match the host kernels bit for bit (NaN payloads aside).
 * Returns once the kernel is enqueued; launch failures come back as WEFT_ERR_SYSTEM,
 * WEFT_ERR_UNSUPPORTED without a GPU. */
weft_result_t weft_gpu_reduce(void *dst, const void *a, const void *b, size_t count,
                              weft_dtype_t dtype, weft_op_t op, void *stream);

#endif /* WEFT_GPU_GPU_H */
