/*
 * channels.c - several pipelines at once (WEFT_NCHANNELS): each keeps its own window of
 * receives and sends, none ever blocks the others; the rank polls them all and drives the
 * net's progress only when none of them can move.
 */
#include <sched.h>

#include "collectives/coll_internal.h"
#include "collectives/hier.h"
#include "core/clock.h"
#include "core/error.h"

struct chan {
    const struct weft_pipe *p;
    struct weft_request rreq[WEFT_COLL_MAX_DEPTH], sreq[WEFT_COLL_MAX_DEPTH];
    size_t nrecv, nsend, rpost, rdone, spost, sdone;
    bool shared;
};

static int done(const struct weft_request *req)
{
    return __atomic_load_n(&req->done, __ATOMIC_ACQUIRE);
}

/* Moves one channel as far as it goes without waiting; *moved tells whether it did. */
static weft_result_t step(struct chan *c, bool *moved)
{
    const struct weft_pipe *p = c->p;
    struct weft_net *net = p->ctx->net;
    const size_t depth = (size_t)p->depth;
    while (c->sdone < c->spost && done(&c->sreq[c->sdone % depth])) {
        WEFT_CHECK(weft_net_wait_one(net, &c->sreq[c->sdone % depth]));
        c->sdone++;
        *moved = true;
    }
    /* receives first, so that the peer's sends find them posted */
    while (c->rpost < c->nrecv && c->rpost - c->rdone < depth &&
           (!c->shared || c->rpost < c->sdone + depth)) {
        void *buf;
        size_t len;
        p->recv_buf(p->arg, c->rpost, &buf, &len);
        WEFT_CHECK(weft_net_irecv(net, p->recv_peer, buf, len,
                                  weft_coll_tag(p->kind, p->ctx->seq, (uint32_t)c->rpost),
                                  &c->rreq[c->rpost % depth]));
        c->rpost++;
        *moved = true;
    }
    while (c->spost < c->nsend && c->spost - c->sdone < depth &&
           (c->spost < p->dep_free || c->spost - p->dep_lag < c->rdone)) {
        const void *buf;
        size_t len;
        p->send_buf(p->arg, c->spost, &buf, &len);
        WEFT_CHECK(weft_net_isend(net, p->send_peer, buf, len,
                                  weft_coll_tag(p->kind, p->ctx->seq, (uint32_t)c->spost),
                                  &c->sreq[c->spost % depth]));
        c->spost++;
        *moved = true;
    }
    while (c->rdone < c->rpost && done(&c->rreq[c->rdone % depth])) {
        WEFT_CHECK(weft_net_wait_one(net, &c->rreq[c->rdone % depth]));
        if (p->process)
            p->process(p->arg, c->rdone);
        c->rdone++;
        *moved = true;
    }
    return WEFT_OK;
}

/* The oldest request still in flight, for the net's own wait to name what broke. */
static struct weft_request *pending(struct chan *c, int n)
{
    for (int i = 0; i < n; i++) {
        const size_t depth = (size_t)c[i].p->depth;
        if (c[i].rdone < c[i].rpost)
            return &c[i].rreq[c[i].rdone % depth];
        if (c[i].sdone < c[i].spost)
            return &c[i].sreq[c[i].sdone % depth];
    }
    return NULL;
}

weft_result_t weft_pipe_run_channels(const struct weft_pipe *pipes, int n)
{
    if (n == 1)
        return weft_pipe_run(&pipes[0]);
    struct weft_coll_ctx *ctx = pipes[0].ctx;
    struct chan c[WEFT_COLL_MAX_CHANNELS];
    weft_result_t r = WEFT_OK;
    if (n < 1 || n > WEFT_COLL_MAX_CHANNELS)
        return WEFT_ERROR(WEFT_ERR_INTERNAL, "rank %d: %d channels out of range", ctx->rank, n);
    for (int i = 0; i < n; i++) {
        const struct weft_pipe *p = &pipes[i];
        if (p->depth < 1 || p->depth > WEFT_COLL_MAX_DEPTH)
            return WEFT_ERROR(WEFT_ERR_INTERNAL, "rank %d: pipeline depth %d out of range",
                              ctx->rank, p->depth);
        c[i] = (struct chan){.p = p};
        c[i].nrecv = p->recv_peer >= 0 ? p->nmsg : 0;
        c[i].nsend = p->send_peer >= 0 ? p->nmsg : 0;
        c[i].shared = p->slot_shared && c[i].nsend && c[i].nrecv;
    }
    double deadline = 0;
    for (unsigned long idle = 0;;) {
        bool moved = false, left = false;
        for (int i = 0; i < n; i++) {
            WEFT_CHECK_GOTO(step(&c[i], &moved), r, fail);
            left |= c[i].rdone < c[i].nrecv || c[i].sdone < c[i].nsend;
        }
        if (!left)
            return WEFT_OK;
        if (moved) {
            idle = 0;
            deadline = 0;
            continue;
        }
        r = weft_net_progress(ctx->net);
        if (r == WEFT_OK)
            r = weft_net_status(ctx->net);
        if (r != WEFT_OK) {
            struct weft_request *req = pending(c, n);
            r = req ? weft_net_wait_one(ctx->net, req) : r; /* the net's wait names the cause */
            if (r == WEFT_OK)
                continue;
            goto fail;
        }
        if (++idle > 64)
            sched_yield();
        if ((idle & 63) == 63) {
            const double t = weft_now_s();
            if (deadline == 0) {
                deadline = t + ctx->timeout_s;
            } else if (t > deadline) {
                r = WEFT_ERROR(WEFT_ERR_TIMEOUT,
                               "rank %d: %s over %d channels: no progress for WEFT_TIMEOUT=%.0f "
                               "s (channel 0: receive %zu of %zu from rank %d, send %zu of %zu "
                               "to rank %d)",
                               ctx->rank, weft_coll_call_name(pipes[0].kind), n, ctx->timeout_s,
                               c[0].rdone, c[0].nrecv, pipes[0].recv_peer, c[0].sdone,
                               c[0].nsend, pipes[0].send_peer);
                goto fail;
            }
        }
    }
fail:
    weft_coll_fail(ctx);
    return r;
}
