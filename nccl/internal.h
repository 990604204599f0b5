/*
 * internal.h - what the files of Weft's libnccl.so.2 share: the communicator behind an
 * ncclComm_t, the translation of results, datatypes, operations and streams to Weft's, the
 * calling thread's last error, and the group state (deferred communicator inits). Only
 * include/weft.h is used below this layer.
 */
#ifndef WEFT_NCCL_INTERNAL_H
#define WEFT_NCCL_INTERNAL_H

#include <stdbool.h>

#include "nccl.h"
#include "weft.h"

/* An ncclComm_t. NCCL binds a communicator to the CUDA device current at its init; Weft
 * takes the device of the thread that first uses a stream, so calls switch to it. */
struct ncclComm {
    weft_comm_t weft; /* NULL while the init waits for ncclGroupEnd, and after finalize */
    int nranks, rank;
    int device;   /* -1 without a GPU */
    int blocking; /* config.blocking; Weft completes every call anyway */
    int busy;     /* calls of this library in flight on it (abort frees after they return) */
    int aborting;
    bool pending;   /* ncclCommInitRank inside a group: runs at the outermost ncclGroupEnd */
    bool finalized; /* ncclCommFinalize ran: only ncclCommDestroy and queries remain */
    /* One of ncclCommInitAll's: its siblings live in this process, on this thread, so its
     * destroy cannot wait for theirs (Weft's destroy is collective): it is local (abort). */
    bool local_destroy;
    weft_unique_id_t id;
    weft_result_t init_result;
    char init_error[512]; /* its message, when the init ran on another thread */
};

/* ---- error.c ------------------------------------------------------------------------------ */
/* Records a failure of this library (printf-style message, prefixed nothing) as the thread's
 * last error and returns `code`. */
ncclResult_t weft_nccl_error(ncclResult_t code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A failed Weft call: keeps weft_last_error() as the thread's last error and returns the NCCL
 * result for r. A WEFT_CHECK=1 fingerprint mismatch becomes ncclInvalidUsage (NCCL's answer
 * to ranks that called different collectives); other invalid arguments ncclInvalidArgument. */
ncclResult_t weft_nccl_from_weft(weft_result_t r);
/* The NCCL result for an asynchronous Weft error (arguments are checked synchronously, so an
 * asynchronous WEFT_ERR_INVALID_ARG is a mismatch between ranks: ncclInvalidUsage). */
ncclResult_t weft_nccl_async_result(weft_result_t r);

/* ---- convert.c ---------------------------------------------------------------------------- */
/* False for a datatype Weft lacks (fp8 from newer headers) or out of range. */
bool weft_nccl_dtype(ncclDataType_t in, weft_dtype_t *out);
/* False for created (pre-multiplied sum) operations and values out of range. */
bool weft_nccl_op(ncclRedOp_t in, weft_op_t *out);
/* Whether the process has a usable GPU (probed once): without one, stream NULL means host
 * buffers, as on Weft; with one, NULL is CUDA's legacy default stream, as on NCCL. */
bool weft_nccl_have_gpu(void);
weft_stream_t weft_nccl_stream(cudaStream_t stream);
/* The calling thread's CUDA device, or -1 without a GPU. */
int weft_nccl_current_device(void);
/* Makes `device` current when it is not (>= 0 and a GPU present); returns the previous one,
 * for weft_nccl_restore_device. */
int weft_nccl_use_device(int device);
void weft_nccl_restore_device(int previous, int device);

/* ---- comm.c ------------------------------------------------------------------------------- */
/* Starts a call on comm: ncclInvalidArgument for NULL, ncclInvalidUsage for a communicator
 * whose init has not run, that was finalized or is being aborted. On success the caller must
 * call weft_nccl_leave. */
ncclResult_t weft_nccl_enter(ncclComm_t comm, const char *call);
void weft_nccl_leave(ncclComm_t comm);
/* Runs the deferred init of comm (on the device it was called with). */
weft_result_t weft_nccl_init_now(ncclComm_t comm);

/* ---- group.c ------------------------------------------------------------------------------ */
/* Nesting depth of ncclGroupStart on this thread. */
int weft_nccl_group_depth(void);
/* Queues a communicator init for the outermost ncclGroupEnd. */
ncclResult_t weft_nccl_group_defer_init(ncclComm_t comm);
/* Runs several inits at once, one thread each (they are collective with each other). Returns
 * the first failure; every comm's init_result says how it went. */
weft_result_t weft_nccl_init_parallel(ncclComm_t *comms, int n);

#endif /* WEFT_NCCL_INTERNAL_H */
