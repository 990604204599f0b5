/*
 * comm.h - the communicator behind weft_comm_t: the bootstrap, the connections, the
 * collective layer's state of one group of ranks, and the worker of its stream operations.
 */
#ifndef WEFT_CORE_COMM_H
#define WEFT_CORE_COMM_H

#include <stdbool.h>

#include "collectives/collectives.h"
#include "launcher/bootstrap.h"
#include "transport/net.h"
#include "weft.h"

struct weft_dev_coll;
struct weft_exec;
struct weft_stream_gate;

struct weft_comm {
    int rank;
    int nranks;
    struct weft_boot *boot;
    struct weft_net *net;
    struct weft_coll_ctx coll;
    weft_result_t async_error; /* first failure of a host operation; sticky */
    /* Stream operations (started by the first call with a stream; host-only jobs never
     * start them): the worker that runs them, the staging and the streams' release. */
    struct weft_exec *exec;
    struct weft_stream_gate *gate;
    /* Collectives the worker runs on device buffers itself (pipelined staging, CUDA IPC):
     * the worker's only, created by its first such call. */
    struct weft_dev_coll *dev;
    /* Host calls in flight (weft_comm_enter/leave), and weft_comm_abort's request: an abort
     * from another thread waits for them to leave before it frees anything. */
    int busy;
    int aborting;
};

/* Around a host call, which may be in flight while another thread calls weft_comm_abort:
 * enter fails with WEFT_ERR_ABORTED once an abort has begun. */
weft_result_t weft_comm_enter(struct weft_comm *comm, const char *call);
void weft_comm_leave(struct weft_comm *comm);
/* Starts the stream worker and the staging of the communicator, once. */
weft_result_t weft_comm_stream_start(struct weft_comm *comm);
/* Before a host operation: waits until the queued stream operations are done, so that the
 * two kinds never run at once on comm->coll, then fails if the communicator failed before. */
weft_result_t weft_comm_quiesce(struct weft_comm *comm, const char *call);
/* Fails, naming `call`, when the communicator failed before (host or stream operation). */
weft_result_t weft_comm_check(struct weft_comm *comm, const char *call);
/* The first failure of an operation, host or stream (WEFT_OK when none); `msg` (may be
 * NULL) gets the message of a stream operation's failure. */
weft_result_t weft_comm_failure(struct weft_comm *comm, char *msg, size_t len);

#endif /* WEFT_CORE_COMM_H */
