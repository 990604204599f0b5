/*
 * gpu.c - runtime detection of CUDA devices (probed once, logged once) and pointer
 * classification. Without CUDA in the build, every answer is "no GPU" and says why.
 */
#include "gpu/gpu.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

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
/* The driver's cuPointerGetAttribute, found in the libcuda.so.1 the runtime loaded: unlike
 * runtime calls, a driver call never creates a context, so asking about host pointers in a
 * host-only job costs no GPU memory. NULL: fall back to cudaPointerGetAttributes. */
typedef CUresult (*ptr_attr_fn)(void *data, CUpointer_attribute attribute, CUdeviceptr ptr);
static ptr_attr_fn ptr_attr;

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
    void *libcuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (libcuda)
        ptr_attr = (ptr_attr_fn)(uintptr_t)dlsym(libcuda, "cuPointerGetAttribute");
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
    if (ptr_attr) {
        unsigned int type = 0, managed = 0;
        if (ptr_attr(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, (CUdeviceptr)(uintptr_t)ptr) !=
            CUDA_SUCCESS)
            return WEFT_GPU_MEM_HOST; /* not memory CUDA knows */
        if (type != CU_MEMORYTYPE_DEVICE)
            return WEFT_GPU_MEM_HOST;
        if (ptr_attr(&managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, (CUdeviceptr)(uintptr_t)ptr) ==
                CUDA_SUCCESS &&
            managed)
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

weft_result_t weft_gpu_reduce(void *dst, const void *a, const void *b, size_t count,
                              weft_dtype_t dtype, weft_op_t op, void *stream)
{
    (void)dst, (void)a, (void)b, (void)count, (void)dtype, (void)op, (void)stream;
    return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "weft_gpu_reduce: %s", not_built);
}

#endif
