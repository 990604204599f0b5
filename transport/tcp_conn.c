/*
 * tcp_conn.c - TCP connection setup: the listener, non-blocking connects from the lower rank,
 * and the HMAC-authenticated hello that tells the acceptor which peer and socket it is.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "transport/tcp_internal.h"

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Buffer sizes must be set before connect()/listen() so the window scale is negotiated for
 * them; accepted sockets inherit the listener's. */
static weft_result_t set_opts(const struct weft_tp *tp, int fd, const char *what)
{
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
        return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "setsockopt(TCP_NODELAY)",
                                "rank %d: cannot configure %s", tp->rank, what);
    if (tp->bufsize) {
        int sz = tp->bufsize > (size_t)1 << 30 ? 1 << 30 : (int)tp->bufsize;
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)) < 0)
            return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "setsockopt(SO_SNDBUF/SO_RCVBUF)",
                                    "rank %d: cannot set WEFT_SOCKET_BUFSIZE=%zu on %s",
                                    tp->rank, tp->bufsize, what);
    }
    return WEFT_OK;
}

static weft_result_t ep_add(struct weft_tp *tp, int fd, void *obj, uint32_t events,
                            const char *what)
{
    struct epoll_event ev = {.events = events, .data.ptr = obj};
    if (epoll_ctl(tp->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "epoll_ctl", "rank %d: cannot watch %s",
                                tp->rank, what);
    return WEFT_OK;
}

weft_result_t weft_tcp_listen(struct weft_tp *tp)
{
    weft_result_t r;
    WEFT_CHECK(weft_netif_pick(&tp->laddr, &tp->laddr_len, tp->ifname, sizeof(tp->ifname)));
    weft_sockaddr_str((struct sockaddr *)&tp->laddr, tp->laddr_str, sizeof(tp->laddr_str));
    int fd = socket(tp->laddr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "socket",
                                "rank %d: cannot create the TCP listener for %s (%s)", tp->rank,
                                tp->laddr_str, tp->ifname);
    WEFT_CHECK_GOTO(set_opts(tp, fd, "the TCP listener"), r, fail);
    if (bind(fd, (struct sockaddr *)&tp->laddr, tp->laddr_len) < 0) {
        r = WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "bind", "rank %d: cannot bind the TCP listener to "
                             "%s (%s)", tp->rank, tp->laddr_str, tp->ifname);
        goto fail;
    }
    if (listen(fd, SOMAXCONN) < 0) {
        r = WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "listen", "rank %d: cannot listen on %s (%s)",
                             tp->rank, tp->laddr_str, tp->ifname);
        goto fail;
    }
    tp->laddr_len = sizeof(tp->laddr);
    if (getsockname(fd, (struct sockaddr *)&tp->laddr, &tp->laddr_len) < 0) {
        r = WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "getsockname",
                             "rank %d: cannot read the TCP listener's port on %s", tp->rank,
                             tp->ifname);
        goto fail;
    }
    weft_sockaddr_str((struct sockaddr *)&tp->laddr, tp->laddr_str, sizeof(tp->laddr_str));
    tp->listener.kind = WEFT_TCP_LISTENER;
    tp->listener.fd = fd;
    WEFT_CHECK_GOTO(ep_add(tp, fd, &tp->listener, EPOLLIN | EPOLLET, "the TCP listener"), r,
                    fail_fd);
    return WEFT_OK;

fail_fd:
    tp->listener.fd = -1;
fail:
    close(fd);
    return r;
}

void weft_tcp_unlisten(struct weft_tp *tp)
{
    if (tp->listener.fd >= 0) {
        close(tp->listener.fd);
        tp->listener.fd = -1;
    }
    while (tp->pending) {
        struct weft_tcp_pending *p = tp->pending;
        tp->pending = p->next;
        close(p->fd);
        free(p);
    }
}

void weft_tcp_sock_close(struct weft_tp *tp, struct weft_tcp_sock *s)
{
    if (s->fd >= 0) {
        (void)epoll_ctl(tp->epfd, EPOLL_CTL_DEL, s->fd, NULL);
        close(s->fd);
        s->fd = -1;
    }
    if (s->state == WEFT_TCP_S_UP)
        s->peer->nup--;
    s->state = WEFT_TCP_S_CLOSED;
    s->readable = s->writable = false;
}

static void sock_up(struct weft_tcp_sock *s)
{
    s->state = WEFT_TCP_S_UP;
    s->readable = s->writable = true; /* unknown: try, EAGAIN clears them */
    s->peer->nup++;
    WEFT_TRACE(NET, "rank %d: socket %d to rank %d at %s is up", s->peer->tp->rank, s->index,
               s->peer->rank, s->peer->addr_str);
}

static void conn_fail(struct weft_tcp_sock *s, int err, const char *call)
{
    struct weft_ep *peer = s->peer;
    if (peer->conn_result == WEFT_OK)
        peer->conn_result = WEFT_ERROR_ERR(WEFT_ERR_REMOTE, err, call,
                                           "rank %d cannot connect to rank %d at %s (socket %d "
                                           "of %d)", peer->tp->rank, peer->rank, peer->addr_str,
                                           s->index, peer->tp->nsocks);
    weft_tcp_sock_close(peer->tp, s);
}

/* Writes what is left of the hello; the socket carries data once all of it is out. */
static void hello_send(struct weft_tcp_sock *s, bool *progressed)
{
    while (s->hello_off < sizeof(s->hello)) {
        ssize_t n = send(s->fd, s->hello + s->hello_off, sizeof(s->hello) - s->hello_off,
                         MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_fail(s, errno, "send");
            return;
        }
        s->hello_off += (size_t)n;
        *progressed = true;
    }
    sock_up(s);
}

static void hello_build(const struct weft_tp *tp, const struct weft_tcp_sock *s, uint8_t *out)
{
    const uint32_t f[WEFT_TCP_HELLO_FIELDS] = {WEFT_TCP_HELLO_MAGIC, WEFT_TCP_HELLO_VERSION,
                                               (uint32_t)tp->rank, (uint32_t)s->peer->rank,
                                               (uint32_t)s->index, (uint32_t)tp->nsocks};
    for (int i = 0; i < WEFT_TCP_HELLO_FIELDS; i++)
        put32(out + 4 * i, f[i]);
    crypto_auth_hmacsha256(out + 4 * WEFT_TCP_HELLO_FIELDS, out, 4 * WEFT_TCP_HELLO_FIELDS,
                           tp->key);
}

weft_result_t weft_tcp_initiate(struct weft_tp *tp, struct weft_ep *peer)
{
    peer->initiated = true;
    for (int i = 0; i < tp->nsocks; i++) {
        struct weft_tcp_sock *s = &peer->socks[i];
        int fd = socket(peer->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "socket",
                                    "rank %d: cannot create socket %d to rank %d at %s",
                                    tp->rank, i, peer->rank, peer->addr_str);
        s->fd = fd;
        s->state = WEFT_TCP_S_CONNECTING;
        hello_build(tp, s, s->hello);
        s->hello_off = 0;
        WEFT_CHECK(set_opts(tp, fd, "a TCP data socket"));
        WEFT_CHECK(ep_add(tp, fd, s, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                          "a TCP data socket"));
        if (connect(fd, (struct sockaddr *)&peer->addr, peer->addr_len) == 0) {
            bool dummy = false;
            s->state = WEFT_TCP_S_HELLO;
            hello_send(s, &dummy);
        } else if (errno != EINPROGRESS) {
            conn_fail(s, errno, "connect");
            return peer->conn_result;
        }
    }
    return peer->conn_result;
}

static void connecting_event(struct weft_tcp_sock *s, uint32_t events, bool *progressed)
{
    if (s->state == WEFT_TCP_S_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            conn_fail(s, err, "connect");
            return;
        }
        s->state = WEFT_TCP_S_HELLO;
        *progressed = true;
    }
    if (s->state == WEFT_TCP_S_HELLO)
        hello_send(s, progressed);
}

static void pending_drop(struct weft_tp *tp, struct weft_tcp_pending *p)
{
    for (struct weft_tcp_pending **pp = &tp->pending; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    (void)epoll_ctl(tp->epfd, EPOLL_CTL_DEL, p->fd, NULL);
    close(p->fd);
    free(p);
}

/* Checks a complete hello and hands the connection to its peer's socket slot. Anything that
 * fails is dropped with a warning: a stray or hostile connection must not fail the job. */
static void hello_accept(struct weft_tp *tp, struct weft_tcp_pending *p, bool *progressed)
{
    const uint8_t *mac = p->buf + 4 * WEFT_TCP_HELLO_FIELDS;
    if (crypto_auth_hmacsha256_verify(mac, p->buf, 4 * WEFT_TCP_HELLO_FIELDS, tp->key) != 0) {
        WEFT_WARN(NET, "rank %d: dropping TCP connection from %s: hello failed authentication "
                  "(wrong job key)", tp->rank, p->addr_str);
        pending_drop(tp, p);
        return;
    }
    uint32_t f[WEFT_TCP_HELLO_FIELDS];
    for (int i = 0; i < WEFT_TCP_HELLO_FIELDS; i++)
        f[i] = get32(p->buf + 4 * i);
    const uint32_t from = f[2], to = f[3], index = f[4], nsocks = f[5];
    const char *why = NULL;
    if (f[0] != WEFT_TCP_HELLO_MAGIC || f[1] != WEFT_TCP_HELLO_VERSION)
        why = "bad magic or version";
    else if (to != (uint32_t)tp->rank)
        why = "addressed to another rank";
    else if (from >= (uint32_t)tp->nranks || from >= (uint32_t)tp->rank)
        why = "from a rank that does not initiate connections to this one";
    else if (nsocks != (uint32_t)tp->nsocks)
        why = "WEFT_SOCKET_NSOCKS differs between the ranks";
    else if (index >= nsocks || tp->peers[from].socks[index].state != WEFT_TCP_S_NONE)
        why = "socket index out of range or already connected";
    if (why) {
        WEFT_WARN(NET, "rank %d: dropping TCP connection from %s (claims rank %u, socket %u of "
                  "%u): %s", tp->rank, p->addr_str, from, index, nsocks, why);
        pending_drop(tp, p);
        return;
    }
    struct weft_ep *peer = &tp->peers[from];
    struct weft_tcp_sock *s = &peer->socks[index];
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = s};
    if (epoll_ctl(tp->epfd, EPOLL_CTL_MOD, p->fd, &ev) < 0) {
        WEFT_WARN(NET, "rank %d: dropping TCP connection from %s (rank %u): epoll_ctl: %s",
                  tp->rank, p->addr_str, from, strerror(errno));
        pending_drop(tp, p);
        return;
    }
    s->fd = p->fd;
    if (!peer->have_addr)
        memcpy(peer->addr_str, p->addr_str, sizeof(peer->addr_str));
    p->fd = -1;
    for (struct weft_tcp_pending **pp = &tp->pending; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    free(p);
    sock_up(s);
    *progressed = true;
}

/* Reads exactly the hello, never beyond it: the data that follows belongs to the socket. */
static void pending_read(struct weft_tp *tp, struct weft_tcp_pending *p, bool *progressed)
{
    while (p->got < sizeof(p->buf)) {
        ssize_t n = recv(p->fd, p->buf + p->got, sizeof(p->buf) - p->got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            WEFT_WARN(NET, "rank %d: dropping TCP connection from %s: closed before its hello "
                      "(%s)", tp->rank, p->addr_str, n < 0 ? strerror(errno) : "EOF");
            pending_drop(tp, p);
            return;
        }
        p->got += (size_t)n;
        *progressed = true;
    }
    hello_accept(tp, p, progressed);
}

static void listener_accept(struct weft_tp *tp, bool *progressed)
{
    for (;;) {
        struct sockaddr_storage from;
        socklen_t len = sizeof(from);
        int fd = accept4(tp->listener.fd, (struct sockaddr *)&from, &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                WEFT_WARN(NET, "rank %d: accept on %s failed: %s", tp->rank, tp->laddr_str,
                          strerror(errno));
            return;
        }
        *progressed = true;
        struct weft_tcp_pending *p = calloc(1, sizeof(*p));
        int one = 1;
        if (!p || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
            WEFT_WARN(NET, "rank %d: dropping an accepted TCP connection: %s", tp->rank,
                      p ? strerror(errno) : "out of memory");
            free(p);
            close(fd);
            continue;
        }
        p->kind = WEFT_TCP_PENDING;
        p->fd = fd;
        weft_sockaddr_str((struct sockaddr *)&from, p->addr_str, sizeof(p->addr_str));
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = p};
        if (epoll_ctl(tp->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            WEFT_WARN(NET, "rank %d: dropping TCP connection from %s: epoll_ctl: %s", tp->rank,
                      p->addr_str, strerror(errno));
            free(p);
            close(fd);
            continue;
        }
        p->next = tp->pending;
        tp->pending = p;
        pending_read(tp, p, progressed);
    }
}

void weft_tcp_conn_event(struct weft_tp *tp, void *obj, uint32_t events, bool *progressed)
{
    switch (*(enum weft_tcp_kind *)obj) {
    case WEFT_TCP_LISTENER:
        if (tp->listener.fd >= 0)
            listener_accept(tp, progressed);
        break;
    case WEFT_TCP_PENDING:
        pending_read(tp, obj, progressed);
        break;
    case WEFT_TCP_SOCK:
        connecting_event(obj, events, progressed);
        break;
    }
}
