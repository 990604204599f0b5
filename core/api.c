/*
 * api.c - the public collective and point-to-point calls: argument checks with messages that
 * name the call and the rank, group queueing, and dispatch: host calls to the collective
 * layer, stream calls to the communicator's worker: through pinned staging on the stream
 * (gpu/stream.h), or, for one large collective or one with every rank on one host, through the
 * worker's own pipelined staging or CUDA IPC (collectives/device.h).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/device.h"
#include "comm.h"
#include "config.h"
#include "error.h"
#include "exec.h"
#include "gpu/gpu.h"
#include "gpu/stream.h"
#include "log.h"
#include "transport/net.h"

/* Operations queued by weft_group_start on this thread, run at the outermost end. */
struct group_entry {
    struct weft_comm *comm;
    weft_stream_t stream;
    struct weft_coll_op op;
};

static _Thread_local struct {
    int depth;
    struct group_entry *ops;
    size_t n, cap;
    weft_result_t refused; /* a call broke the group's stream rules: end runs nothing */
    char why[512];
} group;

static weft_result_t validate(const struct weft_comm *comm, const struct weft_coll_op *op,
                              weft_stream_t stream)
{
    const char *call = weft_coll_call_name(op->kind);
    if (!comm)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "%s: comm is NULL", call);
    if (stream && !weft_gpu_available())
        return WEFT_ERROR(WEFT_ERR_UNSUPPORTED,
                          "%s: rank %d: a stream means device buffers, but there is no GPU "
                          "(%s); pass NULL for host buffers",
                          call, comm->rank, weft_gpu_describe());
    if (op->kind == WEFT_COLL_BARRIER)
        return WEFT_OK;
    const size_t esize = weft_dtype_size(op->dtype);
    if (esize == 0)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "%s: rank %d: invalid dtype %d", call,
                          comm->rank, (int)op->dtype);
    if (weft_coll_reduces(op->kind) && ((unsigned)op->op >= WEFT_NUM_OPS))
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "%s: rank %d: invalid op %d", call, comm->rank,
                          (int)op->op);
    const size_t sblocks = weft_coll_send_blocks(op->kind, comm->nranks);
    const size_t rblocks = weft_coll_recv_blocks(op->kind, comm->nranks);
    const size_t blocks = sblocks > rblocks ? sblocks : rblocks;
    if (op->count > SIZE_MAX / esize / blocks)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "%s: rank %d: count %zu x %zu bytes x %zu blocks overflows size_t",
                          call, comm->rank, op->count, esize, blocks);
    const bool need_send = weft_coll_uses_send(op, comm->rank);
    const bool need_recv = weft_coll_uses_recv(op, comm->rank);
    if (op->count > 0 && ((need_send && !op->sendbuf) || (need_recv && !op->recvbuf)))
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "%s: rank %d: %s is NULL with count %zu", call,
                          comm->rank, need_send && !op->sendbuf ? "sendbuf" : "recvbuf",
                          op->count);
    /* Managed memory is host-reachable, so the host path serves it; device memory is
     * reached only by a stream, which orders the copies around the operation. */
    const void *bufs[2] = {need_send ? op->sendbuf : NULL, need_recv ? op->recvbuf : NULL};
    for (int i = 0; i < 2 && op->count > 0 && !stream; i++)
        if (weft_gpu_pointer_kind(bufs[i]) == WEFT_GPU_MEM_DEVICE)
            return WEFT_ERROR(WEFT_ERR_UNSUPPORTED,
                              "%s: rank %d: %s %p is CUDA device memory, which needs a stream: "
                              "pass the cudaStream_t that orders it (or host or "
                              "cudaMallocManaged buffers with stream NULL)",
                              call, comm->rank, i == 0 ? "sendbuf" : "recvbuf", bufs[i]);
    const int rooted = op->kind == WEFT_COLL_BROADCAST || op->kind == WEFT_COLL_REDUCE ||
                       op->kind == WEFT_COLL_SEND || op->kind == WEFT_COLL_RECV;
    if (rooted && (op->root < 0 || op->root >= comm->nranks))
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "%s: rank %d: %s %d is not in [0, %d)", call,
                          comm->rank,
                          op->kind == WEFT_COLL_SEND || op->kind == WEFT_COLL_RECV ? "peer"
                                                                                   : "root",
                          op->root, comm->nranks);
    /* Before anything runs, on the rank whose buffers they are: the algorithms would
     * otherwise read data they already overwrote. */
    char why[320];
    if (op->count > 0 && !weft_coll_layout_ok(op, comm->rank, comm->nranks, why, sizeof(why)))
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "%s: rank %d: %s", call, comm->rank, why);
    return WEFT_OK;
}

/* ---- host calls ---------------------------------------------------------------------- */

static weft_result_t run(struct weft_comm *comm, const struct weft_coll_op *ops, size_t n)
{
    const char *call = n == 1 ? weft_coll_call_name(ops[0].kind) : "weft_group_end";
    WEFT_CHECK(weft_comm_enter(comm, call));
    weft_result_t r = weft_comm_quiesce(comm, call);
    if (r == WEFT_OK) {
        r = weft_coll_check_calls(&comm->coll, ops, n);
        /* A fingerprint mismatch leaves nothing in flight (the net is fine): the call fails,
         * the communicator stays usable. */
        bool usable = r == WEFT_ERR_INVALID_ARG && weft_net_status(comm->net) == WEFT_OK;
        if (r == WEFT_OK)
            r = weft_coll_run(&comm->coll, ops, n);
        if (r != WEFT_OK && !usable) {
            comm->async_error = r;
            WEFT_WARN(COLL, "%s failed: %s", call, weft_last_error());
        }
    }
    weft_comm_leave(comm);
    return r;
}

/* ---- stream calls ----------------------------------------------------------------------
 * One item per call (or per communicator of a group), run by the worker once the stream's
 * event says the stream reached it. Two ways:
 *   - staged on the stream: its ops point at pinned staging that the stream's own copies fill
 *     before the event and empty after the release (small calls, groups, send/recv: no extra
 *     synchronisation);
 *   - on the device: the stream only signals and waits, and weft_dev_coll_run moves the data
 *     itself, pipelined or through CUDA IPC (one collective that is large or whose ranks are
 *     all on one host). */

enum stream_way { WAY_STAGED_ON_STREAM, WAY_DEVICE, WAY_DEVICE_TRY_IPC };

struct stream_item {
    struct weft_exec_item base;
    struct weft_comm *comm;
    struct weft_stream_ticket ticket;
    weft_result_t enqueue_failed; /* the stream waits, but its copies were not all enqueued */
    enum stream_way way;
    size_t n;
    struct weft_coll_op ops[];
};

static weft_result_t item_ready(struct weft_exec_item *base)
{
    return weft_stream_ready(&((struct stream_item *)base)->ticket);
}

static weft_result_t item_run(struct weft_exec_item *base)
{
    struct stream_item *it = (struct stream_item *)base;
    if (it->enqueue_failed != WEFT_OK)
        return WEFT_ERROR(it->enqueue_failed,
                          "%s: rank %d: its stream copies could not all be enqueued (the call "
                          "returned %s)",
                          base->name, it->comm->rank, weft_strerror(it->enqueue_failed));
    /* A mismatch fails the item: the stream goes on, the communicator keeps the error. */
    WEFT_CHECK(weft_coll_check_calls(&it->comm->coll, it->ops, it->n));
    if (it->way != WAY_STAGED_ON_STREAM)
        return weft_dev_coll_run(&it->comm->coll, &it->comm->dev, &it->ops[0],
                                 it->way == WAY_DEVICE_TRY_IPC,
                                 weft_config_double(WEFT_CFG_TIMEOUT));
    return weft_coll_run(&it->comm->coll, it->ops, it->n);
}

static void item_release(struct weft_exec_item *base, weft_result_t result)
{
    (void)result; /* the stream goes on either way; the failure is the comm's async error */
    weft_stream_release(&((struct stream_item *)base)->ticket);
}

static void item_free(struct weft_exec_item *base)
{
    free(base);
}

static const struct weft_exec_item_ops stream_item_ops = {
    .ready = item_ready,
    .run = item_run,
    .release = item_release,
    .free = item_free,
};

/* A device buffer to stage: which op, and whether it is its recvbuf. */
struct stage_ref {
    size_t op;
    bool recv;
};

/* Adds ptr to the staging list if it is device memory; host and managed memory are used in
 * place. */
static void stage_add(struct weft_stage_buf *bufs, struct stage_ref *refs, size_t *nbufs,
                      const void *ptr, size_t bytes, unsigned dir, size_t op, bool recv)
{
    if (bytes == 0 || weft_gpu_pointer_kind(ptr) != WEFT_GPU_MEM_DEVICE)
        return;
    bufs[*nbufs] = (struct weft_stage_buf){.dev = ptr, .bytes = bytes, .dir = dir};
    refs[*nbufs] = (struct stage_ref){op, recv};
    (*nbufs)++;
}

/* How a stream call runs. Only what is equal on every rank decides (the calls, the count, the
 * hosts, the knobs; not the kinds of the buffers), so every rank takes the same way and none
 * waits for a peer that took another. */
static weft_result_t choose_way(const struct weft_comm *comm, const struct weft_coll_op *ops,
                                size_t n, enum stream_way *way)
{
    *way = WAY_STAGED_ON_STREAM;
    const char *mode = weft_config_str(WEFT_CFG_GPU_IPC);
    const bool off = strcmp(mode, "0") == 0;
    if (!off && strcmp(mode, "auto") != 0)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "%s: rank %d: WEFT_GPU_IPC=%s: want auto or 0",
                          weft_coll_call_name(ops[0].kind), comm->rank, mode);
    const enum weft_coll_kind kind = ops[0].kind;
    if (n != 1 || ops[0].count == 0 || comm->nranks < 2 || kind == WEFT_COLL_BARRIER ||
        kind == WEFT_COLL_SEND || kind == WEFT_COLL_RECV)
        return WEFT_OK;
    if (!off && weft_net_nhosts(comm->net) == 1)
        *way = WAY_DEVICE_TRY_IPC;
    else if (weft_dev_coll_chunks(&ops[0], comm->nranks) > 1)
        *way = WAY_DEVICE;
    return WEFT_OK;
}

/* Queues ops[0..n) of one communicator as one item on `stream`: returns once the copies,
 * the event and the stream's wait are enqueued. A call run on the device stages nothing on
 * the stream: the stream only signals the worker and waits for it. */
static weft_result_t enqueue(struct weft_comm *comm, const struct weft_coll_op *ops, size_t n,
                             weft_stream_t stream)
{
    const char *call = n == 1 ? weft_coll_call_name(ops[0].kind) : "weft_group_end";
    WEFT_CHECK(weft_comm_stream_start(comm));
    WEFT_CHECK(weft_comm_check(comm, call));
    enum stream_way way;
    WEFT_CHECK(choose_way(comm, ops, n, &way));

    struct stream_item *it = malloc(sizeof(*it) + n * sizeof(it->ops[0]));
    struct weft_stage_buf *bufs = malloc(2 * n * sizeof(*bufs));
    struct stage_ref *refs = malloc(2 * n * sizeof(*refs));
    weft_result_t r = WEFT_OK;
    if (!it || !bufs || !refs) {
        r = WEFT_ERROR(WEFT_ERR_NO_MEMORY, "%s: rank %d: cannot queue %zu operation%s", call,
                       comm->rank, n, n == 1 ? "" : "s");
        goto out;
    }
    *it = (struct stream_item){
        .base = {&stream_item_ops, call, NULL}, .comm = comm, .way = way, .n = n};
    memcpy(it->ops, ops, n * sizeof(*ops));
    size_t nbufs = 0;
    for (size_t i = 0; i < n && way == WAY_STAGED_ON_STREAM; i++) {
        struct weft_coll_op *op = &it->ops[i];
        /* Buffers this rank does not use stay out of staging and out of the host's reach. */
        if (weft_coll_uses_send(op, comm->rank))
            stage_add(bufs, refs, &nbufs, op->sendbuf, weft_coll_send_bytes(op, comm->nranks),
                      WEFT_STAGE_IN, i, false);
        else if (weft_gpu_pointer_kind(op->sendbuf) == WEFT_GPU_MEM_DEVICE)
            op->sendbuf = NULL;
        if (weft_coll_uses_recv(op, comm->rank))
            stage_add(bufs, refs, &nbufs, op->recvbuf, weft_coll_recv_bytes(op, comm->nranks),
                      WEFT_STAGE_OUT, i, true);
        else if (weft_gpu_pointer_kind(op->recvbuf) == WEFT_GPU_MEM_DEVICE)
            op->recvbuf = NULL;
    }
    bool armed = false;
    r = weft_stream_enqueue(comm->gate, stream, bufs, nbufs, call, &it->ticket, &armed);
    if (r != WEFT_OK && !armed)
        goto out;
    if (r != WEFT_OK) {
        /* The stream already waits for this ticket: the worker must release it in turn. */
        it->enqueue_failed = r;
    } else {
        /* In-place calls stay in place: overlapping buffers share staging (the layout). */
        for (size_t b = 0; b < nbufs; b++) {
            struct weft_coll_op *op = &it->ops[refs[b].op];
            if (refs[b].recv)
                op->recvbuf = bufs[b].host;
            else
                op->sendbuf = bufs[b].host;
        }
    }
    const weft_result_t pushed = weft_exec_push(comm->exec, &it->base);
    it = NULL; /* the executor's now, even when the push failed */
    if (r == WEFT_OK)
        r = pushed;

out:
    free(it);
    free(bufs);
    free(refs);
    return r;
}

/* ---- dispatch and groups ----------------------------------------------------------------- */

/* A group is all host calls or all stream calls, and one stream per communicator: a
 * communicator's group becomes one item, which one stream orders. */
static weft_result_t group_admit(const struct weft_comm *comm, const struct weft_coll_op *op,
                                 weft_stream_t stream)
{
    for (size_t i = 0; i < group.n; i++) {
        const struct group_entry *e = &group.ops[i];
        if ((e->stream != NULL) != (stream != NULL))
            return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                              "%s: rank %d: a group cannot mix calls with a stream and calls "
                              "without one (%s came before with %s); the whole group is "
                              "refused",
                              weft_coll_call_name(op->kind), comm->rank,
                              weft_coll_call_name(e->op.kind),
                              e->stream ? "a stream" : "stream NULL");
        if (e->comm == comm && e->stream != stream)
            return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                              "%s: rank %d: stream %p, but %s of the same communicator in this "
                              "group came with stream %p: one stream per communicator in a "
                              "group; the whole group is refused",
                              weft_coll_call_name(op->kind), comm->rank, stream,
                              weft_coll_call_name(e->op.kind), e->stream);
    }
    return WEFT_OK;
}

static weft_result_t submit(struct weft_comm *comm, const struct weft_coll_op *op,
                            weft_stream_t stream)
{
    weft_error_clear();
    WEFT_CHECK(validate(comm, op, stream));
    if (group.depth == 0)
        return stream ? enqueue(comm, op, 1, stream) : run(comm, op, 1);
    weft_result_t r = group_admit(comm, op, stream);
    if (r != WEFT_OK) {
        if (group.refused == WEFT_OK) {
            group.refused = r;
            snprintf(group.why, sizeof(group.why), "%s", weft_last_error());
        }
        return r;
    }
    if (group.n == group.cap) {
        size_t cap = group.cap ? group.cap * 2 : 16;
        struct group_entry *ops = realloc(group.ops, cap * sizeof(*ops));
        if (!ops)
            return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "%s: cannot queue into the group",
                              weft_coll_call_name(op->kind));
        group.ops = ops;
        group.cap = cap;
    }
    group.ops[group.n++] = (struct group_entry){comm, stream, *op};
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
    if (group.refused != WEFT_OK)
        r = WEFT_ERROR(group.refused, "weft_group_end: the group was refused, nothing ran: %s",
                       group.why);
    struct weft_coll_op *batch = malloc((group.n ? group.n : 1) * sizeof(*batch));
    if (r == WEFT_OK && !batch)
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
        const weft_stream_t stream = group.ops[i].stream;
        char why[512];
        if (!weft_coll_group_layout_ok(batch, n, comm->rank, comm->nranks, why, sizeof(why))) {
            r = WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_group_end: rank %d: %s; nothing ran",
                           comm->rank, why);
            break;
        }
        r = stream ? enqueue(comm, batch, n, stream) : run(comm, batch, n);
    }
    free(batch);
    group.n = 0;
    group.refused = WEFT_OK;
    group.why[0] = '\0';
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

/* The stream worker may be using the net: registrations wait until it is idle. */
static weft_result_t net_idle(struct weft_comm *comm)
{
    return comm->exec ? weft_exec_drain(comm->exec, weft_config_double(WEFT_CFG_TIMEOUT))
                      : WEFT_OK;
}

/* The handle is the net's: a registration with every transport that registers memory. */
weft_result_t weft_mem_register(weft_comm_t comm, void *buf, size_t size, void **handle)
{
    weft_error_clear();
    if (!comm || !handle || !buf || !size)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "weft_mem_register: comm, handle or buf is NULL, or size is 0");
    WEFT_CHECK(net_idle(comm));
    return weft_net_reg(comm->net, buf, size, handle);
}

weft_result_t weft_mem_deregister(weft_comm_t comm, void *handle)
{
    weft_error_clear();
    if (!comm || !handle)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_mem_deregister: comm or handle is NULL");
    WEFT_CHECK(net_idle(comm));
    weft_net_dereg(comm->net, handle);
    return WEFT_OK;
}
