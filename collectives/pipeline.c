/*
 * pipeline.c - the engine of every chunked algorithm (up to `depth` receives and `depth` sends
 * in flight, each send started once its input is ready), and the blocking step of the others.
 */
#include <sched.h>
#include <string.h>

#include "collectives/coll_internal.h"
#include "core/clock.h"
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

/* Drives the net until `a` or `b` is done: the wait of a rank with both a receive and a send
 * in flight, either of which may be what lets it go on (the receive: data to process; the
 * send: room in the send window or a shared slot). Errors of a finished request are left to
 * the wait_one that collects it. Fails after WEFT_TIMEOUT without either finishing. */
static weft_result_t wait_either(const struct weft_pipe *p, struct weft_request *a,
                                 struct weft_request *b, size_t ak, size_t bk)
{
    struct weft_net *net = p->ctx->net;
    double deadline = 0;
    for (unsigned long idle = 0;; idle++) {
        if (request_done(a) || request_done(b))
            return WEFT_OK;
        weft_result_t r = weft_net_progress(net);
        if (r == WEFT_OK)
            r = weft_net_status(net);
        if (r != WEFT_OK) /* the net's own wait says what broke */
            return weft_net_wait_one(net, a);
        if (idle > 64)
            sched_yield();
        if ((idle & 63) == 63) {
            const double t = weft_now_s();
            if (deadline == 0)
                deadline = t + p->ctx->timeout_s;
            else if (t > deadline)
                return WEFT_ERROR(WEFT_ERR_TIMEOUT,
                                  "rank %d: %s: no progress for WEFT_TIMEOUT=%.0f s: receive %zu "
                                  "of %zu from rank %d and send %zu of %zu to rank %d still "
                                  "pending",
                                  p->ctx->rank, weft_coll_call_name(p->kind), p->ctx->timeout_s,
                                  ak, p->nmsg, p->recv_peer, bk, p->nmsg, p->send_peer);
        }
    }
}

static bool send_ready(const struct weft_pipe *p, size_t k, size_t rdone)
{
    return k < p->dep_free || k - p->dep_lag < rdone;
}

weft_result_t weft_pipe_run(const struct weft_pipe *p)
{
    struct weft_request rreq[WEFT_COLL_MAX_DEPTH], sreq[WEFT_COLL_MAX_DEPTH];
    const size_t depth = (size_t)p->depth;
    const size_t nrecv = p->recv_peer >= 0 ? p->nmsg : 0;
    const size_t nsend = p->send_peer >= 0 ? p->nmsg : 0;
    const bool shared = p->slot_shared && nsend && nrecv;
    size_t rpost = 0, rdone = 0, spost = 0, sdone = 0;
    weft_result_t r = WEFT_OK;

    if (depth < 1 || depth > WEFT_COLL_MAX_DEPTH)
        return WEFT_ERROR(WEFT_ERR_INTERNAL, "rank %d: pipeline depth %zu out of range",
                          p->ctx->rank, depth);
    /* At most `depth` sends and `depth` receives in flight (WEFT_PIPELINE_DEPTH), in request
     * rings on the stack: nothing is allocated per message. With both in flight the rank
     * waits for whichever of the oldest receive and the oldest send finishes first, so a full
     * send window never keeps it from processing a receive (which a peer may be waiting
     * for), nor a slow receive from refilling the window (a wait on one of them alone could
     * close a ring of waits). */
    while (rdone < nrecv || sdone < nsend) {
        /* Retire finished sends without blocking: they free the window and shared slots. */
        while (sdone < spost && request_done(&sreq[sdone % depth])) {
            WEFT_CHECK_GOTO(weft_net_wait_one(p->ctx->net, &sreq[sdone % depth]), r, fail);
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
        while (spost < nsend && spost - sdone < depth && send_ready(p, spost, rdone)) {
            const void *buf;
            size_t len;
            p->send_buf(p->arg, spost, &buf, &len);
            WEFT_CHECK_GOTO(weft_net_isend(p->ctx->net, p->send_peer, buf, len,
                                           weft_coll_tag(p->kind, p->ctx->seq, (uint32_t)spost),
                                           &sreq[spost % depth]),
                            r, fail);
            spost++;
        }
        if (rdone < rpost && sdone < spost) {
            WEFT_CHECK_GOTO(wait_either(p, &rreq[rdone % depth], &sreq[sdone % depth], rdone,
                                        sdone),
                            r, fail);
            if (!request_done(&rreq[rdone % depth]))
                continue; /* a send finished: retire it at the top */
        }
        if (rdone < rpost) {
            WEFT_CHECK_GOTO(weft_net_wait_one(p->ctx->net, &rreq[rdone % depth]), r, fail);
            if (p->process)
                p->process(p->arg, rdone);
            rdone++;
        } else if (sdone < spost) {
            WEFT_CHECK_GOTO(weft_net_wait_one(p->ctx->net, &sreq[sdone % depth]), r, fail);
            sdone++;
        } else if (rdone < nrecv || sdone < nsend) {
            r = WEFT_ERROR(WEFT_ERR_INTERNAL,
                           "rank %d: pipeline stalled (recv %zu/%zu, send %zu/%zu)",
                           p->ctx->rank, rdone, nrecv, sdone, nsend);
            goto fail;
        }
    }
    return WEFT_OK;

fail:
    weft_coll_fail(p->ctx);
    return r;
}
