/*
 * comm.c - NCCL's communicator calls on Weft's: version, unique id, init (inside a group it
 * waits for ncclGroupEnd), split, finalize, destroy, abort, the asynchronous error, the
 * properties, buffer registration and ncclMemAlloc.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "later.h"

#ifdef WEFT_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

_Static_assert(sizeof(ncclUniqueId) == sizeof(weft_unique_id_t),
               "an NCCL unique id carries a Weft unique id, byte for byte");

#define CONFIG_MAGIC 0xcafebeefu

ncclResult_t ncclGetVersion(int *version)
{
    if (!version)
        return weft_nccl_error(ncclInvalidArgument, "ncclGetVersion: version is NULL");
    *version = NCCL_VERSION_CODE;
    return ncclSuccess;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId *uniqueId)
{
    if (!uniqueId)
        return weft_nccl_error(ncclInvalidArgument, "ncclGetUniqueId: uniqueId is NULL");
    weft_unique_id_t id;
    weft_result_t r = weft_get_unique_id(&id);
    if (r != WEFT_OK)
        return weft_nccl_from_weft(r);
    memcpy(uniqueId->internal, &id, sizeof(id));
    return ncclSuccess;
}

ncclResult_t weft_nccl_enter(ncclComm_t comm, const char *call)
{
    if (!comm)
        return weft_nccl_error(ncclInvalidArgument, "%s: comm is NULL", call);
    __atomic_fetch_add(&comm->busy, 1, __ATOMIC_SEQ_CST);
    const char *why = NULL;
    if (__atomic_load_n(&comm->aborting, __ATOMIC_SEQ_CST))
        why = "is being aborted (ncclCommAbort)";
    else if (comm->pending)
        why = "is not initialized yet: its ncclCommInitRank runs at the outermost ncclGroupEnd";
    else if (comm->finalized || !comm->weft)
        why = "was finalized (ncclCommFinalize): only ncclCommDestroy may follow";
    if (why) {
        weft_nccl_leave(comm);
        return weft_nccl_error(ncclInvalidUsage, "%s: rank %d: the communicator %s", call,
                               comm->rank, why);
    }
    return ncclSuccess;
}

void weft_nccl_leave(ncclComm_t comm)
{
    __atomic_fetch_sub(&comm->busy, 1, __ATOMIC_SEQ_CST);
}

weft_result_t weft_nccl_init_now(ncclComm_t comm)
{
    const int previous = weft_nccl_use_device(comm->device);
    comm->init_result = weft_comm_init_rank(&comm->weft, comm->nranks, comm->id, comm->rank);
    weft_nccl_restore_device(previous, comm->device);
    if (comm->init_result != WEFT_OK) {
        comm->weft = NULL;
        snprintf(comm->init_error, sizeof(comm->init_error), "%s", weft_last_error());
    }
    comm->pending = false;
    return comm->init_result;
}

/* The fields of a caller's config that its size covers: a NULL config means defaults. */
static ncclResult_t read_config(const ncclConfig_t *config, const char *call, int *blocking)
{
    *blocking = 1;
    if (!config)
        return ncclSuccess;
    if (config->magic != CONFIG_MAGIC || config->size < offsetof(ncclConfig_t, blocking))
        return weft_nccl_error(ncclInvalidArgument,
                               "%s: config was not set from NCCL_CONFIG_INITIALIZER (magic 0x%x, "
                               "size %zu)",
                               call, config->magic, config->size);
    if (config->size >= offsetof(ncclConfig_t, blocking) + sizeof(int) &&
        config->blocking != NCCL_CONFIG_UNDEF_INT)
        *blocking = config->blocking != 0;
    return ncclSuccess;
}

static ncclResult_t init_rank(ncclComm_t *comm, int nranks, const ncclUniqueId *commId, int rank,
                              const ncclConfig_t *config, const char *call)
{
    if (!comm)
        return weft_nccl_error(ncclInvalidArgument, "%s: comm is NULL", call);
    if (nranks < 1 || rank < 0 || rank >= nranks)
        return weft_nccl_error(ncclInvalidArgument, "%s: rank %d is not in [0, nranks=%d)", call,
                               rank, nranks);
    int blocking;
    ncclResult_t res = read_config(config, call, &blocking);
    if (res != ncclSuccess)
        return res;
    struct ncclComm *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_nccl_error(ncclSystemError, "%s: rank %d: out of memory", call, rank);
    c->nranks = nranks;
    c->rank = rank;
    c->blocking = blocking;
    c->device = weft_nccl_current_device();
    memcpy(&c->id, commId->internal, sizeof(c->id));
    if (weft_nccl_group_depth() > 0) {
        c->pending = true;
        res = weft_nccl_group_defer_init(c);
        if (res != ncclSuccess) {
            free(c);
            return res;
        }
        *comm = c;
        return ncclSuccess;
    }
    weft_result_t r = weft_nccl_init_now(c);
    if (r != WEFT_OK) {
        free(c);
        return weft_nccl_from_weft(r);
    }
    *comm = c;
    return ncclSuccess;
}

ncclResult_t ncclCommInitRankConfig(ncclComm_t *comm, int nranks, ncclUniqueId commId, int rank,
                                    ncclConfig_t *config)
{
    return init_rank(comm, nranks, &commId, rank, config, "ncclCommInitRankConfig");
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId commId, int rank)
{
    return init_rank(comm, nranks, &commId, rank, NULL, "ncclCommInitRank");
}

/* NCCL 2.23: several roots to spread the bootstrap; Weft's rendezvous has one, so every rank
 * uses the first id (all ranks pass the same array). */
ncclResult_t ncclCommInitRankScalable(ncclComm_t *newcomm, int nranks, int myrank, int nId,
                                      ncclUniqueId *commIds, ncclConfig_t *config)
{
    if (nId < 1 || !commIds)
        return weft_nccl_error(ncclInvalidArgument,
                               "ncclCommInitRankScalable: nId %d must be >= 1 with commIds set",
                               nId);
    return init_rank(newcomm, nranks, &commIds[0], myrank, config, "ncclCommInitRankScalable");
}

ncclResult_t ncclCommInitAll(ncclComm_t *comm, int ndev, const int *devlist)
{
    if (!comm || ndev < 1)
        return weft_nccl_error(ncclInvalidArgument,
                               "ncclCommInitAll: comm is NULL or ndev %d is not positive", ndev);
    if (weft_nccl_group_depth() > 0)
        return weft_nccl_error(ncclInvalidUsage,
                               "ncclCommInitAll: not inside ncclGroupStart/ncclGroupEnd");
    /* Weft's shared-memory transport has one segment per process and job: ranks of one
     * process must talk over another transport. Say so rather than fail in the transport. */
    const char *tp = getenv("WEFT_TRANSPORT");
    if (ndev > 1 && (!tp || (strcmp(tp, "tcp") != 0 && strcmp(tp, "ucx") != 0)))
        return weft_nccl_error(ncclInvalidUsage,
                               "ncclCommInitAll: %d ranks in one process need "
                               "WEFT_TRANSPORT=tcp (or ucx) on Weft: its shared-memory "
                               "transport serves one rank per process (WEFT_TRANSPORT=%s)",
                               ndev, tp ? tp : "unset");
    ncclUniqueId id;
    ncclResult_t res = ncclGetUniqueId(&id);
    if (res != ncclSuccess)
        return res;
    struct ncclComm **c = calloc((size_t)ndev, sizeof(*c));
    if (!c)
        return weft_nccl_error(ncclSystemError, "ncclCommInitAll: out of memory");
    for (int i = 0; i < ndev; i++) {
        c[i] = calloc(1, sizeof(*c[i]));
        if (!c[i]) {
            res = weft_nccl_error(ncclSystemError, "ncclCommInitAll: out of memory");
            goto fail;
        }
        c[i]->nranks = ndev;
        c[i]->rank = i;
        c[i]->blocking = 1;
        c[i]->local_destroy = true;
        c[i]->device = weft_nccl_have_gpu() ? (devlist ? devlist[i] : i) : -1;
        memcpy(&c[i]->id, id.internal, sizeof(c[i]->id));
    }
    weft_result_t r = weft_nccl_init_parallel(c, ndev);
    if (r != WEFT_OK) {
        res = weft_nccl_from_weft(r);
        for (int i = 0; i < ndev; i++)
            if (c[i]->init_result != WEFT_OK) {
                weft_nccl_error(res, "ncclCommInitAll: rank %d of %d: %s", i, ndev,
                                c[i]->init_error);
                break;
            }
        goto fail;
    }
    for (int i = 0; i < ndev; i++)
        comm[i] = c[i];
    free(c);
    return ncclSuccess;
fail:
    for (int i = 0; i < ndev; i++) {
        if (c[i] && c[i]->weft)
            (void)weft_comm_abort(c[i]->weft);
        free(c[i]);
    }
    free(c);
    return res;
}

ncclResult_t ncclCommSplit(ncclComm_t comm, int color, int key, ncclComm_t *newcomm,
                           ncclConfig_t *config)
{
    if (!newcomm)
        return weft_nccl_error(ncclInvalidArgument, "ncclCommSplit: newcomm is NULL");
    ncclResult_t res = weft_nccl_enter(comm, "ncclCommSplit");
    if (res != ncclSuccess)
        return res;
    int blocking = comm->blocking;
    if (config)
        res = read_config(config, "ncclCommSplit", &blocking);
    struct ncclComm *c = NULL;
    if (res == ncclSuccess && color != NCCL_SPLIT_NOCOLOR && !(c = calloc(1, sizeof(*c))))
        res = weft_nccl_error(ncclSystemError, "ncclCommSplit: out of memory");
    if (res != ncclSuccess) {
        weft_nccl_leave(comm);
        return res;
    }
    weft_comm_t w = NULL;
    const int previous = weft_nccl_use_device(comm->device);
    weft_result_t r = weft_comm_split(comm->weft, color, key, &w);
    weft_nccl_restore_device(previous, comm->device);
    weft_nccl_leave(comm);
    if (r != WEFT_OK) {
        free(c);
        return weft_nccl_from_weft(r);
    }
    if (!w) {
        free(c);
        *newcomm = NULL;
        return ncclSuccess;
    }
    c->weft = w;
    c->device = comm->device;
    c->blocking = blocking;
    if ((r = weft_comm_rank(w, &c->rank)) != WEFT_OK ||
        (r = weft_comm_size(w, &c->nranks)) != WEFT_OK) {
        (void)weft_comm_abort(w);
        free(c);
        return weft_nccl_from_weft(r);
    }
    *newcomm = c;
    return ncclSuccess;
}

ncclResult_t ncclCommFinalize(ncclComm_t comm)
{
    ncclResult_t res = weft_nccl_enter(comm, "ncclCommFinalize");
    if (res != ncclSuccess)
        return res;
    /* Weft's destroy is what NCCL's finalize is: collective, it waits for the outstanding
     * operations; ncclCommDestroy then frees what is left locally. */
    const int previous = weft_nccl_use_device(comm->device);
    weft_result_t r = weft_comm_destroy(comm->weft);
    weft_nccl_restore_device(previous, comm->device);
    comm->weft = NULL;
    comm->finalized = true;
    weft_nccl_leave(comm);
    return weft_nccl_from_weft(r);
}

ncclResult_t ncclCommDestroy(ncclComm_t comm)
{
    if (!comm)
        return ncclSuccess; /* NCCL accepts NULL here */
    if (comm->pending)
        return weft_nccl_error(ncclInvalidUsage,
                               "ncclCommDestroy: rank %d: its init has not run (ncclGroupEnd)",
                               comm->rank);
    if (comm->local_destroy)
        return ncclCommAbort(comm);
    weft_result_t r = WEFT_OK;
    if (comm->weft) {
        const int previous = weft_nccl_use_device(comm->device);
        r = weft_comm_destroy(comm->weft);
        weft_nccl_restore_device(previous, comm->device);
    }
    free(comm);
    return weft_nccl_from_weft(r);
}

ncclResult_t ncclCommAbort(ncclComm_t comm)
{
    if (!comm)
        return ncclSuccess; /* NCCL accepts NULL here */
    if (comm->pending)
        return weft_nccl_error(ncclInvalidUsage,
                               "ncclCommAbort: rank %d: its init has not run (ncclGroupEnd)",
                               comm->rank);
    __atomic_store_n(&comm->aborting, 1, __ATOMIC_SEQ_CST);
    if (comm->weft) {
        /* Safe while a call on another thread waits inside Weft: that call returns first. */
        weft_result_t r = weft_comm_abort(comm->weft);
        if (r != WEFT_OK)
            return weft_nccl_from_weft(r); /* left allocated: a call did not return */
        comm->weft = NULL;
    }
    /* Those calls still have to leave this library before the memory goes. */
    const struct timespec ms = {0, 1000 * 1000};
    while (__atomic_load_n(&comm->busy, __ATOMIC_SEQ_CST) > 0)
        nanosleep(&ms, NULL);
    free(comm);
    return ncclSuccess;
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *asyncError)
{
    if (!comm || !asyncError)
        return weft_nccl_error(ncclInvalidArgument,
                               "ncclCommGetAsyncError: comm or asyncError is NULL");
    if (comm->pending || !comm->weft) {
        *asyncError = comm->pending || comm->init_result == WEFT_OK
                          ? ncclSuccess
                          : weft_nccl_async_result(comm->init_result);
        return ncclSuccess;
    }
    weft_result_t a = WEFT_OK;
    weft_result_t r = weft_comm_get_async_error(comm->weft, &a);
    if (r != WEFT_OK)
        return weft_nccl_from_weft(r);
    *asyncError = weft_nccl_async_result(a);
    return ncclSuccess;
}

ncclResult_t ncclCommCount(const ncclComm_t comm, int *count)
{
    if (!comm || !count)
        return weft_nccl_error(ncclInvalidArgument, "ncclCommCount: comm or count is NULL");
    *count = comm->nranks;
    return ncclSuccess;
}

ncclResult_t ncclCommCuDevice(const ncclComm_t comm, int *device)
{
    if (!comm || !device)
        return weft_nccl_error(ncclInvalidArgument, "ncclCommCuDevice: comm or device is NULL");
    *device = comm->device;
    return ncclSuccess;
}

ncclResult_t ncclCommUserRank(const ncclComm_t comm, int *rank)
{
    if (!comm || !rank)
        return weft_nccl_error(ncclInvalidArgument, "ncclCommUserRank: comm or rank is NULL");
    *rank = comm->rank;
    return ncclSuccess;
}

ncclResult_t ncclCommRegister(const ncclComm_t comm, void *buff, size_t size, void **handle)
{
    if (!buff || !handle)
        return weft_nccl_error(ncclInvalidArgument, "ncclCommRegister: buff or handle is NULL");
    ncclResult_t res = weft_nccl_enter(comm, "ncclCommRegister");
    if (res != ncclSuccess)
        return res;
    weft_result_t r = weft_mem_register(comm->weft, buff, size, handle);
    weft_nccl_leave(comm);
    return weft_nccl_from_weft(r);
}

ncclResult_t ncclCommDeregister(const ncclComm_t comm, void *handle)
{
    ncclResult_t res = weft_nccl_enter(comm, "ncclCommDeregister");
    if (res != ncclSuccess)
        return res;
    weft_result_t r = weft_mem_deregister(comm->weft, handle);
    weft_nccl_leave(comm);
    return weft_nccl_from_weft(r);
}

/* Device memory with a GPU; without one (a host-only run) ordinary memory, so that the same
 * program runs on host buffers. */
ncclResult_t ncclMemAlloc(void **ptr, size_t size)
{
    if (!ptr)
        return weft_nccl_error(ncclInvalidArgument, "ncclMemAlloc: ptr is NULL");
    if (size == 0) {
        *ptr = NULL;
        return ncclSuccess;
    }
#ifdef WEFT_HAVE_CUDA
    if (weft_nccl_have_gpu()) {
        cudaError_t e = cudaMalloc(ptr, size);
        if (e != cudaSuccess)
            return weft_nccl_error(ncclUnhandledCudaError, "ncclMemAlloc: cudaMalloc(%zu): %s",
                                   size, cudaGetErrorString(e));
        return ncclSuccess;
    }
#endif
    void *p = calloc(1, size);
    if (!p)
        return weft_nccl_error(ncclSystemError, "ncclMemAlloc: out of memory for %zu bytes", size);
    *ptr = p;
    return ncclSuccess;
}

ncclResult_t ncclMemFree(void *ptr)
{
    if (!ptr)
        return ncclSuccess;
#ifdef WEFT_HAVE_CUDA
    if (weft_nccl_have_gpu()) {
        cudaError_t e = cudaFree(ptr);
        if (e != cudaSuccess)
            return weft_nccl_error(ncclUnhandledCudaError, "ncclMemFree: cudaFree(%p): %s", ptr,
                                   cudaGetErrorString(e));
        return ncclSuccess;
    }
#endif
    free(ptr);
    return ncclSuccess;
}
