/*
 * verbs_data.c - the verbs transport's message protocol (see verbs_internal.h): eager
 * entries in the peer's receive ring with credits, zero-copy rendezvous by RDMA WRITE or
 * READ, the completion queue, and the failure paths (error completions, async events, a
 * peer's abort) that turn into an error naming the peer, device and port.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/clock.h"
#include "core/log.h"

#ifdef WEFT_HAVE_VERBS
#include "transport/verbs_internal.h"
#include "transport/verbs_wrid.h"

#define SIGNAL_EVERY 16     /* one signaled send work request in this many */
#define POLL_BATCH 32       /* completions taken per ibv_poll_cq */
#define ASYNC_EVERY 1024    /* progress calls between looks at the async event queue */
/* progress calls between looks at the clock for probes: a waiter that yields the CPU between
 * calls on a loaded host makes few calls a second, and must still probe every PROBE_EVERY_S */
#define PROBE_CLOCK_EVERY 64
#define IDLE_CREDIT_POLLS 32 /* idle progress calls before owed credits go on their own */
#define PROBE_EVERY_S 0.5   /* liveness probes of peers we wait for */

/* The transport's fields of a request (struct weft_request.priv). */
#define RQ_SEQ(r) ((r)->priv[0])
#define RQ_STATE(r) ((r)->priv[2])
#define RQ_WR(r) ((r)->priv[3]) /* the work request whose completion finishes it */
#define RQ_STATUS(r) ((r)->priv[4])
#define RQ_DATA_WR(r) ((r)->priv[5]) /* and the data queue pairs' completed RQ_DATA_WR */
enum {
    ST_FINISHED = 1 << 0, /* complete it (with RQ_STATUS) once those before it are */
    ST_RTS = 1 << 1,      /* send: the RTS entry is out */
    ST_WAIT_WR = 1 << 2,  /* the data moves until the send queues have completed RQ_WR */
    ST_MATCHED = 1 << 3,  /* receive: its ring entry arrived and matched */
    ST_FIN = 1 << 4,      /* rendezvous: the peer said FIN */
    ST_FIN_OWED = 1 << 5  /* the data moved (read into our receive, or written over several
                           * queue pairs); our FIN is still to send */
};

/* The registration a rendezvous request holds (priv[1]). */
static struct verbs_mr *rq_mr(const struct weft_request *req)
{
    return (struct verbs_mr *)(uintptr_t)req->priv[1];
}

static void rq_set_mr(struct weft_request *req, struct verbs_mr *m)
{
    req->priv[1] = (uint64_t)(uintptr_t)m;
}

/* Drops the registration `req` holds. */
static void rq_put_mr(struct weft_tp *tp, struct weft_request *req)
{
    weft_verbs_mr_put(tp, rq_mr(req));
    rq_set_mr(req, NULL);
}

static uint32_t imm(enum verbs_imm_kind kind, uint64_t counter)
{
    return htonl(((uint32_t)kind << VERBS_IMM_KIND_SHIFT) | ((uint32_t)counter & VERBS_IMM_MASK));
}

/* The 64-bit counter nearest above `base` whose low bits are `low`. */
static uint64_t widen(uint64_t base, uint32_t low)
{
    return base + ((low - (uint32_t)base) & VERBS_IMM_MASK);
}

static size_t eager_max(const struct weft_tp *tp)
{
    return tp->slot_bytes - sizeof(struct verbs_entry);
}

/* Slot `slot` of this peer's ring in `base` (our receive rings or our send staging). */
static uint8_t *slot_in(const struct weft_ep *ep, void *base, uint64_t slot)
{
    const struct weft_tp *tp = ep->tp;
    return (uint8_t *)base +
           ((size_t)ep->ring * tp->slots + (size_t)(slot % tp->slots)) * tp->slot_bytes;
}

static uint8_t *ring_slot(const struct weft_ep *ep, uint64_t slot)
{
    return slot_in(ep, ep->tp->rings, slot);
}

static uint8_t *staging_slot(const struct weft_ep *ep, uint64_t slot)
{
    return slot_in(ep, ep->tp->staging, slot);
}

static void finish(struct weft_request *req, weft_result_t status)
{
    RQ_STATE(req) |= ST_FINISHED;
    if (RQ_STATUS(req) == WEFT_OK)
        RQ_STATUS(req) = (uint64_t)status;
}

/* ---- failure ------------------------------------------------------------------------- */

static void fail_queue(struct weft_tp *tp, struct weft_request_queue *q, weft_result_t status)
{
    struct weft_request *req;
    while ((req = weft_request_queue_pop(q)) != NULL) {
        rq_put_mr(tp, req);
        weft_request_complete(req, status);
    }
}

void weft_verbs_ep_drop_retired(struct weft_ep *ep)
{
    while (ep->retired_head) {
        struct verbs_retired *r = ep->retired_head;
        ep->retired_head = r->next;
        weft_verbs_mr_put(ep->tp, r->mr);
        free(r);
    }
    ep->retired_tail = NULL;
}

void weft_verbs_ep_fail(struct weft_ep *ep, weft_result_t status)
{
    if (ep->failed == WEFT_OK)
        ep->failed = status;
    fail_queue(ep->tp, &ep->sends, status);
    fail_queue(ep->tp, &ep->recvs, status);
    ep->spost = ep->rmatch = ep->rcts = NULL;
    weft_verbs_ep_drop_retired(ep); /* a queue pair in error sends nothing more */
}

static const char *wc_hint(enum ibv_wc_status st)
{
    switch (st) {
    case IBV_WC_RETRY_EXC_ERR:
        return ": the peer stopped answering (it died, or the path to it is down)";
    case IBV_WC_RNR_RETRY_EXC_ERR:
        return ": the peer has no receive posted (it stopped progressing)";
    case IBV_WC_REM_ACCESS_ERR:
    case IBV_WC_LOC_PROT_ERR:
        return ": a memory key or address was refused (a buffer was freed or deregistered?)";
    case IBV_WC_WR_FLUSH_ERR:
        return ": the queue pair was already in the error state without a failed request of "
               "its own (the peer's request was refused here, the device failed, or, on "
               "soft-RoCE, a retransmission after an ACK later than WEFT_IB_TIMEOUT failed)";
    default:
        return "";
    }
}

/* An error completion on `ep`'s queue pair: the queue pair is now in the error state, so
 * every request to and from that peer fails. */
static void wc_failed(struct weft_ep *ep, const struct ibv_wc *wc)
{
    if (ep->failed != WEFT_OK || ep->tp->aborted)
        return; /* the flushes that follow the first error */
    char who[160];
    weft_result_t code = wc->status == IBV_WC_RETRY_EXC_ERR ||
                                 wc->status == IBV_WC_RNR_RETRY_EXC_ERR ||
                                 wc->status == IBV_WC_REM_ABORT_ERR ||
                                 wc->status == IBV_WC_REM_ACCESS_ERR /* its memory is gone */
                             ? WEFT_ERR_REMOTE
                             : WEFT_ERR_SYSTEM;
    WEFT_ERROR(code,
               "rank %d: %s completion failed towards %s on %s port %d: %s (status %d, "
               "vendor error %#x)%s",
               ep->tp->rank, weft_verbs_wrid_is_recv(wc->wr_id) ? "receive" : "send",
               weft_verbs_peer_name(ep, who, sizeof(who)), ep->tp->port.dev, ep->tp->port.port,
               ibv_wc_status_str(wc->status), (int)wc->status, wc->vendor_err,
               wc_hint(wc->status));
    weft_verbs_ep_fail(ep, code);
}

/* ---- posting ------------------------------------------------------------------------- */

static bool sq_room(const struct weft_ep *ep, uint32_t n)
{
    return ep->wr_posted - ep->wr_done + n <= ep->tp->sq_depth;
}

static bool have_credit(const struct weft_ep *ep)
{
    return ep->tx_slots - ep->tx_freed < ep->tp->slots;
}

/* Posts one send work request; signals it when asked, every SIGNAL_EVERY, and when the
 * send queue fills, so that completions keep freeing room. */
static weft_result_t post_send(struct weft_ep *ep, struct ibv_send_wr *wr, bool signal)
{
    const uint64_t n = ++ep->wr_posted;
    if (signal || n % SIGNAL_EVERY == 0 || !sq_room(ep, SIGNAL_EVERY))
        wr->send_flags |= IBV_SEND_SIGNALED;
    wr->wr_id = weft_verbs_wrid_send(ep->rank, 0, n);
    wr->next = NULL;
    struct ibv_send_wr *bad;
    int err = ibv_post_send(ep->qp, wr, &bad);
    if (err) {
        ep->wr_posted--;
        char who[160];
        weft_result_t code = WEFT_ERROR_ERR(WEFT_ERR_SYSTEM, err, "ibv_post_send",
                                            "rank %d: posting to %s on %s port %d",
                                            ep->tp->rank, weft_verbs_peer_name(ep, who, sizeof(who)),
                                            ep->tp->port.dev, ep->tp->port.port);
        weft_verbs_ep_fail(ep, code);
        return code;
    }
    if (wr->send_flags & IBV_SEND_SIGNALED)
        ep->wr_signaled = n;
    return WEFT_OK;
}

/* Whether every data queue pair has room for `n` more work requests (true when there are
 * none). */
static bool data_room(const struct weft_ep *ep, uint32_t n)
{
    for (uint32_t i = 0; i + 1 < ep->tp->qps; i++)
        if (ep->data_posted - ep->data_done[i] + n > ep->tp->sq_depth)
            return false;
    return true;
}

/* Whether every data queue pair has completed its first `n` work requests. */
static bool data_done(const struct weft_ep *ep, uint64_t n)
{
    for (uint32_t i = 0; i + 1 < ep->tp->qps; i++)
        if (ep->data_done[i] < n)
            return false;
    return true;
}

/* Posts work request number `n` on data queue pair `i`. */
static weft_result_t post_data(struct weft_ep *ep, uint32_t i, uint64_t n,
                               struct ibv_send_wr *wr, bool signal)
{
    if (signal)
        wr->send_flags |= IBV_SEND_SIGNALED;
    wr->wr_id = weft_verbs_wrid_send(ep->rank, (int)i + 1, n);
    wr->next = NULL;
    struct ibv_send_wr *bad;
    int err = ibv_post_send(ep->data_qp[i], wr, &bad);
    if (err) {
        char who[160];
        weft_result_t code = WEFT_ERROR_ERR(WEFT_ERR_SYSTEM, err, "ibv_post_send",
                                            "rank %d: posting to %s on data queue pair %u, %s "
                                            "port %d",
                                            ep->tp->rank, weft_verbs_peer_name(ep, who, sizeof(who)),
                                            i + 1, ep->tp->port.dev, ep->tp->port.port);
        weft_verbs_ep_fail(ep, code);
        return code;
    }
    return WEFT_OK;
}

weft_result_t weft_verbs_post_recvs(struct weft_ep *ep, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        struct ibv_recv_wr wr = {.wr_id = weft_verbs_wrid_recv(ep->rank)}, *bad;
        int err = ibv_post_recv(ep->qp, &wr, &bad);
        if (err)
            return WEFT_ERROR_ERR(WEFT_ERR_SYSTEM, err, "ibv_post_recv",
                                  "rank %d: receive work request for rank %d on %s port %d",
                                  ep->tp->rank, ep->rank, ep->tp->port.dev, ep->tp->port.port);
        ep->rq_posted++;
    }
    return WEFT_OK;
}

/* Writes one entry (and `payload`) into the peer's next free ring slot. The caller checked
 * the credit and the send queue. The entry carries the credits we owe the peer. */
static weft_result_t put_entry(struct weft_ep *ep, struct verbs_entry *e, const void *payload,
                               size_t len)
{
    struct weft_tp *tp = ep->tp;
    const uint64_t slot = ep->tx_slots;
    e->credits = (uint32_t)ep->rx_freed;
    struct ibv_sge sge[2];
    struct ibv_send_wr wr = {
        .sg_list = sge,
        .opcode = IBV_WR_RDMA_WRITE_WITH_IMM,
        .imm_data = imm(VERBS_IMM_ENTRY, slot),
        .wr.rdma = {.remote_addr = ep->remote_ring + (slot % tp->slots) * tp->slot_bytes,
                    .rkey = ep->remote_rkey},
    };
    if (sizeof(*e) + len <= tp->max_inline) {
        sge[0] = (struct ibv_sge){(uintptr_t)e, sizeof(*e), 0};
        sge[1] = (struct ibv_sge){(uintptr_t)payload, (uint32_t)len, 0};
        wr.num_sge = len ? 2 : 1;
        wr.send_flags = IBV_SEND_INLINE;
    } else {
        uint8_t *stage = staging_slot(ep, slot);
        memcpy(stage, e, sizeof(*e));
        if (len)
            memcpy(stage + sizeof(*e), payload, len);
        sge[0] = (struct ibv_sge){(uintptr_t)stage, (uint32_t)(sizeof(*e) + len),
                                  tp->staging_mr->lkey};
        wr.num_sge = 1;
    }
    WEFT_CHECK(post_send(ep, &wr, false));
    ep->tx_slots++;
    ep->rx_credited = ep->rx_freed;
    return WEFT_OK;
}

/* A zero-length write carrying only an immediate (credits, FIN of a read, abort). */
static weft_result_t put_imm(struct weft_ep *ep, uint32_t value, bool signal)
{
    struct ibv_send_wr wr = {
        .opcode = IBV_WR_RDMA_WRITE_WITH_IMM,
        .imm_data = value,
        .wr.rdma = {.remote_addr = ep->remote_ring, .rkey = ep->remote_rkey},
    };
    return post_send(ep, &wr, signal);
}

/* The bytes of each stripe of a rendezvous message of `len` bytes: all of it on one queue
 * pair, else an equal share per queue pair (the last may be shorter), cache-line aligned. */
static size_t stripe_bytes(const struct weft_tp *tp, size_t len)
{
    if (tp->qps == 1)
        return len;
    const size_t share = (len + tp->qps - 1) / tp->qps;
    return (share + 63) & ~(size_t)63;
}

static uint32_t pieces(const struct weft_ep *ep, size_t len)
{
    return (uint32_t)((len + ep->tp->max_msg - 1) / ep->tp->max_msg);
}

/* Whether every queue pair to the peer has room for its share of a `len`-byte move. */
static bool move_room(const struct weft_ep *ep, size_t len)
{
    const uint32_t n = pieces(ep, stripe_bytes(ep->tp, len));
    return sq_room(ep, n) && data_room(ep, n);
}

/* Moves `len` bytes between our registered `local` and the peer's (addr, rkey) with RDMA
 * WRITE or READ, in pieces the port accepts, striped over the peer's queue pairs (see
 * verbs_internal.h): each data queue pair gets the same number of pieces (zero-length ones
 * where its stripe runs out), addresses the peer's buffer with its key in data_rkey, and
 * signals its last. The first queue pair's last piece is
 * signaled too and, for a write, carries `fin` as immediate unless it is 0. *last and
 * *data_last: the work requests whose completion, on the first and on every data queue pair,
 * means the data moved. The caller checked move_room. */
static weft_result_t rdma_move(struct weft_ep *ep, bool write, void *local, struct verbs_mr *m,
                               uint64_t addr, uint32_t rkey, const uint32_t *data_rkey,
                               size_t len, uint32_t fin, uint64_t *last, uint64_t *data_last)
{
    const size_t piece = ep->tp->max_msg, stripe = stripe_bytes(ep->tp, len);
    const uint32_t per_qp = pieces(ep, stripe);
    for (uint32_t i = 0; i + 1 < ep->tp->qps; i++) {
        const size_t begin = (i + 1) * stripe < len ? (i + 1) * stripe : len;
        const size_t end = begin + stripe < len ? begin + stripe : len;
        for (uint32_t j = 0; j < per_qp; j++) {
            const size_t off = begin + (size_t)j * piece < end ? begin + (size_t)j * piece : end;
            const size_t n = end - off < piece ? end - off : piece;
            struct ibv_sge sge = {(uintptr_t)local + off, (uint32_t)n,
                                  m->rail_mr[weft_verbs_data_rail(ep->tp, i)]->lkey};
            struct ibv_send_wr wr = {
                .sg_list = &sge,
                .num_sge = n ? 1 : 0,
                .opcode = write ? IBV_WR_RDMA_WRITE : IBV_WR_RDMA_READ,
                .wr.rdma = {.remote_addr = addr + off, .rkey = data_rkey[i]},
            };
            WEFT_CHECK(post_data(ep, i, ep->data_posted + j + 1, &wr, j + 1 == per_qp));
        }
    }
    if (ep->tp->qps > 1)
        ep->data_posted += per_qp;
    ep->tp->rndv_bytes += len;
    ep->tp->striped_bytes += len - (stripe < len ? stripe : len);
    *data_last = ep->data_posted;
    const size_t first = stripe < len ? stripe : len;
    for (size_t off = 0; off < first; off += piece) {
        const size_t n = first - off < piece ? first - off : piece;
        const bool final = off + n == first;
        struct ibv_sge sge = {(uintptr_t)local + off, (uint32_t)n, m->mr->lkey};
        struct ibv_send_wr wr = {
            .sg_list = &sge,
            .num_sge = 1,
            .opcode = !write ? IBV_WR_RDMA_READ
                             : final && fin ? IBV_WR_RDMA_WRITE_WITH_IMM : IBV_WR_RDMA_WRITE,
            .imm_data = fin,
            .wr.rdma = {.remote_addr = addr + off, .rkey = rkey},
        };
        WEFT_CHECK(post_send(ep, &wr, final));
    }
    *last = ep->wr_posted;
    return WEFT_OK;
}

/* A rendezvous message is posted in one go: its pieces must fit in half the send queue. */
static weft_result_t check_pieces(const struct weft_ep *ep, size_t len)
{
    if (len > eager_max(ep->tp) && pieces(ep, len) > ep->tp->sq_depth / 2)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "rank %d: a message of %zu bytes to or from rank %d takes %u work "
                          "requests of at most %u bytes (the port's max_msg_sz) on %s; raise "
                          "WEFT_IB_QP_DEPTH above %u or split the message",
                          ep->tp->rank, len, ep->rank, pieces(ep, len), ep->tp->max_msg,
                          ep->tp->port.dev, 2 * pieces(ep, len));
    return WEFT_OK;
}

/* The keys of `m` each data queue pair's peer uses (those of the pair's rail). */
static void put_data_rkeys(const struct weft_tp *tp, const struct verbs_mr *m,
                           struct verbs_entry *e)
{
    for (uint32_t i = 0; i + 1 < tp->qps; i++)
        e->data_rkey[i] = m->rail_mr[weft_verbs_data_rail(tp, i)]->rkey;
}

/* ---- send side ----------------------------------------------------------------------- */

/* The CTS for message `seq`, dropping older ones (left by a mismatched message); NULL if it
 * has not arrived. */
static struct verbs_cts *cts_for(struct weft_ep *ep, uint64_t seq)
{
    while (ep->cts_head && ep->cts_head->e.seq < seq) {
        struct verbs_cts *c = ep->cts_head;
        ep->cts_head = c->next;
        free(c);
    }
    if (!ep->cts_head)
        ep->cts_tail = NULL;
    return ep->cts_head && ep->cts_head->e.seq == seq ? ep->cts_head : NULL;
}

static void cts_pop(struct weft_ep *ep)
{
    struct verbs_cts *c = ep->cts_head;
    ep->cts_head = c->next;
    if (!ep->cts_head)
        ep->cts_tail = NULL;
    free(c);
}

static weft_result_t cts_mismatch(struct weft_ep *ep, const struct weft_request *req,
                                  const struct verbs_entry *cts)
{
    char who[160];
    if (cts->tag != req->tag)
        return WEFT_ERROR(WEFT_ERR_REMOTE,
                          "rank %d sent tag %#llx to %s, which expected tag %#llx (ranks called "
                          "operations in different orders)",
                          ep->tp->rank, (unsigned long long)req->tag,
                          weft_verbs_peer_name(ep, who, sizeof(who)),
                          (unsigned long long)cts->tag);
    return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "rank %d sends %zu bytes to %s, which receives %llu",
                      ep->tp->rank, req->len, weft_verbs_peer_name(ep, who, sizeof(who)),
                      (unsigned long long)cts->len);
}

/* Advances the large send `req` as far as it can; true once nothing more is to post.
 * The RTS entry exists so that the receiver can match the message to its receive and see a
 * mismatch: in write mode, when the receiver's CTS is already here and agrees, it is left
 * out (the receive then completes on the FIN alone), saving a slot and a round of work. */
static bool drive_large_send(struct weft_ep *ep, struct weft_request *req, bool *progressed)
{
    struct weft_tp *tp = ep->tp;
    struct verbs_cts *c = tp->read_mode ? NULL : cts_for(ep, RQ_SEQ(req));
    const bool agreed = c && c->e.len == req->len && c->e.tag == req->tag;
    if (!(RQ_STATE(req) & ST_RTS) && !agreed) {
        if (!have_credit(ep) || !sq_room(ep, 1))
            return false;
        struct verbs_entry e = {.kind = VERBS_ENTRY_RTS, .seq = RQ_SEQ(req), .tag = req->tag,
                                .len = req->len};
        if (tp->read_mode) {
            e.addr = (uintptr_t)req->buf;
            e.rkey = rq_mr(req)->mr->rkey;
            put_data_rkeys(tp, rq_mr(req), &e);
        }
        if (put_entry(ep, &e, NULL, 0) != WEFT_OK)
            return true;
        RQ_STATE(req) |= ST_RTS;
        *progressed = true;
    }
    if (tp->read_mode)
        return true; /* the receiver reads; its FIN finishes the send */
    if (!c || !move_room(ep, req->len))
        return false;
    *progressed = true;
    if (!agreed) { /* the RTS above lets the receiver see it too */
        finish(req, cts_mismatch(ep, req, &c->e));
        cts_pop(ep);
        return true;
    }
    uint64_t last, data_last;
    /* over one queue pair the FIN rides on the last write; over several, it follows them */
    const uint32_t fin = tp->qps == 1 ? imm(VERBS_IMM_FIN, RQ_SEQ(req)) : 0;
    if (rdma_move(ep, true, req->buf, rq_mr(req), c->e.addr, c->e.rkey, c->e.data_rkey,
                  req->len, fin, &last, &data_last) == WEFT_OK) {
        RQ_WR(req) = last;
        RQ_DATA_WR(req) = data_last;
        RQ_STATE(req) |= ST_WAIT_WR;
    }
    cts_pop(ep);
    return true;
}

/* Posts what the send queue allows, oldest first. */
static void drive_sends(struct weft_ep *ep, bool *progressed)
{
    while (ep->spost && ep->failed == WEFT_OK) {
        struct weft_request *req = ep->spost;
        if (RQ_STATE(req) & ST_FINISHED) {
            /* refused by the receiver before its data went out */
        } else if (req->len <= eager_max(ep->tp)) {
            if (!have_credit(ep) || !sq_room(ep, 1))
                return;
            struct verbs_entry e = {.kind = VERBS_ENTRY_EAGER, .seq = RQ_SEQ(req),
                                    .tag = req->tag, .len = req->len};
            if (put_entry(ep, &e, req->buf, req->len) != WEFT_OK)
                return;
            finish(req, WEFT_OK); /* buffered: the caller may reuse its buffer */
        } else if (!drive_large_send(ep, req, progressed) || ep->failed != WEFT_OK) {
            return;
        }
        *progressed = true;
        ep->spost = req->next;
    }
}

weft_result_t weft_verbs_isend(struct weft_ep *ep, const void *buf, size_t len, uint64_t tag,
                               struct weft_request *req)
{
    if (ep->failed != WEFT_OK)
        return WEFT_ERROR(ep->failed, "rank %d: the connection to rank %d already failed (%s)",
                          ep->tp->rank, ep->rank,
                          ep->aborted_by_peer ? "it aborted its communicator"
                                              : weft_strerror(ep->failed));
    WEFT_CHECK(check_pieces(ep, len));
    weft_request_init(req, (void *)buf, len, tag, ep->rank, 1);
    RQ_SEQ(req) = ep->tx_msgs++;
    if (len > eager_max(ep->tp)) {
        struct verbs_mr *m;
        WEFT_CHECK(weft_verbs_mr_get(ep->tp, (void *)buf, len, &m));
        rq_set_mr(req, m);
    }
    weft_request_queue_push(&ep->sends, req);
    if (!ep->spost)
        ep->spost = req;
    bool progressed = false;
    drive_sends(ep, &progressed);
    return WEFT_OK;
}

/* ---- receive side -------------------------------------------------------------------- */

/* Marks a consumed slot free and moves the freed prefix. */
static void free_slot(struct weft_ep *ep, uint64_t slot)
{
    const uint32_t slots = ep->tp->slots;
    ep->slot_free[slot % slots] = true;
    while (ep->rx_freed < ep->rx_slots && ep->slot_free[ep->rx_freed % slots]) {
        ep->slot_free[ep->rx_freed % slots] = false;
        ep->rx_freed++;
    }
}

/* Sends the CTS of every rendezvous receive that owes one, in order (write mode). */
static void send_cts(struct weft_ep *ep, bool *progressed)
{
    while (ep->rcts && ep->failed == WEFT_OK) {
        struct weft_request *req = ep->rcts;
        if (req->len > eager_max(ep->tp) && !ep->tp->read_mode) {
            if (!have_credit(ep) || !sq_room(ep, 1))
                return;
            struct verbs_entry e = {.kind = VERBS_ENTRY_CTS, .seq = RQ_SEQ(req), .tag = req->tag,
                                    .len = req->len, .addr = (uintptr_t)req->buf,
                                    .rkey = rq_mr(req)->mr->rkey};
            put_data_rkeys(ep->tp, rq_mr(req), &e);
            if (put_entry(ep, &e, NULL, 0) != WEFT_OK)
                return;
            *progressed = true;
        }
        ep->rcts = req->next;
    }
}

/* Frees the oldest unmatched eager/RTS entry. */
static void consume_data_entry(struct weft_ep *ep)
{
    const uint64_t slot = ep->data_slots[ep->data_head];
    ep->data_head = (ep->data_head + 1) % ep->tp->slots;
    ep->data_count--;
    free_slot(ep, slot);
}

/* Checks the arrived entry `e` against the receive it matches; WEFT_OK when they agree. */
static weft_result_t check_match(struct weft_ep *ep, const struct weft_request *req,
                                 const struct verbs_entry *e)
{
    char who[160];
    if (e->seq != RQ_SEQ(req))
        return WEFT_ERROR(WEFT_ERR_INTERNAL, "rank %d: entry %llu from %s arrived for receive %llu",
                          ep->tp->rank, (unsigned long long)e->seq,
                          weft_verbs_peer_name(ep, who, sizeof(who)),
                          (unsigned long long)RQ_SEQ(req));
    if (e->tag != req->tag)
        return WEFT_ERROR(WEFT_ERR_REMOTE,
                          "rank %d expected tag %#llx from %s but got tag %#llx (ranks called "
                          "operations in different orders)",
                          ep->tp->rank, (unsigned long long)req->tag,
                          weft_verbs_peer_name(ep, who, sizeof(who)), (unsigned long long)e->tag);
    if (e->len != req->len)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "rank %d receives %zu bytes but %s sent %llu",
                          ep->tp->rank, req->len, weft_verbs_peer_name(ep, who, sizeof(who)),
                          (unsigned long long)e->len);
    return WEFT_OK;
}

/* Pairs arrived eager/RTS entries with posted receives, in order. */
static void match_recvs(struct weft_ep *ep, bool *progressed)
{
    struct weft_tp *tp = ep->tp;
    while (ep->rmatch && ep->failed == WEFT_OK) {
        struct weft_request *req = ep->rmatch;
        if ((RQ_STATE(req) & ST_FIN) && !tp->read_mode) {
            /* written and FIN'ed: the sender saw our CTS agree and sent no RTS, unless it
             * sent one before the CTS reached it, which is then the next entry */
            if (ep->data_count &&
                ((const struct verbs_entry *)ring_slot(ep, ep->data_slots[ep->data_head]))->seq ==
                    RQ_SEQ(req))
                consume_data_entry(ep);
            RQ_STATE(req) |= ST_MATCHED;
            ep->rmatch = req->next;
            *progressed = true;
            continue;
        }
        if (!ep->data_count)
            return;
        const uint64_t slot = ep->data_slots[ep->data_head];
        const uint8_t *p = ring_slot(ep, slot);
        struct verbs_entry e;
        memcpy(&e, p, sizeof(e));
        if (!tp->read_mode && req->len > eager_max(tp) && e.seq > RQ_SEQ(req))
            return; /* the sender saw our CTS agree and sent no RTS; over several queue pairs
                     * its FIN follows the data and may come after the next message's RTS */
        if (e.kind == VERBS_ENTRY_RTS && !sq_room(ep, 1))
            return; /* room for the refusal below, should it be needed */
        weft_result_t st = check_match(ep, req, &e);
        if (st != WEFT_OK) {
            finish(req, st);
            /* A sender of a rendezvous message waits for us: tell it the message was refused
             * (it may have seen the mismatch in our CTS already; it then ignores this). */
            if (e.kind == VERBS_ENTRY_RTS &&
                put_imm(ep, imm(VERBS_IMM_FIN, e.seq) | htonl(VERBS_IMM_ERROR), false) != WEFT_OK)
                return;
        } else if (e.kind == VERBS_ENTRY_EAGER) {
            if (req->len)
                memcpy(req->buf, p + sizeof(e), req->len);
            finish(req, WEFT_OK);
        } else if (tp->read_mode) {
            uint64_t last, data_last;
            if (!move_room(ep, req->len))
                return;
            if (rdma_move(ep, false, req->buf, rq_mr(req), e.addr, e.rkey, e.data_rkey, req->len,
                          0, &last, &data_last) != WEFT_OK)
                return;
            RQ_WR(req) = last;
            RQ_DATA_WR(req) = data_last;
            RQ_STATE(req) |= ST_WAIT_WR;
        }
        RQ_STATE(req) |= ST_MATCHED;
        consume_data_entry(ep);
        ep->rmatch = req->next;
        *progressed = true;
    }
}

weft_result_t weft_verbs_irecv(struct weft_ep *ep, void *buf, size_t len, uint64_t tag,
                               struct weft_request *req)
{
    if (ep->failed != WEFT_OK)
        return WEFT_ERROR(ep->failed, "rank %d: the connection to rank %d already failed (%s)",
                          ep->tp->rank, ep->rank,
                          ep->aborted_by_peer ? "it aborted its communicator"
                                              : weft_strerror(ep->failed));
    WEFT_CHECK(check_pieces(ep, len));
    weft_request_init(req, buf, len, tag, ep->rank, 0);
    RQ_SEQ(req) = ep->rx_msgs++;
    if (len > eager_max(ep->tp)) {
        struct verbs_mr *m;
        WEFT_CHECK(weft_verbs_mr_get(ep->tp, buf, len, &m));
        rq_set_mr(req, m);
    }
    weft_request_queue_push(&ep->recvs, req);
    if (!ep->rmatch)
        ep->rmatch = req;
    if (!ep->rcts)
        ep->rcts = req;
    bool progressed = false;
    send_cts(ep, &progressed);
    match_recvs(ep, &progressed);
    return WEFT_OK;
}

/* ---- completion queue ---------------------------------------------------------------- */

static struct weft_request *find_seq(struct weft_request_queue *q, uint64_t seq)
{
    for (struct weft_request *r = q->head; r; r = r->next)
        if (RQ_SEQ(r) == seq)
            return r;
    return NULL;
}

/* The peer freed slots of its ring up to `low` (the low bits of its count). A value older
 * than one we had (a probe overtaken by an entry) is ignored. */
static void credits_arrived(struct weft_ep *ep, uint32_t low, uint32_t mask)
{
    const uint64_t delta = (low - (uint32_t)ep->tx_freed) & mask;
    if (delta <= ep->tx_slots - ep->tx_freed)
        ep->tx_freed += delta;
}

/* `low`: 1 + the culprit the notice carries (0 from a peer that named none). */
static void peer_aborted(struct weft_ep *ep, uint32_t low)
{
    if (low && ep->tp->culprit == WEFT_CULPRIT_NONE)
        ep->tp->culprit = (int)(low - 1);
    if (ep->failed != WEFT_OK)
        return;
    char who[160];
    ep->aborted_by_peer = true;
    if (weft_request_queue_empty(&ep->sends) && weft_request_queue_empty(&ep->recvs)) {
        /* An idle peer: its message would replace the one of the failure being reported
         * (see weft_tcp_peer_fail); a request posted later names the abort. */
        weft_verbs_ep_fail(ep, WEFT_ERR_REMOTE);
        return;
    }
    weft_verbs_ep_fail(ep, WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d: %s aborted its communicator",
                                      ep->tp->rank, weft_verbs_peer_name(ep, who, sizeof(who))));
}

/* A ring entry arrived: CTS entries are taken at once, eager and RTS ones wait for their
 * receive. */
static void entry_arrived(struct weft_ep *ep, uint32_t low)
{
    struct weft_tp *tp = ep->tp;
    const uint64_t slot = widen(ep->rx_slots, low);
    if (slot != ep->rx_slots) {
        WEFT_ERROR(WEFT_ERR_INTERNAL, "rank %d: ring entry %llu from rank %d arrived, expected %llu",
                   tp->rank, (unsigned long long)slot, ep->rank, (unsigned long long)ep->rx_slots);
        weft_verbs_ep_fail(ep, WEFT_ERR_INTERNAL);
        return;
    }
    ep->rx_slots++;
    struct verbs_entry e;
    memcpy(&e, ring_slot(ep, slot), sizeof(e));
    credits_arrived(ep, e.credits, UINT32_MAX);
    if (e.kind == VERBS_ENTRY_CTS) {
        struct verbs_cts *c = malloc(sizeof(*c));
        if (!c) {
            weft_verbs_ep_fail(ep, WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: CTS record", tp->rank));
            return;
        }
        *c = (struct verbs_cts){.e = e};
        if (ep->cts_tail)
            ep->cts_tail->next = c;
        else
            ep->cts_head = c;
        ep->cts_tail = c;
        free_slot(ep, slot);
    } else {
        ep->data_slots[(ep->data_head + ep->data_count) % tp->slots] = slot;
        ep->data_count++;
    }
}

/* The pending request of `q` whose message number has low bits `low`, or NULL. */
static struct weft_request *pending_seq(struct weft_request_queue *q, uint32_t low)
{
    const uint64_t base = q->head ? RQ_SEQ(q->head) : 0;
    return find_seq(q, widen(base, low));
}

static void fin_arrived(struct weft_ep *ep, uint32_t low, bool refused)
{
    struct weft_tp *tp = ep->tp;
    if (refused) { /* the receiver refused our rendezvous message `low` */
        struct weft_request *req = pending_seq(&ep->sends, low);
        char who[160];
        if (req && !(RQ_STATE(req) & ST_FINISHED))
            finish(req, WEFT_ERROR(WEFT_ERR_REMOTE,
                                   "rank %d: %s refused message %llu of %zu bytes: it does not "
                                   "match the receive posted there (see that rank's error)",
                                   tp->rank, weft_verbs_peer_name(ep, who, sizeof(who)),
                                   (unsigned long long)RQ_SEQ(req), req->len));
        return;
    }
    /* write mode: the data of our receive is in place; read mode: the peer read our send */
    struct weft_request *req = pending_seq(tp->read_mode ? &ep->sends : &ep->recvs, low);
    if (!req) {
        weft_verbs_ep_fail(ep, WEFT_ERROR(WEFT_ERR_INTERNAL,
                                          "rank %d: FIN from rank %d for no pending message",
                                          tp->rank, ep->rank));
        return;
    }
    RQ_STATE(req) |= ST_FIN;
}

static void handle_wc(struct weft_tp *tp, const struct ibv_wc *wc, bool *completed)
{
    const bool recv = weft_verbs_wrid_is_recv(wc->wr_id);
    const int rank = weft_verbs_wrid_rank(wc->wr_id);
    struct weft_ep *ep = rank >= 0 && rank < tp->nranks ? tp->peers[rank] : NULL;
    if (!ep)
        return;
    *completed = true;
    if (recv)
        ep->rq_posted--;
    if (wc->status != IBV_WC_SUCCESS) {
        wc_failed(ep, wc);
        return;
    }
    if (!recv) {
        /* completions are in order per queue pair: everything before is done too */
        const int qp = weft_verbs_wrid_qp(wc->wr_id);
        uint64_t *done = qp == 0 ? &ep->wr_done : &ep->data_done[qp - 1];
        const uint64_t n = weft_verbs_wrid_count(wc->wr_id, *done);
        if (n > *done)
            *done = n;
        return;
    }
    const uint32_t v = ntohl(wc->imm_data);
    const uint32_t low = v & VERBS_IMM_MASK; /* the error bit is not part of the counter */
    switch ((enum verbs_imm_kind)(v >> VERBS_IMM_KIND_SHIFT)) {
    case VERBS_IMM_ENTRY: entry_arrived(ep, low); break;
    case VERBS_IMM_CREDIT: credits_arrived(ep, low, VERBS_IMM_MASK); break;
    case VERBS_IMM_FIN: fin_arrived(ep, low, (v & VERBS_IMM_ERROR) != 0); break;
    case VERBS_IMM_ABORT: peer_aborted(ep, low); break;
    }
}

/* ---- progress ------------------------------------------------------------------------ */

/* Whether `req` is done, moving its state on: a rendezvous write over one queue pair ends
 * with its last work request, over several with the FIN we send once every stripe is out, a
 * read with the FIN we then send, a receive written into with the peer's FIN. */
static bool finished(struct weft_ep *ep, struct weft_request *req)
{
    uint64_t *st = &RQ_STATE(req);
    if ((*st & ST_WAIT_WR) && ep->wr_done >= RQ_WR(req) && data_done(ep, RQ_DATA_WR(req)))
        *st = (*st & ~(uint64_t)ST_WAIT_WR) |
              (req->is_send && ep->tp->qps == 1 ? ST_FINISHED : ST_FIN_OWED);
    if ((*st & ST_FIN_OWED) && !(*st & ST_FINISHED)) {
        if (!sq_room(ep, 1) || put_imm(ep, imm(VERBS_IMM_FIN, RQ_SEQ(req)), false) != WEFT_OK)
            return false;
        *st |= ST_FINISHED;
    }
    if ((*st & ST_FIN) && (req->is_send || (*st & ST_MATCHED)))
        *st |= ST_FINISHED;
    return (*st & ST_FINISHED) != 0;
}

/* Soft-RoCE (rdma_rxe of Linux 6.1) was seen to resend a work request it had already
 * reported complete, when a retransmission raced with the ACK: it then reads (or, for an RDMA
 * READ, writes) the local buffer again, and had its registration gone the queue pair fails
 * ("Error during finish packet" in the kernel's debug log, "Work Request Flushed" here). So a
 * registration that our send queue used locally (the source of a rendezvous write, the
 * destination of a read) outlives its request until a work request posted after the request
 * ended has completed: the send queue is processed in order, so by then no resend of the
 * request's work is left. The registration is only kept, never used again; when nothing else
 * is posted a signaled credit note (which changes nothing at the peer) ends the wait. */
static void keep_mr(struct weft_ep *ep, struct weft_request *req)
{
    const bool local = req->is_send != ep->tp->read_mode;
    struct verbs_retired *r = local && rq_mr(req) ? malloc(sizeof(*r)) : NULL;
    if (!r) {
        rq_put_mr(ep->tp, req);
        return;
    }
    *r = (struct verbs_retired){.mr = rq_mr(req), .after = ep->wr_posted,
                                .data_after = ep->data_posted};
    rq_set_mr(req, NULL);
    if (ep->retired_tail)
        ep->retired_tail->next = r;
    else
        ep->retired_head = r;
    ep->retired_tail = r;
}

/* A signaled zero-length write on every data queue pair (into the peer's sink on that
 * rail): its completion shows that nothing posted there before it can be resent. */
static void nudge_data_qps(struct weft_ep *ep)
{
    const uint64_t n = ep->data_posted + 1;
    for (uint32_t i = 0; i + 1 < ep->tp->qps; i++) {
        struct ibv_send_wr wr = {
            .opcode = IBV_WR_RDMA_WRITE,
            .wr.rdma = {.remote_addr = ep->data_sink[i], .rkey = ep->data_sink_rkey[i]},
        };
        if (post_data(ep, i, n, &wr, true) != WEFT_OK)
            return;
    }
    ep->data_posted = n;
}

static void release_kept_mrs(struct weft_ep *ep)
{
    struct verbs_retired *r;
    while ((r = ep->retired_head) != NULL && ep->wr_done > r->after &&
           data_done(ep, r->data_after + 1)) {
        ep->retired_head = r->next;
        if (!ep->retired_head)
            ep->retired_tail = NULL;
        weft_verbs_mr_put(ep->tp, r->mr);
        free(r);
    }
    if (r && ep->wr_signaled <= r->after && sq_room(ep, 1))
        put_imm(ep, imm(VERBS_IMM_CREDIT, ep->rx_credited), true);
    if (r && ep->data_posted == r->data_after && !data_done(ep, r->data_after + 1) &&
        data_room(ep, 1))
        nudge_data_qps(ep);
}

/* Completes requests from the front of `q` while they are finished. */
static void retire(struct weft_ep *ep, struct weft_request_queue *q, bool *progressed)
{
    struct weft_request *req;
    while (ep->failed == WEFT_OK && (req = weft_request_queue_peek(q)) != NULL &&
           finished(ep, req)) {
        weft_request_queue_pop(q);
        keep_mr(ep, req);
        weft_request_complete(req, (weft_result_t)RQ_STATUS(req));
        *progressed = true;
    }
}

/* Returns freed slots to the peer: in batches, or all of them once this side is idle. */
static void return_credits(struct weft_ep *ep, bool idle)
{
    const uint64_t owed = ep->rx_freed - ep->rx_credited;
    if (owed == 0 || !sq_room(ep, 1))
        return;
    if (owed < ep->tp->slots / 2 && !idle)
        return;
    if (put_imm(ep, imm(VERBS_IMM_CREDIT, ep->rx_freed), false) == WEFT_OK)
        ep->rx_credited = ep->rx_freed;
}

static void drive_ep(struct weft_ep *ep, bool idle, bool *progressed)
{
    if (ep->failed != WEFT_OK || !ep->connected)
        return;
    if (ep->rq_posted < ep->tp->rq_depth / 2 &&
        weft_verbs_post_recvs(ep, ep->tp->rq_depth - ep->rq_posted) != WEFT_OK) {
        weft_verbs_ep_fail(ep, WEFT_ERR_SYSTEM);
        return;
    }
    send_cts(ep, progressed);
    match_recvs(ep, progressed);
    drive_sends(ep, progressed);
    retire(ep, &ep->sends, progressed);
    retire(ep, &ep->recvs, progressed);
    release_kept_mrs(ep);
    return_credits(ep, idle);
}

static bool ep_owns(const struct weft_ep *ep, const struct ibv_qp *qp)
{
    for (uint32_t i = 0; i + 1 < ep->tp->qps; i++)
        if (ep->data_qp[i] == qp)
            return true;
    return ep->qp == qp;
}

/* Port and device failures arrive on the async event queue, not as completions. */
static weft_result_t check_async(struct weft_tp *tp)
{
    struct pollfd pfd = {.fd = tp->ctx->async_fd, .events = POLLIN};
    if (poll(&pfd, 1, 0) <= 0)
        return WEFT_OK;
    struct ibv_async_event ev;
    if (ibv_get_async_event(tp->ctx, &ev))
        return WEFT_OK;
    const enum ibv_event_type type = ev.event_type;
    struct ibv_qp *qp = (type == IBV_EVENT_QP_FATAL || type == IBV_EVENT_QP_REQ_ERR ||
                         type == IBV_EVENT_QP_ACCESS_ERR)
                            ? ev.element.qp
                            : NULL;
    ibv_ack_async_event(&ev);
    WEFT_WARN(NET, "verbs: async event on %s port %d: %s", tp->port.dev, tp->port.port,
              ibv_event_type_str(type));
    if (qp) {
        for (int p = 0; p < tp->nranks; p++) {
            struct weft_ep *ep = tp->peers[p];
            if (ep && ep_owns(ep, qp) && ep->failed == WEFT_OK) {
                char who[160];
                weft_verbs_ep_fail(ep, WEFT_ERROR(WEFT_ERR_SYSTEM,
                                                  "rank %d: queue pair to %s failed on %s port "
                                                  "%d: %s",
                                                  tp->rank, weft_verbs_peer_name(ep, who, sizeof(who)),
                                                  tp->port.dev, tp->port.port,
                                                  ibv_event_type_str(type)));
            }
        }
    } else if (type == IBV_EVENT_PORT_ERR || type == IBV_EVENT_DEVICE_FATAL) {
        tp->failed = WEFT_ERROR(WEFT_ERR_SYSTEM, "rank %d: %s port %d: %s (the link went down)",
                                tp->rank, tp->port.dev, tp->port.port, ibv_event_type_str(type));
    }
    return tp->failed;
}


/* A rank that only receives from a peer that died would wait forever: nothing it sends can
 * fail. So every PROBE_EVERY_S (the clock is read every PROBE_CLOCK_EVERY progress calls),
 * each peer with requests pending gets our credit
 * count again (harmless: it changes nothing there); to a dead peer the write fails with
 * retry-exceeded (after the WEFT_IB_TIMEOUT and WEFT_IB_RETRY_CNT budget), and an error
 * completion is reported even though unsignaled. A peer on this host is checked through its
 * pidfd, which needs no round trip. */
static void probe_peers(struct weft_tp *tp)
{
    const double t = weft_now_s();
    if (t < tp->next_probe)
        return;
    tp->next_probe = t + PROBE_EVERY_S;
    for (int p = 0; p < tp->nranks; p++) {
        struct weft_ep *ep = tp->peers[p];
        if (!ep || !ep->connected || ep->failed != WEFT_OK || !sq_room(ep, 1) ||
            (weft_request_queue_empty(&ep->sends) && weft_request_queue_empty(&ep->recvs)))
            continue;
        WEFT_TRACE(NET, "verbs: probing rank %d (requests pending, idle)", ep->rank);
        put_imm(ep, imm(VERBS_IMM_CREDIT, ep->rx_credited), false);
        struct pollfd pfd = {.fd = ep->pidfd, .events = POLLIN};
        if (ep->pid > 0 && (ep->pidfd >= 0 ? poll(&pfd, 1, 0) > 0
                                           : kill(ep->pid, 0) != 0 && errno == ESRCH)) {
            char who[160];
            weft_verbs_ep_fail(ep, WEFT_ERROR(WEFT_ERR_REMOTE,
                                              "rank %d: %s (pid %d, this host) exited with "
                                              "requests pending",
                                              tp->rank, weft_verbs_peer_name(ep, who, sizeof(who)),
                                              ep->pid));
        }
    }
}

weft_result_t weft_verbs_progress(struct weft_tp *tp, bool *progressed)
{
    if (tp->failed != WEFT_OK)
        return tp->failed;
    if (++tp->polls % ASYNC_EVERY == 0)
        WEFT_CHECK(check_async(tp));
    if (tp->polls % PROBE_CLOCK_EVERY == 0)
        probe_peers(tp);
    struct ibv_wc wc[POLL_BATCH];
    bool completions = false;
    for (uint32_t r = 0; r < tp->nrails; r++) {
        const struct verbs_rail *rail = &tp->rails[r];
        if (r > 0 && !rail->own)
            continue; /* shares the first port's completion queue */
        int n;
        do {
            n = ibv_poll_cq(rail->cq, POLL_BATCH, wc);
            if (n < 0)
                return tp->failed = WEFT_ERROR(WEFT_ERR_SYSTEM,
                                               "rank %d: ibv_poll_cq failed on %s port %d (%d)",
                                               tp->rank, rail->port.dev, rail->port.port, n);
            for (int i = 0; i < n; i++)
                handle_wc(tp, &wc[i], &completions);
        } while (n == POLL_BATCH);
    }
    tp->idle = completions ? 0 : tp->idle + 1;
    /* A completion is not progress by itself: probes and credit notes complete too, and would
     * keep two ranks waiting on each other from ever timing out. Progress is what the
     * requests do next (matched, their data posted, completed). */
    bool moved = false;
    for (int p = 0; p < tp->nranks; p++)
        if (tp->peers[p])
            drive_ep(tp->peers[p], tp->idle >= IDLE_CREDIT_POLLS, &moved);
    *progressed |= moved;
    return WEFT_OK;
}

void weft_verbs_quiesce(struct weft_tp *tp, bool abort, int culprit)
{
    const uint32_t notice = imm(VERBS_IMM_ABORT, culprit >= 0 ? (uint64_t)culprit + 1 : 0);
    uint64_t *want = calloc((size_t)tp->nranks, sizeof(*want));
    if (!want)
        return;
    for (int p = 0; p < tp->nranks; p++) {
        struct weft_ep *ep = tp->peers[p];
        want[p] = 0;
        if (ep && ep->connected && ep->failed == WEFT_OK && sq_room(ep, 1) &&
            put_imm(ep, abort ? notice : imm(VERBS_IMM_CREDIT, ep->rx_credited),
                    true) == WEFT_OK)
            want[p] = ep->wr_posted;
    }
    /* Completions are in order: once this last one is in, everything posted before it (a
     * refusal, credits) has left too, before the queue pairs are destroyed (bounded: 1 s). */
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        bool waiting = false;
        for (int p = 0; p < tp->nranks; p++)
            if (want[p] && tp->peers[p]->failed == WEFT_OK && tp->peers[p]->wr_done < want[p])
                waiting = true;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (!waiting || (double)(t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) * 1e-9 > 1.0)
            break;
        struct ibv_wc wc[POLL_BATCH];
        int n = ibv_poll_cq(tp->cq, POLL_BATCH, wc);
        for (int i = 0; i < n; i++) {
            const struct ibv_wc *w = &wc[i];
            const int rank = weft_verbs_wrid_rank(w->wr_id);
            if (weft_verbs_wrid_is_recv(w->wr_id) || rank < 0 || rank >= tp->nranks)
                continue;
            struct weft_ep *ep = tp->peers[rank];
            if (ep && w->status != IBV_WC_SUCCESS)
                ep->failed = WEFT_ERR_REMOTE;
            else if (ep && weft_verbs_wrid_qp(w->wr_id) == 0)
                ep->wr_done = weft_verbs_wrid_count(w->wr_id, ep->wr_done);
        }
    }
    free(want);
}
#endif /* WEFT_HAVE_VERBS */
