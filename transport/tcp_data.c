/*
 * tcp_data.c - TCP framing: messages go as header + payload, large ones striped one part per
 * socket; sendmsg/readv move bytes straight from and into user buffers, resuming after EAGAIN.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "transport/tcp_internal.h"

#define SEND_BATCH_BYTES ((size_t)4 << 20)
#define PARTS_LEFT(req) ((req)->priv[0])
/* Receive state, known once socket 0 delivered the message's header: what the sender sent
 * decides how its parts are spread; a mismatch keeps the request until they are drained. */
#define RFLAGS(req) ((req)->priv[1])
#define RSENT_LEN(req) ((req)->priv[2])
#define RSTATUS(req) ((req)->priv[3])
#define RSENT_TAG(req) ((req)->priv[4])
#define RF_KNOWN 1u
#define RF_STRIPED 2u
#define RF_DISCARD 4u

size_t weft_tcp_nparts(const struct weft_tp *tp, size_t len)
{
    return len >= WEFT_TCP_STRIPE_MIN && tp->nsocks > 1 ? (size_t)tp->nsocks : 1;
}

/* Whether socket `idx` carries a part of a `len`-byte message, and which bytes. Both sides
 * compute it from the length alone (nsocks is checked equal at connect). Parts are
 * page-multiples so that each lands on its own pages of the receive buffer. */
static bool part_of(const struct weft_tp *tp, size_t len, int idx, size_t *off, size_t *plen)
{
    const size_t n = weft_tcp_nparts(tp, len);
    *off = *plen = 0;
    if ((size_t)idx >= n)
        return false;
    if (n == 1) {
        *off = 0;
        *plen = len;
        return true;
    }
    const size_t chunk = ((len + n - 1) / n + 4095) & ~(size_t)4095;
    size_t o = chunk * (size_t)idx;
    if (o > len)
        o = len;
    *off = o;
    *plen = len - o < chunk ? len - o : chunk;
    return true;
}

/* The first request at or after `r` that has a part on socket `idx`. */
static struct weft_request *next_part(const struct weft_tp *tp, struct weft_request *r, int idx)
{
    size_t off, plen;
    while (r && !part_of(tp, r->len, idx, &off, &plen))
        r = r->next;
    return r;
}

void weft_tcp_post(struct weft_ep *peer, struct weft_request *req)
{
    const struct weft_tp *tp = peer->tp;
    struct weft_request **head = req->is_send ? &peer->shead : &peer->rhead;
    struct weft_request **tail = req->is_send ? &peer->stail : &peer->rtail;
    req->next = NULL;
    if (*tail)
        (*tail)->next = req;
    else
        *head = req;
    *tail = req;
    if (!req->is_send) {
        /* Only socket 0 matches receives; it learns from the header where the parts are. */
        PARTS_LEFT(req) = 1;
        RFLAGS(req) = 0;
        RSTATUS(req) = WEFT_OK;
        if (!peer->socks[0].rcur) {
            peer->socks[0].rcur = req;
            peer->socks[0].rdone = 0;
        }
        return;
    }
    PARTS_LEFT(req) = weft_tcp_nparts(tp, req->len);
    /* A socket with no cursor has finished every earlier part it carries. */
    for (int i = 0; i < tp->nsocks; i++) {
        struct weft_tcp_sock *s = &peer->socks[i];
        size_t off, plen;
        if (!s->scur && part_of(tp, req->len, i, &off, &plen)) {
            s->scur = req;
            s->sdone = 0;
        }
    }
}

/* Whether receive `r` has a part on socket `idx` (known only after socket 0's header). */
static bool recv_has_part(const struct weft_request *r, int idx)
{
    return idx == 0 || (RFLAGS(r) & RF_STRIPED);
}

static struct weft_request *next_recv_part(struct weft_request *r, int idx)
{
    while (r && !recv_has_part(r, idx))
        r = r->next;
    return r;
}

/* A request all of whose parts moved; its status if so. */
static bool finished(const struct weft_request *r, weft_result_t *status)
{
    if (PARTS_LEFT(r) != 0 || (!r->is_send && !(RFLAGS(r) & RF_KNOWN)))
        return false;
    *status = r->is_send ? WEFT_OK : (weft_result_t)RSTATUS(r);
    return true;
}

void weft_tcp_peer_flush(struct weft_ep *peer, struct weft_request *first,
                         weft_result_t first_status, weft_result_t status)
{
    struct weft_request *lists[2] = {peer->shead, peer->rhead};
    peer->shead = peer->stail = peer->rhead = peer->rtail = NULL;
    for (int i = 0; i < peer->tp->nsocks; i++) {
        peer->socks[i].scur = peer->socks[i].rcur = NULL;
        peer->socks[i].sdone = peer->socks[i].rdone = 0;
    }
    for (int l = 0; l < 2; l++)
        for (struct weft_request *r = lists[l], *next; r; r = next) {
            next = r->next; /* read before completing: the owner may reuse r at once */
            weft_result_t own;
            if (r == first)
                own = first_status;
            else if (!finished(r, &own))
                own = status;
            weft_request_complete(r, own);
        }
}

static const char abort_call[] = "abort notice";

weft_result_t weft_tcp_peer_raise(const struct weft_ep *peer, int sock)
{
    const struct weft_tp *tp = peer->tp;
    if (peer->failed != WEFT_ERR_REMOTE || !peer->fail_call)
        return WEFT_ERROR(peer->failed, "rank %d: the connection to rank %d at %s is broken "
                          "by an earlier error", tp->rank, peer->rank, peer->addr_str);
    const char *host = tp->hostnames && tp->hostnames[peer->rank] ? tp->hostnames[peer->rank]
                                                                  : "?";
    if (peer->fail_call == abort_call)
        return WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d on host %s at %s aborted its communicator: "
                          "rank %d got its abort notice (socket %d of %d)", peer->rank, host,
                          peer->addr_str, tp->rank, sock, tp->nsocks);
    if (peer->fail_err == ETIMEDOUT)
        return WEFT_ERROR_ERR(WEFT_ERR_REMOTE, peer->fail_err, peer->fail_call,
                              "rank %d on host %s at %s stopped answering rank %d for "
                              "WEFT_SOCKET_DEAD_TIMEOUT=%d s: its host is gone or the path to "
                              "it is down (socket %d of %d)",
                              peer->rank, host, peer->addr_str, tp->rank, tp->dead_timeout_s,
                              sock, tp->nsocks);
    if (peer->fail_err)
        return WEFT_ERROR_ERR(WEFT_ERR_REMOTE, peer->fail_err, peer->fail_call,
                              "rank %d at %s closed the connection to rank %d: it exited or "
                              "aborted (socket %d of %d)",
                              peer->rank, peer->addr_str, tp->rank, sock, tp->nsocks);
    return WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d at %s closed the connection to rank %d: it "
                      "exited or aborted (%s on socket %d of %d)", peer->rank, peer->addr_str,
                      tp->rank, peer->fail_call, sock, tp->nsocks);
}

void weft_tcp_peer_fail(struct weft_ep *peer, weft_result_t code, int err, const char *call,
                        int sock, struct weft_request *first, weft_result_t first_status)
{
    struct weft_tp *tp = peer->tp;
    if (peer->failed != WEFT_OK)
        return;
    peer->failed = code;
    peer->fail_err = err;
    peer->fail_call = call;
    /* Only for requests it fails: the message of an idle peer (another rank's abort notice
     * while this one waits on a third) would replace the one of the failure being reported.
     * A request posted later raises it then. */
    if (call && (peer->shead || peer->rhead))
        (void)weft_tcp_peer_raise(peer, sock);
    weft_tcp_peer_flush(peer, first, first_status, code);
    for (int i = 0; i < tp->nsocks; i++)
        weft_tcp_sock_close(tp, &peer->socks[i]);
}

static void frame_encode(struct weft_tcp_frame *f, const struct weft_request *r, int part,
                         size_t plen)
{
    f->magic = htole32(WEFT_TCP_FRAME_MAGIC);
    f->part = htole32((uint32_t)part);
    f->tag = htole64(r->tag);
    f->total = htole64((uint64_t)r->len);
    f->part_len = htole64((uint64_t)plen);
}

/* Consumes `n` bytes that sendmsg took, finishing parts along the way. */
static void send_advance(const struct weft_tp *tp, struct weft_tcp_sock *s, size_t n)
{
    while (n > 0 && s->scur) {
        size_t off, plen;
        part_of(tp, s->scur->len, s->index, &off, &plen);
        const size_t rem = WEFT_TCP_FRAME_BYTES + plen - s->sdone;
        if (n < rem) {
            s->sdone += n;
            return;
        }
        n -= rem;
        PARTS_LEFT(s->scur)--;
        s->sdone = 0;
        s->scur = next_part(tp, s->scur->next, s->index);
    }
}

/* Gathers the rest of the current part and the following ones into one sendmsg. */
static void sock_send(struct weft_tp *tp, struct weft_tcp_sock *s, bool *progressed)
{
    while (s->scur && s->writable && s->fd >= 0) {
        struct iovec iov[2 * WEFT_TCP_SEND_BATCH];
        int niov = 0;
        size_t total = 0, skip = s->sdone;
        struct weft_request *r = s->scur;
        for (int k = 0; r && k < WEFT_TCP_SEND_BATCH && total < SEND_BATCH_BYTES; k++) {
            size_t off, plen;
            part_of(tp, r->len, s->index, &off, &plen);
            frame_encode(&s->sframes[k], r, s->index, plen);
            if (skip < WEFT_TCP_FRAME_BYTES) {
                iov[niov].iov_base = (char *)&s->sframes[k] + skip;
                iov[niov++].iov_len = WEFT_TCP_FRAME_BYTES - skip;
                total += WEFT_TCP_FRAME_BYTES - skip;
                skip = 0;
            } else {
                skip -= WEFT_TCP_FRAME_BYTES;
            }
            if (plen > skip) {
                iov[niov].iov_base = (char *)r->buf + off + skip;
                iov[niov++].iov_len = plen - skip;
                total += plen - skip;
            }
            skip = 0;
            r = next_part(tp, r->next, s->index);
        }
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
        ssize_t n = sendmsg(s->fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                s->writable = false;
                return;
            }
            weft_tcp_peer_fail(s->peer, WEFT_ERR_REMOTE, errno, "sendmsg", s->index, NULL,
                               WEFT_OK);
            return;
        }
        *progressed = true;
        send_advance(tp, s, (size_t)n);
        if ((size_t)n < total) {
            s->writable = false; /* the buffer is full: wait for the edge */
            return;
        }
    }
}

const char *weft_tcp_frame_fault(const struct weft_tp *tp, const struct weft_tcp_frame *f,
                                 int index)
{
    const uint64_t total = le64toh(f->total);
    size_t off, plen;
    if (le32toh(f->magic) != WEFT_TCP_FRAME_MAGIC)
        return "bad frame magic";
    if (total > SIZE_MAX || !part_of(tp, (size_t)total, index, &off, &plen) ||
        le32toh(f->part) != (uint32_t)index || le64toh(f->part_len) != plen)
        return "part does not match the message length";
    return NULL;
}

/* A header that cannot occur in a healthy stream: the pair is lost. */
static bool frame_sane(struct weft_tcp_sock *s, struct weft_request *r, uint64_t tag,
                       uint64_t total)
{
    struct weft_ep *peer = s->peer;
    const struct weft_tp *tp = peer->tp;
    const char *why = weft_tcp_frame_fault(tp, &s->rframe, s->index);
    if (!why && s->index > 0 && (tag != RSENT_TAG(r) || total != RSENT_LEN(r)))
        why = "part does not belong to the message on socket 0";
    if (!why)
        return true;
    weft_result_t st = WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d: corrupt stream from rank %d at %s "
                                  "on socket %d of %d: %s", tp->rank, peer->rank,
                                  peer->addr_str, s->index, tp->nsocks, why);
    weft_tcp_peer_fail(peer, WEFT_ERR_REMOTE, 0, NULL, s->index, r, st);
    return false;
}

/* Matches socket 0's header of the next message to the posted receive `r`. A mismatch fails
 * the receive with the reason once the message's parts are drained: the stream stays in step
 * and later messages still arrive. */
static bool head_check(struct weft_tp *tp, struct weft_tcp_sock *s, struct weft_request *r)
{
    struct weft_ep *peer = s->peer;
    const uint64_t tag = le64toh(s->rframe.tag), total = le64toh(s->rframe.total);
    if (s->index > 0)
        return frame_sane(s, r, tag, total);
    if (!frame_sane(s, r, tag, total))
        return false;
    const size_t n = weft_tcp_nparts(tp, (size_t)total);
    RSENT_LEN(r) = total;
    RSENT_TAG(r) = tag;
    PARTS_LEFT(r) = n;
    RFLAGS(r) = RF_KNOWN | (n > 1 ? RF_STRIPED : 0);
    weft_result_t st = WEFT_OK;
    if (tag != r->tag)
        st = WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d got tag %llu from rank %d at %s, expected "
                        "%llu: ranks called operations in different orders", tp->rank,
                        (unsigned long long)tag, peer->rank, peer->addr_str,
                        (unsigned long long)r->tag);
    else if (total != r->len)
        st = WEFT_ERROR(WEFT_ERR_INVALID_ARG, "rank %d posted a receive of %zu bytes with tag "
                        "%llu but rank %d at %s sent %llu bytes", tp->rank, r->len,
                        (unsigned long long)tag, peer->rank, peer->addr_str,
                        (unsigned long long)total);
    if (st != WEFT_OK) {
        RSTATUS(r) = st;
        RFLAGS(r) |= RF_DISCARD;
    }
    for (size_t i = 1; i < n; i++) {
        struct weft_tcp_sock *o = &peer->socks[i];
        if (!o->rcur) {
            o->rcur = r;
            o->rdone = 0;
        }
    }
    return true;
}

/* ---- abort notices -------------------------------------------------------------------- */

void weft_tcp_send_abort(struct weft_tp *tp, struct weft_ep *peer, int culprit)
{
    const struct weft_tcp_frame f = {.magic = htole32(WEFT_TCP_ABORT_MAGIC),
                                     .part = htole32((uint32_t)(culprit + 1))}; /* 0: none */
    for (int i = 0; i < tp->nsocks; i++) {
        const struct weft_tcp_sock *s = &peer->socks[i];
        if (s->fd >= 0 && s->state == WEFT_TCP_S_UP && (!s->scur || s->sdone == 0))
            (void)send(s->fd, &f, sizeof(f), MSG_DONTWAIT | MSG_NOSIGNAL);
    }
}

/* The notice is s->rframe: keep its culprit for the net, and fail the peer. */
static void abort_received(struct weft_tcp_sock *s)
{
    struct weft_tp *tp = s->peer->tp;
    const uint32_t culprit = le32toh(s->rframe.part);
    if (culprit && tp->culprit == WEFT_CULPRIT_NONE)
        tp->culprit = (int)(culprit - 1);
    weft_tcp_peer_fail(s->peer, WEFT_ERR_REMOTE, 0, abort_call, s->index, NULL, WEFT_OK);
}

/* At the peer's close: a notice waiting on a socket that no receive reads. */
static void peek_abort(struct weft_tcp_sock *s)
{
    if (s->rcur || s->rdone || s->fd < 0)
        return;
    if (recv(s->fd, &s->rframe, WEFT_TCP_FRAME_BYTES, MSG_PEEK | MSG_DONTWAIT) ==
            (ssize_t)WEFT_TCP_FRAME_BYTES &&
        le32toh(s->rframe.magic) == WEFT_TCP_ABORT_MAGIC)
        abort_received(s);
}

/* Reads the header alone, then the payload straight into the user buffer: reading ahead could
 * swallow the next message when the lengths disagree. */
static void sock_recv(struct weft_tp *tp, struct weft_tcp_sock *s, bool *progressed)
{
    while (s->rcur && s->readable && s->fd >= 0) {
        struct weft_request *r = s->rcur;
        size_t off = 0, plen = 0;
        ssize_t n;
        if (s->rdone < WEFT_TCP_FRAME_BYTES) {
            n = read(s->fd, (char *)&s->rframe + s->rdone, WEFT_TCP_FRAME_BYTES - s->rdone);
        } else {
            part_of(tp, (size_t)RSENT_LEN(r), s->index, &off, &plen);
            const size_t got = s->rdone - WEFT_TCP_FRAME_BYTES;
            if (RFLAGS(r) & RF_DISCARD) {
                size_t want = plen - got < sizeof(tp->discard) ? plen - got
                                                                : sizeof(tp->discard);
                n = read(s->fd, tp->discard, want);
            } else {
                n = read(s->fd, (char *)r->buf + off + got, plen - got);
            }
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                s->readable = false;
                return;
            }
            weft_tcp_peer_fail(s->peer, WEFT_ERR_REMOTE, errno, "recv", s->index, NULL,
                               WEFT_OK);
            return;
        }
        if (n == 0) {
            weft_tcp_peer_fail(s->peer, WEFT_ERR_REMOTE, 0, "EOF", s->index, NULL, WEFT_OK);
            return;
        }
        *progressed = true;
        const size_t before = s->rdone;
        s->rdone += (size_t)n;
        if (s->rdone < WEFT_TCP_FRAME_BYTES)
            continue;
        if (before < WEFT_TCP_FRAME_BYTES && le32toh(s->rframe.magic) == WEFT_TCP_ABORT_MAGIC) {
            abort_received(s);
            return;
        }
        if (before < WEFT_TCP_FRAME_BYTES && !head_check(tp, s, r))
            return;
        part_of(tp, (size_t)RSENT_LEN(r), s->index, &off, &plen);
        if (s->rdone == WEFT_TCP_FRAME_BYTES + plen) {
            PARTS_LEFT(r)--;
            s->rdone = 0;
            s->rcur = next_recv_part(r->next, s->index);
        }
    }
}

/* Requests complete in posting order, although striped parts finish in any order. */
static void complete_done(struct weft_request **head, struct weft_request **tail)
{
    weft_result_t st;
    while (*head && finished(*head, &st)) {
        struct weft_request *r = *head;
        *head = r->next;
        if (!*head)
            *tail = NULL;
        weft_request_complete(r, st);
    }
}

void weft_tcp_data_event(struct weft_tp *tp, struct weft_tcp_sock *s, uint32_t events)
{
    struct weft_ep *peer = s->peer;
    if (events & EPOLLIN)
        s->readable = true;
    if (events & EPOLLOUT)
        s->writable = true;
    if (events & EPOLLERR) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            weft_tcp_peer_fail(peer, WEFT_ERR_REMOTE, err, "socket", s->index, NULL, WEFT_OK);
            return;
        }
    }
    if (events & (EPOLLRDHUP | EPOLLHUP)) {
        /* Data sent before the close is still delivered; what can no longer complete is a
         * send (the peer reads nothing more) and a receive that reaches the end. */
        s->readable = true;
        peer->remote_closed = true;
        WEFT_TRACE(NET, "rank %d: rank %d at %s shut socket %d", tp->rank, peer->rank,
                   peer->addr_str, s->index);
        peek_abort(s);
        if (peer->shead && peer->failed == WEFT_OK)
            weft_tcp_peer_fail(peer, WEFT_ERR_REMOTE, 0, "EOF", s->index, NULL, WEFT_OK);
    }
}

void weft_tcp_drive(struct weft_tp *tp, struct weft_ep *peer, bool *progressed)
{
    for (int i = 0; i < tp->nsocks && peer->failed == WEFT_OK; i++) {
        struct weft_tcp_sock *s = &peer->socks[i];
        if (s->scur && s->writable)
            sock_send(tp, s, progressed);
        if (s->rcur && s->readable && peer->failed == WEFT_OK)
            sock_recv(tp, s, progressed);
    }
    if (peer->failed == WEFT_OK) {
        complete_done(&peer->shead, &peer->stail);
        complete_done(&peer->rhead, &peer->rtail);
    }
}
