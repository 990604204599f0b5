/*
 * nccl.h - the NCCL C API as Weft's libnccl.so.2 provides it: a program written for NCCL
 * compiles against this header and runs on Weft by loading Weft's libnccl.so.2 instead of
 * NVIDIA's (docs/nccl.md). The names, enumeration values, the 128-byte unique id and the
 * layout of ncclConfig_t are those of NCCL 2.21, the version this library advertises, so that
 * binaries built against NVIDIA's header and programs built against this one agree.
 */
#ifndef NCCL_H_
#define NCCL_H_

/* NCCL's header brings the CUDA runtime types in; programs rely on it. Without the CUDA
 * headers (a CPU-only build of Weft) only the stream type is needed, declared as CUDA does. */
#if defined(__has_include)
#if __has_include(<cuda_runtime.h>)
#define NCCL_WEFT_HAVE_CUDA_HEADERS 1
#endif
#elif !defined(NCCL_WEFT_NO_CUDA)
#define NCCL_WEFT_HAVE_CUDA_HEADERS 1
#endif
#if defined(NCCL_WEFT_HAVE_CUDA_HEADERS) && !defined(NCCL_WEFT_NO_CUDA)
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#if CUDART_VERSION >= 11000
#include <cuda_bf16.h>
#endif
#else
typedef struct CUstream_st *cudaStream_t;
#endif

#include <limits.h>
#include <stddef.h>

/* The advertised version (ncclGetVersion returns NCCL_VERSION_CODE): 2.21.5. Programs that
 * test NCCL_VERSION_CODE then use only calls this library implements (docs/nccl.md). */
#define NCCL_MAJOR 2
#define NCCL_MINOR 21
#define NCCL_PATCH 5
#define NCCL_SUFFIX "weft"
#define NCCL_VERSION(X, Y, Z) \
    (((X) <= 2 && (Y) <= 8) ? (X)*1000 + (Y)*100 + (Z) : (X)*10000 + (Y)*100 + (Z))
#define NCCL_VERSION_CODE NCCL_VERSION(NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH)

/* Set by this header only: a program can tell it is built against Weft's NCCL. */
#define NCCL_WEFT 1

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ncclComm *ncclComm_t;
#define NCCL_COMM_NULL NULL

#define NCCL_UNIQUE_ID_BYTES 128
typedef struct {
    char internal[NCCL_UNIQUE_ID_BYTES];
} ncclUniqueId;

typedef enum {
    ncclSuccess = 0,
    ncclUnhandledCudaError = 1,
    ncclSystemError = 2,
    ncclInternalError = 3,
    ncclInvalidArgument = 4,
    ncclInvalidUsage = 5,
    ncclRemoteError = 6,
    ncclInProgress = 7,
    ncclNumResults = 8
} ncclResult_t;

#define NCCL_CONFIG_UNDEF_INT INT_MIN
#define NCCL_CONFIG_UNDEF_PTR NULL
#define NCCL_SPLIT_NOCOLOR -1

/* Communicator settings: start from NCCL_CONFIG_INITIALIZER and change what you need. The
 * first three fields identify the structure (size, magic, version): the library reads only
 * the fields that the caller's size covers, so a larger structure from a newer header is
 * accepted. */
typedef struct ncclConfig_v21700 {
    size_t size;
    unsigned int magic;
    unsigned int version;
    int blocking;       /* 0: calls may return ncclInProgress (Weft completes them anyway) */
    int cgaClusterSize; /* accepted, no effect on Weft */
    int minCTAs;        /* accepted, no effect on Weft */
    int maxCTAs;        /* accepted, no effect on Weft */
    const char *netName;
    int splitShare; /* accepted, no effect on Weft */
} ncclConfig_t;

#define NCCL_CONFIG_INITIALIZER                                                             \
    {                                                                                       \
        sizeof(ncclConfig_t), 0xcafebeef, NCCL_VERSION(NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH), \
            NCCL_CONFIG_UNDEF_INT, NCCL_CONFIG_UNDEF_INT, NCCL_CONFIG_UNDEF_INT,            \
            NCCL_CONFIG_UNDEF_INT, NCCL_CONFIG_UNDEF_PTR, NCCL_CONFIG_UNDEF_INT             \
    }

/* ---- memory for zero-copy buffers (cudaMalloc on Weft) ---------------------------------- */
ncclResult_t ncclMemAlloc(void **ptr, size_t size);
ncclResult_t ncclMemFree(void *ptr);

/* ---- version, id, communicators --------------------------------------------------------- */
ncclResult_t ncclGetVersion(int *version);
/* Call on one process, hand the bytes to every rank (a file, MPI_Bcast, the environment). */
ncclResult_t ncclGetUniqueId(ncclUniqueId *uniqueId);
/* Collective over nranks processes (or threads); the communicator uses the CUDA device that
 * is current at the call. */
ncclResult_t ncclCommInitRankConfig(ncclComm_t *comm, int nranks, ncclUniqueId commId, int rank,
                                    ncclConfig_t *config);
ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId commId, int rank);
/* ndev communicators of one process, one per device of devlist (NULL: 0 .. ndev-1). */
ncclResult_t ncclCommInitAll(ncclComm_t *comm, int ndev, const int *devlist);
/* Waits for the communicator's outstanding operations; ncclCommDestroy then frees it. */
ncclResult_t ncclCommFinalize(ncclComm_t comm);
ncclResult_t ncclCommDestroy(ncclComm_t comm);
/* Stops outstanding operations (peers see ncclRemoteError) and frees the communicator. */
ncclResult_t ncclCommAbort(ncclComm_t comm);
/* Ranks with the same color form a new communicator, ordered by key; NCCL_SPLIT_NOCOLOR
 * gives *newcomm = NULL. */
ncclResult_t ncclCommSplit(ncclComm_t comm, int color, int key, ncclComm_t *newcomm,
                           ncclConfig_t *config);

/* ---- errors ----------------------------------------------------------------------------- */
const char *ncclGetErrorString(ncclResult_t result);
/* The message of this thread's last failure: rank, peer, host and cause. */
const char *ncclGetLastError(ncclComm_t comm);
/* The error that ended an operation of comm after its call returned, or ncclSuccess. */
ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *asyncError);

/* ---- communicator properties ------------------------------------------------------------ */
ncclResult_t ncclCommCount(const ncclComm_t comm, int *count);
ncclResult_t ncclCommCuDevice(const ncclComm_t comm, int *device);
ncclResult_t ncclCommUserRank(const ncclComm_t comm, int *rank);

/* ---- buffer registration ---------------------------------------------------------------- */
ncclResult_t ncclCommRegister(const ncclComm_t comm, void *buff, size_t size, void **handle);
ncclResult_t ncclCommDeregister(const ncclComm_t comm, void *handle);

/* ---- reductions and datatypes ----------------------------------------------------------- */
typedef enum { ncclNumOps_dummy = 5 } ncclRedOp_dummy_t;
typedef enum {
    ncclSum = 0,
    ncclProd = 1,
    ncclMax = 2,
    ncclMin = 3,
    ncclAvg = 4,
    ncclNumOps = 5, /* the built-in operations; created ones come after */
    ncclMaxRedOp = 0x7fffffff >> (32 - 8 * sizeof(ncclRedOp_dummy_t))
} ncclRedOp_t;

typedef enum {
    ncclInt8 = 0,
    ncclChar = 0,
    ncclUint8 = 1,
    ncclInt32 = 2,
    ncclInt = 2,
    ncclUint32 = 3,
    ncclInt64 = 4,
    ncclUint64 = 5,
    ncclFloat16 = 6,
    ncclHalf = 6,
    ncclFloat32 = 7,
    ncclFloat = 7,
    ncclFloat64 = 8,
    ncclDouble = 8,
    ncclBfloat16 = 9,
    ncclNumTypes = 10
} ncclDataType_t;

typedef enum { ncclScalarDevice = 0, ncclScalarHostImmediate = 1 } ncclScalarResidence_t;

/* Weft has no pre-multiplied sum: this returns ncclInvalidUsage (see ncclGetLastError). */
ncclResult_t ncclRedOpCreatePreMulSum(ncclRedOp_t *op, void *scalar, ncclDataType_t datatype,
                                      ncclScalarResidence_t residence, ncclComm_t comm);
ncclResult_t ncclRedOpDestroy(ncclRedOp_t op, ncclComm_t comm);

/* ---- collectives: device buffers, enqueued on stream ------------------------------------ */
ncclResult_t ncclReduce(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype,
                        ncclRedOp_t op, int root, ncclComm_t comm, cudaStream_t stream);
/* In place (sendbuff == recvbuff) ncclBroadcast, kept from NCCL 1. */
ncclResult_t ncclBcast(void *buff, size_t count, ncclDataType_t datatype, int root, ncclComm_t comm,
                       cudaStream_t stream);
ncclResult_t ncclBroadcast(const void *sendbuff, void *recvbuff, size_t count,
                           ncclDataType_t datatype, int root, ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count,
                           ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                           cudaStream_t stream);
ncclResult_t ncclReduceScatter(const void *sendbuff, void *recvbuff, size_t recvcount,
                               ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                               cudaStream_t stream);
ncclResult_t ncclAllGather(const void *sendbuff, void *recvbuff, size_t sendcount,
                           ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream);

/* ---- point to point: pair them inside ncclGroupStart/ncclGroupEnd ----------------------- */
ncclResult_t ncclSend(const void *sendbuff, size_t count, ncclDataType_t datatype, int peer,
                      ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclRecv(void *recvbuff, size_t count, ncclDataType_t datatype, int peer,
                      ncclComm_t comm, cudaStream_t stream);

/* ---- groups: the calls between start and end run together at the outermost end --------- */
ncclResult_t ncclGroupStart(void);
ncclResult_t ncclGroupEnd(void);

#ifdef __cplusplus
}
#endif

#endif /* NCCL_H_ */
