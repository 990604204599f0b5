/*
 * runtime.c - the fake CUDA runtime's devices, errors and settings: device count
 * (FAKECUDA_DEVICES, filtered by CUDA_VISIBLE_DEVICES), properties, versions (13.0), the
 * per-thread current device and last error, the sticky error of a fault, and the driver entry
 * points the library looks up.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fakecuda/fakecuda.h"

#define FAKE_VERSION 13000

static pthread_once_t settings_once = PTHREAD_ONCE_INIT;
static int ndevices = 1;
static double watchdog_s = 120;
static size_t mem_bytes = (size_t)16 << 30;
static bool strict_sync;

static _Thread_local cudaError_t last_error = cudaSuccess;
static _Thread_local int current_device = 0;
static _Thread_local bool hostfn_thread = false;

/* A fault is sticky for the whole process, as a GPU context is after one. */
static cudaError_t sticky = cudaSuccess;

static void read_settings(void)
{
    const char *v = getenv("FAKECUDA_DEVICES");
    if (v && *v)
        ndevices = atoi(v) < 0                       ? 0
                   : atoi(v) > WEFT_FAKE_MAX_DEVICES ? WEFT_FAKE_MAX_DEVICES
                                                     : atoi(v);
    /* As CUDA: the visible devices are the listed ordinals up to the first invalid one. */
    v = getenv("CUDA_VISIBLE_DEVICES");
    if (v) {
        int visible = 0;
        char *end;
        for (const char *p = v; *p; p = *end == ',' ? end + 1 : end) {
            const long d = strtol(p, &end, 10);
            if (end == p || d < 0 || d >= ndevices || (*end != ',' && *end != '\0'))
                break;
            visible++;
        }
        ndevices = visible;
    }
    v = getenv("FAKECUDA_WATCHDOG_S");
    if (v && *v && atof(v) > 0)
        watchdog_s = atof(v);
    v = getenv("FAKECUDA_IMPLICIT_SYNC");
    strict_sync = v && atoi(v) > 0;
    v = getenv("FAKECUDA_MEM_MIB");
    if (v && *v && atoll(v) > 0)
        mem_bytes = (size_t)atoll(v) << 20;
}

int weft_fake_ndevices(void)
{
    pthread_once(&settings_once, read_settings);
    return ndevices;
}

double weft_fake_watchdog_s(void)
{
    pthread_once(&settings_once, read_settings);
    return watchdog_s;
}

size_t weft_fake_mem_bytes(void)
{
    pthread_once(&settings_once, read_settings);
    return mem_bytes;
}

bool weft_fake_strict_sync(void)
{
    pthread_once(&settings_once, read_settings);
    return strict_sync;
}

int weft_fake_device(void)
{
    return current_device;
}

void weft_fake_set_hostfn_thread(void)
{
    hostfn_thread = true;
}

cudaError_t weft_fake_fail(cudaError_t e)
{
    if (e != cudaSuccess)
        last_error = e;
    return e;
}

cudaError_t weft_fake_sticky(void)
{
    return __atomic_load_n(&sticky, __ATOMIC_ACQUIRE);
}

void weft_fake_fault(cudaError_t e, const char *what)
{
    cudaError_t none = cudaSuccess;
    if (__atomic_compare_exchange_n(&sticky, &none, e, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE))
        fprintf(stderr, "fakecuda: device work faulted (%s): %s; every later CUDA call of this "
                        "process fails with it\n",
                cudaGetErrorName(e), what);
}

cudaError_t weft_fake_enter(const char *call)
{
    pthread_once(&settings_once, read_settings);
    if (hostfn_thread) {
        fprintf(stderr, "fakecuda: %s called from a host function (cudaLaunchHostFunc forbids "
                        "CUDA calls there)\n",
                call);
        return weft_fake_fail(cudaErrorNotPermitted);
    }
    if (ndevices == 0)
        return weft_fake_fail(cudaErrorNoDevice);
    const cudaError_t s = weft_fake_sticky();
    return s == cudaSuccess ? s : weft_fake_fail(s);
}

/* ---- errors ------------------------------------------------------------------------------ */

static const struct {
    cudaError_t e;
    const char *name, *text;
} errors[] = {
    {cudaSuccess, "cudaSuccess", "no error"},
    {cudaErrorInvalidValue, "cudaErrorInvalidValue", "invalid argument"},
    {cudaErrorMemoryAllocation, "cudaErrorMemoryAllocation", "out of memory"},
    {cudaErrorInitializationError, "cudaErrorInitializationError", "initialization error"},
    {cudaErrorInsufficientDriver, "cudaErrorInsufficientDriver",
     "CUDA driver version is insufficient for CUDA runtime version"},
    {cudaErrorNoDevice, "cudaErrorNoDevice", "no CUDA-capable device is detected"},
    {cudaErrorInvalidDevice, "cudaErrorInvalidDevice", "invalid device ordinal"},
    {cudaErrorDeviceUninitialized, "cudaErrorDeviceUninitialized", "invalid device context"},
    {cudaErrorMapBufferObjectFailed, "cudaErrorMapBufferObjectFailed",
     "mapping of buffer object failed"},
    {cudaErrorInvalidResourceHandle, "cudaErrorInvalidResourceHandle", "invalid resource handle"},
    {cudaErrorSymbolNotFound, "cudaErrorSymbolNotFound", "named symbol not found"},
    {cudaErrorNotReady, "cudaErrorNotReady", "device not ready"},
    {cudaErrorIllegalAddress, "cudaErrorIllegalAddress",
     "an illegal memory access was encountered"},
    {cudaErrorMisalignedAddress, "cudaErrorMisalignedAddress", "misaligned address"},
    {cudaErrorLaunchFailure, "cudaErrorLaunchFailure", "unspecified launch failure"},
    {cudaErrorNotPermitted, "cudaErrorNotPermitted", "operation not permitted"},
    {cudaErrorNotSupported, "cudaErrorNotSupported", "operation not supported"},
};

const char *cudaGetErrorName(cudaError_t error)
{
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
        if (errors[i].e == error)
            return errors[i].name;
    return "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t error)
{
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
        if (errors[i].e == error)
            return errors[i].text;
    return "unrecognized error code";
}

/* Returns and clears the thread's last error; a sticky error is returned every time. */
cudaError_t cudaGetLastError(void)
{
    const cudaError_t s = weft_fake_sticky();
    if (s != cudaSuccess)
        return s;
    const cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

cudaError_t cudaPeekAtLastError(void)
{
    const cudaError_t s = weft_fake_sticky();
    return s != cudaSuccess ? s : last_error;
}

/* ---- devices ----------------------------------------------------------------------------- */

cudaError_t cudaRuntimeGetVersion(int *runtimeVersion)
{
    if (!runtimeVersion)
        return weft_fake_fail(cudaErrorInvalidValue);
    *runtimeVersion = FAKE_VERSION;
    return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *driverVersion)
{
    if (!driverVersion)
        return weft_fake_fail(cudaErrorInvalidValue);
    *driverVersion = FAKE_VERSION;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int *count)
{
    if (!count)
        return weft_fake_fail(cudaErrorInvalidValue);
    *count = 0;
    const cudaError_t e = weft_fake_enter("cudaGetDeviceCount");
    if (e != cudaSuccess)
        return e;
    *count = ndevices;
    return cudaSuccess;
}

static cudaError_t check_device(int device)
{
    return device < 0 || device >= ndevices ? weft_fake_fail(cudaErrorInvalidDevice)
                                            : cudaSuccess;
}

cudaError_t cudaSetDevice(int device)
{
    cudaError_t e = weft_fake_enter("cudaSetDevice");
    if (e == cudaSuccess && (e = check_device(device)) == cudaSuccess)
        current_device = device;
    return e;
}

cudaError_t cudaGetDevice(int *device)
{
    const cudaError_t e = weft_fake_enter("cudaGetDevice");
    if (e != cudaSuccess)
        return e;
    if (!device)
        return weft_fake_fail(cudaErrorInvalidValue);
    *device = current_device;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device)
{
    cudaError_t e = weft_fake_enter("cudaGetDeviceProperties");
    if (e == cudaSuccess)
        e = check_device(device);
    if (e != cudaSuccess)
        return e;
    if (!prop)
        return weft_fake_fail(cudaErrorInvalidValue);
    memset(prop, 0, sizeof(*prop));
    snprintf(prop->name, sizeof(prop->name), "Weft fake CUDA device");
    prop->totalGlobalMem = weft_fake_mem_bytes();
    prop->major = 9;
    prop->minor = 0;
    prop->multiProcessorCount = 8;
    prop->warpSize = 32;
    prop->maxThreadsPerBlock = 1024;
    prop->maxThreadsPerMultiProcessor = 2048;
    prop->sharedMemPerBlock = 48 << 10;
    prop->regsPerBlock = 65536;
    prop->memPitch = SIZE_MAX;
    prop->totalConstMem = 64 << 10;
    prop->textureAlignment = 512;
    prop->unifiedAddressing = 1;
    prop->canMapHostMemory = 1;
    prop->managedMemory = 1;
    prop->concurrentManagedAccess = 1;
    prop->asyncEngineCount = 2;
    prop->pciBusID = 0x10 + device;
    prop->l2CacheSize = 4 << 20;
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device)
{
    cudaError_t e = weft_fake_enter("cudaDeviceGetAttribute");
    if (e == cudaSuccess)
        e = check_device(device);
    if (e != cudaSuccess)
        return e;
    if (!value)
        return weft_fake_fail(cudaErrorInvalidValue);
    switch (attr) {
    case cudaDevAttrMultiProcessorCount: *value = 8; break;
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: *value = 2048; break;
    case cudaDevAttrWarpSize: *value = 32; break;
    case cudaDevAttrComputeCapabilityMajor: *value = 9; break;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; break;
    case cudaDevAttrUnifiedAddressing:
    case cudaDevAttrCanMapHostMemory:
    case cudaDevAttrManagedMemory:
    case cudaDevAttrConcurrentManagedAccess: *value = 1; break;
    case cudaDevAttrPciBusId: *value = 0x10 + device; break;
    default: *value = 0; break; /* what the fake does not have */
    }
    return cudaSuccess;
}

/* ---- driver entry points ------------------------------------------------------------------ */

/* The driver functions the fake has, by the names cudaGetDriverEntryPoint* takes (the API
 * names, without _v2). FAKECUDA_NO_WAITVALUE=1 hides cuStreamWaitValue32, as an old or
 * restricted driver would, so that the library's host-function fallback runs. */
cudaError_t cudaGetDriverEntryPointByVersion(const char *symbol, void **funcPtr,
                                             unsigned int cudaVersion, unsigned long long flags,
                                             enum cudaDriverEntryPointQueryResult *driverStatus)
{
    (void)flags;
    const cudaError_t e = weft_fake_enter("cudaGetDriverEntryPointByVersion");
    if (e != cudaSuccess)
        return e;
    if (!symbol || !funcPtr)
        return weft_fake_fail(cudaErrorInvalidValue);
    *funcPtr = NULL;
    enum cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
    const char *nowait = getenv("FAKECUDA_NO_WAITVALUE");
    if (cudaVersion > FAKE_VERSION) {
        q = cudaDriverEntryPointVersionNotSufficent;
    } else if (strcmp(symbol, "cuStreamWaitValue32") == 0 && !(nowait && atoi(nowait))) {
        *funcPtr = (void *)(uintptr_t)cuStreamWaitValue32;
        q = cudaDriverEntryPointSuccess;
    } else if (strcmp(symbol, "cuMemGetAddressRange") == 0) {
        *funcPtr = (void *)(uintptr_t)cuMemGetAddressRange;
        q = cudaDriverEntryPointSuccess;
    }
    if (driverStatus)
        *driverStatus = q;
    return cudaSuccess;
}
