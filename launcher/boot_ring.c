/*
 * boot_ring.c - a rank's links in the bootstrap ring: its proof to rank+1 and, among the
 * connections on its listener, the one that proves the secret (rank-1), all in one poll loop.
 */
#include "launcher/boot_ring.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "core/netif.h"
#include "launcher/boot_auth.h"
#include "launcher/boot_sock.h"

/* Individual warnings for the first few dropped connections, then a count. */
#define WARN_EACH 10

struct cand {
    int fd;
    struct weft_boot_auth st;
    uint8_t buf[WEFT_BOOT_AUTH_REPLY_BYTES];
    size_t got;
    char addr[WEFT_ADDR_STRLEN];
};

struct ring {
    int rank;
    const uint8_t *secret;
    struct cand c[WEFT_BOOT_RING_PENDING_MAX]; /* oldest first */
    int n;
    int dropped;
};

static void drop(struct ring *r, struct cand *c, const char *why)
{
    if (r->dropped++ < WARN_EACH)
        WEFT_WARN(BOOT, "rank %d: dropped a bootstrap-ring connection from %s: %s", r->rank,
                  c->addr, why);
    close(c->fd);
    c->fd = -1;
}

static void compact(struct ring *r)
{
    int j = 0;
    for (int i = 0; i < r->n; i++)
        if (r->c[i].fd >= 0)
            r->c[j++] = r->c[i];
    r->n = j;
}

/* A short bound for writes of a few bytes into an empty socket buffer. */
static double soon(double deadline)
{
    double t = weft_boot_now() + 5.0;
    return t < deadline ? t : deadline;
}

static void accept_all(struct ring *r, int lfd, double deadline)
{
    for (;;) {
        struct sockaddr_storage from;
        socklen_t len = sizeof(from);
        int fd = accept4(lfd, (struct sockaddr *)&from, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            return; /* EAGAIN, or EMFILE and the like: the next poll tries again */
        if (r->n == WEFT_BOOT_RING_PENDING_MAX) {
            drop(r, &r->c[0], "too many connections that have not proved the job secret: "
                              "dropping the oldest");
            compact(r);
        }
        struct cand *c = &r->c[r->n++];
        memset(c, 0, sizeof(*c));
        c->fd = fd;
        weft_sockaddr_str((const struct sockaddr *)&from, c->addr, sizeof(c->addr));
        if (weft_boot_auth_server_begin(fd, &c->st, soon(deadline), c->addr) != WEFT_OK) {
            drop(r, c, weft_error_message());
            compact(r);
        }
    }
}

/* Reads what candidate `c` sent; sets *prev_fd once it proved the secret. */
static void read_cand(struct ring *r, struct cand *c, double deadline, int *prev_fd)
{
    ssize_t k = recv(c->fd, c->buf + c->got, sizeof(c->buf) - c->got, MSG_DONTWAIT);
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (k <= 0) {
        drop(r, c, k == 0 ? "it closed before proving the job secret" : strerror(errno));
        return;
    }
    c->got += (size_t)k;
    if (c->got < sizeof(c->buf))
        return;
    uint8_t verdict[WEFT_BOOT_AUTH_VERDICT_BYTES];
    bool ok = weft_boot_auth_judge(r->secret, &c->st, c->buf, verdict);
    weft_result_t sent = weft_boot_send_all(c->fd, verdict, sizeof(verdict), soon(deadline),
                                            c->addr);
    if (!ok)
        drop(r, c, "it failed the job-secret check (wrong WEFT_SECRET, or not a rank of this job)");
    else if (sent != WEFT_OK)
        drop(r, c, weft_error_message());
    else {
        *prev_fd = c->fd;
        c->fd = -1;
    }
}

weft_result_t weft_boot_ring_link(int lfd, int next_fd, const uint8_t *secret, int rank,
                                  const char *next_what, double deadline, int *prev_fd)
{
    struct ring r = {.rank = rank, .secret = secret};
    struct weft_boot_auth cst;
    int stage = 0; /* with rank+1: 0 awaits its nonce, 1 its verdict, 2 done */
    weft_result_t res = WEFT_OK;

    *prev_fd = -1;
    while (stage < 2 || *prev_fd < 0) {
        struct pollfd pfd[WEFT_BOOT_RING_PENDING_MAX + 2];
        nfds_t np = 0;
        int li = -1, ni = -1;
        if (*prev_fd < 0) {
            li = (int)np;
            pfd[np++] = (struct pollfd){.fd = lfd, .events = POLLIN};
        }
        if (stage < 2) {
            ni = (int)np;
            pfd[np++] = (struct pollfd){.fd = next_fd, .events = POLLIN};
        }
        /* Once rank-1 is in, the others wait for the end without being read. */
        const nfds_t base = np;
        for (int i = 0; i < r.n && *prev_fd < 0; i++)
            pfd[np++] = (struct pollfd){.fd = r.c[i].fd, .events = POLLIN};
        int rc = poll(pfd, np, weft_boot_ms_left(deadline));
        if (rc < 0 && errno != EINTR) {
            res = WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "poll", "rank %d: forming the bootstrap ring",
                                   rank);
            break;
        }
        if (rc == 0) {
            res = WEFT_ERROR(WEFT_ERR_TIMEOUT,
                             "rank %d: the bootstrap ring did not form within WEFT_TIMEOUT: %s",
                             rank, stage < 2 ? "no proof of the job secret from the ring's next "
                                               "rank"
                                             : "no connection from the ring's previous rank "
                                               "proved the job secret");
            break;
        }
        if (rc < 0)
            continue;
        if (ni >= 0 && pfd[ni].revents) {
            res = stage == 0
                      ? weft_boot_auth_client_respond(next_fd, secret, &cst, deadline, next_what)
                      : weft_boot_auth_client_finish(next_fd, secret, &cst, deadline, next_what);
            if (res != WEFT_OK)
                break;
            stage++;
        }
        /* Answers first, so that one that came in is judged before newcomers age it out. */
        for (int i = 0; base + (nfds_t)i < np && *prev_fd < 0; i++)
            if (pfd[base + (nfds_t)i].revents)
                read_cand(&r, &r.c[i], deadline, prev_fd);
        compact(&r);
        if (li >= 0 && pfd[li].revents && *prev_fd < 0)
            accept_all(&r, lfd, deadline);
    }
    for (int i = 0; i < r.n; i++)
        if (r.c[i].fd >= 0)
            drop(&r, &r.c[i], "it did not prove the job secret before the ring formed");
    if (r.dropped > WARN_EACH)
        WEFT_WARN(BOOT, "rank %d: dropped %d more bootstrap-ring connections that did not prove "
                  "the job secret", rank, r.dropped - WARN_EACH);
    if (res != WEFT_OK && *prev_fd >= 0) {
        close(*prev_fd);
        *prev_fd = -1;
    }
    return res;
}
