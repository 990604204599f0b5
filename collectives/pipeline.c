/*
 * pipeline.c - the engine of every chunked algorithm (up to `depth` receives and sends in
 * flight, each send started once its input is ready), and the blocking step of the others.
 */
#include <stdlib.h>
#include <string.h>

#include "collectives/coll_internal.h"
#include "core/error.h"

static int request_done(const struct weft_request *req)
{
    return __atomic_load_n(&req->done, __ATOMIC_ACQUIRE);
}

void weft_coll_fail(struct weft_coll_ctx *ctx)
{
    if (weft_net_status(ctx->net) == WEFT_OK)
        weft_net_abort(ctx->net);
}

weft_result_t weft_coll_sendrecv(struct weft_coll_ctx *ctx, enum weft_coll_kind kind,
                                 int send_peer, const void *sendbuf, int recv_peer,
                                 void *recvbuf, size_t len, uint32_t step)
{
    struct weft_request reqs[2];
    struct weft_request *list[2] = {NULL, NULL}; /* the wait skips a side not posted */
    const uint64_t tag = weft_coll_tag(kind, ctx->seq, step);
    weft_result_t r;
    /* The receive goes first, so that the peer's send finds it posted. */
    if (recv_peer >= 0) {
        list[0] = &reqs[0];
        WEFT_CHECK_GOTO(weft_net_irecv(ctx->net, recv_peer, recvbuf, len, tag, list[0]), r, fail);
    }
    if (send_peer >= 0) {
        list[1] = &reqs[1];
        WEFT_CHECK_GOTO(weft_net_isend(ctx->net, send_peer, sendbuf, len, tag, list[1]), r, fail);
    }
    WEFT_CHECK_GOTO(weft_net_wait(ctx->net, list, 2), r, fail);
    return WEFT_OK;
fail:
    weft_coll_fail(ctx);
    return r;
}

static bool send_ready(const struct weft_pipe *p, size_t k, size_t rdone)
{
    return k < p->dep_free || k - p->dep_lag < rdone;
}

weft_result_t weft_pipe_run(const struct weft_pipe *p)
{
    struct weft_request rreq[WEFT_COLL_MAX_DEPTH];
    struct weft_request *sreq = NULL;
    const size_t depth = (size_t)p->depth;
    const size_t nrecv = p->recv_peer >= 0 ? p->nmsg : 0;
    const size_t nsend = p->send_peer >= 0 ? p->nmsg : 0;
    const bool shared = p->slot_shared && nsend && nrecv;
    size_t rpost = 0, rdone = 0, spost = 0, sdone = 0;
    weft_result_t r = WEFT_OK;

    if (depth < 1 || depth > WEFT_COLL_MAX_DEPTH)
        return WEFT_ERROR(WEFT_ERR_INTERNAL, "rank %d: pipeline depth %zu out of range",
                          p->ctx->rank, depth);
    /* Sends are limited only by their inputs, never by a window: a send that waited for an
     * earlier one to complete could wait on a peer that waits for it (a ring of waits). */
    if (nsend) {
        sreq = calloc(nsend, sizeof(*sreq));
        if (!sreq)
            return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: cannot allocate %zu requests",
                              p->ctx->rank, nsend);
    }
    while (rdone < nrecv || sdone < nsend) {
        /* Retire finished sends without blocking: with shared slots they free receives. */
        while (sdone < spost && request_done(&sreq[sdone])) {
            WEFT_CHECK_GOTO(weft_net_wait_one(p->ctx->net, &sreq[sdone]), r, fail);
            sdone++;
        }
        /* Receives first, so that a peer's sends find them posted. */
        while (rpost < nrecv && rpost - rdone < depth && (!shared || rpost < sdone + depth)) {
            void *buf;
            size_t len;
            p->recv_buf(p->arg, rpost, &buf, &len);
            WEFT_CHECK_GOTO(weft_net_irecv(p->ctx->net, p->recv_peer, buf, len,
                                           weft_coll_tag(p->kind, p->ctx->seq, (uint32_t)rpost),
                                           &rreq[rpost % depth]),
                            r, fail);
            rpost++;
        }
        while (spost < nsend && send_ready(p, spost, rdone)) {
            const void *buf;
            size_t len;
            p->send_buf(p->arg, spost, &buf, &len);
            WEFT_CHECK_GOTO(weft_net_isend(p->ctx->net, p->send_peer, buf, len,
                                           weft_coll_tag(p->kind, p->ctx->seq, (uint32_t)spost),
                                           &sreq[spost]),
                            r, fail);
            spost++;
        }
        if (rdone < rpost) {
            WEFT_CHECK_GOTO(weft_net_wait_one(p->ctx->net, &rreq[rdone % depth]), r, fail);
            if (p->process)
                p->process(p->arg, rdone);
            rdone++;
        } else if (sdone < spost) {
            WEFT_CHECK_GOTO(weft_net_wait_one(p->ctx->net, &sreq[sdone]), r, fail);
            sdone++;
        } else if (rdone < nrecv || sdone < nsend) {
            r = WEFT_ERROR(WEFT_ERR_INTERNAL,
                           "rank %d: pipeline stalled (recv %zu/%zu, send %zu/%zu)",
                           p->ctx->rank, rdone, nrecv, sdone, nsend);
            goto fail;
        }
    }
    free(sreq);
    return WEFT_OK;

fail:
    weft_coll_fail(p->ctx);
    free(sreq);
    return r;
}
