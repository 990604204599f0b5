/*
 * boot_sock.c - the bootstrap's TCP plumbing: every socket is non-blocking and every wait is
 * a poll() bounded by the caller's deadline, so no bootstrap step can hang.
 */
#include "launcher/boot_sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/error.h"
#include "core/netif.h"

double weft_boot_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double weft_boot_deadline(void)
{
    return weft_boot_now() + weft_config_double(WEFT_CFG_TIMEOUT);
}

bool weft_boot_addr_is_loopback(const struct sockaddr *addr)
{
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return true;
        return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

int weft_boot_ms_left(double deadline)
{
    double left = deadline - weft_boot_now();

    if (left <= 0)
        return 0;
    if (left > 3600.0)
        return 3600 * 1000;
    return (int)ceil(left * 1000.0);
}

static weft_result_t timed_out(const char *doing, const char *what)
{
    return WEFT_ERROR(WEFT_ERR_TIMEOUT, "timed out %s %s (WEFT_TIMEOUT=%g s)", doing, what,
                      weft_config_double(WEFT_CFG_TIMEOUT));
}

weft_result_t weft_boot_listen(const struct sockaddr_storage *addr, socklen_t addr_len, int *fd,
                               struct sockaddr_storage *bound, socklen_t *bound_len)
{
    char text[WEFT_ADDR_STRLEN];
    struct sockaddr_storage got;
    socklen_t got_len = sizeof(got);
    weft_result_t res;
    int one = 1;
    int s;

    weft_sockaddr_str((const struct sockaddr *)addr, text, sizeof(text));
    s = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0)
        return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "socket", "cannot create a listener for %s",
                                text);
    if (setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
        res = WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "setsockopt", "SO_REUSEADDR on %s", text);
        goto fail;
    }
    if (bind(s, (const struct sockaddr *)addr, addr_len) != 0) {
        res = WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "bind", "cannot bind a listener to %s", text);
        goto fail;
    }
    if (listen(s, 1024) != 0) {
        res = WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "listen", "cannot listen on %s", text);
        goto fail;
    }
    if (getsockname(s, (struct sockaddr *)&got, &got_len) != 0) {
        res = WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "getsockname", "listener on %s", text);
        goto fail;
    }
    *fd = s;
    if (bound)
        *bound = got;
    if (bound_len)
        *bound_len = got_len;
    return WEFT_OK;
fail:
    close(s);
    return res;
}

/* Errors after which the root or a peer may still answer before the deadline: not listening
 * yet, or (EHOSTUNREACH, ENETUNREACH, ...) a route or link that is still coming up. */
static bool retry_connect_errno(int err)
{
    return err == ECONNREFUSED || err == ECONNRESET || err == ECONNABORTED || err == ETIMEDOUT ||
           err == EAGAIN || err == EINTR || err == EHOSTUNREACH || err == ENETUNREACH ||
           err == EHOSTDOWN || err == ENETDOWN;
}

static void set_nodelay(int s)
{
    int one = 1;

    /* Best effort: small handshake messages should not wait for Nagle. */
    (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* One attempt. Returns the socket, or -1 with *err set. */
static int connect_once(const struct sockaddr_storage *addr, socklen_t addr_len, double deadline,
                        int *err)
{
    struct pollfd pfd;
    socklen_t elen = sizeof(*err);
    int s, rc;

    s = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0) {
        *err = errno;
        return -1;
    }
    if (connect(s, (const struct sockaddr *)addr, addr_len) == 0)
        goto done;
    if (errno != EINPROGRESS) {
        *err = errno;
        close(s);
        return -1;
    }
    pfd.fd = s;
    pfd.events = POLLOUT;
    do {
        rc = poll(&pfd, 1, weft_boot_ms_left(deadline));
    } while (rc < 0 && errno == EINTR);
    if (rc <= 0) {
        *err = rc == 0 ? ETIMEDOUT : errno;
        close(s);
        return -1;
    }
    if (getsockopt(s, SOL_SOCKET, SO_ERROR, err, &elen) != 0 || *err != 0) {
        if (*err == 0)
            *err = errno;
        close(s);
        return -1;
    }
done:
    set_nodelay(s);
    return s;
}

weft_result_t weft_boot_connect(const struct sockaddr_storage *addr, socklen_t addr_len,
                                double deadline, const char *what, int *fd)
{
    double backoff = 0.01;
    int err = 0;

    for (;;) {
        int s = connect_once(addr, addr_len, deadline, &err);
        if (s >= 0) {
            *fd = s;
            return WEFT_OK;
        }
        if (!retry_connect_errno(err))
            return WEFT_ERROR_ERR(WEFT_ERR_SYSTEM, err, "connect", "cannot connect to %s", what);
        double left = deadline - weft_boot_now();
        if (left <= 0)
            return WEFT_ERROR(WEFT_ERR_TIMEOUT,
                              "could not connect to %s within WEFT_TIMEOUT=%g s (last error: %s)",
                              what, weft_config_double(WEFT_CFG_TIMEOUT), strerror(err));
        /* The root or a peer may simply not be listening yet: back off and try again. */
        double nap = backoff < left ? backoff : left;
        struct timespec ts = { (time_t)nap, (long)((nap - (double)(time_t)nap) * 1e9) };
        nanosleep(&ts, NULL);
        if (backoff < 0.2)
            backoff *= 2;
    }
}

weft_result_t weft_boot_accept(int lfd, double deadline, const char *what, int *fd,
                               struct sockaddr_storage *peer, socklen_t *peer_len)
{
    struct sockaddr_storage addr;
    socklen_t len;
    struct pollfd pfd = { .fd = lfd, .events = POLLIN };

    for (;;) {
        int rc = poll(&pfd, 1, weft_boot_ms_left(deadline));
        if (rc < 0 && errno != EINTR)
            return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "poll", "waiting for %s", what);
        if (rc == 0)
            return timed_out("waiting for a connection from", what);
        if (rc < 0)
            continue;
        len = sizeof(addr);
        int s = accept4(lfd, (struct sockaddr *)&addr, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (s >= 0) {
            set_nodelay(s);
            *fd = s;
            if (peer)
                *peer = addr;
            if (peer_len)
                *peer_len = len;
            return WEFT_OK;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
            return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "accept", "waiting for %s", what);
    }
}

weft_result_t weft_boot_sendrecv(int sfd, const void *sbuf, size_t slen, const char *swhat,
                                 int rfd, void *rbuf, size_t rlen, const char *rwhat,
                                 double deadline)
{
    size_t sent = 0, got = 0;

    if (sfd < 0)
        slen = 0;
    if (rfd < 0)
        rlen = 0;
    while (sent < slen || got < rlen) {
        struct pollfd pfd[2];
        int n = 0, si = -1, ri = -1;

        if (sent < slen) {
            pfd[n] = (struct pollfd){ .fd = sfd, .events = POLLOUT };
            si = n++;
        }
        if (got < rlen) {
            pfd[n] = (struct pollfd){ .fd = rfd, .events = POLLIN };
            ri = n++;
        }
        int rc = poll(pfd, (nfds_t)n, weft_boot_ms_left(deadline));
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "poll", "exchanging with %s",
                                    got < rlen ? rwhat : swhat);
        if (rc == 0)
            return got < rlen ? timed_out("receiving from", rwhat)
                              : timed_out("sending to", swhat);
        if (si >= 0 && pfd[si].revents) {
            ssize_t k = send(sfd, (const char *)sbuf + sent, slen - sent,
                             MSG_DONTWAIT | MSG_NOSIGNAL);
            if (k > 0) {
                sent += (size_t)k;
            } else if (errno == EPIPE || errno == ECONNRESET) {
                return WEFT_ERROR_ERRNO(WEFT_ERR_REMOTE, "send", "%s closed the connection",
                                        swhat);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "send", "sending to %s", swhat);
            }
        }
        if (ri >= 0 && pfd[ri].revents) {
            ssize_t k = recv(rfd, (char *)rbuf + got, rlen - got, MSG_DONTWAIT);
            if (k > 0) {
                got += (size_t)k;
            } else if (k == 0) {
                return WEFT_ERROR(WEFT_ERR_REMOTE,
                                  "%s closed the connection (%zu of %zu bytes received)", rwhat,
                                  got, rlen);
            } else if (errno == ECONNRESET) {
                return WEFT_ERROR_ERRNO(WEFT_ERR_REMOTE, "recv", "%s reset the connection",
                                        rwhat);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "recv", "receiving from %s", rwhat);
            }
        }
    }
    return WEFT_OK;
}

weft_result_t weft_boot_send_all(int fd, const void *buf, size_t len, double deadline,
                                 const char *what)
{
    return weft_boot_sendrecv(fd, buf, len, what, -1, NULL, 0, NULL, deadline);
}

weft_result_t weft_boot_recv_all(int fd, void *buf, size_t len, double deadline,
                                 const char *what)
{
    return weft_boot_sendrecv(-1, NULL, 0, NULL, fd, buf, len, what, deadline);
}
