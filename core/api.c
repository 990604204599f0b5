/*
 * api.c - the public collective and point-to-point calls: argument checks with messages that
 * name the call and the rank, group queueing, and dispatch to the collective layer.
 */
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "error.h"
#include "gpu/gpu.h"
#include "log.h"
#include "transport/net.h"

/* Operations queued by weft_group_start on this thread, run at the outermost end. */
struct group_entry {
    struct weft_comm *comm;
    struct weft_coll_op op;
};

static _Thread_local struct {
    int depth;
    struct group_entry *ops;
    size_t n, cap;
} group;

static const char *kind_name(enum weft_coll_kind kind)
{
    switch (kind) {
    case WEFT_COLL_ALLREDUCE: return "weft_allreduce";
    case WEFT_COLL_BROADCAST: return "weft_broadcast";
    case WEFT_COLL_REDUCE: return "weft_reduce";
    case WEFT_COLL_ALLGATHER: return "weft_allgather";
    case WEFT_COLL_REDUCE_SCATTER: return "weft_reduce_scatter";
    case WEFT_COLL_ALLTOALL: return "weft_alltoall";
    case WEFT_COLL_BARRIER: return "weft_barrier";
    case WEFT_COLL_SEND: return "weft_send";
    case WEFT_COLL_RECV: return "weft_recv";
    }
    return "weft_?";
}

static int has_reduction(enum weft_coll_kind kind)
{
    return kind == WEFT_COLL_ALLREDUCE || kind == WEFT_COLL_REDUCE ||
           kind == WEFT_COLL_REDUCE_SCATTER;
}

/* Elements in the largest buffer of the call, in units of count. */
static size_t buffer_blocks(enum weft_coll_kind kind, int nranks)
{
    switch (kind) {
    case WEFT_COLL_ALLGATHER:
    case WEFT_COLL_REDUCE_SCATTER:
    case WEFT_COLL_ALLTOALL:
        return (size_t)nranks;
    default:
        return 1;
    }
}

static weft_result_t validate(const struct weft_comm *comm, const struct weft_coll_op *op,
                              weft_stream_t stream)
{
    const char *call = kind_name(op->kind);
    if (!comm)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "%s: comm is NULL", call);
    if (stream)
        return WEFT_ERROR(WEFT_ERR_UNSUPPORTED,
                          "%s: rank %d: a stream means device buffers, which are not yet "
                          "supported (%s); pass NULL for host buffers",
                          call, comm->rank,
                          weft_gpu_available() ? "no stream path yet" : "no GPU");
    if (op->kind == WEFT_COLL_BARRIER)
        return WEFT_OK;
    const size_t esize = weft_dtype_size(op->dtype);
    if (esize == 0)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "%s: rank %d: invalid dtype %d", call,
                          comm->rank, (int)op->dtype);
    if (has_reduction(op->kind) && ((unsigned)op->op >= WEFT_NUM_OPS))
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "%s: rank %d: invalid op %d", call, comm->rank,
                          (int)op->op);
    const size_t blocks = buffer_blocks(op->kind, comm->nranks);
    if (op->count > SIZE_MAX / esize / blocks)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "%s: rank %d: count %zu x %zu bytes x %zu blocks overflows size_t",
                          call, comm->rank, op->count, esize, blocks);
    const int need_send = op->kind != WEFT_COLL_RECV &&
                          !(op->kind == WEFT_COLL_BROADCAST && comm->rank != op->root);
    const int need_recv = op->kind != WEFT_COLL_SEND &&
                          !(op->kind == WEFT_COLL_REDUCE && comm->rank != op->root);
    if (op->count > 0 && ((need_send && !op->sendbuf) || (need_recv && !op->recvbuf)))
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "%s: rank %d: %s is NULL with count %zu", call,
                          comm->rank, need_send && !op->sendbuf ? "sendbuf" : "recvbuf",
                          op->count);
    /* Managed memory is host-reachable, so the host path serves it; device memory is not. */
    const void *bufs[2] = {need_send ? op->sendbuf : NULL, need_recv ? op->recvbuf : NULL};
    for (int i = 0; i < 2 && op->count > 0; i++)
        if (weft_gpu_pointer_kind(bufs[i]) == WEFT_GPU_MEM_DEVICE)
            return WEFT_ERROR(WEFT_ERR_UNSUPPORTED,
                              "%s: rank %d: %s %p is CUDA device memory; device buffers need "
                              "a stream and the GPU data path, which are not yet supported: "
                              "pass host (or cudaMallocManaged) buffers with stream NULL",
                              call, comm->rank, i == 0 ? "sendbuf" : "recvbuf", bufs[i]);
    const int rooted = op->kind == WEFT_COLL_BROADCAST || op->kind == WEFT_COLL_REDUCE ||
                       op->kind == WEFT_COLL_SEND || op->kind == WEFT_COLL_RECV;
    if (rooted && (op->root < 0 || op->root >= comm->nranks))
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "%s: rank %d: %s %d is not in [0, %d)", call,
                          comm->rank,
                          op->kind == WEFT_COLL_SEND || op->kind == WEFT_COLL_RECV ? "peer"
                                                                                   : "root",
                          op->root, comm->nranks);
    return WEFT_OK;
}

static weft_result_t run(struct weft_comm *comm, const struct weft_coll_op *ops, size_t n)
{
    if (comm->async_error != WEFT_OK)
        return WEFT_ERROR(comm->async_error,
                          "rank %d: the communicator failed earlier (%s); destroy or abort it",
                          comm->rank, weft_strerror(comm->async_error));
    weft_result_t r = weft_coll_run(&comm->coll, ops, n);
    if (r != WEFT_OK) {
        comm->async_error = r;
        WEFT_WARN(COLL, "%s failed: %s", kind_name(ops[0].kind), weft_last_error());
    }
    return r;
}

static weft_result_t submit(struct weft_comm *comm, const struct weft_coll_op *op,
                            weft_stream_t stream)
{
    weft_error_clear();
    WEFT_CHECK(validate(comm, op, stream));
    if (group.depth == 0)
        return run(comm, op, 1);
    if (group.n == group.cap) {
        size_t cap = group.cap ? group.cap * 2 : 16;
        struct group_entry *ops = realloc(group.ops, cap * sizeof(*ops));
        if (!ops)
            return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "%s: cannot queue into the group",
                              kind_name(op->kind));
        group.ops = ops;
        group.cap = cap;
    }
    group.ops[group.n++] = (struct group_entry){comm, *op};
    return WEFT_OK;
}

weft_result_t weft_group_start(void)
{
    weft_error_clear();
    group.depth++;
    return WEFT_OK;
}

/* Runs the queued operations, one batch per communicator in order of first use. */
weft_result_t weft_group_end(void)
{
    weft_error_clear();
    if (group.depth == 0)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_group_end without weft_group_start");
    if (--group.depth > 0)
        return WEFT_OK;
    weft_result_t r = WEFT_OK;
    struct weft_coll_op *batch = malloc((group.n ? group.n : 1) * sizeof(*batch));
    if (!batch)
        r = WEFT_ERROR(WEFT_ERR_NO_MEMORY, "weft_group_end: out of memory");
    for (size_t i = 0; r == WEFT_OK && i < group.n; i++) {
        struct weft_comm *comm = group.ops[i].comm;
        if (!comm)
            continue;
        size_t n = 0;
        for (size_t j = i; j < group.n; j++) {
            if (group.ops[j].comm == comm) {
                batch[n++] = group.ops[j].op;
                group.ops[j].comm = NULL;
            }
        }
        r = run(comm, batch, n);
    }
    free(batch);
    group.n = 0;
    return r;
}

weft_result_t weft_allreduce(const void *sendbuf, void *recvbuf, size_t count,
                             weft_dtype_t dtype, weft_op_t op, weft_comm_t comm,
                             weft_stream_t stream)
{
    const struct weft_coll_op o = {WEFT_COLL_ALLREDUCE, sendbuf, recvbuf, count, dtype, op, 0};
    return submit(comm, &o, stream);
}

weft_result_t weft_broadcast(const void *sendbuf, void *recvbuf, size_t count,
                             weft_dtype_t dtype, int root, weft_comm_t comm,
                             weft_stream_t stream)
{
    const struct weft_coll_op o = {WEFT_COLL_BROADCAST, sendbuf, recvbuf, count, dtype,
                                   WEFT_SUM, root};
    return submit(comm, &o, stream);
}

weft_result_t weft_reduce(const void *sendbuf, void *recvbuf, size_t count, weft_dtype_t dtype,
                          weft_op_t op, int root, weft_comm_t comm, weft_stream_t stream)
{
    const struct weft_coll_op o = {WEFT_COLL_REDUCE, sendbuf, recvbuf, count, dtype, op, root};
    return submit(comm, &o, stream);
}

weft_result_t weft_allgather(const void *sendbuf, void *recvbuf, size_t sendcount,
                             weft_dtype_t dtype, weft_comm_t comm, weft_stream_t stream)
{
    const struct weft_coll_op o = {WEFT_COLL_ALLGATHER, sendbuf, recvbuf, sendcount, dtype,
                                   WEFT_SUM, 0};
    return submit(comm, &o, stream);
}

weft_result_t weft_reduce_scatter(const void *sendbuf, void *recvbuf, size_t recvcount,
                                  weft_dtype_t dtype, weft_op_t op, weft_comm_t comm,
                                  weft_stream_t stream)
{
    const struct weft_coll_op o = {WEFT_COLL_REDUCE_SCATTER, sendbuf, recvbuf, recvcount, dtype,
                                   op, 0};
    return submit(comm, &o, stream);
}

weft_result_t weft_alltoall(const void *sendbuf, void *recvbuf, size_t count, weft_dtype_t dtype,
                            weft_comm_t comm, weft_stream_t stream)
{
    const struct weft_coll_op o = {WEFT_COLL_ALLTOALL, sendbuf, recvbuf, count, dtype, WEFT_SUM,
                                   0};
    return submit(comm, &o, stream);
}

weft_result_t weft_send(const void *sendbuf, size_t count, weft_dtype_t dtype, int peer,
                        weft_comm_t comm, weft_stream_t stream)
{
    const struct weft_coll_op o = {WEFT_COLL_SEND, sendbuf, NULL, count, dtype, WEFT_SUM, peer};
    return submit(comm, &o, stream);
}

weft_result_t weft_recv(void *recvbuf, size_t count, weft_dtype_t dtype, int peer,
                        weft_comm_t comm, weft_stream_t stream)
{
    const struct weft_coll_op o = {WEFT_COLL_RECV, NULL, recvbuf, count, dtype, WEFT_SUM, peer};
    return submit(comm, &o, stream);
}

weft_result_t weft_barrier(weft_comm_t comm, weft_stream_t stream)
{
    const struct weft_coll_op o = {WEFT_COLL_BARRIER, NULL, NULL, 0, WEFT_UINT8, WEFT_SUM, 0};
    return submit(comm, &o, stream);
}

/* The handle is the net's: a registration with every transport that registers memory. */
weft_result_t weft_mem_register(weft_comm_t comm, void *buf, size_t size, void **handle)
{
    weft_error_clear();
    if (!comm || !handle || !buf || !size)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "weft_mem_register: comm, handle or buf is NULL, or size is 0");
    return weft_net_reg(comm->net, buf, size, handle);
}

weft_result_t weft_mem_deregister(weft_comm_t comm, void *handle)
{
    weft_error_clear();
    if (!comm || !handle)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_mem_deregister: comm or handle is NULL");
    weft_net_dereg(comm->net, handle);
    return WEFT_OK;
}
