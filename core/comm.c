/*
 * comm.c - communicator lifecycle: rendezvous, connections, split, destroy and abort, the
 * start and end of its stream worker, and the failure bookkeeping behind
 * weft_comm_get_async_error.
 */
#include "comm.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "config.h"
#include "error.h"
#include "exec.h"
#include "log.h"
#include "topo.h"
#include "collectives/device.h"
#include "collectives/sharp.h"
#include "gpu/stream.h"
#include "launcher/launch.h"

weft_result_t weft_get_version(int *version)
{
    if (!version)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_get_version: version is NULL");
    *version = WEFT_VERSION_CODE;
    return WEFT_OK;
}

weft_result_t weft_get_unique_id(weft_unique_id_t *id)
{
    weft_error_clear();
    if (!id)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_get_unique_id: id is NULL");
    WEFT_CHECK(weft_config_load());
    return weft_boot_root_start(NULL, id);
}

static weft_result_t oob_allgather(void *ctx, const void *mine, void *all, size_t len)
{
    return weft_boot_allgather(ctx, mine, all, len);
}

static weft_result_t oob_barrier(void *ctx)
{
    return weft_boot_barrier(ctx);
}

/* The worker first (it may use everything else), then the peers' buffers it mapped, then the
 * staging its streams read. */
static void comm_free(struct weft_comm *comm)
{
    weft_exec_stop(comm->exec);
    weft_dev_coll_destroy(comm->dev);
    weft_stream_gate_destroy(comm->gate, weft_config_double(WEFT_CFG_TIMEOUT));
    weft_coll_sharp_fini(&comm->coll);
    weft_coll_ctx_fini(&comm->coll);
    weft_net_destroy(comm->net);
    weft_boot_destroy(comm->boot);
    free(comm);
}

weft_result_t weft_comm_init_rank(weft_comm_t *out, int nranks, weft_unique_id_t id, int rank)
{
    weft_error_clear();
    WEFT_CHECK(weft_config_load());
    if (!out)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_comm_init_rank: comm is NULL");
    if (nranks < 1 || rank < 0 || rank >= nranks)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "weft_comm_init_rank: rank %d is not in [0, nranks=%d)", rank, nranks);
    weft_log_set_rank(rank);

    weft_result_t r;
    struct weft_comm *comm = calloc(1, sizeof(*comm));
    if (!comm)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "cannot allocate a communicator");
    comm->rank = rank;
    comm->nranks = nranks;
    WEFT_CHECK_GOTO(weft_boot_init(&id, rank, nranks, &comm->boot), r, fail);

    struct weft_net_params params = {
        .rank = rank,
        .nranks = nranks,
        .job_tag = weft_boot_job_tag(comm->boot),
        .timeout_s = weft_config_double(WEFT_CFG_TIMEOUT),
        .hostname = weft_log_hostname(),
    };
    weft_boot_transport_key(comm->boot, params.key);
    const struct weft_oob oob = {comm->boot, oob_allgather, oob_barrier};
    WEFT_CHECK_GOTO(weft_net_create(&params, &oob, &comm->net), r, fail);
    WEFT_CHECK_GOTO(weft_coll_ctx_init(&comm->coll, comm->net), r, fail);
    int local = 0;
    for (int q = 0; q < rank; q++)
        local += weft_net_peer_host(comm->net, q) == weft_net_peer_host(comm->net, rank);
    WEFT_CHECK_GOTO(weft_topo_bind(local, weft_net_nhosts(comm->net)), r, fail);
    WEFT_CHECK_GOTO(weft_coll_sharp_init(&comm->coll), r, fail);
    WEFT_INFO(INIT, "communicator ready: rank %d of %d on %s, %d host(s), job %s", rank, nranks,
              weft_log_hostname(), weft_net_nhosts(comm->net), params.job_tag);
    *out = comm;
    return WEFT_OK;

fail:
    WEFT_WARN(INIT, "weft_comm_init_rank failed: %s", weft_last_error());
    comm_free(comm);
    /* If this process hosts the rendezvous, let it tell the others before we return. */
    const double t = weft_config_double(WEFT_CFG_TIMEOUT);
    weft_boot_root_drain(t < 5 ? t : 5);
    return r;
}

weft_result_t weft_comm_init_env(weft_comm_t *comm)
{
    struct weft_launch l;

    weft_error_clear();
    if (!comm)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_comm_init_env: comm is NULL");
    WEFT_CHECK(weft_config_load());
    WEFT_CHECK(weft_launch_detect(&l));
    WEFT_INFO(INIT, "launched by %s (rendezvous: %s): rank %d of %d, local rank %d of %d",
              l.source, l.rendezvous, l.rank, l.nranks, l.local_rank, l.local_nranks);
    return weft_comm_init_rank(comm, l.nranks, l.id, l.rank);
}

/* Ranks that pass the same color form one communicator; its first member (by key, then old
 * rank) hosts the new rendezvous and hands its id to the others through the parent. */
weft_result_t weft_comm_split(weft_comm_t comm, int color, int key, weft_comm_t *newcomm)
{
    weft_error_clear();
    if (!comm || !newcomm)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_comm_split: comm or newcomm is NULL");
    if (color < 0 && color != WEFT_SPLIT_NOCOLOR)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "weft_comm_split: color %d must be >= 0 or WEFT_SPLIT_NOCOLOR", color);
    const int n = comm->nranks;
    weft_result_t r = WEFT_OK;
    int(*keys)[2] = calloc((size_t)n, sizeof(*keys));
    weft_unique_id_t *ids = calloc((size_t)n, sizeof(*ids));
    if (!keys || !ids) {
        r = WEFT_ERROR(WEFT_ERR_NO_MEMORY, "weft_comm_split: out of memory");
        goto out;
    }
    int mine[2] = {color, key};
    WEFT_CHECK_GOTO(weft_boot_allgather(comm->boot, mine, keys, sizeof(mine)), r, out);

    /* My position in the new group and its leader: members sorted by (key, old rank). */
    int size = 0, new_rank = 0, leader = -1;
    for (int q = 0; q < n; q++) {
        if (color == WEFT_SPLIT_NOCOLOR || keys[q][0] != color)
            continue;
        size++;
        if (keys[q][1] < key || (keys[q][1] == key && q < comm->rank))
            new_rank++;
        if (leader < 0 || keys[q][1] < keys[leader][1])
            leader = q;
    }
    weft_unique_id_t my_id;
    memset(&my_id, 0, sizeof(my_id));
    if (leader == comm->rank)
        WEFT_CHECK_GOTO(weft_boot_root_start(NULL, &my_id), r, out);
    WEFT_CHECK_GOTO(weft_boot_allgather(comm->boot, &my_id, ids, sizeof(my_id)), r, out);
    if (color == WEFT_SPLIT_NOCOLOR) {
        *newcomm = NULL;
        goto out;
    }
    r = weft_comm_init_rank(newcomm, size, ids[leader], new_rank);
    weft_log_set_rank(comm->rank);

out:
    free(keys);
    free(ids);
    return r;
}

weft_result_t weft_comm_destroy(weft_comm_t comm)
{
    weft_error_clear();
    if (!comm)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_comm_destroy: comm is NULL");
    weft_result_t r = WEFT_OK;
    /* Outstanding stream operations finish first (each within WEFT_TIMEOUT of its stream
     * reaching it); the streams are let go either way. */
    if (comm->exec)
        r = weft_exec_drain(comm->exec, weft_config_double(WEFT_CFG_TIMEOUT));
    const weft_result_t failed = weft_comm_failure(comm, NULL, 0);
    weft_exec_stop(comm->exec);
    comm->exec = NULL;
    /* Peers may still be draining what this rank sent: leave together, unless the
     * communicator is broken and some peers may be gone. */
    if (r == WEFT_OK && failed == WEFT_OK && weft_net_status(comm->net) == WEFT_OK)
        r = weft_boot_barrier(comm->boot);
    comm_free(comm);
    return r;
}

/* The stream worker stops first: what it has queued is released at once with
 * WEFT_ERR_ABORTED, an operation it is running ends within that operation's deadline. */
weft_result_t weft_comm_abort(weft_comm_t comm)
{
    if (!comm)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_comm_abort: comm is NULL");
    __atomic_store_n(&comm->aborting, 1, __ATOMIC_SEQ_CST);
    if (comm->net)
        weft_net_request_abort(comm->net);
    if (comm->exec) {
        weft_exec_abort(comm->exec);
        weft_exec_stop(comm->exec);
        comm->exec = NULL;
    }
    /* A host call on another thread sees the request in its wait, aborts the transports
     * itself and returns: only after that may this thread touch them, or free them. */
    const double timeout = weft_config_double(WEFT_CFG_TIMEOUT);
    const double deadline = weft_now_s() + timeout;
    while (__atomic_load_n(&comm->busy, __ATOMIC_SEQ_CST) > 0) {
        if (weft_now_s() > deadline)
            return WEFT_ERROR(WEFT_ERR_TIMEOUT,
                              "weft_comm_abort: rank %d: a call on another thread did not return "
                              "within WEFT_TIMEOUT=%g s; the communicator is left allocated",
                              comm->rank, timeout);
        const struct timespec ms = {0, 1000 * 1000};
        nanosleep(&ms, NULL);
    }
    weft_net_abort(comm->net);
    comm_free(comm);
    return WEFT_OK;
}

weft_result_t weft_comm_enter(struct weft_comm *comm, const char *call)
{
    __atomic_fetch_add(&comm->busy, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&comm->aborting, __ATOMIC_SEQ_CST)) {
        weft_comm_leave(comm);
        return WEFT_ERROR(WEFT_ERR_ABORTED, "%s: rank %d: the communicator is being aborted",
                          call, comm->rank);
    }
    return WEFT_OK;
}

void weft_comm_leave(struct weft_comm *comm)
{
    __atomic_fetch_sub(&comm->busy, 1, __ATOMIC_SEQ_CST);
}

weft_result_t weft_comm_stream_start(struct weft_comm *comm)
{
    if (comm->exec)
        return WEFT_OK;
    WEFT_CHECK(weft_stream_gate_create(comm->rank, &comm->gate));
    /* Before the worker starts, so before any stream waits for it (see device.h). */
    weft_result_t r = comm->dev ? WEFT_OK : weft_dev_coll_create(&comm->coll, &comm->dev);
    if (r == WEFT_OK)
        r = weft_exec_start(&comm->exec, comm->rank);
    if (r != WEFT_OK) {
        weft_stream_gate_destroy(comm->gate, 0);
        comm->gate = NULL;
    }
    return r;
}

weft_result_t weft_comm_failure(struct weft_comm *comm, char *msg, size_t len)
{
    if (msg && len)
        msg[0] = '\0';
    if (comm->async_error != WEFT_OK)
        return comm->async_error;
    return comm->exec ? weft_exec_error(comm->exec, msg, len) : WEFT_OK;
}

weft_result_t weft_comm_quiesce(struct weft_comm *comm, const char *call)
{
    if (comm->exec)
        WEFT_CHECK(weft_exec_drain(comm->exec, weft_config_double(WEFT_CFG_TIMEOUT)));
    return weft_comm_check(comm, call);
}

weft_result_t weft_comm_check(struct weft_comm *comm, const char *call)
{
    char msg[1024];
    const weft_result_t failed = weft_comm_failure(comm, msg, sizeof(msg));
    if (failed != WEFT_OK)
        return WEFT_ERROR(failed,
                          "%s: rank %d: the communicator failed earlier (%s%s%s); destroy or "
                          "abort it",
                          call, comm->rank, weft_strerror(failed), msg[0] ? ": " : "", msg);
    return WEFT_OK;
}

weft_result_t weft_comm_get_async_error(weft_comm_t comm, weft_result_t *async_error)
{
    if (!comm || !async_error)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "weft_comm_get_async_error: comm or async_error is NULL");
    *async_error = weft_comm_failure(comm, NULL, 0);
    return WEFT_OK;
}

weft_result_t weft_comm_rank(weft_comm_t comm, int *rank)
{
    if (!comm || !rank)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_comm_rank: comm or rank is NULL");
    *rank = comm->rank;
    return WEFT_OK;
}

weft_result_t weft_comm_size(weft_comm_t comm, int *size)
{
    if (!comm || !size)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_comm_size: comm or size is NULL");
    *size = comm->nranks;
    return WEFT_OK;
}

weft_result_t weft_comm_device(weft_comm_t comm, int *device)
{
    if (!comm || !device)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_comm_device: comm or device is NULL");
    *device = -1;
    return WEFT_OK;
}
