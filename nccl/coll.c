/*
 * coll.c - NCCL's collectives and point-to-point calls on Weft's: the arguments checked and
 * translated (datatype, operation, stream, the communicator's device), the call made, and
 * Weft's result turned into NCCL's. Pre-multiplied sums are not in Weft: refused.
 */
#include <stdint.h>

#include "internal.h"
#include "later.h"

enum kind { ALLREDUCE, BROADCAST, REDUCE, ALLGATHER, REDUCE_SCATTER, ALLTOALL, SEND, RECV };

struct call {
    enum kind kind;
    const char *name;
    const void *sendbuf;
    void *recvbuf;
    size_t count;
    ncclDataType_t dtype;
    ncclRedOp_t op;
    int root; /* or peer */
};

static bool reduces(enum kind k)
{
    return k == ALLREDUCE || k == REDUCE || k == REDUCE_SCATTER;
}

static weft_result_t dispatch(const struct call *c, weft_dtype_t dt, weft_op_t op, weft_comm_t w,
                              weft_stream_t s)
{
    switch (c->kind) {
    case ALLREDUCE:
        return weft_allreduce(c->sendbuf, c->recvbuf, c->count, dt, op, w, s);
    case BROADCAST:
        return weft_broadcast(c->sendbuf, c->recvbuf, c->count, dt, c->root, w, s);
    case REDUCE:
        return weft_reduce(c->sendbuf, c->recvbuf, c->count, dt, op, c->root, w, s);
    case ALLGATHER:
        return weft_allgather(c->sendbuf, c->recvbuf, c->count, dt, w, s);
    case REDUCE_SCATTER:
        return weft_reduce_scatter(c->sendbuf, c->recvbuf, c->count, dt, op, w, s);
    case ALLTOALL:
        return weft_alltoall(c->sendbuf, c->recvbuf, c->count, dt, w, s);
    case SEND:
        return weft_send(c->sendbuf, c->count, dt, c->root, w, s);
    case RECV:
    default:
        return weft_recv(c->recvbuf, c->count, dt, c->root, w, s);
    }
}

static ncclResult_t call(const struct call *c, ncclComm_t comm, cudaStream_t stream)
{
    weft_dtype_t dt;
    weft_op_t op = WEFT_SUM;
    if (!weft_nccl_dtype(c->dtype, &dt))
        return weft_nccl_error(ncclInvalidArgument,
                               "%s: datatype %d is not one Weft supports (NCCL 2.21's ten: "
                               "int8 .. bfloat16; no fp8)",
                               c->name, (int)c->dtype);
    if (reduces(c->kind) && !weft_nccl_op(c->op, &op))
        return weft_nccl_error(ncclInvalidArgument,
                               "%s: operation %d is not sum, prod, max, min or avg (and none "
                               "can be created: Weft has no pre-multiplied sum)",
                               c->name, (int)c->op);
    ncclResult_t res = weft_nccl_enter(comm, c->name);
    if (res != ncclSuccess)
        return res;
    const int previous = weft_nccl_use_device(comm->device);
    weft_result_t r = dispatch(c, dt, op, comm->weft, weft_nccl_stream(stream));
    weft_nccl_restore_device(previous, comm->device);
    weft_nccl_leave(comm);
    return weft_nccl_from_weft(r);
}

ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count,
                           ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                           cudaStream_t stream)
{
    const struct call c = {ALLREDUCE, "ncclAllReduce", sendbuff, recvbuff, count, datatype, op, 0};
    return call(&c, comm, stream);
}

ncclResult_t ncclBroadcast(const void *sendbuff, void *recvbuff, size_t count,
                           ncclDataType_t datatype, int root, ncclComm_t comm, cudaStream_t stream)
{
    const struct call c = {BROADCAST, "ncclBroadcast", sendbuff, recvbuff,
                           count,     datatype,        ncclSum,  root};
    return call(&c, comm, stream);
}

ncclResult_t ncclBcast(void *buff, size_t count, ncclDataType_t datatype, int root, ncclComm_t comm,
                       cudaStream_t stream)
{
    const struct call c = {BROADCAST, "ncclBcast", buff, buff, count, datatype, ncclSum, root};
    return call(&c, comm, stream);
}

ncclResult_t ncclReduce(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype,
                        ncclRedOp_t op, int root, ncclComm_t comm, cudaStream_t stream)
{
    const struct call c = {REDUCE, "ncclReduce", sendbuff, recvbuff, count, datatype, op, root};
    return call(&c, comm, stream);
}

ncclResult_t ncclAllGather(const void *sendbuff, void *recvbuff, size_t sendcount,
                           ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream)
{
    const struct call c = {ALLGATHER, "ncclAllGather", sendbuff, recvbuff,
                           sendcount, datatype,        ncclSum,  0};
    return call(&c, comm, stream);
}

ncclResult_t ncclReduceScatter(const void *sendbuff, void *recvbuff, size_t recvcount,
                               ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                               cudaStream_t stream)
{
    const struct call c = {
        REDUCE_SCATTER, "ncclReduceScatter", sendbuff, recvbuff, recvcount, datatype, op, 0};
    return call(&c, comm, stream);
}

/* NCCL 2.28 (later.h): binaries built against a newer header may call it. */
ncclResult_t ncclAlltoAll(const void *sendbuff, void *recvbuff, size_t count,
                          ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream)
{
    const struct call c = {ALLTOALL, "ncclAlltoAll", sendbuff, recvbuff,
                           count,    datatype,       ncclSum,  0};
    return call(&c, comm, stream);
}

ncclResult_t ncclSend(const void *sendbuff, size_t count, ncclDataType_t datatype, int peer,
                      ncclComm_t comm, cudaStream_t stream)
{
    const struct call c = {SEND, "ncclSend", sendbuff, NULL, count, datatype, ncclSum, peer};
    return call(&c, comm, stream);
}

ncclResult_t ncclRecv(void *recvbuff, size_t count, ncclDataType_t datatype, int peer,
                      ncclComm_t comm, cudaStream_t stream)
{
    const struct call c = {RECV, "ncclRecv", NULL, recvbuff, count, datatype, ncclSum, peer};
    return call(&c, comm, stream);
}

ncclResult_t ncclRedOpCreatePreMulSum(ncclRedOp_t *op, void *scalar, ncclDataType_t datatype,
                                      ncclScalarResidence_t residence, ncclComm_t comm)
{
    (void)residence;
    weft_dtype_t dt;
    if (!op || !scalar || !comm || !weft_nccl_dtype(datatype, &dt))
        return weft_nccl_error(ncclInvalidArgument,
                               "ncclRedOpCreatePreMulSum: op, scalar or comm is NULL, or "
                               "datatype %d is invalid",
                               (int)datatype);
    return weft_nccl_error(ncclInvalidUsage,
                           "ncclRedOpCreatePreMulSum: unsupported: Weft has no pre-multiplied "
                           "sum (use ncclSum after scaling, or ncclAvg)");
}

ncclResult_t ncclRedOpDestroy(ncclRedOp_t op, ncclComm_t comm)
{
    if (!comm)
        return weft_nccl_error(ncclInvalidArgument, "ncclRedOpDestroy: comm is NULL");
    return weft_nccl_error(ncclInvalidArgument,
                           "ncclRedOpDestroy: operation %d was not created by "
                           "ncclRedOpCreatePreMulSum%s",
                           (int)op, op < ncclNumOps ? " (it is a built-in one)" : "");
}
