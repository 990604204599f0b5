/*
 * poll.c - what the algorithms that drive several peers at once share: one idle pass of
 * their polling loop (progress, yield, WEFT_TIMEOUT), collecting a finished request, and a
 * blocking exchange whose two directions carry different lengths.
 */
#include <sched.h>

#include "collectives/coll_internal.h"
#include "core/clock.h"
#include "core/error.h"

bool weft_coll_req_done(const struct weft_request *req)
{
    return __atomic_load_n(&req->done, __ATOMIC_ACQUIRE) != 0;
}

weft_result_t weft_coll_poll(struct weft_coll_ctx *ctx, struct weft_coll_poller *poller,
                             bool busy, const char *what, struct weft_request *pending)
{
    if (busy) {
        poller->idle = 0;
        poller->deadline = 0;
    }
    weft_result_t r = weft_net_progress(ctx->net);
    if (r == WEFT_OK)
        r = weft_net_status(ctx->net);
    if (r != WEFT_OK) /* the net's own wait says what broke */
        return pending ? weft_net_wait_one(ctx->net, pending)
                       : WEFT_ERROR(r, "rank %d: %s: the net failed", ctx->rank, what);
    if (busy)
        return WEFT_OK;
    /* Spin a little (a peer's message is often a few hundred ns away), then give the core
     * away: ranks oversubscribe cores on small hosts. */
    if (++poller->idle > 64)
        sched_yield();
    if ((poller->idle & 63) == 63) {
        const double t = weft_now_s();
        if (poller->deadline == 0)
            poller->deadline = t + ctx->timeout_s;
        else if (t > poller->deadline)
            return WEFT_ERROR(WEFT_ERR_TIMEOUT, "rank %d: %s: no progress for WEFT_TIMEOUT=%.0f s",
                              ctx->rank, what, ctx->timeout_s);
    }
    return WEFT_OK;
}

weft_result_t weft_coll_exchange(struct weft_coll_ctx *ctx, enum weft_coll_kind kind,
                                 int send_peer, const void *sendbuf, size_t send_len,
                                 int recv_peer, void *recvbuf, size_t recv_len, uint32_t step)
{
    struct weft_request reqs[2];
    struct weft_request *list[2] = {NULL, NULL};
    const uint64_t tag = weft_coll_tag(kind, ctx->seq, step);
    weft_result_t r;
    if (recv_peer >= 0) {
        list[0] = &reqs[0];
        WEFT_CHECK_GOTO(weft_net_irecv(ctx->net, recv_peer, recvbuf, recv_len, tag, list[0]), r,
                        fail);
    }
    if (send_peer >= 0) {
        list[1] = &reqs[1];
        WEFT_CHECK_GOTO(weft_net_isend(ctx->net, send_peer, sendbuf, send_len, tag, list[1]), r,
                        fail);
    }
    WEFT_CHECK_GOTO(weft_net_wait(ctx->net, list, 2), r, fail);
    return WEFT_OK;
fail:
    weft_coll_fail(ctx);
    return r;
}
