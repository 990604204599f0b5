/*
 * ipc.c - the fake CUDA runtime's IPC of device memory between processes of one host: a
 * handle names the exporter's memfd (pid, fd number, allocation id); the importer opens it
 * through /proc/<pid>/fd and maps it as device memory (PROT_NONE plus a shadow), reference
 * counted per allocation as CUDA does within a context.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/fakecuda/fakecuda.h"

static const char magic[8] = "WFTFKIPC";

/* What cudaIpcMemHandle_t carries (64 bytes; the rest is zero). */
struct handle {
    char magic[8];
    int32_t pid;
    int32_t fd;
    uint64_t id;
    uint64_t size;
    uint64_t map_len;
    int32_t device;
};
_Static_assert(sizeof(struct handle) <= sizeof(cudaIpcMemHandle_t), "handle fits in 64 bytes");

/* CUDA wants the base of a cudaMalloc'd allocation (cudaMallocManaged, pinned memory and
 * imported mappings cannot be exported). */
cudaError_t cudaIpcGetMemHandle(cudaIpcMemHandle_t *handle, void *devPtr)
{
    const cudaError_t e = weft_fake_enter("cudaIpcGetMemHandle");
    if (e != cudaSuccess)
        return e;
    struct weft_fake_alloc a;
    if (!handle || !weft_fake_lookup(devPtr, &a) || a.kind != WEFT_FAKE_DEVICE ||
        a.base != (uintptr_t)devPtr)
        return weft_fake_fail(cudaErrorInvalidValue);
    struct handle h = {.pid = (int32_t)getpid(),
                       .fd = a.fd,
                       .id = a.id,
                       .size = a.size,
                       .map_len = a.map_len,
                       .device = a.device};
    memcpy(h.magic, magic, sizeof(magic));
    memset(handle, 0, sizeof(*handle));
    memcpy(handle, &h, sizeof(h));
    return cudaSuccess;
}

/* The exporter's memfd, if it still holds allocation h (its fd number may have been reused
 * after a cudaFree): the memfd's name says pid and id. -1 with the error otherwise. */
static int open_peer(const struct handle *h, cudaError_t *err)
{
    char path[64], link[128], want[64];
    snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)h->pid, (int)h->fd);
    snprintf(want, sizeof(want), "/memfd:fakecuda.%d.%llu ", (int)h->pid,
             (unsigned long long)h->id);
    const ssize_t n = readlink(path, link, sizeof(link) - 1);
    if (n < 0) {
        /* ENOENT: the exporter exited or freed it; EACCES: not allowed to see its fds. */
        *err = errno == EACCES || errno == EPERM ? cudaErrorMapBufferObjectFailed
                                                 : cudaErrorInvalidResourceHandle;
        if (*err == cudaErrorMapBufferObjectFailed)
            fprintf(stderr, "fakecuda: cudaIpcOpenMemHandle: %s: %s\n", path, strerror(errno));
        return -1;
    }
    link[n] = '\0';
    if (strncmp(link, want, strlen(want)) != 0) {
        *err = cudaErrorInvalidResourceHandle; /* freed, the fd number now holds another file */
        return -1;
    }
    const int fd = open(path, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || (uint64_t)st.st_size < h->map_len) {
        if (fd < 0)
            fprintf(stderr, "fakecuda: cudaIpcOpenMemHandle: open %s: %s\n", path,
                    strerror(errno));
        else
            close(fd);
        *err = cudaErrorMapBufferObjectFailed;
        return -1;
    }
    return fd;
}

cudaError_t cudaIpcOpenMemHandle(void **devPtr, cudaIpcMemHandle_t handle, unsigned int flags)
{
    cudaError_t e = weft_fake_enter("cudaIpcOpenMemHandle");
    if (e != cudaSuccess)
        return e;
    struct handle h;
    memcpy(&h, &handle, sizeof(h));
    if (!devPtr || (flags & ~(unsigned)cudaIpcMemLazyEnablePeerAccess) ||
        memcmp(h.magic, magic, sizeof(magic)) != 0 || h.size == 0 || h.map_len < h.size)
        return weft_fake_fail(cudaErrorInvalidValue);
    /* A context cannot open its own process's handles ("invalid device context"). */
    if (h.pid == (int32_t)getpid())
        return weft_fake_fail(cudaErrorDeviceUninitialized);
    /* FAKECUDA_IPC_OPEN_FAIL=1: every open fails, as when the driver cannot map a peer's
     * memory (another container, no peer access): the library's fallback runs. */
    const char *refuse = getenv("FAKECUDA_IPC_OPEN_FAIL");
    if (refuse && strcmp(refuse, "1") == 0)
        return weft_fake_fail(cudaErrorMapBufferObjectFailed);
    uintptr_t base;
    if (weft_fake_import_ref(h.pid, h.id, &base)) {
        *devPtr = (void *)base;
        return cudaSuccess;
    }
    const int fd = open_peer(&h, &e);
    if (fd < 0)
        return weft_fake_fail(e);
    char *shadow = NULL;
    void *dev = weft_fake_map_twice(fd, h.map_len, &shadow);
    close(fd); /* the mappings keep the memory */
    if (!dev)
        return weft_fake_fail(cudaErrorMapBufferObjectFailed);
    const struct weft_fake_alloc a = {.kind = WEFT_FAKE_IMPORTED,
                                      .base = (uintptr_t)dev,
                                      .size = h.size,
                                      .map_len = h.map_len,
                                      .shadow = shadow,
                                      .device = weft_fake_device(),
                                      .fd = -1,
                                      .id = h.id,
                                      .owner = h.pid,
                                      .refs = 1};
    if ((e = weft_fake_register(&a)) != cudaSuccess) {
        munmap(dev, h.map_len);
        munmap(shadow, h.map_len);
        return weft_fake_fail(e);
    }
    *devPtr = dev;
    return cudaSuccess;
}

/* Unmaps at the last close. Like CUDA, it does not wait for streams still using the mapping:
 * a stream touching it afterwards faults (here: the fake's thread crashes the process). */
cudaError_t cudaIpcCloseMemHandle(void *devPtr)
{
    const cudaError_t e = weft_fake_enter("cudaIpcCloseMemHandle");
    if (e != cudaSuccess)
        return e;
    struct weft_fake_alloc a;
    bool last = false;
    if (weft_fake_import_unref((uintptr_t)devPtr, &a, &last) != cudaSuccess)
        return weft_fake_fail(cudaErrorInvalidValue);
    if (last) {
        munmap((void *)a.base, a.map_len);
        munmap(a.shadow, a.map_len);
    }
    return cudaSuccess;
}
