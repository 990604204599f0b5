/*
 * later.c - the calls of NCCL releases after 2.21 that Weft has no equivalent for: each one
 * refuses with ncclInvalidUsage and says so in ncclGetLastError, so that a binary built
 * against a newer NCCL fails clearly instead of reaching NVIDIA's library with a Weft
 * communicator.
 */
#include "later.h"
#include "internal.h"

static ncclResult_t unsupported(const char *call)
{
    return weft_nccl_error(ncclInvalidUsage,
                           "%s: unsupported: Weft's libnccl.so.2 provides the NCCL %d.%d API "
                           "(docs/nccl.md)",
                           call, NCCL_MAJOR, NCCL_MINOR);
}

ncclResult_t ncclGroupSimulateEnd(void *simInfo)
{
    (void)simInfo;
    return unsupported("ncclGroupSimulateEnd");
}

ncclResult_t ncclCommShrink(ncclComm_t comm, int *excludeRanksList, int excludeRanksCount,
                            ncclComm_t *newcomm, ncclConfig_t *config, int shrinkFlags)
{
    (void)comm, (void)excludeRanksList, (void)excludeRanksCount, (void)newcomm, (void)config;
    (void)shrinkFlags;
    return unsupported("ncclCommShrink");
}

ncclResult_t ncclCommWindowRegister(ncclComm_t comm, void *buff, size_t size, void **win,
                                    int winFlags)
{
    (void)comm, (void)buff, (void)size, (void)win, (void)winFlags;
    return unsupported("ncclCommWindowRegister");
}

ncclResult_t ncclCommWindowDeregister(ncclComm_t comm, void *win)
{
    (void)comm, (void)win;
    return unsupported("ncclCommWindowDeregister");
}

ncclResult_t ncclWinGetUserPtr(ncclComm_t comm, void *win, void **outUserPtr)
{
    (void)comm, (void)win, (void)outUserPtr;
    return unsupported("ncclWinGetUserPtr");
}

ncclResult_t ncclCommRevoke(ncclComm_t comm, int revokeFlags)
{
    (void)comm, (void)revokeFlags;
    return unsupported("ncclCommRevoke");
}

ncclResult_t ncclCommGetUniqueId(ncclComm_t comm, ncclUniqueId *uniqueId)
{
    (void)comm, (void)uniqueId;
    return unsupported("ncclCommGetUniqueId");
}

ncclResult_t ncclCommGrow(ncclComm_t comm, int nRanks, const ncclUniqueId *uniqueId, int rank,
                          ncclComm_t *newcomm, ncclConfig_t *config)
{
    (void)comm, (void)nRanks, (void)uniqueId, (void)rank, (void)newcomm, (void)config;
    return unsupported("ncclCommGrow");
}

ncclResult_t ncclCommSuspend(ncclComm_t comm, int flags)
{
    (void)comm, (void)flags;
    return unsupported("ncclCommSuspend");
}

ncclResult_t ncclCommResume(ncclComm_t comm)
{
    (void)comm;
    return unsupported("ncclCommResume");
}

ncclResult_t ncclCommMemStats(ncclComm_t comm, int stat, uint64_t *value)
{
    (void)comm, (void)stat, (void)value;
    return unsupported("ncclCommMemStats");
}

ncclResult_t ncclGather(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype,
                        int root, ncclComm_t comm, cudaStream_t stream)
{
    (void)sendbuff, (void)recvbuff, (void)count, (void)datatype, (void)root, (void)comm;
    (void)stream;
    return unsupported("ncclGather");
}

ncclResult_t ncclScatter(const void *sendbuff, void *recvbuff, size_t count,
                         ncclDataType_t datatype, int root, ncclComm_t comm, cudaStream_t stream)
{
    (void)sendbuff, (void)recvbuff, (void)count, (void)datatype, (void)root, (void)comm;
    (void)stream;
    return unsupported("ncclScatter");
}

ncclResult_t ncclPutSignal(const void *localbuff, size_t count, ncclDataType_t datatype, int peer,
                           void *peerWin, size_t peerWinOffset, int sigIdx, int ctx,
                           unsigned int flags, ncclComm_t comm, cudaStream_t stream)
{
    (void)localbuff, (void)count, (void)datatype, (void)peer, (void)peerWin, (void)peerWinOffset;
    (void)sigIdx, (void)ctx, (void)flags, (void)comm, (void)stream;
    return unsupported("ncclPutSignal");
}

ncclResult_t ncclSignal(int peer, int sigIdx, int ctx, unsigned int flags, ncclComm_t comm,
                        cudaStream_t stream)
{
    (void)peer, (void)sigIdx, (void)ctx, (void)flags, (void)comm, (void)stream;
    return unsupported("ncclSignal");
}

ncclResult_t ncclWaitSignal(int nDesc, void *signalDescs, ncclComm_t comm, cudaStream_t stream)
{
    (void)nDesc, (void)signalDescs, (void)comm, (void)stream;
    return unsupported("ncclWaitSignal");
}

ncclResult_t ncclDevCommCreate(ncclComm_t comm, const void *reqs, void *outDevComm)
{
    (void)comm, (void)reqs, (void)outDevComm;
    return unsupported("ncclDevCommCreate");
}

ncclResult_t ncclDevCommDestroy(ncclComm_t comm, const void *devComm)
{
    (void)comm, (void)devComm;
    return unsupported("ncclDevCommDestroy");
}

ncclResult_t ncclCommQueryProperties(ncclComm_t comm, void *props)
{
    (void)comm, (void)props;
    return unsupported("ncclCommQueryProperties");
}

#define REFUSE(name)               \
    ncclResult_t name(void)        \
    {                              \
        return unsupported(#name); \
    }
REFUSE(ncclGetLsaMultimemDevicePointer)
REFUSE(ncclGetMultimemDevicePointer)
REFUSE(ncclGetLsaDevicePointer)
REFUSE(ncclGetPeerDevicePointer)
REFUSE(ncclLsaBarrierCreateRequirement)
REFUSE(ncclGinBarrierCreateRequirement)
REFUSE(ncclGinOutboxCreateRequirement)
REFUSE(ncclGinInboxA2ACreateRequirement)
REFUSE(ncclParamBind)
REFUSE(ncclParamGetI8)
REFUSE(ncclParamGetI16)
REFUSE(ncclParamGetI32)
REFUSE(ncclParamGetI64)
REFUSE(ncclParamGetU8)
REFUSE(ncclParamGetU16)
REFUSE(ncclParamGetU32)
REFUSE(ncclParamGetU64)
REFUSE(ncclParamGetStr)
REFUSE(ncclParamGet)
REFUSE(ncclParamGetParameter)
REFUSE(ncclParamGetAllParameterKeys)

int ncclTeamRankToLsa(void)
{
    (void)unsupported("ncclTeamRankToLsa");
    return -1;
}

void ncclParamDumpAll(void)
{
    (void)unsupported("ncclParamDumpAll");
}
