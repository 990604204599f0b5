/*
 * gpu.c - runtime detection of CUDA devices (probed once, logged once), pointer
 * classification, and dma-buf export of device memory for RDMA registration. Without CUDA in
 * the build, every answer is "no GPU" and says why.
 */
#include "gpu/gpu.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"

#ifdef WEFT_HAVE_CUDA
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>

/* The probe's outcome: ndev > 0 means usable. Written once under pthread_once. */
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int ndev;
static char describe[1024];
/* Driver functions, found in the libcuda.so.1 the runtime loaded. Unlike runtime calls, a
 * driver call never creates a context, so asking about host pointers in a host-only job costs
 * no GPU memory; and the runtime has no dma-buf export. Looked up by their ABI names: cuda.h
 * #defines some API names to _v2 symbols, and dlsym sees only the symbols. NULL: this driver
 * lacks the function (without ptr_attr, pointer_kind falls back to cudaPointerGetAttributes). */
static struct {
    CUresult (*ptr_attr)(void *data, CUpointer_attribute attribute, CUdeviceptr ptr);
    CUresult (*addr_range)(CUdeviceptr *base, size_t *size, CUdeviceptr ptr);
    CUresult (*device_get)(CUdevice *dev, int ordinal);
    CUresult (*device_attr)(int *value, CUdevice_attribute attribute, CUdevice dev);
    CUresult (*ctx_push)(CUcontext ctx);
    CUresult (*ctx_pop)(CUcontext *ctx);
    CUresult (*range_handle)(void *handle, CUdeviceptr ptr, size_t size, CUmemRangeHandleType type,
                             unsigned long long flags);
    CUresult (*error_name)(CUresult err, const char **name);
} cu;

static void load_driver(void)
{
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (!lib)
        return;
#define LOAD(field, symbol) cu.field = (__typeof__(cu.field))(uintptr_t)dlsym(lib, symbol)
    LOAD(ptr_attr, "cuPointerGetAttribute");
    LOAD(addr_range, "cuMemGetAddressRange_v2");
    LOAD(device_get, "cuDeviceGet");
    LOAD(device_attr, "cuDeviceGetAttribute");
    LOAD(ctx_push, "cuCtxPushCurrent_v2");
    LOAD(ctx_pop, "cuCtxPopCurrent_v2");
    LOAD(range_handle, "cuMemGetHandleForAddressRange"); /* CUDA 11.7 drivers (515) on */
    LOAD(error_name, "cuGetErrorName");
#undef LOAD
}

/* Any failure of the first CUDA call means no GPU for this process: cudaErrorNoDevice and
 * cudaErrorInsufficientDriver (no libcuda.so.1 counts as that) are the usual ones on a CPU
 * host, but a broken or mismatched driver must not stop host collectives either. */
static void probe(void)
{
    int count = 0, drv = 0, rt = 0;
    cudaRuntimeGetVersion(&rt);
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess || count <= 0) {
        if (err == cudaSuccess)
            err = cudaErrorNoDevice;
        snprintf(describe, sizeof(describe), "none: cudaGetDeviceCount: %s (%s); runtime %d.%d",
                 cudaGetErrorString(err), cudaGetErrorName(err), rt / 1000, rt % 1000 / 10);
        cudaGetLastError();
        ndev = 0;
        WEFT_INFO(GPU, "no GPU, host buffers only: %s", describe);
        return;
    }
    cudaDriverGetVersion(&drv);
    size_t len = (size_t)snprintf(
        describe, sizeof(describe), "%d device%s, driver %d.%d, runtime %d.%d:", count,
        count == 1 ? "" : "s", drv / 1000, drv % 1000 / 10, rt / 1000, rt % 1000 / 10);
    for (int d = 0; d < count && len < sizeof(describe); d++) {
        struct cudaDeviceProp p;
        if (cudaGetDeviceProperties(&p, d) != cudaSuccess) {
            cudaGetLastError();
            continue;
        }
        len += (size_t)snprintf(describe + len, sizeof(describe) - len,
                                "%s %d %s (sm_%d%d, %.1f GiB)", d ? ";" : "", d, p.name, p.major,
                                p.minor, (double)p.totalGlobalMem / (1u << 30));
    }
    load_driver();
    ndev = count;
    WEFT_INFO(GPU, "GPU: %s", describe);
}

bool weft_gpu_available(void)
{
    pthread_once(&probe_once, probe);
    return ndev > 0;
}

const char *weft_gpu_describe(void)
{
    pthread_once(&probe_once, probe);
    return describe;
}

enum weft_gpu_mem weft_gpu_pointer_kind(const void *ptr)
{
    if (!ptr || !weft_gpu_available())
        return WEFT_GPU_MEM_HOST;
    if (cu.ptr_attr) {
        const CUdeviceptr dptr = (CUdeviceptr)(uintptr_t)ptr;
        unsigned int type = 0, managed = 0;
        if (cu.ptr_attr(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, dptr) != CUDA_SUCCESS)
            return WEFT_GPU_MEM_HOST; /* not memory CUDA knows */
        if (type != CU_MEMORYTYPE_DEVICE)
            return WEFT_GPU_MEM_HOST;
        if (cu.ptr_attr(&managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, dptr) == CUDA_SUCCESS && managed)
            return WEFT_GPU_MEM_MANAGED;
        return WEFT_GPU_MEM_DEVICE;
    }
    struct cudaPointerAttributes attr;
    if (cudaPointerGetAttributes(&attr, ptr) != cudaSuccess) {
        cudaGetLastError(); /* older runtimes fail on unregistered host memory */
        return WEFT_GPU_MEM_HOST;
    }
    switch (attr.type) {
    case cudaMemoryTypeDevice:
        return WEFT_GPU_MEM_DEVICE;
    case cudaMemoryTypeManaged:
        return WEFT_GPU_MEM_MANAGED;
    default:
        return WEFT_GPU_MEM_HOST;
    }
}

/* "cuMemGetHandleForAddressRange: CUDA_ERROR_NOT_SUPPORTED (801)" into buf. */
static const char *cu_error(const char *call, CUresult r, char *buf, size_t len)
{
    const char *name = NULL;
    if (!cu.error_name || cu.error_name(r, &name) != CUDA_SUCCESS || !name)
        name = "unknown CUresult";
    snprintf(buf, len, "%s: %s (%d)", call, name, (int)r);
    return buf;
}

/* The export proper, with the allocation's context current (the driver wants one for
 * cuMemGetAddressRange, and a progress thread may have none). */
static weft_result_t export_range(CUdeviceptr dptr, size_t len, int ordinal, int *fd,
                                  uint64_t *offset)
{
    char why[160];
    CUdeviceptr base = 0;
    size_t size = 0;
    CUresult r = cu.addr_range(&base, &size, dptr);
    if (r != CUDA_SUCCESS)
        return WEFT_ERROR(WEFT_ERR_SYSTEM, "dma-buf export of %#llx on GPU %d: %s",
                          (unsigned long long)dptr, ordinal,
                          cu_error("cuMemGetAddressRange", r, why, sizeof(why)));
    struct weft_gpu_dmabuf_span span;
    WEFT_CHECK(weft_gpu_dmabuf_align((uintptr_t)base, size, (uintptr_t)dptr, len,
                                     (size_t)sysconf(_SC_PAGESIZE), &span));
    int dmabuf = -1;
    r = cu.range_handle(&dmabuf, (CUdeviceptr)span.start, span.len,
                        CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD, 0);
    if (r != CUDA_SUCCESS)
        return WEFT_ERROR(r == CUDA_ERROR_NOT_SUPPORTED ? WEFT_ERR_UNSUPPORTED : WEFT_ERR_SYSTEM,
                          "dma-buf export of [%#lx, +%zu) on GPU %d: %s", (unsigned long)span.start,
                          span.len, ordinal,
                          cu_error("cuMemGetHandleForAddressRange", r, why, sizeof(why)));
    WEFT_TRACE(GPU, "dma-buf fd %d: [%#lx, +%zu) of GPU %d (allocation [%#llx, +%zu))", dmabuf,
               (unsigned long)span.start, span.len, ordinal, (unsigned long long)base, size);
    *fd = dmabuf;
    *offset = span.offset;
    return WEFT_OK;
}

weft_result_t weft_gpu_dmabuf_export(const void *ptr, size_t len, int *fd, uint64_t *offset)
{
    char why[160];
    if (!fd || !offset)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_gpu_dmabuf_export: NULL fd or offset");
    if (!weft_gpu_available())
        return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "dma-buf export of %p: no GPU (%s)", ptr, describe);
    /* The caller's mistake whatever the driver can do. */
    if (weft_gpu_pointer_kind(ptr) != WEFT_GPU_MEM_DEVICE)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "dma-buf export of %p: not device memory (cudaMalloc'd, not managed)",
                          ptr);
    const struct {
        const char *name;
        bool found;
    } need[] = {
        {"cuPointerGetAttribute", cu.ptr_attr},
        {"cuMemGetAddressRange_v2", cu.addr_range},
        {"cuDeviceGet", cu.device_get},
        {"cuDeviceGetAttribute", cu.device_attr},
        {"cuCtxPushCurrent_v2", cu.ctx_push},
        {"cuCtxPopCurrent_v2", cu.ctx_pop},
        {"cuMemGetHandleForAddressRange", cu.range_handle},
    };
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
        if (!need[i].found)
            return WEFT_ERROR(WEFT_ERR_UNSUPPORTED,
                              "dma-buf export of %p: the CUDA driver has no %s (dma-buf export "
                              "needs a CUDA 11.7 driver, 515, or later): %s",
                              ptr, need[i].name, describe);

    const CUdeviceptr dptr = (CUdeviceptr)(uintptr_t)ptr;
    int ordinal = -1, supported = 0;
    CUdevice dev;
    const char *call = "cuPointerGetAttribute(DEVICE_ORDINAL)";
    CUresult r = cu.ptr_attr(&ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, dptr);
    if (r == CUDA_SUCCESS) {
        call = "cuDeviceGet";
        r = cu.device_get(&dev, ordinal);
    }
    if (r == CUDA_SUCCESS) {
        call = "cuDeviceGetAttribute(DMA_BUF_SUPPORTED)";
        r = cu.device_attr(&supported, CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED, dev);
    }
    if (r != CUDA_SUCCESS)
        return WEFT_ERROR(WEFT_ERR_SYSTEM, "dma-buf export of %p (GPU %d): %s", ptr, ordinal,
                          cu_error(call, r, why, sizeof(why)));
    if (!supported)
        return WEFT_ERROR(WEFT_ERR_UNSUPPORTED,
                          "dma-buf export of %p: GPU %d does not support dma-buf "
                          "(CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED is 0; it needs Linux 5.12 or "
                          "later and, on most systems, NVIDIA's open kernel modules)",
                          ptr, ordinal);

    /* cudaMalloc'd memory belongs to the device's primary context; VMM allocations have none
     * (NULL) and need no particular context. */
    CUcontext ctx = NULL;
    if (cu.ptr_attr(&ctx, CU_POINTER_ATTRIBUTE_CONTEXT, dptr) != CUDA_SUCCESS)
        ctx = NULL;
    if (ctx && (r = cu.ctx_push(ctx)) != CUDA_SUCCESS)
        return WEFT_ERROR(WEFT_ERR_SYSTEM, "dma-buf export of %p on GPU %d: %s", ptr, ordinal,
                          cu_error("cuCtxPushCurrent", r, why, sizeof(why)));
    const weft_result_t res = export_range(dptr, len, ordinal, fd, offset);
    if (ctx)
        cu.ctx_pop(&ctx);
    return res;
}

#else /* !WEFT_HAVE_CUDA */

static const char not_built[] =
    "none: not built with CUDA (nvcc not found at build time, or HAVE_CUDA=no)";

bool weft_gpu_available(void)
{
    return false;
}

const char *weft_gpu_describe(void)
{
    return not_built;
}

enum weft_gpu_mem weft_gpu_pointer_kind(const void *ptr)
{
    (void)ptr;
    return WEFT_GPU_MEM_HOST;
}

weft_result_t weft_gpu_dmabuf_export(const void *ptr, size_t len, int *fd, uint64_t *offset)
{
    (void)len, (void)fd, (void)offset;
    return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "dma-buf export of %p: %s", ptr, not_built);
}

#endif

weft_result_t weft_gpu_dmabuf_align(uintptr_t base, size_t size, uintptr_t ptr, size_t len,
                                    size_t page, struct weft_gpu_dmabuf_span *out)
{
    if (!len)
        len = 1;
    if (!page || (page & (page - 1)))
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "dma-buf range: page size %zu is not a power of 2",
                          page);
    /* Differences, not sums, so that nothing wraps at the top of the address space. */
    if (ptr < base || ptr - base > size || len > size - (ptr - base))
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "dma-buf range: [%#lx, +%zu) is not inside its allocation [%#lx, +%zu)",
                          (unsigned long)ptr, len, (unsigned long)base, size);
    /* The driver refuses a range that is not page-aligned; one reaching past the allocation
     * would cover memory of other allocations (the driver packs small ones into shared pages),
     * so it is not asked for: the caller falls back to another registration. */
    const uintptr_t start = ptr & ~(uintptr_t)(page - 1);
    const size_t head = ptr - start, tail = (page - (ptr + len) % page) % page;
    if (start < base || tail > size - (ptr - base) - len)
        return WEFT_ERROR(WEFT_ERR_UNSUPPORTED,
                          "dma-buf range: [%#lx, +%zu) widened to %zu-byte pages, [%#lx, +%zu), "
                          "leaves its allocation [%#lx, +%zu) (not page-aligned)",
                          (unsigned long)ptr, len, page, (unsigned long)start, head + len + tail,
                          (unsigned long)base, size);
    out->start = start;
    out->len = head + len + tail;
    out->offset = head;
    return WEFT_OK;
}
