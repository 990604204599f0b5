/*
 * test_fakecuda.c - the fake CUDA runtime against what CUDA documents: device memory faults
 * when the CPU touches it, pointer attributes, copies and memsets in stream order, the legacy
 * stream's implicit order, events and their timing, host functions (and CUDA calls refused in
 * them), cuStreamWaitValue32 released from another thread, the fake kernels, IPC between two
 * processes (the peer is this program again, run with --ipc-peer), the watchdog, and a fault's
 * sticky error (both in this program again). Prints "not ok" per failed check and
 * "N passed, M failed".
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cuda.h>
#include <cuda_runtime_api.h>

#include "gpu/gpu.h"
#include "weft.h"

static int passed, failed;
static const char *self;

static void check(int ok, const char *what)
{
    if (ok) {
        passed++;
        return;
    }
    failed++;
    printf("not ok - %s\n", what);
}

static void check_e(cudaError_t got, cudaError_t want, const char *what)
{
    char line[256];
    snprintf(line, sizeof(line), "%s: got %s, want %s", what, cudaGetErrorName(got),
             cudaGetErrorName(want));
    check(got == want, line);
}

static void pause_ms(int ms)
{
    const struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A host function that holds its stream until *gate is set. */
static void CUDART_CB hold(void *gate)
{
    while (!__atomic_load_n((int *)gate, __ATOMIC_ACQUIRE))
        pause_ms(1);
}

static void CUDART_CB call_cuda(void *result)
{
    int dev;
    *(cudaError_t *)result = cudaGetDevice(&dev);
}

static void devices(void)
{
    int n = 0, v = 0;
    check_e(cudaGetDeviceCount(&n), cudaSuccess, "cudaGetDeviceCount");
    check(n == 1, "one device by default");
    struct cudaDeviceProp p;
    check_e(cudaGetDeviceProperties(&p, 0), cudaSuccess, "cudaGetDeviceProperties");
    check(strcmp(p.name, "Weft fake CUDA device") == 0, "the device's name");
    check_e(cudaGetDeviceProperties(&p, 1), cudaErrorInvalidDevice, "properties of device 1");
    check_e(cudaGetLastError(), cudaErrorInvalidDevice, "the last error is kept");
    check_e(cudaGetLastError(), cudaSuccess, "and cleared by cudaGetLastError");
    check_e(cudaSetDevice(3), cudaErrorInvalidDevice, "cudaSetDevice(3)");
    cudaGetLastError();
    cudaRuntimeGetVersion(&v);
    check(v == 13000, "runtime 13.0");
    check(weft_gpu_available(), "weft_gpu_available under the fake");
}

static void memory_faults(void)
{
    char *dev;
    check_e(cudaMalloc((void **)&dev, 1000), cudaSuccess, "cudaMalloc");
    check((uintptr_t)dev % 256 == 0, "cudaMalloc is 256-byte aligned");
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        /* The default action, whatever handlers UCX or a sanitizer installed. */
        signal(SIGSEGV, SIG_DFL);
        volatile char c = dev[10]; /* must fault */
        (void)c;
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    check(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
          "the CPU reading device memory dies of SIGSEGV");
    check_e(cudaFree(dev + 8), cudaErrorInvalidValue, "cudaFree inside an allocation");
    check_e(cudaFreeHost(dev), cudaErrorInvalidValue, "cudaFreeHost of device memory");
    check_e(cudaFree(dev), cudaSuccess, "cudaFree");
    check_e(cudaFree(dev), cudaErrorInvalidValue, "cudaFree twice");
    cudaGetLastError();
}

static void attributes(void)
{
    char *dev, *pinned, *managed, plain[16];
    cudaMalloc((void **)&dev, 4096);
    cudaHostAlloc((void **)&pinned, 4096, cudaHostAllocMapped);
    cudaMallocManaged((void **)&managed, 4096, cudaMemAttachGlobal);
    struct cudaPointerAttributes a;
    check_e(cudaPointerGetAttributes(&a, dev + 100), cudaSuccess, "attributes of device memory");
    check(a.type == cudaMemoryTypeDevice && a.device == 0 && a.devicePointer == dev + 100 &&
              !a.hostPointer,
          "device memory: type, device, pointers");
    cudaPointerGetAttributes(&a, pinned);
    check(a.type == cudaMemoryTypeHost && a.hostPointer == pinned, "pinned memory is Host");
    cudaPointerGetAttributes(&a, managed + 4095);
    check(a.type == cudaMemoryTypeManaged && a.hostPointer == managed + 4095, "managed memory");
    check_e(cudaPointerGetAttributes(&a, plain), cudaSuccess, "attributes of plain memory");
    check(a.type == cudaMemoryTypeUnregistered && !a.devicePointer,
          "plain memory is Unregistered");
    check(weft_gpu_pointer_kind(dev) == WEFT_GPU_MEM_DEVICE &&
              weft_gpu_pointer_kind(managed) == WEFT_GPU_MEM_MANAGED &&
              weft_gpu_pointer_kind(pinned) == WEFT_GPU_MEM_HOST &&
              weft_gpu_pointer_kind(plain) == WEFT_GPU_MEM_HOST,
          "weft_gpu_pointer_kind of each kind");
    void *mapped = NULL;
    check_e(cudaHostGetDevicePointer(&mapped, pinned, 0), cudaSuccess,
            "cudaHostGetDevicePointer");
    check(mapped == pinned, "unified addressing: the same address");
    void *fn = NULL;
    enum cudaDriverEntryPointQueryResult q;
    cudaGetDriverEntryPointByVersion("cuMemGetAddressRange", &fn, 12000, cudaEnableDefault, &q);
    CUdeviceptr base = 0;
    size_t size = 0;
    check(fn && q == cudaDriverEntryPointSuccess, "cuMemGetAddressRange is found");
    if (fn) {
        CUresult (*range)(CUdeviceptr *, size_t *, CUdeviceptr) =
            (CUresult(*)(CUdeviceptr *, size_t *, CUdeviceptr))(uintptr_t)fn;
        check(range(&base, &size, (CUdeviceptr)(uintptr_t)(dev + 77)) == CUDA_SUCCESS &&
                  base == (CUdeviceptr)(uintptr_t)dev && size == 4096,
              "cuMemGetAddressRange: base and size");
    }
    cudaGetDriverEntryPointByVersion("cuNoSuchThing", &fn, 12000, cudaEnableDefault, &q);
    check(!fn && q == cudaDriverEntryPointSymbolNotFound, "an unknown entry point");
    cudaFree(dev);
    cudaFreeHost(pinned);
    cudaFree(managed);
}

static void copies_and_events(void)
{
    enum { N = 1 << 16 };
    cudaStream_t s;
    cudaEvent_t t0, t1, plain;
    char *dev, *dev2, *host;
    cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    cudaEventCreate(&t0);
    cudaEventCreate(&t1);
    cudaEventCreateWithFlags(&plain, cudaEventDisableTiming);
    cudaMalloc((void **)&dev, N);
    cudaMalloc((void **)&dev2, N);
    cudaMallocHost((void **)&host, N);
    memset(host, 7, N);
    int gate = 0;
    check_e(cudaEventQuery(t0), cudaSuccess, "an event never recorded is complete");
    cudaLaunchHostFunc(s, hold, &gate);
    cudaEventRecord(t0, s);
    cudaMemcpyAsync(dev, host, N, cudaMemcpyHostToDevice, s);
    cudaMemsetAsync(dev + 100, 9, 10, s);
    cudaMemcpyAsync(dev2, dev, N, cudaMemcpyDeviceToDevice, s);
    cudaMemcpyAsync(host, dev2, N, cudaMemcpyDeviceToHost, s);
    cudaEventRecord(t1, s);
    cudaEventRecord(plain, s);
    host[5] = 1; /* the stream has not copied yet: this write is overwritten by it */
    pause_ms(50);
    check_e(cudaStreamQuery(s), cudaErrorNotReady, "a held stream is not ready");
    check_e(cudaEventQuery(t1), cudaErrorNotReady, "its event is not ready");
    check_e(cudaGetLastError(), cudaSuccess, "not ready is not kept as an error");
    float ms = -1;
    check_e(cudaEventElapsedTime(&ms, t0, t1), cudaErrorNotReady, "elapsed time not ready");
    cudaGetLastError();
    __atomic_store_n(&gate, 1, __ATOMIC_RELEASE);
    check_e(cudaStreamSynchronize(s), cudaSuccess, "cudaStreamSynchronize");
    int good = 1;
    for (int i = 0; i < N; i++)
        good &= host[i] == (i >= 100 && i < 110 ? 9 : i == 5 ? 1 : 7);
    check(good, "copies and memset ran in stream order");
    check_e(cudaEventElapsedTime(&ms, t0, t1), cudaSuccess, "cudaEventElapsedTime");
    check(ms >= 0 && ms < 10000, "elapsed time is plausible");
    check_e(cudaEventElapsedTime(&ms, t0, plain), cudaErrorInvalidResourceHandle,
            "elapsed time of a DisableTiming event");
    cudaGetLastError();
    check_e(cudaMemcpyAsync(dev, host, N + 1, cudaMemcpyHostToDevice, s), cudaErrorInvalidValue,
            "a copy past the end of an allocation");
    char pageable[8] = {0};
    check_e(cudaMemcpyAsync(host, pageable, 8, cudaMemcpyDeviceToHost, s), cudaErrorInvalidValue,
            "device-to-host from plain host memory");
    cudaGetLastError();

    /* Host functions: serialized on one thread, and no CUDA calls inside. */
    cudaError_t inside = cudaSuccess;
    cudaLaunchHostFunc(s, call_cuda, &inside);
    cudaStreamSynchronize(s);
    check_e(inside, cudaErrorNotPermitted, "a CUDA call inside a host function");

    /* The legacy stream waits for a blocking stream's earlier work; a non-blocking stream
     * does not. */
    cudaStream_t blocking;
    cudaStreamCreate(&blocking);
    gate = 0;
    cudaLaunchHostFunc(blocking, hold, &gate);
    cudaMemsetAsync(dev, 1, 16, NULL);
    cudaEventRecord(t1, NULL);
    cudaEventRecord(t0, s);
    pause_ms(50);
    check_e(cudaEventQuery(t1), cudaErrorNotReady, "the legacy stream waits for a blocking one");
    check_e(cudaEventQuery(t0), cudaSuccess, "a non-blocking stream does not");
    __atomic_store_n(&gate, 1, __ATOMIC_RELEASE);
    check_e(cudaDeviceSynchronize(), cudaSuccess, "cudaDeviceSynchronize");
    check_e(cudaEventQuery(t1), cudaSuccess, "after cudaDeviceSynchronize");

    /* A synchronous copy from device memory is done when cudaMemcpy returns. */
    memset(host, 0, N);
    check_e(cudaMemcpy(host, dev, 16, cudaMemcpyDeviceToHost), cudaSuccess, "cudaMemcpy");
    check(host[0] == 1 && host[15] == 1, "cudaMemcpy copied");
    cudaStreamDestroy(blocking);
    check_e(cudaStreamQuery(blocking), cudaErrorInvalidResourceHandle, "a destroyed stream");
    cudaGetLastError();
    cudaEventDestroy(t0);
    cudaEventDestroy(t1);
    cudaEventDestroy(plain);
    cudaStreamDestroy(s);
    cudaFree(dev);
    cudaFree(dev2);
    cudaFreeHost(host);
}

struct releaser {
    uint32_t *word;
    uint32_t value;
};

static void *release_later(void *arg)
{
    struct releaser *r = arg;
    pause_ms(100);
    __atomic_store_n(r->word, r->value, __ATOMIC_RELEASE);
    return NULL;
}

typedef CUresult (*wait_fn)(CUstream, CUdeviceptr, cuuint32_t, unsigned int);

static void wait_value(void)
{
    void *fn = NULL;
    enum cudaDriverEntryPointQueryResult q;
    setenv("FAKECUDA_NO_WAITVALUE", "1", 1);
    cudaGetDriverEntryPointByVersion("cuStreamWaitValue32", &fn, 12000, cudaEnableDefault, &q);
    check(!fn && q == cudaDriverEntryPointSymbolNotFound,
          "FAKECUDA_NO_WAITVALUE=1 hides cuStreamWaitValue32");
    unsetenv("FAKECUDA_NO_WAITVALUE");
    cudaGetDriverEntryPointByVersion("cuStreamWaitValue32", &fn, 12000, cudaEnableDefault, &q);
    check(fn && q == cudaDriverEntryPointSuccess, "cuStreamWaitValue32 is found");
    if (!fn)
        return;
    const wait_fn wait = (wait_fn)(uintptr_t)fn;
    cudaStream_t s;
    cudaEvent_t ev;
    uint32_t *word, *dword, plain = 0;
    cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    cudaEventCreateWithFlags(&ev, cudaEventDisableTiming);
    cudaHostAlloc((void **)&word, 64, cudaHostAllocMapped);
    cudaMalloc((void **)&dword, 64);
    *word = 0xfffffffeu; /* GEQ is cyclic: 2 passes 0xfffffffe only after the wrap */
    check(wait(s, (CUdeviceptr)(uintptr_t)word, 2, CU_STREAM_WAIT_VALUE_GEQ) == CUDA_SUCCESS,
          "cuStreamWaitValue32 GEQ on pinned memory");
    cudaEventRecord(ev, s);
    struct releaser r = {word, 2};
    pthread_t t;
    pthread_create(&t, NULL, release_later, &r);
    pause_ms(30);
    check_e(cudaEventQuery(ev), cudaErrorNotReady, "the stream waits for the value");
    pthread_join(t, NULL);
    check_e(cudaEventSynchronize(ev), cudaSuccess, "released by another thread");

    /* EQ on device memory, set by a copy on another stream. */
    const uint32_t five = 5;
    cudaMemset(dword, 0, 64);
    /* cudaMemset may return before the device wrote; s does not wait for the legacy stream
     * (non-blocking), so without this its wait could read the old word (TSan saw the race). */
    cudaDeviceSynchronize();
    check(wait(s, (CUdeviceptr)(uintptr_t)dword, 5, CU_STREAM_WAIT_VALUE_EQ) == CUDA_SUCCESS,
          "cuStreamWaitValue32 EQ on device memory");
    cudaEventRecord(ev, s);
    pause_ms(30);
    check_e(cudaEventQuery(ev), cudaErrorNotReady, "the stream waits on device memory");
    cudaStream_t other;
    cudaStreamCreateWithFlags(&other, cudaStreamNonBlocking);
    cudaMemcpyAsync(dword, &five, 4, cudaMemcpyHostToDevice, other);
    check_e(cudaEventSynchronize(ev), cudaSuccess, "released by a copy");
    check(wait(s, (CUdeviceptr)(uintptr_t)&plain, 1, 0) == CUDA_ERROR_INVALID_VALUE,
          "cuStreamWaitValue32 on plain host memory is refused");
    cudaStreamDestroy(other);
    cudaStreamDestroy(s);
    cudaEventDestroy(ev);
    cudaFreeHost(word);
    cudaFree(dword);
}

static void kernels(void)
{
    enum { N = 1001 };
    float *dev, *host;
    cudaMalloc((void **)&dev, 3 * N * sizeof(float));
    cudaMallocHost((void **)&host, 3 * N * sizeof(float));
    for (int i = 0; i < N; i++) {
        host[i] = (float)i;
        host[N + i] = 0.5f;
    }
    cudaMemcpy(dev, host, 2 * N * sizeof(float), cudaMemcpyHostToDevice);
    check(weft_gpu_reduce(dev + 2 * N, dev, dev + N, N, WEFT_FLOAT32, WEFT_SUM, NULL) == WEFT_OK,
          "weft_gpu_reduce launches");
    cudaMemcpy(host + 2 * N, dev + 2 * N, N * sizeof(float), cudaMemcpyDeviceToHost);
    int good = 1;
    for (int i = 0; i < N; i++)
        good &= host[2 * N + i] == (float)i + 0.5f;
    check(good, "weft_gpu_reduce's results");
    check(weft_gpu_avg_finish(dev + 2 * N, N, WEFT_FLOAT32, 2, NULL) == WEFT_OK,
          "weft_gpu_avg_finish launches");
    cudaMemcpy(host, dev + 2 * N, N * sizeof(float), cudaMemcpyDeviceToHost);
    good = 1;
    for (int i = 0; i < N; i++)
        good &= host[i] == ((float)i + 0.5f) / 2;
    check(good, "weft_gpu_avg_finish's results");
    cudaFree(dev);
    cudaFreeHost(host);
}

/* ---- IPC: this program as the peer ---------------------------------------------------------- */

static void to_hex(const void *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", ((const unsigned char *)p)[i]);
}

static void from_hex(const char *s, void *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        sscanf(s + 2 * i, "%2x", &v);
        ((unsigned char *)p)[i] = (unsigned char)v;
    }
}

/* --ipc-peer HANDLE MODE: "rw" maps, checks 0x11 bytes, writes 0x22, closes: exit 0; "gone"
 * expects the open to fail: exit 0. */
static int ipc_peer(const char *hex, const char *mode)
{
    cudaIpcMemHandle_t h;
    from_hex(hex, &h, sizeof(h));
    void *p = NULL, *again = NULL;
    const cudaError_t e = cudaIpcOpenMemHandle(&p, h, cudaIpcMemLazyEnablePeerAccess);
    if (strcmp(mode, "gone") == 0)
        return e != cudaSuccess ? 0 : 1;
    if (e != cudaSuccess) {
        fprintf(stderr, "peer: cudaIpcOpenMemHandle: %s\n", cudaGetErrorString(e));
        return 1;
    }
    if (cudaIpcOpenMemHandle(&again, h, 0) != cudaSuccess || again != p)
        return 2; /* a second open is the same mapping */
    struct cudaPointerAttributes a;
    cudaPointerGetAttributes(&a, p);
    if (a.type != cudaMemoryTypeDevice)
        return 3;
    unsigned char buf[4096];
    if (cudaMemcpy(buf, p, sizeof(buf), cudaMemcpyDeviceToHost) != cudaSuccess)
        return 4;
    for (size_t i = 0; i < sizeof(buf); i++)
        if (buf[i] != 0x11)
            return 5;
    if (cudaMemset(p, 0x22, sizeof(buf)) != cudaSuccess || cudaDeviceSynchronize() != cudaSuccess)
        return 6;
    if (cudaIpcCloseMemHandle(p) != cudaSuccess || cudaIpcCloseMemHandle(p) != cudaSuccess)
        return 7;
    return cudaIpcCloseMemHandle(p) == cudaErrorInvalidValue ? 0 : 8;
}

static int run_peer(const cudaIpcMemHandle_t *h, const char *mode)
{
    char hex[2 * sizeof(*h) + 1];
    to_hex(h, sizeof(*h), hex);
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        execl(self, self, "--ipc-peer", hex, mode, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void ipc(void)
{
    unsigned char *dev, buf[4096];
    cudaMalloc((void **)&dev, sizeof(buf));
    cudaMemset(dev, 0x11, sizeof(buf));
    cudaDeviceSynchronize();
    cudaIpcMemHandle_t h;
    check_e(cudaIpcGetMemHandle(&h, dev + 16), cudaErrorInvalidValue,
            "a handle of a pointer inside an allocation");
    check_e(cudaIpcGetMemHandle(&h, dev), cudaSuccess, "cudaIpcGetMemHandle");
    void *p = NULL;
    check_e(cudaIpcOpenMemHandle(&p, h, cudaIpcMemLazyEnablePeerAccess),
            cudaErrorDeviceUninitialized, "opening one's own handle");
    cudaGetLastError();
    const int rc = run_peer(&h, "rw");
    char what[80];
    snprintf(what, sizeof(what), "the peer maps, reads, writes and closes (exit %d)", rc);
    check(rc == 0, what);
    cudaMemcpy(buf, dev, sizeof(buf), cudaMemcpyDeviceToHost);
    int good = 1;
    for (size_t i = 0; i < sizeof(buf); i++)
        good &= buf[i] == 0x22;
    check(good, "the peer's writes are seen");
    cudaFree(dev);
    check(run_peer(&h, "gone") == 0, "a handle of freed memory does not open");
}

/* --fault: a kernel on plain host memory faults when it runs, and the error is sticky. */
static int fault_child(void)
{
    float plain[64] = {0};
    float *dev;
    cudaMalloc((void **)&dev, sizeof(plain));
    /* The launch may already see the fault (the stream thread can run the kernel before the
     * launch returns: seen under ThreadSanitizer), so its result is not checked. */
    (void)weft_gpu_reduce(dev, plain, dev, 64, WEFT_FLOAT32, WEFT_SUM, NULL);
    const cudaError_t s1 = cudaDeviceSynchronize();
    const cudaError_t s2 = cudaMalloc((void **)&dev, 64);
    return s1 == cudaErrorIllegalAddress && s2 == cudaErrorIllegalAddress ? 0 : 1;
}

/* --watchdog (run with FAKECUDA_WATCHDOG_S=1): a stream waits 2.5 s for a value. */
static int watchdog_child(void)
{
    void *fn = NULL;
    enum cudaDriverEntryPointQueryResult q;
    cudaGetDriverEntryPointByVersion("cuStreamWaitValue32", &fn, 12000, cudaEnableDefault, &q);
    cudaStream_t s;
    uint32_t *word;
    if (!fn || cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) != cudaSuccess ||
        cudaHostAlloc((void **)&word, 64, cudaHostAllocMapped) != cudaSuccess)
        return 2;
    *word = 0;
    ((wait_fn)(uintptr_t)fn)(s, (CUdeviceptr)(uintptr_t)word, 1, CU_STREAM_WAIT_VALUE_GEQ);
    pause_ms(2500);
    __atomic_store_n(word, 1u, __ATOMIC_RELEASE);
    return cudaStreamSynchronize(s) == cudaSuccess ? 0 : 3;
}

/* The watchdog names a wait that lasts, and the wait still completes. */
static void watchdog(void)
{
    int fds[2];
    if (pipe(fds) != 0) {
        check(0, "pipe for the watchdog test");
        return;
    }
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        setenv("FAKECUDA_WATCHDOG_S", "1", 1);
        execl(self, self, "--watchdog", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char out[2048] = "";
    size_t len = 0;
    ssize_t n;
    while ((n = read(fds[0], out + len, sizeof(out) - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a long wait still completes");
    check(strstr(out, "watchdog: stream") && strstr(out, "cuStreamWaitValue32"),
          "the watchdog says which stream waits for what");
}

/* Forked children exec this program again: the fake's threads do not survive a fork (nor
 * do CUDA's). */
static void fault(void)
{
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        execl(self, self, "--fault", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "a kernel on plain host memory faults, stickily");
}

int main(int argc, char **argv)
{
    self = argv[0];
    if (argc == 4 && strcmp(argv[1], "--ipc-peer") == 0)
        return ipc_peer(argv[2], argv[3]);
    if (argc == 2 && strcmp(argv[1], "--fault") == 0)
        return fault_child();
    if (argc == 2 && strcmp(argv[1], "--watchdog") == 0)
        return watchdog_child();
    devices();
    memory_faults();
    attributes();
    copies_and_events();
    wait_value();
    kernels();
    ipc();
    watchdog();
    fault();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
