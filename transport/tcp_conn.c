/*
 * tcp_conn.c - TCP connection setup: the listener, non-blocking connects from the lower rank,
 * and the nonce-bound HMAC handshake that tells the acceptor which peer and socket it is.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/clock.h"
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

/* A peer whose host vanished (power loss, cable pull) sends no FIN or RST: the kernel would
 * retransmit for many minutes, and an idle socket waiting on a receive would never learn.
 * So unacknowledged data fails the socket with ETIMEDOUT after WEFT_SOCKET_DEAD_TIMEOUT
 * (TCP_USER_TIMEOUT), and an idle one is probed by keepalives whose silence fails it within
 * the same time (the user timeout also bounds how long a probe may stay unanswered). */
static weft_result_t set_liveness(const struct weft_tp *tp, int fd, const char *what)
{
    const int t = tp->dead_timeout_s;
    if (t <= 0)
        return WEFT_OK;
    const int one = 1, cnt = 3, intvl = t / 4 > 0 ? t / 4 : 1;
    const int idle = t - cnt * intvl > 0 ? t - cnt * intvl : 1;
    const unsigned ms = (unsigned)t * 1000u;
    if (setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl)) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)) < 0)
        return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "setsockopt(TCP_USER_TIMEOUT/SO_KEEPALIVE)",
                                "rank %d: cannot set WEFT_SOCKET_DEAD_TIMEOUT=%d on %s",
                                tp->rank, t, what);
    return WEFT_OK;
}

/* Buffer sizes must be set before connect()/listen() so the window scale is negotiated for
 * them; accepted sockets inherit the listener's (and are given the liveness options again). */
static weft_result_t set_opts(const struct weft_tp *tp, int fd, const char *what)
{
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
        return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "setsockopt(TCP_NODELAY)",
                                "rank %d: cannot configure %s", tp->rank, what);
    WEFT_CHECK(set_liveness(tp, fd, what));
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
    if (sodium_init() < 0)
        return WEFT_ERROR(WEFT_ERR_SYSTEM, "rank %d: sodium_init failed", tp->rank);
    WEFT_CHECK(weft_netif_pick(&tp->laddr, &tp->laddr_len, tp->ifname, sizeof(tp->ifname)));
    weft_sockaddr_str((struct sockaddr *)&tp->laddr, tp->laddr_str, sizeof(tp->laddr_str));
    int fd = socket(tp->laddr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "socket",
                                "rank %d: cannot create the TCP listener for %s (%s)", tp->rank,
                                tp->laddr_str, tp->ifname);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (tfd < 0) {
        r = WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "timerfd_create",
                             "rank %d: cannot create the TCP listener's hello timer", tp->rank);
        goto fail;
    }
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
    WEFT_CHECK_GOTO(ep_add(tp, fd, &tp->listener, EPOLLIN | EPOLLET, "the TCP listener"), r,
                    fail);
    WEFT_CHECK_GOTO(ep_add(tp, tfd, &tp->listener, EPOLLIN | EPOLLET, "the TCP hello timer"), r,
                    fail);
    tp->listener.fd = fd;
    tp->listener.timer_fd = tfd;
    return WEFT_OK;

fail:
    if (tfd >= 0)
        close(tfd);
    close(fd);
    return r;
}

void weft_tcp_unlisten(struct weft_tp *tp)
{
    int stray = 0;
    for (struct weft_tcp_pending *p = tp->pending; p; p = p->next)
        stray++;
    if (stray || tp->pending_dropped > WEFT_TCP_PENDING_WARN)
        WEFT_WARN(NET, "rank %d: closing the TCP listener %s: %d connections never sent a valid "
                  "hello (%d more dropped earlier)", tp->rank, tp->laddr_str, stray,
                  tp->pending_dropped > WEFT_TCP_PENDING_WARN
                      ? tp->pending_dropped - WEFT_TCP_PENDING_WARN : 0);
    if (tp->pending_dropped > WEFT_TCP_PENDING_WARN)
        tp->pending_dropped = WEFT_TCP_PENDING_WARN;
    if (tp->listener.fd >= 0) {
        close(tp->listener.fd);
        close(tp->listener.timer_fd);
        tp->listener.fd = tp->listener.timer_fd = -1;
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

/* HMAC-SHA-256(key, label || nonce || hello fields): the nonce is fresh per connection, so a
 * recorded handshake proves nothing on another one. */
static void hs_mac(const uint8_t *key, const char *label, const uint8_t *hs, uint8_t *mac)
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, WEFT_TRANSPORT_KEY_BYTES);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)label, strlen(label));
    crypto_auth_hmacsha256_update(&st, hs, WEFT_TCP_NONCE_BYTES);
    crypto_auth_hmacsha256_update(&st, hs + WEFT_TCP_HS_HELLO, 4 * WEFT_TCP_HELLO_FIELDS);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof(st));
}

static bool hs_mac_ok(const uint8_t *key, const char *label, const uint8_t *hs,
                      const uint8_t *mac)
{
    uint8_t want[crypto_auth_hmacsha256_BYTES];
    hs_mac(key, label, hs, want);
    return crypto_verify_32(want, mac) == 0;
}

void weft_tcp_hello_encode(const uint8_t *key, uint8_t *hs,
                           const uint32_t fields[WEFT_TCP_HELLO_FIELDS])
{
    for (int i = 0; i < WEFT_TCP_HELLO_FIELDS; i++)
        put32(hs + WEFT_TCP_HS_HELLO + 4 * i, fields[i]);
    hs_mac(key, "weft-tcp-hello", hs, hs + WEFT_TCP_HS_HELLO + 4 * WEFT_TCP_HELLO_FIELDS);
}

bool weft_tcp_hello_verify(const uint8_t *key, const uint8_t *hs,
                           uint32_t fields[WEFT_TCP_HELLO_FIELDS])
{
    if (!hs_mac_ok(key, "weft-tcp-hello", hs, hs + WEFT_TCP_HS_HELLO + 4 * WEFT_TCP_HELLO_FIELDS))
        return false;
    for (int i = 0; i < WEFT_TCP_HELLO_FIELDS; i++)
        fields[i] = get32(hs + WEFT_TCP_HS_HELLO + 4 * i);
    return true;
}

void weft_tcp_proof_encode(const uint8_t *key, uint8_t *hs)
{
    hs_mac(key, "weft-tcp-accept", hs, hs + WEFT_TCP_HS_PROOF);
}

bool weft_tcp_proof_verify(const uint8_t *key, const uint8_t *hs)
{
    return hs_mac_ok(key, "weft-tcp-accept", hs, hs + WEFT_TCP_HS_PROOF);
}

/* Moves the handshake bytes [*off, end) in one direction, never touching a byte beyond `end`
 * (what follows belongs to the data stream). Returns 1 once there, 0 on EAGAIN, -1 on an
 * error (errno) or EOF (errno 0). */
static int hs_move(int fd, uint8_t *hs, size_t *off, size_t end, bool sending,
                   bool *progressed)
{
    while (*off < end) {
        ssize_t n = sending ? send(fd, hs + *off, end - *off, MSG_NOSIGNAL)
                            : recv(fd, hs + *off, end - *off, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0) {
            if (n == 0)
                errno = 0;
            return -1;
        }
        *off += (size_t)n;
        *progressed = true;
    }
    return 1;
}

static void sock_up(struct weft_tcp_sock *s)
{
    s->state = WEFT_TCP_S_UP;
    s->readable = s->writable = true; /* unknown: try, EAGAIN clears them */
    s->peer->nup++;
    WEFT_TRACE(NET, "rank %d: socket %d to rank %d at %s is up", s->peer->tp->rank, s->index,
               s->peer->rank, s->peer->addr_str);
}

/* `what` is the failing call, or with err 0 what went wrong. */
static void conn_fail(struct weft_tcp_sock *s, weft_result_t code, int err, const char *what)
{
    struct weft_ep *peer = s->peer;
    const struct weft_tp *tp = peer->tp;
    if (peer->conn_result == WEFT_OK && err)
        peer->conn_result = WEFT_ERROR_ERR(code, err, what, "rank %d cannot connect to rank %d "
                                           "at %s (socket %d of %d)", tp->rank, peer->rank,
                                           peer->addr_str, s->index, tp->nsocks);
    else if (peer->conn_result == WEFT_OK)
        peer->conn_result = WEFT_ERROR(code, "rank %d cannot connect to rank %d at %s (socket "
                                       "%d of %d): %s", tp->rank, peer->rank, peer->addr_str,
                                       s->index, tp->nsocks, what);
    weft_tcp_sock_close(peer->tp, s);
}

/* One leg of a socket's handshake; false until done (EAGAIN, or failed and closed). */
static bool sock_move(struct weft_tcp_sock *s, size_t end, bool sending, bool *progressed)
{
    int r = hs_move(s->fd, s->hs, &s->hs_off, end, sending, progressed);
    if (r < 0)
        conn_fail(s, WEFT_ERR_REMOTE, errno, errno ? (sending ? "send" : "recv")
                  : "the connection closed during the handshake (different job keys?)");
    return r > 0;
}

/* The initiator reads the nonce, sends its hello and checks the acceptor's proof; the
 * acceptor reaches this with only its proof left to send. */
static void sock_handshake(struct weft_tcp_sock *s, bool *progressed)
{
    const struct weft_tp *tp = s->peer->tp;
    if (tp->rank > s->peer->rank) {
        if (sock_move(s, WEFT_TCP_HS_BYTES, true, progressed))
            sock_up(s);
        return;
    }
    if (s->hs_off < WEFT_TCP_HS_HELLO) {
        if (!sock_move(s, WEFT_TCP_HS_HELLO, false, progressed))
            return;
        const uint32_t f[WEFT_TCP_HELLO_FIELDS] = {WEFT_TCP_HELLO_MAGIC, WEFT_TCP_HELLO_VERSION,
                                                   (uint32_t)tp->rank, (uint32_t)s->peer->rank,
                                                   (uint32_t)s->index, (uint32_t)tp->nsocks};
        weft_tcp_hello_encode(tp->key, s->hs, f);
    }
    if (!sock_move(s, WEFT_TCP_HS_PROOF, true, progressed) ||
        !sock_move(s, WEFT_TCP_HS_BYTES, false, progressed))
        return;
    if (!weft_tcp_proof_verify(tp->key, s->hs)) {
        conn_fail(s, WEFT_ERR_AUTH, 0, "its handshake answer failed authentication (another "
                  "job's listener?)");
        return;
    }
    sock_up(s);
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
        s->hs_off = 0;
        WEFT_CHECK(set_opts(tp, fd, "a TCP data socket"));
        WEFT_CHECK(ep_add(tp, fd, s, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                          "a TCP data socket"));
        if (connect(fd, (struct sockaddr *)&peer->addr, peer->addr_len) == 0) {
            bool dummy = false;
            s->state = WEFT_TCP_S_HELLO;
            sock_handshake(s, &dummy);
        } else if (errno != EINPROGRESS) {
            conn_fail(s, WEFT_ERR_REMOTE, errno, "connect");
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
            conn_fail(s, WEFT_ERR_REMOTE, err, "connect");
            return;
        }
        s->state = WEFT_TCP_S_HELLO;
        *progressed = true;
    }
    if (s->state == WEFT_TCP_S_HELLO)
        sock_handshake(s, progressed);
}

static void pending_unlink(struct weft_tp *tp, struct weft_tcp_pending *p)
{
    for (struct weft_tcp_pending **pp = &tp->pending; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
}

/* A stray or hostile connection must not fail the job: it is dropped with a warning. */
static void pending_drop(struct weft_tp *tp, struct weft_tcp_pending *p, const char *why)
{
    if (tp->pending_dropped++ < WEFT_TCP_PENDING_WARN)
        WEFT_WARN(NET, "rank %d: dropping TCP connection from %s: %s", tp->rank, p->addr_str,
                  why);
    pending_unlink(tp, p);
    (void)epoll_ctl(tp->epfd, EPOLL_CTL_DEL, p->fd, NULL);
    close(p->fd);
    free(p);
}

/* Checks a complete hello and hands the connection to its peer's socket slot, which then
 * sends the proof. */
static void hello_accept(struct weft_tp *tp, struct weft_tcp_pending *p, bool *progressed)
{
    uint32_t f[WEFT_TCP_HELLO_FIELDS];
    if (!weft_tcp_hello_verify(tp->key, p->hs, f)) {
        pending_drop(tp, p, "hello failed authentication (wrong job key, or replayed)");
        return;
    }
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
        char msg[160];
        snprintf(msg, sizeof(msg), "hello claims rank %u, socket %u of %u: %s", from, index,
                 nsocks, why);
        pending_drop(tp, p, msg);
        return;
    }
    struct weft_ep *peer = &tp->peers[from];
    struct weft_tcp_sock *s = &peer->socks[index];
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = s};
    if (epoll_ctl(tp->epfd, EPOLL_CTL_MOD, p->fd, &ev) < 0) {
        char msg[160];
        snprintf(msg, sizeof(msg), "epoll_ctl: %s", strerror(errno));
        pending_drop(tp, p, msg);
        return;
    }
    s->fd = p->fd;
    s->state = WEFT_TCP_S_HELLO;
    memcpy(s->hs, p->hs, sizeof(s->hs));
    s->hs_off = p->hs_off;
    weft_tcp_proof_encode(tp->key, s->hs);
    if (!peer->have_addr)
        memcpy(peer->addr_str, p->addr_str, sizeof(peer->addr_str));
    pending_unlink(tp, p);
    free(p);
    *progressed = true;
    sock_handshake(s, progressed);
}

/* The acceptor's side until the hello is in: the nonce out, the hello in. */
static void pending_event(struct weft_tp *tp, struct weft_tcp_pending *p, bool *progressed)
{
    if (weft_now_s() >= p->deadline) {
        char msg[160];
        if (p->deadline == 0)
            snprintf(msg, sizeof(msg), "more than %d connections without a valid hello: "
                     "dropping the oldest", WEFT_TCP_PENDING_MAX + tp->nranks * tp->nsocks);
        else
            snprintf(msg, sizeof(msg), "no hello within WEFT_TIMEOUT=%g s", tp->timeout_s);
        pending_drop(tp, p, msg);
        *progressed = true;
        return;
    }
    int r = hs_move(p->fd, p->hs, &p->hs_off, WEFT_TCP_HS_HELLO, true, progressed);
    if (r > 0)
        r = hs_move(p->fd, p->hs, &p->hs_off, WEFT_TCP_HS_PROOF, false, progressed);
    if (r < 0) {
        char msg[160];
        snprintf(msg, sizeof(msg), "closed before its hello (%s)", errno ? strerror(errno) : "EOF");
        pending_drop(tp, p, msg);
    } else if (r > 0) {
        hello_accept(tp, p, progressed);
    }
}

/* Shuts down connections whose hello is overdue, so that their own event drops them (they
 * may have an event in the batch being handled: freeing them here would leave it dangling),
 * and sets the timer for the next deadline. */
static void pending_expire(struct weft_tp *tp)
{
    uint64_t ticks;
    while (read(tp->listener.timer_fd, &ticks, sizeof(ticks)) > 0)
        continue; /* consumed, so the next expiry is a new edge */
    const double now = weft_now_s();
    double next = 0;
    for (struct weft_tcp_pending *p = tp->pending; p; p = p->next) {
        if (p->deadline <= now)
            (void)shutdown(p->fd, SHUT_RDWR);
        else if (next == 0 || p->deadline < next)
            next = p->deadline;
    }
    if (tp->accept_paused && (next == 0 || now + 0.005 < next))
        next = now + 0.005;
    struct itimerspec its = {{0, 0}, {0, 0}}; /* zero disarms */
    if (next > 0) {
        its.it_value.tv_sec = (time_t)next;
        its.it_value.tv_nsec = (long)((next - (double)(time_t)next) * 1e9);
    }
    if (timerfd_settime(tp->listener.timer_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
        WEFT_WARN(NET, "rank %d: timerfd_settime failed: %s: overdue TCP hellos are dropped "
                  "only at the next connection", tp->rank, strerror(errno));
}

/* Bounds the descriptors strangers can hold: at the cap, accepting pauses and the oldest
 * unverified connections are shut down (their own events close them; one may be in the
 * batch being handled), then the timer resumes accepting. Whether there is room. */
static bool pending_room(struct weft_tp *tp)
{
    const int cap = WEFT_TCP_PENDING_MAX + tp->nranks * tp->nsocks;
    int n = 0;
    for (struct weft_tcp_pending *p = tp->pending; p; p = p->next)
        n++;
    if (n < cap)
        return true;
    int live = 0; /* newest first: past cap / 2 live ones, the rest go */
    for (struct weft_tcp_pending *p = tp->pending; p; p = p->next) {
        if (p->deadline > 0 && ++live > cap / 2) { /* deadline 0: shut down already */
            p->deadline = 0;
            (void)shutdown(p->fd, SHUT_RDWR);
        }
    }
    tp->accept_paused = true;
    return false;
}

static void listener_accept(struct weft_tp *tp, bool *progressed)
{
    tp->accept_paused = false;
    for (;;) {
        if (!pending_room(tp))
            return;
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
        if (!p || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
            set_liveness(tp, fd, "an accepted connection") != WEFT_OK) {
            WEFT_WARN(NET, "rank %d: dropping an accepted TCP connection: %s", tp->rank,
                      p ? strerror(errno) : "out of memory");
            free(p);
            close(fd);
            continue;
        }
        p->kind = WEFT_TCP_PENDING;
        p->fd = fd;
        p->deadline = weft_now_s() + tp->timeout_s;
        randombytes_buf(p->hs, WEFT_TCP_NONCE_BYTES);
        weft_sockaddr_str((struct sockaddr *)&from, p->addr_str, sizeof(p->addr_str));
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                 .data.ptr = p};
        if (epoll_ctl(tp->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            WEFT_WARN(NET, "rank %d: dropping TCP connection from %s: epoll_ctl: %s", tp->rank,
                      p->addr_str, strerror(errno));
            free(p);
            close(fd);
            continue;
        }
        p->next = tp->pending;
        tp->pending = p;
        pending_event(tp, p, progressed);
    }
}

void weft_tcp_conn_event(struct weft_tp *tp, void *obj, uint32_t events, bool *progressed)
{
    switch (*(enum weft_tcp_kind *)obj) {
    case WEFT_TCP_LISTENER: /* the listener or its timer */
        if (tp->listener.fd >= 0) {
            listener_accept(tp, progressed);
            pending_expire(tp);
        }
        break;
    case WEFT_TCP_PENDING:
        pending_event(tp, obj, progressed);
        break;
    case WEFT_TCP_SOCK:
        connecting_event(obj, events, progressed);
        break;
    }
}
