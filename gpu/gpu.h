/*
 * gpu.h - what the rest of Weft may ask of the GPU layer: is there a usable GPU (probed once,
 * logged once), what kind of memory a pointer is, device reductions, and a dma-buf of device
 * memory for RDMA registration. Every call is safe in a build without CUDA and on a host with
 * no GPU or no driver: it answers "no GPU".
 */
#ifndef WEFT_GPU_GPU_H
#define WEFT_GPU_GPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
/* dst[i] = src[0][i] op src[1][i] op ... op src[nsrc-1][i], folded left to right (the same
 * roundings as nsrc-1 chained weft_gpu_reduce calls), reading each input once: nsrc >= 1
 * inputs in one pass of up to 8, more in several. dst may alias src[0]. Otherwise as
 * weft_gpu_reduce. */
weft_result_t weft_gpu_reduce_n(void *dst, const void *const *src, int nsrc, size_t count,
                                weft_dtype_t dtype, weft_op_t op, void *stream);

/* buf[i] /= nranks for i < count on device memory, enqueued on `stream`: WEFT_AVG's last
 * step, with the host kernels' rounding (integers truncate toward zero; floats divide once).
 * Otherwise as weft_gpu_reduce. */
weft_result_t weft_gpu_avg_finish(void *buf, size_t count, weft_dtype_t dtype, int nranks,
                                  void *stream);

/* Exports the device allocation range holding [ptr, ptr+len) as a dma-buf file descriptor
 * (cuMemGetHandleForAddressRange), for ibv_reg_dmabuf_mr. The exported range is [ptr, ptr+len)
 * widened to host pages; *offset is where ptr lies in it. The caller closes *fd. Outputs are
 * set only on success. Errors: WEFT_ERR_INVALID_ARG (not device memory), WEFT_ERR_UNSUPPORTED
 * (no CUDA in the build, no GPU, a driver without dma-buf export, a device or allocation that
 * cannot export: the message says which), WEFT_ERR_SYSTEM (a driver call failed: named with
 * its CUresult). */
weft_result_t weft_gpu_dmabuf_export(const void *ptr, size_t len, int *fd, uint64_t *offset);

/* The range weft_gpu_dmabuf_export asks the driver for: [ptr, ptr+len) (len 0 counts as 1)
 * with its start aligned down and its end up to `page` (a power of two), which must stay
 * inside the allocation [base, base+size). */
struct weft_gpu_dmabuf_span {
    uintptr_t start; /* page-aligned */
    size_t len;      /* a multiple of page */
    uint64_t offset; /* ptr - start */
};
/* WEFT_ERR_INVALID_ARG when [ptr, ptr+len) is not inside the allocation or page is not a power
 * of two; WEFT_ERR_UNSUPPORTED when the widened range leaves the allocation (an allocation
 * that does not start or end on a page boundary: small cudaMallocs share pages). Pure
 * arithmetic, built with or without CUDA, so that CPU tests cover it. */
weft_result_t weft_gpu_dmabuf_align(uintptr_t base, size_t size, uintptr_t ptr, size_t len,
                                    size_t page, struct weft_gpu_dmabuf_span *out);

#endif /* WEFT_GPU_GPU_H */
