/*
 * ucx_data.c - the UCX transport's messages: tagged sends and receives matched by (sender,
 * sequence), the header check of every receive, completion in posting order, peer failure.
 */
#ifdef WEFT_HAVE_UCX

#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "transport/ucx_internal.h"

static uint8_t zero_buf[1]; /* the buffer of zero-byte control messages */

static ucp_tag_t data_tag(int sender, uint64_t seq)
{
    return ((ucp_tag_t)sender << WEFT_UCX_RANK_SHIFT) | (seq & WEFT_UCX_SEQ_MASK);
}

static ucp_tag_t ctrl_tag(int sender, enum weft_ucx_ctrl kind)
{
    return WEFT_UCX_TAG_CTRL | ((ucp_tag_t)sender << WEFT_UCX_RANK_SHIFT) | (ucp_tag_t)kind;
}

/* ---- the op pool ---------------------------------------------------------------------- */

static struct weft_ucx_op *op_get(struct weft_tp *tp)
{
    struct weft_ucx_op *op = tp->free_ops;
    if (op) {
        tp->free_ops = op->next;
    } else {
        op = malloc(sizeof(*op) + WEFT_UCX_HDR_BYTES + tp->inline_max);
        if (!op)
            return NULL;
        op->all_next = tp->all_ops;
        tp->all_ops = op;
    }
    op->next = NULL;
    op->req = NULL;
    op->ep = NULL;
    op->ucp[0] = op->ucp[1] = NULL;
    op->st[0] = op->st[1] = UCS_OK;
    op->got[0] = op->got[1] = 0;
    op->pending = 0;
    op->done = 0;
    op->queued = op->is_send = op->payload = op->fixed = false;
    return op;
}

static void op_put(struct weft_tp *tp, struct weft_ucx_op *op)
{
    op->next = tp->free_ops;
    tp->free_ops = op;
}

void weft_ucx_ops_free(struct weft_tp *tp)
{
    while (tp->all_ops) {
        struct weft_ucx_op *op = tp->all_ops;
        tp->all_ops = op->all_next;
        free(op);
    }
    tp->free_ops = NULL;
}

static void fifo_push(struct weft_ucx_fifo *q, struct weft_ucx_op *op)
{
    op->next = NULL;
    if (q->tail)
        q->tail->next = op;
    else
        q->head = op;
    q->tail = op;
    op->queued = true;
}

static struct weft_ucx_op *fifo_pop(struct weft_ucx_fifo *q)
{
    struct weft_ucx_op *op = q->head;
    if (op) {
        q->head = op->next;
        if (!q->head)
            q->tail = NULL;
        op->next = NULL;
    }
    return op;
}

/* ---- UCX callbacks: they only record; the rest happens after progress ---------------- */

static void part_done(struct weft_ucx_op *op, int part, ucs_status_t st, size_t got,
                      void *request)
{
    struct weft_tp *tp = op->ep->tp;
    op->st[part] = st;
    op->got[part] = got;
    op->ucp[part] = NULL;
    op->done |= (uint8_t)(1u << part);
    op->pending--;
    if (request)
        ucp_request_free(request);
    weft_ucx_mark(op->ep);
    if (!op->queued && op->pending == 0)
        op_put(tp, op);
}

static void header_sent(void *request, ucs_status_t st, void *user_data)
{
    part_done(user_data, 0, st, 0, request);
}

static void payload_sent(void *request, ucs_status_t st, void *user_data)
{
    part_done(user_data, 1, st, 0, request);
}

static void header_rcvd(void *request, ucs_status_t st, const ucp_tag_recv_info_t *info,
                        void *user_data)
{
    part_done(user_data, 0, st, st == UCS_OK ? info->length : 0, request);
}

static void payload_rcvd(void *request, ucs_status_t st, const ucp_tag_recv_info_t *info,
                         void *user_data)
{
    part_done(user_data, 1, st, st == UCS_OK ? info->length : 0, request);
}

/* Starts one part; an immediate completion or failure is recorded at once. */
static void post_part(struct weft_ucx_op *op, int part, void *buf, size_t len, ucp_tag_t utag)
{
    struct weft_ep *ep = op->ep;
    ucp_request_param_t p = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
        .user_data = op,
    };
    ucs_status_ptr_t s;
    op->pending++;
    if (op->is_send) {
        p.cb.send = part ? payload_sent : header_sent;
        s = ucp_tag_send_nbx(ep->ep, buf, len, utag, &p);
    } else {
        p.cb.recv = part ? payload_rcvd : header_rcvd;
        s = ucp_tag_recv_nbx(ep->tp->worker, buf, len, utag, WEFT_UCX_TAG_FULL, &p);
    }
    /* UCX 1.13 leaves recv_info unwritten when a receive completes at once (from the
     * unexpected queue): the length is then unknown, and the header has to do. */
    if (s == NULL)
        part_done(op, part, UCS_OK, op->is_send ? len : WEFT_UCX_LEN_UNKNOWN, NULL);
    else if (UCS_PTR_IS_ERR(s))
        part_done(op, part, UCS_PTR_STATUS(s), 0, NULL);
    else if (!(op->done & (1u << part)))
        op->ucp[part] = s;
}

/* ---- failures ------------------------------------------------------------------------- */

weft_result_t weft_ucx_peer_raise(const struct weft_ep *ep)
{
    const struct weft_tp *tp = ep->tp;
    if (ep->failed != WEFT_ERR_REMOTE)
        return WEFT_ERROR(ep->failed, "rank %d: UCX transport aborted; nothing more goes to or "
                          "from rank %d on %s", tp->rank, ep->rank, ep->host);
    if (ep->abort_rcvd)
        return WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d on %s aborted its communicator: rank %d "
                          "heard of it over UCX", ep->rank, ep->host, tp->rank);
    return WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d: the UCX endpoint to rank %d on %s failed: "
                      "%s: %s (the peer exited, was killed, aborted or cannot be reached; "
                      "UCX_TLS=%s)", tp->rank, ep->rank, ep->host, ep->fail_call,
                      ucs_status_string(ep->fail_status), tp->tls);
}

void weft_ucx_peer_flush(struct weft_ep *ep, weft_result_t status)
{
    struct weft_tp *tp = ep->tp;
    struct weft_ucx_fifo *qs[2] = {&ep->sends, &ep->recvs};
    for (int q = 0; q < 2; q++) {
        struct weft_ucx_op *op;
        while ((op = fifo_pop(qs[q])) != NULL) {
            struct weft_request *req = op->req;
            op->req = NULL;
            /* Still queued while cancelling: a callback run by the cancel must not free it. */
            for (int i = 0; i < 2 && !op->is_send; i++)
                if (op->ucp[i])
                    ucp_request_cancel(tp->worker, op->ucp[i]);
            op->queued = false;
            if (op->pending == 0)
                op_put(tp, op);
            if (req)
                weft_request_complete(req, status);
        }
    }
}

void weft_ucx_peer_fail(struct weft_ep *ep, const char *call, ucs_status_t status)
{
    if (ep->failed != WEFT_OK)
        return;
    ep->failed = WEFT_ERR_REMOTE;
    ep->fail_call = call;
    ep->fail_status = status;
    /* Only for requests it fails (see weft_tcp_peer_fail); a later post raises it. */
    if (ep->sends.head || ep->recvs.head)
        (void)weft_ucx_peer_raise(ep);
    weft_ucx_peer_flush(ep, WEFT_ERR_REMOTE);
    weft_ucx_ep_close(ep, true);
}

/* ---- results -------------------------------------------------------------------------- */

static weft_result_t send_result(struct weft_ucx_op *op)
{
    struct weft_ep *ep = op->ep;
    const int bad = op->st[0] != UCS_OK ? 0 : (op->payload && op->st[1] != UCS_OK) ? 1 : -1;
    if (bad < 0)
        return WEFT_OK;
    if (ep->failed == WEFT_OK)
        weft_ucx_peer_fail(ep, "ucp_tag_send_nbx", op->st[bad]);
    return weft_ucx_peer_raise(ep);
}

/* A receive whose header arrived: drain a payload it did not expect, or cancel the payload
 * receive that nothing will match. Both mean the lengths disagree; the result says so. */
static void recv_fix(struct weft_ucx_op *op)
{
    struct weft_ep *ep = op->ep;
    op->fixed = true;
    bool sent_payload = false;
    if (op->st[0] == UCS_OK) {
        struct weft_ucx_hdr h;
        memcpy(&h, op->buf, sizeof(h));
        sent_payload = (le64toh(h.len) & WEFT_UCX_HDR_PAYLOAD) != 0;
    }
    if (sent_payload && !op->payload && ep->failed == WEFT_OK)
        post_part(op, 1, zero_buf, 0, data_tag(ep->rank, op->seq) | WEFT_UCX_TAG_PAYLOAD);
    else if (!sent_payload && op->payload && op->ucp[1])
        ucp_request_cancel(ep->tp->worker, op->ucp[1]);
}

static weft_result_t recv_result(struct weft_ucx_op *op)
{
    struct weft_ep *ep = op->ep;
    const struct weft_tp *tp = ep->tp;
    const struct weft_request *req = op->req;
    if (op->st[0] != UCS_OK) {
        if (ep->failed == WEFT_OK)
            weft_ucx_peer_fail(ep, "ucp_tag_recv_nbx", op->st[0]);
        return weft_ucx_peer_raise(ep);
    }
    struct weft_ucx_hdr h;
    memcpy(&h, op->buf, sizeof(h));
    const uint64_t tag = le64toh(h.tag), len = le64toh(h.len) & ~WEFT_UCX_HDR_PAYLOAD;
    const bool sent_payload = (le64toh(h.len) & WEFT_UCX_HDR_PAYLOAD) != 0;
    const size_t got = op->got[0];
    if (got != WEFT_UCX_LEN_UNKNOWN &&
        (got < WEFT_UCX_HDR_BYTES || (!sent_payload && got != WEFT_UCX_HDR_BYTES + len)))
        return WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d: malformed UCX message %llu from rank %d "
                          "on %s (%zu bytes; mixed Weft versions?)", tp->rank,
                          (unsigned long long)op->seq, ep->rank, ep->host, op->got[0]);
    if (tag != req->tag)
        return WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d got tag %#llx from rank %d on %s, expected "
                          "%#llx: ranks called operations in different orders", tp->rank,
                          (unsigned long long)tag, ep->rank, ep->host,
                          (unsigned long long)req->tag);
    if (len != req->len)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "rank %d posted a receive of %zu bytes with tag "
                          "%#llx but rank %d on %s sent %llu bytes", tp->rank, req->len,
                          (unsigned long long)tag, ep->rank, ep->host, (unsigned long long)len);
    if (!op->payload) {
        if (len)
            memcpy(req->buf, op->buf + WEFT_UCX_HDR_BYTES, len);
        return WEFT_OK;
    }
    if (op->st[1] != UCS_OK) {
        if (ep->failed == WEFT_OK)
            weft_ucx_peer_fail(ep, "ucp_tag_recv_nbx", op->st[1]);
        return weft_ucx_peer_raise(ep);
    }
    if (op->got[1] != len && op->got[1] != WEFT_UCX_LEN_UNKNOWN)
        return WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d: the payload of message %llu from rank %d on "
                          "%s has %zu bytes, its header said %llu", tp->rank,
                          (unsigned long long)op->seq, ep->rank, ep->host, op->got[1],
                          (unsigned long long)len);
    return WEFT_OK;
}

/* Completes the finished requests at the head of `q`: in posting order, as the contract
 * wants, although UCX may finish a later one first. */
static void drain(struct weft_tp *tp, struct weft_ucx_fifo *q)
{
    struct weft_ucx_op *op;
    while ((op = q->head) != NULL) {
        if (!op->is_send && !op->fixed && (op->done & 1u))
            recv_fix(op);
        if (op->pending)
            return;
        fifo_pop(q);
        op->queued = false;
        weft_result_t r = op->is_send ? send_result(op) : recv_result(op);
        struct weft_request *req = op->req;
        op->req = NULL;
        op_put(tp, op);
        if (req)
            weft_request_complete(req, r);
    }
}

/* ---- posting -------------------------------------------------------------------------- */

static weft_result_t post_common(struct weft_ep *ep, void *buf, size_t len, uint64_t tag,
                                 struct weft_request *req, int is_send,
                                 struct weft_ucx_op **out)
{
    struct weft_tp *tp = ep->tp;
    *out = NULL;
    if (tp->aborted)
        return WEFT_ERROR(WEFT_ERR_ABORTED, "rank %d: UCX transport aborted", tp->rank);
    weft_request_init(req, buf, len, tag, ep->rank, is_send);
    if (ep->failed != WEFT_OK) {
        weft_request_complete(req, weft_ucx_peer_raise(ep));
        return WEFT_OK;
    }
    struct weft_ucx_op *op = op_get(tp);
    if (!op)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: cannot allocate a UCX operation for "
                          "%zu bytes to or from rank %d", tp->rank, len, ep->rank);
    op->req = req;
    op->ep = ep;
    op->is_send = is_send;
    op->payload = len >= tp->inline_max;
    op->seq = is_send ? ep->sseq++ : ep->rseq++;
    fifo_push(is_send ? &ep->sends : &ep->recvs, op);
    *out = op;
    return WEFT_OK;
}

weft_result_t weft_ucx_isend(struct weft_ep *ep, const void *buf, size_t len, uint64_t tag,
                             struct weft_request *req)
{
    struct weft_tp *tp = ep->tp;
    struct weft_ucx_op *op;
    WEFT_CHECK(post_common(ep, (void *)buf, len, tag, req, 1, &op));
    if (!op)
        return WEFT_OK;
    struct weft_ucx_hdr h = {
        .tag = htole64(tag),
        .len = htole64((uint64_t)len | (op->payload ? WEFT_UCX_HDR_PAYLOAD : 0)),
    };
    memcpy(op->buf, &h, sizeof(h));
    const ucp_tag_t utag = data_tag(tp->rank, op->seq);
    if (op->payload) {
        post_part(op, 0, op->buf, WEFT_UCX_HDR_BYTES, utag);
        post_part(op, 1, (void *)buf, len, utag | WEFT_UCX_TAG_PAYLOAD);
    } else {
        if (len)
            memcpy(op->buf + WEFT_UCX_HDR_BYTES, buf, len);
        post_part(op, 0, op->buf, WEFT_UCX_HDR_BYTES + len, utag);
    }
    drain(tp, &ep->sends);
    return WEFT_OK;
}

weft_result_t weft_ucx_irecv(struct weft_ep *ep, void *buf, size_t len, uint64_t tag,
                             struct weft_request *req)
{
    struct weft_tp *tp = ep->tp;
    struct weft_ucx_op *op;
    WEFT_CHECK(post_common(ep, buf, len, tag, req, 0, &op));
    if (!op)
        return WEFT_OK;
    const ucp_tag_t utag = data_tag(ep->rank, op->seq);
    post_part(op, 0, op->buf, WEFT_UCX_HDR_BYTES + tp->inline_max, utag);
    if (op->payload)
        post_part(op, 1, buf, len, utag | WEFT_UCX_TAG_PAYLOAD);
    drain(tp, &ep->recvs);
    return WEFT_OK;
}

/* ---- control messages ----------------------------------------------------------------- */

static void hello_rcvd(void *request, ucs_status_t st, const ucp_tag_recv_info_t *info,
                       void *user_data)
{
    struct weft_ep *ep = user_data;
    (void)info;
    ep->hello_recv = NULL;
    if (st == UCS_OK)
        ep->hello_rcvd = true;
    ucp_request_free(request);
    weft_ucx_mark(ep);
}

static void abort_rcvd(void *request, ucs_status_t st, const ucp_tag_recv_info_t *info,
                       void *user_data)
{
    struct weft_ep *ep = user_data;
    (void)info;
    ep->abort_recv = NULL;
    if (st == UCS_OK)
        ep->abort_rcvd = true;
    ucp_request_free(request);
    weft_ucx_mark(ep);
}

static void ctrl_sent(struct weft_ep *ep, ucs_status_t st)
{
    if (st != UCS_OK && st != UCS_ERR_CANCELED && !ep->err_pending) {
        ep->err_pending = true;
        ep->err_status = st;
        ep->err_call = "ucp_tag_send_nbx (control message)";
    }
    weft_ucx_mark(ep);
}

static void hello_sent(void *request, ucs_status_t st, void *user_data)
{
    struct weft_ep *ep = user_data;
    ep->hello_send = NULL;
    ep->hello_sent = st == UCS_OK;
    ucp_request_free(request);
    ctrl_sent(ep, st);
}

static void abort_sent(void *request, ucs_status_t st, void *user_data)
{
    struct weft_ep *ep = user_data;
    ep->abort_send = NULL;
    ucp_request_free(request);
    ctrl_sent(ep, st);
}

weft_result_t weft_ucx_ctrl_send(struct weft_ep *ep, enum weft_ucx_ctrl kind)
{
    struct weft_tp *tp = ep->tp;
    const bool hello = kind == WEFT_UCX_HELLO;
    ucp_request_param_t p = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
        .cb.send = hello ? hello_sent : abort_sent,
        .user_data = ep,
    };
    void *buf = hello ? (void *)zero_buf : &tp->abort_word;
    const size_t len = hello ? 0 : sizeof(tp->abort_word);
    ucs_status_ptr_t s = ucp_tag_send_nbx(ep->ep, buf, len, ctrl_tag(tp->rank, kind), &p);
    if (UCS_PTR_IS_ERR(s))
        return WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d: cannot send a %s to rank %d on %s: "
                          "ucp_tag_send_nbx: %s", tp->rank, hello ? "hello" : "abort notice",
                          ep->rank, ep->host, ucs_status_string(UCS_PTR_STATUS(s)));
    if (hello) {
        ep->hello_send = s;
        ep->hello_sent = s == NULL;
    } else {
        ep->abort_send = s;
    }
    return WEFT_OK;
}

static weft_result_t ctrl_recv(struct weft_ep *ep, enum weft_ucx_ctrl kind, void **slot)
{
    struct weft_tp *tp = ep->tp;
    const bool hello = kind == WEFT_UCX_HELLO;
    ucp_request_param_t p = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
        .cb.recv = hello ? hello_rcvd : abort_rcvd,
        .user_data = ep,
    };
    void *buf = hello ? (void *)zero_buf : &ep->abort_word;
    const size_t len = hello ? 0 : sizeof(ep->abort_word);
    ucs_status_ptr_t s = ucp_tag_recv_nbx(tp->worker, buf, len, ctrl_tag(ep->rank, kind),
                                          WEFT_UCX_TAG_FULL, &p);
    if (UCS_PTR_IS_ERR(s))
        return WEFT_ERROR(WEFT_ERR_SYSTEM, "rank %d: cannot post a UCX receive for rank %d: "
                          "ucp_tag_recv_nbx: %s", tp->rank, ep->rank,
                          ucs_status_string(UCS_PTR_STATUS(s)));
    *slot = s;
    if (s == NULL) {
        if (hello)
            ep->hello_rcvd = true;
        else
            ep->abort_rcvd = true;
        weft_ucx_mark(ep);
    }
    return WEFT_OK;
}

weft_result_t weft_ucx_ctrl_start(struct weft_ep *ep)
{
    WEFT_CHECK(ctrl_recv(ep, WEFT_UCX_HELLO, &ep->hello_recv));
    WEFT_CHECK(ctrl_recv(ep, WEFT_UCX_ABORT, &ep->abort_recv));
    return weft_ucx_ctrl_send(ep, WEFT_UCX_HELLO);
}

/* ---- progress ------------------------------------------------------------------------- */

void weft_ucx_mark(struct weft_ep *ep)
{
    struct weft_tp *tp = ep->tp;
    if (!ep->marked) {
        ep->marked = true;
        tp->marked[tp->nmarked++] = ep;
    }
}

/* Handles what callbacks reported, peer by peer, until no peer is marked: handling one may
 * mark it again (a cancel or a close runs callbacks at once). True when a peer with requests
 * of the user's was handled: a notice or an error on an idle peer (another rank's abort
 * while this one waits on a third) moves no request, and must not restart WEFT_TIMEOUT. */
static bool handle_events(struct weft_tp *tp)
{
    bool moved = false;
    while (tp->nmarked > 0) {
        struct weft_ep *ep = tp->marked[--tp->nmarked];
        ep->marked = false;
        moved |= ep->sends.head != NULL || ep->recvs.head != NULL;
        if (ep->abort_rcvd && ep->abort_word && tp->culprit == WEFT_CULPRIT_NONE)
            tp->culprit = (int)(le32toh(ep->abort_word) - 1);
        if (ep->abort_rcvd && ep->failed == WEFT_OK && !tp->closing)
            weft_ucx_peer_fail(ep, "abort notice", UCS_OK);
        if (ep->err_pending && ep->failed == WEFT_OK && !tp->closing)
            weft_ucx_peer_fail(ep, ep->err_call, ep->err_status);
        if (ep->sends.head)
            drain(tp, &ep->sends);
        if (ep->recvs.head)
            drain(tp, &ep->recvs);
    }
    return moved;
}

/* Only Weft-visible events count as progress (for the net's backoff and its WEFT_TIMEOUT
 * deadline): UCX's own traffic, keepalives every UCX_KEEPALIVE_INTERVAL from every peer,
 * would otherwise restart the deadline forever and a silent peer would never time out. A
 * long rendezvous therefore looks idle to the net, which then yields between polls. */
weft_result_t weft_ucx_progress(struct weft_tp *tp, bool *progressed)
{
    ucp_worker_progress(tp->worker);
    if (tp->nmarked > 0 && handle_events(tp))
        *progressed = true;
    return WEFT_OK;
}

#else
/* Built without UCX: nothing here. */
typedef int weft_ucx_data_not_built_t;
#endif /* WEFT_HAVE_UCX */
