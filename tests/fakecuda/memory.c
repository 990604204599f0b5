/*
 * memory.c - the fake CUDA runtime's allocations: device memory as a memfd mapped twice
 * (PROT_NONE for the program, a read-write shadow for the fake), managed and pinned memory as
 * ordinary mappings, one registry of them all, pointer attributes, address translation and
 * the driver's cuMemGetAddressRange.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/fakecuda/fakecuda.h"

/* What cudaMalloc'd memory holds before anything is written: not zeros, so that a program
 * reading memory it never wrote does not pass by luck. */
#define POISON 0xcd

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static struct weft_fake_alloc *allocs;
static size_t nallocs, cap;
static uint64_t next_id;
static size_t device_used; /* bytes of DEVICE memory, against weft_fake_mem_bytes() */

static size_t page_round(size_t n)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return n > SIZE_MAX - page ? 0 : (n + page - 1) / page * page;
}

/* Index of the allocation holding p; nallocs when none. Under the lock. */
static size_t find(uintptr_t p)
{
    for (size_t i = 0; i < nallocs; i++)
        if (p >= allocs[i].base && p - allocs[i].base < (allocs[i].size ? allocs[i].size : 1))
            return i;
    return nallocs;
}

static cudaError_t add(const struct weft_fake_alloc *a)
{
    pthread_rwlock_wrlock(&lock);
    if (nallocs == cap) {
        const size_t ncap = cap ? 2 * cap : 64;
        struct weft_fake_alloc *more = realloc(allocs, ncap * sizeof(*more));
        if (!more) {
            pthread_rwlock_unlock(&lock);
            return cudaErrorMemoryAllocation;
        }
        allocs = more;
        cap = ncap;
    }
    allocs[nallocs++] = *a;
    if (a->kind == WEFT_FAKE_DEVICE)
        device_used += a->map_len;
    pthread_rwlock_unlock(&lock);
    return cudaSuccess;
}

/* Removes the allocation starting at base whose kind is one of `kinds` (a bit per kind);
 * false when there is none. */
static bool take(uintptr_t base, unsigned kinds, struct weft_fake_alloc *out)
{
    pthread_rwlock_wrlock(&lock);
    const size_t i = find(base);
    const bool ok = i < nallocs && allocs[i].base == base && (kinds & (1u << allocs[i].kind));
    if (ok) {
        *out = allocs[i];
        allocs[i] = allocs[--nallocs];
        if (out->kind == WEFT_FAKE_DEVICE)
            device_used -= out->map_len;
    }
    pthread_rwlock_unlock(&lock);
    return ok;
}

bool weft_fake_lookup(const void *p, struct weft_fake_alloc *out)
{
    pthread_rwlock_rdlock(&lock);
    const size_t i = find((uintptr_t)p);
    const bool ok = i < nallocs;
    if (ok)
        *out = allocs[i];
    pthread_rwlock_unlock(&lock);
    return ok;
}

enum weft_fake_mem weft_fake_kind(const void *p)
{
    struct weft_fake_alloc a;
    return weft_fake_lookup(p, &a) ? a.kind : WEFT_FAKE_UNREGISTERED;
}

cudaError_t weft_fake_translate(const void *p, size_t len, bool device_side, void **out)
{
    struct weft_fake_alloc a;
    if (!weft_fake_lookup(p, &a)) {
        if (device_side || (!p && len))
            return cudaErrorInvalidValue;
        *out = (void *)(uintptr_t)p;
        return cudaSuccess;
    }
    const size_t off = (uintptr_t)p - a.base;
    if (len > a.size - off)
        return cudaErrorInvalidValue; /* runs off the end of its allocation */
    *out = a.shadow + off;
    return cudaSuccess;
}

void *weft_fake_map_twice(int fd, size_t len, char **shadow)
{
    void *dev = mmap(NULL, len, PROT_NONE, MAP_SHARED, fd, 0);
    if (dev == MAP_FAILED)
        return NULL;
    void *rw = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (rw == MAP_FAILED) {
        munmap(dev, len);
        return NULL;
    }
    *shadow = rw;
    return dev;
}

cudaError_t weft_fake_register(const struct weft_fake_alloc *a)
{
    return add(a);
}

bool weft_fake_import_ref(int owner, uint64_t id, uintptr_t *base)
{
    bool found = false;
    pthread_rwlock_wrlock(&lock);
    for (size_t i = 0; i < nallocs && !found; i++) {
        struct weft_fake_alloc *a = &allocs[i];
        if (a->kind == WEFT_FAKE_IMPORTED && a->owner == owner && a->id == id) {
            a->refs++;
            *base = a->base;
            found = true;
        }
    }
    pthread_rwlock_unlock(&lock);
    return found;
}

cudaError_t weft_fake_import_unref(uintptr_t base, struct weft_fake_alloc *gone, bool *last)
{
    cudaError_t e = cudaErrorInvalidValue;
    *last = false;
    pthread_rwlock_wrlock(&lock);
    const size_t i = find(base);
    if (i < nallocs && allocs[i].base == base && allocs[i].kind == WEFT_FAKE_IMPORTED) {
        e = cudaSuccess;
        if (--allocs[i].refs == 0) {
            *gone = allocs[i];
            allocs[i] = allocs[--nallocs];
            *last = true;
        }
    }
    pthread_rwlock_unlock(&lock);
    return e;
}

/* ---- allocation -------------------------------------------------------------------------- */

cudaError_t cudaMalloc(void **devPtr, size_t size)
{
    cudaError_t e = weft_fake_enter("cudaMalloc");
    if (e != cudaSuccess)
        return e;
    if (!devPtr)
        return weft_fake_fail(cudaErrorInvalidValue);
    *devPtr = NULL;
    if (size == 0)
        return cudaSuccess; /* as CUDA: success, and a NULL pointer */
    const size_t len = page_round(size);
    pthread_rwlock_wrlock(&lock);
    const uint64_t id = ++next_id;
    const bool fits = len && device_used + len <= weft_fake_mem_bytes();
    pthread_rwlock_unlock(&lock);
    if (!fits)
        return weft_fake_fail(cudaErrorMemoryAllocation);
    char name[64];
    snprintf(name, sizeof(name), "fakecuda.%d.%llu", (int)getpid(), (unsigned long long)id);
    /* A memfd, not a name in /dev/shm: nothing to clean up when a process dies, and peers
     * open it through /proc/<pid>/fd (ipc.c). */
    const int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)len) != 0) {
        fprintf(stderr, "fakecuda: cudaMalloc(%zu): memfd: %s\n", size, strerror(errno));
        if (fd >= 0)
            close(fd);
        return weft_fake_fail(cudaErrorMemoryAllocation);
    }
    char *shadow = NULL;
    void *dev = weft_fake_map_twice(fd, len, &shadow);
    if (!dev) {
        close(fd);
        return weft_fake_fail(cudaErrorMemoryAllocation);
    }
    memset(shadow, POISON, size);
    const struct weft_fake_alloc a = {.kind = WEFT_FAKE_DEVICE,
                                      .base = (uintptr_t)dev,
                                      .size = size,
                                      .map_len = len,
                                      .shadow = shadow,
                                      .device = weft_fake_device(),
                                      .fd = fd,
                                      .id = id,
                                      .owner = (int)getpid()};
    if ((e = add(&a)) != cudaSuccess) {
        munmap(dev, len);
        munmap(shadow, len);
        close(fd);
        return weft_fake_fail(e);
    }
    *devPtr = dev;
    weft_fake_implicit_sync(a.device);
    return cudaSuccess;
}

/* Host-reachable memory (managed or pinned): one ordinary mapping. */
static cudaError_t host_alloc(const char *call, void **ptr, size_t size, enum weft_fake_mem kind,
                              unsigned flags)
{
    cudaError_t e = weft_fake_enter(call);
    if (e != cudaSuccess)
        return e;
    if (!ptr)
        return weft_fake_fail(cudaErrorInvalidValue);
    *ptr = NULL;
    if (size == 0)
        return cudaSuccess;
    const size_t len = page_round(size);
    void *p = len ? mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                  : MAP_FAILED;
    if (p == MAP_FAILED)
        return weft_fake_fail(cudaErrorMemoryAllocation);
    if (kind == WEFT_FAKE_MANAGED)
        memset(p, POISON, size);
    const struct weft_fake_alloc a = {.kind = kind,
                                      .base = (uintptr_t)p,
                                      .size = size,
                                      .map_len = len,
                                      .shadow = p,
                                      .device = weft_fake_device(),
                                      .fd = -1,
                                      .flags = flags};
    if ((e = add(&a)) != cudaSuccess) {
        munmap(p, len);
        return weft_fake_fail(e);
    }
    *ptr = p;
    weft_fake_implicit_sync(a.device);
    return cudaSuccess;
}

cudaError_t cudaMallocManaged(void **devPtr, size_t size, unsigned int flags)
{
    if (flags != cudaMemAttachGlobal && flags != cudaMemAttachHost)
        return weft_fake_fail(cudaErrorInvalidValue);
    return host_alloc("cudaMallocManaged", devPtr, size, WEFT_FAKE_MANAGED, flags);
}

cudaError_t cudaHostAlloc(void **pHost, size_t size, unsigned int flags)
{
    if (flags & ~(unsigned)(cudaHostAllocPortable | cudaHostAllocMapped |
                            cudaHostAllocWriteCombined))
        return weft_fake_fail(cudaErrorInvalidValue);
    return host_alloc("cudaHostAlloc", pHost, size, WEFT_FAKE_PINNED, flags);
}

cudaError_t cudaMallocHost(void **ptr, size_t size)
{
    return host_alloc("cudaMallocHost", ptr, size, WEFT_FAKE_PINNED, cudaHostAllocDefault);
}

/* cudaFree and cudaFreeHost synchronize the device first, as CUDA's do, so that no stream
 * still uses what is unmapped. */
static cudaError_t release(const char *call, void *p, unsigned kinds)
{
    cudaError_t e = weft_fake_enter(call);
    if (e != cudaSuccess)
        return e;
    if (!p)
        return cudaSuccess;
    struct weft_fake_alloc a;
    if (!weft_fake_lookup(p, &a) || a.base != (uintptr_t)p || !(kinds & (1u << a.kind)))
        return weft_fake_fail(cudaErrorInvalidValue);
    weft_fake_sync_device(a.device);
    if (!take((uintptr_t)p, kinds, &a))
        return weft_fake_fail(cudaErrorInvalidValue); /* freed twice at once */
    munmap((void *)a.base, a.map_len);
    if (a.shadow != (char *)a.base)
        munmap(a.shadow, a.map_len);
    if (a.fd >= 0)
        close(a.fd);
    return cudaSuccess;
}

cudaError_t cudaFree(void *devPtr)
{
    return release("cudaFree", devPtr, 1u << WEFT_FAKE_DEVICE | 1u << WEFT_FAKE_MANAGED);
}

cudaError_t cudaFreeHost(void *ptr)
{
    return release("cudaFreeHost", ptr, 1u << WEFT_FAKE_PINNED);
}

/* Unified addressing: a pinned allocation's device address is its host address. */
cudaError_t cudaHostGetDevicePointer(void **pDevice, void *pHost, unsigned int flags)
{
    const cudaError_t e = weft_fake_enter("cudaHostGetDevicePointer");
    if (e != cudaSuccess)
        return e;
    if (!pDevice || flags != 0 || weft_fake_kind(pHost) != WEFT_FAKE_PINNED)
        return weft_fake_fail(cudaErrorInvalidValue);
    *pDevice = pHost;
    return cudaSuccess;
}

/* As CUDA 11 and later: plain host memory is cudaMemoryTypeUnregistered, with success. */
cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *attributes, const void *ptr)
{
    const cudaError_t e = weft_fake_enter("cudaPointerGetAttributes");
    if (e != cudaSuccess)
        return e;
    if (!attributes)
        return weft_fake_fail(cudaErrorInvalidValue);
    struct weft_fake_alloc a;
    void *p = (void *)(uintptr_t)ptr;
    memset(attributes, 0, sizeof(*attributes));
    if (!weft_fake_lookup(ptr, &a)) {
        attributes->type = cudaMemoryTypeUnregistered;
        attributes->device = cudaInvalidDeviceId;
        return cudaSuccess;
    }
    attributes->device = a.device;
    attributes->devicePointer = p;
    switch (a.kind) {
    case WEFT_FAKE_DEVICE:
    case WEFT_FAKE_IMPORTED: attributes->type = cudaMemoryTypeDevice; break;
    case WEFT_FAKE_MANAGED:
        attributes->type = cudaMemoryTypeManaged;
        attributes->hostPointer = p;
        break;
    default:
        attributes->type = cudaMemoryTypeHost;
        attributes->hostPointer = p;
        break;
    }
    return cudaSuccess;
}

/* The driver's answer for any memory CUDA allocated or mapped. */
CUresult cuMemGetAddressRange(CUdeviceptr *pbase, size_t *psize, CUdeviceptr dptr)
{
    if (weft_fake_enter("cuMemGetAddressRange") != cudaSuccess)
        return CUDA_ERROR_INVALID_CONTEXT;
    struct weft_fake_alloc a;
    if (!weft_fake_lookup((const void *)(uintptr_t)dptr, &a))
        return CUDA_ERROR_NOT_FOUND;
    if (pbase)
        *pbase = (CUdeviceptr)a.base;
    if (psize)
        *psize = a.size;
    return CUDA_SUCCESS;
}
