/*
 * later.h - calls of NCCL releases after the 2.21 that nccl.h advertises. Programs built
 * against this nccl.h never see them; binaries built against a newer NVIDIA header (PyTorch's
 * libtorch_cuda.so, loaded with LD_PRELOAD) may import them, and must find them here rather
 * than in NVIDIA's library, which would be handed a communicator it does not know. Types that
 * nccl.h lacks are passed as what they are in the ABI (pointers, ints).
 */
#ifndef WEFT_NCCL_LATER_H
#define WEFT_NCCL_LATER_H

#include <stdint.h>

#include "nccl.h"

/* Implemented. */
ncclResult_t ncclCommInitRankScalable(ncclComm_t *newcomm, int nranks, int myrank, int nId,
                                      ncclUniqueId *commIds, ncclConfig_t *config); /* 2.23 */
ncclResult_t ncclAlltoAll(const void *sendbuff, void *recvbuff, size_t count,
                          ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream); /* 2.28 */

/* Refused with ncclInvalidUsage and a message naming the call (later.c). */
ncclResult_t ncclGroupSimulateEnd(void *simInfo); /* 2.22 */
ncclResult_t ncclCommShrink(ncclComm_t comm, int *excludeRanksList, int excludeRanksCount,
                            ncclComm_t *newcomm, ncclConfig_t *config, int shrinkFlags); /* 2.27 */
ncclResult_t ncclCommWindowRegister(ncclComm_t comm, void *buff, size_t size, void **win,
                                    int winFlags);                 /* 2.27 */
ncclResult_t ncclCommWindowDeregister(ncclComm_t comm, void *win); /* 2.27 */
ncclResult_t ncclWinGetUserPtr(ncclComm_t comm, void *win, void **outUserPtr);
ncclResult_t ncclCommRevoke(ncclComm_t comm, int revokeFlags);
ncclResult_t ncclCommGetUniqueId(ncclComm_t comm, ncclUniqueId *uniqueId);
ncclResult_t ncclCommGrow(ncclComm_t comm, int nRanks, const ncclUniqueId *uniqueId, int rank,
                          ncclComm_t *newcomm, ncclConfig_t *config);
ncclResult_t ncclCommSuspend(ncclComm_t comm, int flags);
ncclResult_t ncclCommResume(ncclComm_t comm);
ncclResult_t ncclCommMemStats(ncclComm_t comm, int stat, uint64_t *value);
ncclResult_t ncclGather(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype,
                        int root, ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclScatter(const void *sendbuff, void *recvbuff, size_t count,
                         ncclDataType_t datatype, int root, ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclPutSignal(const void *localbuff, size_t count, ncclDataType_t datatype, int peer,
                           void *peerWin, size_t peerWinOffset, int sigIdx, int ctx,
                           unsigned int flags, ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclSignal(int peer, int sigIdx, int ctx, unsigned int flags, ncclComm_t comm,
                        cudaStream_t stream);
ncclResult_t ncclWaitSignal(int nDesc, void *signalDescs, ncclComm_t comm, cudaStream_t stream);
/* The host side of nccl_device.h (2.28): device communicators for kernels NCCL compiles. */
ncclResult_t ncclDevCommCreate(ncclComm_t comm, const void *reqs, void *outDevComm);
ncclResult_t ncclDevCommDestroy(ncclComm_t comm, const void *devComm);
ncclResult_t ncclCommQueryProperties(ncclComm_t comm, void *props);

/* Host functions of nccl_device.h (2.28+) and the parameter registry (2.30) that only
 * return a status: refused without reading their arguments, so they are declared without
 * any (a caller's arguments are its own to clean up in the x86-64 and Arm64 C ABIs). */
ncclResult_t ncclGetLsaMultimemDevicePointer(void);
ncclResult_t ncclGetMultimemDevicePointer(void);
ncclResult_t ncclGetLsaDevicePointer(void);
ncclResult_t ncclGetPeerDevicePointer(void);
ncclResult_t ncclLsaBarrierCreateRequirement(void);
ncclResult_t ncclGinBarrierCreateRequirement(void);
ncclResult_t ncclGinOutboxCreateRequirement(void);
ncclResult_t ncclGinInboxA2ACreateRequirement(void);
ncclResult_t ncclParamBind(void);
ncclResult_t ncclParamGetI8(void);
ncclResult_t ncclParamGetI16(void);
ncclResult_t ncclParamGetI32(void);
ncclResult_t ncclParamGetI64(void);
ncclResult_t ncclParamGetU8(void);
ncclResult_t ncclParamGetU16(void);
ncclResult_t ncclParamGetU32(void);
ncclResult_t ncclParamGetU64(void);
ncclResult_t ncclParamGetStr(void);
ncclResult_t ncclParamGet(void);
ncclResult_t ncclParamGetParameter(void);
ncclResult_t ncclParamGetAllParameterKeys(void);
/* Returns a rank, -1 here. */
int ncclTeamRankToLsa(void);
void ncclParamDumpAll(void);

#endif /* WEFT_NCCL_LATER_H */
