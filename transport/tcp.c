/*
 * tcp.c - the TCP transport's operations table: the portable fallback between hosts, with
 * WEFT_SOCKET_NSOCKS authenticated sockets per peer driven by one epoll instance.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "transport/tcp_internal.h"

/* The address blob, in network byte order. */
struct tcp_blob {
    uint32_t magic;
    uint32_t rank;
    uint32_t nsocks;
    uint32_t addr_len;
    uint8_t addr[sizeof(struct sockaddr_storage)];
};

static bool tcp_probe(char *why, size_t why_len)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, why_len, "cannot create a TCP socket: %s", strerror(errno));
        return false;
    }
    close(fd);
    return true;
}

static void tcp_fini(struct weft_tp *tp)
{
    if (!tp)
        return;
    weft_tcp_unlisten(tp);
    if (tp->peers) {
        for (int p = 0; p < tp->nranks; p++)
            for (int i = 0; tp->peers[p].socks && i < tp->nsocks; i++)
                weft_tcp_sock_close(tp, &tp->peers[p].socks[i]);
        free(tp->peers[0].socks);
        free(tp->peers);
    }
    if (tp->epfd >= 0)
        close(tp->epfd);
    free(tp);
}

static weft_result_t tcp_init(const struct weft_transport_params *params, struct weft_tp **out)
{
    weft_result_t r;
    const int64_t nsocks = weft_config_int(WEFT_CFG_SOCKET_NSOCKS);
    if (nsocks < 1 || nsocks > WEFT_TCP_MAX_NSOCKS)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "WEFT_SOCKET_NSOCKS=%lld: must be 1 to %d",
                          (long long)nsocks, WEFT_TCP_MAX_NSOCKS);
    if (params->nranks < 1 || params->rank < 0 || params->rank >= params->nranks)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "tcp: rank %d of %d ranks", params->rank,
                          params->nranks);
    struct weft_tp *tp = calloc(1, sizeof(*tp));
    if (!tp)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: cannot allocate the TCP transport",
                          params->rank);
    tp->rank = params->rank;
    tp->nranks = params->nranks;
    tp->culprit = WEFT_CULPRIT_NONE;
    tp->nsocks = (int)nsocks;
    tp->bufsize = weft_config_size(WEFT_CFG_SOCKET_BUFSIZE);
    const long dead = weft_config_int(WEFT_CFG_SOCKET_DEAD_TIMEOUT);
    tp->dead_timeout_s = dead < 0 ? 0 : dead > 86400 ? 86400 : (int)dead;
    tp->hostnames = params->hostnames;
    tp->timeout_s = params->timeout_s;
    memcpy(tp->key, params->key, sizeof(tp->key));
    tp->listener.fd = -1;
    tp->epfd = -1;
    tp->peers = calloc((size_t)tp->nranks, sizeof(*tp->peers));
    struct weft_tcp_sock *socks = calloc((size_t)tp->nranks * (size_t)tp->nsocks,
                                         sizeof(*socks));
    if (!tp->peers || !socks) {
        free(socks);
        r = WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: cannot allocate TCP state for %d ranks",
                       tp->rank, tp->nranks);
        goto fail;
    }
    for (int p = 0; p < tp->nranks; p++) {
        struct weft_ep *peer = &tp->peers[p];
        peer->tp = tp;
        peer->rank = p;
        peer->socks = socks + (size_t)p * (size_t)tp->nsocks;
        snprintf(peer->addr_str, sizeof(peer->addr_str), "(unknown)");
        for (int i = 0; i < tp->nsocks; i++) {
            peer->socks[i].kind = WEFT_TCP_SOCK;
            peer->socks[i].fd = -1;
            peer->socks[i].index = i;
            peer->socks[i].peer = peer;
        }
    }
    tp->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (tp->epfd < 0) {
        r = WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "epoll_create1",
                             "rank %d: cannot create the TCP transport's epoll", tp->rank);
        goto fail;
    }
    WEFT_CHECK_GOTO(weft_tcp_listen(tp), r, fail);
    WEFT_INFO(NET, "rank %d: tcp listening on %s (interface %s), %d socket%s per peer, "
              "buffers %s", tp->rank, tp->laddr_str, tp->ifname, tp->nsocks,
              tp->nsocks == 1 ? "" : "s", tp->bufsize ? "fixed" : "autotuned");
    *out = tp;
    return WEFT_OK;

fail:
    tcp_fini(tp);
    return r;
}

static weft_result_t tcp_address(struct weft_tp *tp, void *blob, size_t *len)
{
    struct tcp_blob b = {
        .magic = htonl(WEFT_TCP_BLOB_MAGIC),
        .rank = htonl((uint32_t)tp->rank),
        .nsocks = htonl((uint32_t)tp->nsocks),
        .addr_len = htonl((uint32_t)tp->laddr_len),
    };
    memcpy(b.addr, &tp->laddr, tp->laddr_len);
    if (*len < sizeof(b))
        return WEFT_ERROR(WEFT_ERR_INTERNAL, "rank %d: TCP address needs %zu bytes, got %zu",
                          tp->rank, sizeof(b), *len);
    memcpy(blob, &b, sizeof(b));
    *len = sizeof(b);
    return WEFT_OK;
}

static weft_result_t peer_set_addr(struct weft_tp *tp, struct weft_ep *peer, const void *blob,
                                   size_t len)
{
    struct tcp_blob b;
    if (len != sizeof(b))
        return WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d: TCP address of rank %d has %zu bytes, "
                          "expected %zu (mixed Weft versions?)", tp->rank, peer->rank, len,
                          sizeof(b));
    memcpy(&b, blob, sizeof(b));
    const uint32_t alen = ntohl(b.addr_len);
    if (ntohl(b.magic) != WEFT_TCP_BLOB_MAGIC || ntohl(b.rank) != (uint32_t)peer->rank ||
        alen == 0 || alen > sizeof(peer->addr))
        return WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d: malformed TCP address from rank %d",
                          tp->rank, peer->rank);
    if (ntohl(b.nsocks) != (uint32_t)tp->nsocks)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "rank %d uses WEFT_SOCKET_NSOCKS=%d but rank "
                          "%d uses %u: set the same value on every rank", tp->rank, tp->nsocks,
                          peer->rank, ntohl(b.nsocks));
    memset(&peer->addr, 0, sizeof(peer->addr));
    memcpy(&peer->addr, b.addr, alen);
    peer->addr_len = alen;
    weft_sockaddr_str((struct sockaddr *)&peer->addr, peer->addr_str, sizeof(peer->addr_str));
    peer->have_addr = true;
    return WEFT_OK;
}

static weft_result_t tcp_progress(struct weft_tp *tp, bool *progressed);

static weft_result_t tcp_connect(struct weft_tp *tp, int rank, const void *blob, size_t len,
                                 struct weft_ep **ep)
{
    if (tp->aborted)
        return WEFT_ERROR(WEFT_ERR_ABORTED, "rank %d: TCP transport aborted", tp->rank);
    if (rank < 0 || rank >= tp->nranks || rank == tp->rank)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "rank %d: cannot connect to rank %d over TCP "
                          "(%d ranks)", tp->rank, rank, tp->nranks);
    struct weft_ep *peer = &tp->peers[rank];
    if (!peer->have_addr) {
        WEFT_CHECK(peer_set_addr(tp, peer, blob, len));
        if (tp->rank < rank)
            WEFT_CHECK(weft_tcp_initiate(tp, peer));
    }
    if (peer->conn_result != WEFT_OK)
        return peer->conn_result;
    bool progressed = false;
    WEFT_CHECK(tcp_progress(tp, &progressed));
    if (peer->conn_result != WEFT_OK)
        return peer->conn_result;
    if (peer->failed != WEFT_OK)
        return weft_tcp_peer_raise(peer, 0);
    if (peer->nup < tp->nsocks)
        return WEFT_ERR_IN_PROGRESS;
    if (!peer->logged) {
        peer->logged = true;
        WEFT_INFO(NET, "rank %d: connected to rank %d at %s over %d TCP socket%s (%s)",
                  tp->rank, rank, peer->addr_str, tp->nsocks, tp->nsocks == 1 ? "" : "s",
                  tp->rank < rank ? "initiated" : "accepted");
    }
    *ep = peer;
    return WEFT_OK;
}

static weft_result_t tcp_connected(struct weft_tp *tp)
{
    /* Every peer is connected: the listener and unverified connections serve no one now. */
    weft_tcp_unlisten(tp);
    return WEFT_OK;
}

static weft_result_t post(struct weft_ep *peer, void *buf, size_t len, uint64_t tag,
                          struct weft_request *req, int is_send)
{
    struct weft_tp *tp = peer->tp;
    if (tp->aborted)
        return WEFT_ERROR(WEFT_ERR_ABORTED, "rank %d: TCP transport aborted", tp->rank);
    req->buf = buf;
    req->len = len;
    req->tag = tag;
    req->peer = peer->rank;
    req->is_send = is_send;
    req->status = WEFT_OK;
    req->offset = 0;
    req->next = NULL;
    req->done = 0;
    if (peer->failed == WEFT_OK && is_send && peer->remote_closed)
        weft_tcp_peer_fail(peer, WEFT_ERR_REMOTE, 0, "EOF", 0, NULL, WEFT_OK);
    if (peer->failed != WEFT_OK) {
        weft_request_complete(req, weft_tcp_peer_raise(peer, 0));
        return WEFT_OK;
    }
    weft_tcp_post(peer, req);
    return WEFT_OK;
}

static weft_result_t tcp_isend(struct weft_ep *ep, const void *buf, size_t len, uint64_t tag,
                               struct weft_request *req)
{
    return post(ep, (void *)buf, len, tag, req, 1);
}

static weft_result_t tcp_irecv(struct weft_ep *ep, void *buf, size_t len, uint64_t tag,
                               struct weft_request *req)
{
    return post(ep, buf, len, tag, req, 0);
}

static weft_result_t tcp_progress(struct weft_tp *tp, bool *progressed)
{
    if (tp->aborted)
        return WEFT_OK;
    struct epoll_event evs[64];
    int n;
    do {
        n = epoll_wait(tp->epfd, evs, 64, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "epoll_wait",
                                "rank %d: cannot poll the TCP sockets", tp->rank);
    /* Handshakes (ours, or a stranger's on the listener) are not progress of a request. */
    bool handshake = false;
    for (int i = 0; i < n; i++) {
        void *obj = evs[i].data.ptr;
        struct weft_tcp_sock *s = obj;
        if (*(enum weft_tcp_kind *)obj == WEFT_TCP_SOCK && s->state == WEFT_TCP_S_UP)
            weft_tcp_data_event(tp, s, evs[i].events);
        else if (*(enum weft_tcp_kind *)obj != WEFT_TCP_SOCK || s->fd >= 0)
            weft_tcp_conn_event(tp, obj, evs[i].events, &handshake);
    }
    for (int p = 0; p < tp->nranks; p++) {
        struct weft_ep *peer = &tp->peers[p];
        if ((peer->shead || peer->rhead) && peer->failed == WEFT_OK)
            weft_tcp_drive(tp, peer, progressed);
    }
    return WEFT_OK;
}

static void tcp_abort(struct weft_tp *tp, int culprit)
{
    if (!tp || tp->aborted)
        return;
    tp->aborted = true;
    for (int p = 0; p < tp->nranks; p++) {
        struct weft_ep *peer = &tp->peers[p];
        if (peer->failed == WEFT_OK)
            weft_tcp_send_abort(tp, peer, culprit);
        weft_tcp_peer_flush(peer, NULL, WEFT_OK, WEFT_ERR_ABORTED);
        if (peer->failed == WEFT_OK)
            peer->failed = WEFT_ERR_ABORTED;
        /* shutdown, not close: the peers see EOF now, fini releases the descriptors. */
        for (int i = 0; i < tp->nsocks; i++)
            if (peer->socks[i].fd >= 0)
                (void)shutdown(peer->socks[i].fd, SHUT_RDWR);
    }
    weft_tcp_unlisten(tp);
}

static int tcp_culprit(const struct weft_tp *tp)
{
    return tp ? tp->culprit : WEFT_CULPRIT_NONE;
}

const struct weft_transport_ops weft_transport_tcp = {
    .size = sizeof(struct weft_transport_ops),
    .version = WEFT_TRANSPORT_OPS_VERSION,
    .name = "tcp",
    .probe = tcp_probe,
    .init = tcp_init,
    .address = tcp_address,
    .connect = tcp_connect,
    .connected = tcp_connected,
    .isend = tcp_isend,
    .irecv = tcp_irecv,
    .progress = tcp_progress,
    .abort = tcp_abort,
    .culprit = tcp_culprit,
    .reg = NULL,
    .dereg = NULL,
    .fini = tcp_fini,
};
