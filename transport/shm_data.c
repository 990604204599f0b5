/*
 * shm_data.c - the shared-memory data paths: eager messages through the ring's slots, CMA
 * rendezvous for large ones, matching in posting order, and completing or failing requests.
 */
#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "core/error.h"
#include "core/log.h"
#include "transport/shm_internal.h"

/* Rendezvous reads are cut into pieces so one progress call never stalls on a huge copy. */
#define SHM_CMA_PIECE ((size_t)4 << 20)

/* Sender-side request states (priv[0]). */
enum { TX_HEADER = 0, TX_BODY, TX_RNDV_WAIT };
/* Receiver-side state of the message at the ring's tail. */
enum { RX_IDLE = 0, RX_BODY, RX_DISCARD, RX_RNDV };

/* ---- failure ---------------------------------------------------------------------------- */

static bool ep_has_requests(const struct weft_ep *ep)
{
    return !weft_request_queue_empty(&ep->sendq) || !weft_request_queue_empty(&ep->rndvq) ||
           !weft_request_queue_empty(&ep->recvq);
}

void weft_shm_ep_flush(struct weft_ep *ep, weft_result_t status)
{
    weft_request_queue_fail(&ep->sendq, status);
    weft_request_queue_fail(&ep->rndvq, status);
    weft_request_queue_fail(&ep->recvq, status);
    ep->rx_state = RX_IDLE;
}

/* Fails what can no longer complete. An exited peer's buffered messages were delivered by
 * the receive pass before this runs; an aborted peer delivers nothing. */
static void ep_fail_pending(struct weft_ep *ep)
{
    if (!ep_has_requests(ep))
        return;
    weft_result_t code;
    if (ep->peer_abort)
        code = WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d aborted (pid %d on host %s), seen by rank %d",
                          ep->peer, (int)ep->pid, weft_log_hostname(), ep->tp->rank);
    else
        code = WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d (pid %d) on host %s exited, seen by rank %d",
                          ep->peer, (int)ep->pid, weft_log_hostname(), ep->tp->rank);
    weft_shm_ep_flush(ep, code);
}

/* Slots the next span of a message's body takes: those its `left` bytes fill, at most a
 * span's worth. The two sides may cut a body into spans differently: every slot of it but
 * the last is full either way. */
static uint64_t body_span(const struct weft_tp *tp, size_t left)
{
    const uint64_t need = (left + tp->slot_size - 1) / tp->slot_size;
    return need < tp->span_slots ? need : tp->span_slots;
}

/* ---- sender ----------------------------------------------------------------------------- */

static void tx_progress(struct weft_ep *ep, bool *progressed)
{
    struct weft_tp *tp = ep->tp;
    struct weft_shm_queue *q = ep->tx.q;

    if (!weft_request_queue_empty(&ep->rndvq)) {
        uint64_t done = atomic_load_explicit(&q->rndv_done, memory_order_acquire);
        struct weft_request *w;
        while ((w = weft_request_queue_peek(&ep->rndvq)) != NULL && w->priv[1] <= done) {
            weft_request_complete(weft_request_queue_pop(&ep->rndvq), WEFT_OK);
            *progressed = true;
        }
        if (!weft_request_queue_empty(&ep->rndvq) &&
            atomic_load_explicit(&q->cma, memory_order_acquire) == WEFT_SHM_CMA_REFUSED) {
            /* The peer cannot read us: it waits for this payload right behind the
             * announcement (nothing was queued after it), so stream it from the start. */
            struct weft_request *r = weft_request_queue_pop(&ep->rndvq);
            r->priv[0] = TX_BODY;
            r->offset = 0;
            weft_request_queue_push_front(&ep->sendq, r);
            ep->tx_cma = false;
        }
    }

    struct weft_request *r;
    while ((r = weft_request_queue_peek(&ep->sendq)) != NULL) {
        /* Until the peer proved it can read us, nothing may follow an announcement: a
         * refusal must find the payload's stream next in the ring. */
        if (!weft_request_queue_empty(&ep->rndvq) &&
            atomic_load_explicit(&q->cma, memory_order_relaxed) != WEFT_SHM_CMA_OK)
            return;
        uint64_t got;
        if (r->priv[0] == TX_HEADER) {
            uint8_t *slot = weft_shm_ring_acquire(&ep->tx, 1, &got);
            if (!slot)
                return;
            struct weft_shm_msg_hdr *h = (struct weft_shm_msg_hdr *)slot;
            h->tag = r->tag;
            h->len = r->len;
            h->reserved = 0;
            if (ep->tx_cma && r->len >= tp->cma_threshold &&
                atomic_load_explicit(&q->cma, memory_order_relaxed) != WEFT_SHM_CMA_REFUSED) {
                h->kind = WEFT_SHM_MSG_RNDV;
                h->addr = (uint64_t)(uintptr_t)r->buf;
                h->seq = ++ep->rndv_posted;
                r->priv[0] = TX_RNDV_WAIT;
                r->priv[1] = h->seq;
                weft_shm_ring_publish(&ep->tx, 1);
                weft_request_queue_push(&ep->rndvq, weft_request_queue_pop(&ep->sendq));
                *progressed = true;
                continue;
            }
            h->kind = WEFT_SHM_MSG_EAGER;
            h->addr = 0;
            h->seq = 0;
            size_t n = r->len < tp->slot_size - WEFT_SHM_MSG_HDR_BYTES
                           ? r->len
                           : tp->slot_size - WEFT_SHM_MSG_HDR_BYTES;
            if (n)
                memcpy(slot + WEFT_SHM_MSG_HDR_BYTES, r->buf, n);
            weft_shm_ring_publish(&ep->tx, 1);
            r->offset = n;
            r->priv[0] = TX_BODY;
            *progressed = true;
        }
        while (r->offset < r->len) {
            const size_t left = r->len - r->offset;
            uint8_t *span = weft_shm_ring_acquire(&ep->tx, body_span(tp, left), &got);
            if (!span)
                return;
            size_t n = left < got * tp->slot_size ? left : got * tp->slot_size;
            memcpy(span, (const uint8_t *)r->buf + r->offset, n);
            weft_shm_ring_publish(&ep->tx, got);
            r->offset += n;
            *progressed = true;
        }
        weft_request_complete(weft_request_queue_pop(&ep->sendq), WEFT_OK);
        *progressed = true;
    }
}

/* ---- receiver --------------------------------------------------------------------------- */

static void rndv_ack(struct weft_ep *ep)
{
    atomic_fetch_add_explicit(&ep->rx.q->rndv_done, 1, memory_order_release);
}

/* Checks the header at the ring's tail against the oldest posted receive and starts it. */
static void rx_start(struct weft_ep *ep, const uint8_t *slot, struct weft_request *r)
{
    struct weft_tp *tp = ep->tp;
    struct weft_shm_msg_hdr h;
    memcpy(&h, slot, sizeof(h));
    weft_result_t err = WEFT_OK;
    if (h.tag != r->tag)
        err = WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d on host %s got tag %llu from rank %d, "
                         "expected %llu: ranks called operations in different orders", tp->rank,
                         weft_log_hostname(), (unsigned long long)h.tag, ep->peer,
                         (unsigned long long)r->tag);
    else if (h.len != r->len)
        err = WEFT_ERROR(WEFT_ERR_INVALID_ARG, "rank %d on host %s got %llu bytes from rank %d "
                         "(tag %llu) for a receive of %zu bytes", tp->rank, weft_log_hostname(),
                         (unsigned long long)h.len, ep->peer, (unsigned long long)h.tag, r->len);
    size_t inline_max = tp->slot_size - WEFT_SHM_MSG_HDR_BYTES;
    if (err != WEFT_OK) {
        /* Drop the message so the pair stays in step for whatever comes next. */
        weft_request_complete(weft_request_queue_pop(&ep->recvq), err);
        if (h.kind == WEFT_SHM_MSG_RNDV) {
            rndv_ack(ep);
        } else if (h.len > inline_max) {
            ep->discard_left = h.len - inline_max;
            ep->rx_state = RX_DISCARD;
        }
        weft_shm_ring_release(&ep->rx, 1);
        return;
    }
    if (h.kind == WEFT_SHM_MSG_RNDV) {
        ep->rx_addr = h.addr;
        r->offset = 0;
        ep->rx_state = RX_RNDV;
        weft_shm_ring_release(&ep->rx, 1);
        return;
    }
    size_t n = h.len < inline_max ? h.len : inline_max;
    if (n)
        memcpy(r->buf, slot + WEFT_SHM_MSG_HDR_BYTES, n);
    weft_shm_ring_release(&ep->rx, 1);
    r->offset = n;
    if (r->offset == r->len)
        weft_request_complete(weft_request_queue_pop(&ep->recvq), WEFT_OK);
    else
        ep->rx_state = RX_BODY;
}

/* One piece of a rendezvous read. Returns false when the ring must wait (streaming). */
static bool rx_rndv(struct weft_ep *ep, struct weft_request *r)
{
    struct weft_tp *tp = ep->tp;
    size_t n = r->len - r->offset < SHM_CMA_PIECE ? r->len - r->offset : SHM_CMA_PIECE;
    struct iovec local = { (uint8_t *)r->buf + r->offset, n };
    struct iovec remote = { (void *)(uintptr_t)(ep->rx_addr + r->offset), n };
    ssize_t got = process_vm_readv(ep->pid, &local, 1, &remote, 1, 0);
    if (got < 0) {
        int err = errno;
        uint32_t state = atomic_load_explicit(&ep->rx.q->cma, memory_order_relaxed);
        if ((err == EPERM || err == ENOSYS) && state == WEFT_SHM_CMA_UNKNOWN && r->offset == 0) {
            if (!tp->cma_refusal_logged) {
                WEFT_INFO(NET, "shm: rank %d on host %s cannot read rank %d (pid %d) with "
                          "process_vm_readv (%s); large messages from it are copied through "
                          "the queue", tp->rank, weft_log_hostname(), ep->peer, (int)ep->pid,
                          strerror(err));
                tp->cma_refusal_logged = true;
            }
            ep->rx_state = RX_BODY;
            atomic_store_explicit(&ep->rx.q->cma, WEFT_SHM_CMA_REFUSED, memory_order_release);
            return true;
        }
        if (err == ESRCH || weft_shm_pid_gone(ep)) {
            ep->exited = true;
            ep_fail_pending(ep);
            return false;
        }
        weft_result_t code = WEFT_ERROR_ERR(WEFT_ERR_SYSTEM, err, "process_vm_readv",
                                            "rank %d on host %s reading %zu bytes from rank %d "
                                            "(pid %d)", tp->rank, weft_log_hostname(), n,
                                            ep->peer, (int)ep->pid);
        weft_request_complete(weft_request_queue_pop(&ep->recvq), code);
        /* The pair cannot stay in step: make the sender fail rather than wait. */
        atomic_store_explicit(&ep->rx.q->rx_aborted, WEFT_SHM_ABORT_NOTICE(tp->rank),
                              memory_order_release);
        ep->rx_state = RX_IDLE;
        return false;
    }
    r->offset += (size_t)got;
    if (r->offset < r->len)
        return false; /* the next piece on the next pass keeps progress responsive */
    if (atomic_load_explicit(&ep->rx.q->cma, memory_order_relaxed) == WEFT_SHM_CMA_UNKNOWN)
        atomic_store_explicit(&ep->rx.q->cma, WEFT_SHM_CMA_OK, memory_order_relaxed);
    rndv_ack(ep);
    ep->rx_state = RX_IDLE;
    weft_request_complete(weft_request_queue_pop(&ep->recvq), WEFT_OK);
    return true;
}

static void rx_progress(struct weft_ep *ep, bool *progressed)
{
    struct weft_tp *tp = ep->tp;
    for (;;) {
        struct weft_request *r = weft_request_queue_peek(&ep->recvq);
        if (ep->rx_state == RX_RNDV) {
            *progressed = true;
            if (!rx_rndv(ep, r))
                return;
            continue;
        }
        if (ep->rx_state == RX_IDLE && !r)
            return; /* unmatched messages wait in the ring: it is the unexpected queue */
        const size_t left = ep->rx_state == RX_DISCARD ? ep->discard_left
                            : ep->rx_state == RX_BODY      ? r->len - r->offset
                                                           : 0;
        uint64_t got;
        const uint8_t *slot = weft_shm_ring_peek(&ep->rx, left ? body_span(tp, left) : 1, &got);
        if (!slot)
            return;
        *progressed = true;
        const size_t n = left < got * tp->slot_size ? left : got * tp->slot_size;
        if (ep->rx_state == RX_IDLE) {
            rx_start(ep, slot, r);
        } else if (ep->rx_state == RX_DISCARD) {
            weft_shm_ring_release(&ep->rx, got);
            ep->discard_left -= n;
            if (ep->discard_left == 0)
                ep->rx_state = RX_IDLE;
        } else { /* RX_BODY */
            memcpy((uint8_t *)r->buf + r->offset, slot, n);
            weft_shm_ring_release(&ep->rx, got);
            r->offset += n;
            if (r->offset == r->len) {
                ep->rx_state = RX_IDLE;
                weft_request_complete(weft_request_queue_pop(&ep->recvq), WEFT_OK);
            }
        }
    }
}

/* ---- operations ------------------------------------------------------------------------- */

/* Whether the peer aborted; the first notice's culprit is kept for the net to name. */
static bool peer_aborted(struct weft_ep *ep)
{
    if (ep->peer_abort)
        return true;
    uint32_t notice = atomic_load_explicit(&ep->rx.q->tx_aborted, memory_order_relaxed);
    if (!notice)
        notice = atomic_load_explicit(&ep->tx.q->rx_aborted, memory_order_relaxed);
    if (!notice)
        return false;
    atomic_thread_fence(memory_order_acquire);
    ep->peer_abort = true;
    if (ep->tp->culprit == WEFT_CULPRIT_NONE)
        ep->tp->culprit = WEFT_SHM_ABORT_CULPRIT(notice);
    return true;
}

void weft_shm_ep_progress(struct weft_ep *ep, bool *progressed)
{
    (void)peer_aborted(ep);
    if (ep->peer_abort) {
        if (ep_has_requests(ep)) {
            ep_fail_pending(ep);
            *progressed = true;
        }
        return;
    }
    if (!weft_request_queue_empty(&ep->sendq) || !weft_request_queue_empty(&ep->rndvq))
        tx_progress(ep, progressed);
    if (!weft_request_queue_empty(&ep->recvq) || ep->rx_state != RX_IDLE)
        rx_progress(ep, progressed);
    if (ep->exited && ep_has_requests(ep)) {
        /* Sends cannot finish; receives the ring could satisfy already did above. */
        ep_fail_pending(ep);
        *progressed = true;
    }
}

static weft_result_t post_check(struct weft_ep *ep, const void *buf, size_t len,
                                struct weft_request *req, const char *what)
{
    if (!ep || !req || (!buf && len))
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "shm %s: NULL %s", what,
                          !ep ? "endpoint" : !req ? "request" : "buffer");
    if (ep->tp->aborted)
        return WEFT_ERROR(WEFT_ERR_ABORTED, "rank %d: shm %s to rank %d after abort",
                          ep->tp->rank, what, ep->peer);
    if (peer_aborted(ep))
        return WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d aborted (pid %d on host %s), seen by rank "
                          "%d posting a %s", ep->peer, (int)ep->pid, weft_log_hostname(),
                          ep->tp->rank, what);
    return WEFT_OK;
}

weft_result_t weft_shm_isend(struct weft_ep *ep, const void *buf, size_t len, uint64_t tag,
                             struct weft_request *req)
{
    WEFT_CHECK(post_check(ep, buf, len, req, "send"));
    if (ep->exited)
        return WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d (pid %d) on host %s exited, seen by rank "
                          "%d posting a send", ep->peer, (int)ep->pid, weft_log_hostname(),
                          ep->tp->rank);
    weft_request_init(req, (void *)buf, len, tag, ep->peer, 1);
    weft_request_queue_push(&ep->sendq, req);
    bool progressed = false;
    tx_progress(ep, &progressed); /* small messages leave at once */
    return WEFT_OK;
}

weft_result_t weft_shm_irecv(struct weft_ep *ep, void *buf, size_t len, uint64_t tag,
                             struct weft_request *req)
{
    WEFT_CHECK(post_check(ep, buf, len, req, "receive"));
    weft_request_init(req, buf, len, tag, ep->peer, 0);
    weft_request_queue_push(&ep->recvq, req);
    return WEFT_OK;
}
