/*
 * boot_root.c - the rendezvous service: one detached thread per job that authenticates the
 * ranks, checks that they agree, and hands each the table of all ranks. A single poll() loop
 * serves every connection, so a silent or hostile client cannot stall the real ranks.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/netif.h"
#include "launcher/boot_auth.h"
#include "launcher/boot_sock.h"
#include "launcher/boot_wire.h"
#include "launcher/bootstrap.h"

enum conn_state { CONN_AUTH, CONN_HDR, CONN_BODY, CONN_JOINED, CONN_CLOSED };

/* Connections that have not said which rank they are yet: at most PENDING_MAX; when full, the
 * oldest goes once it has had PENDING_AGE_S (a rank needs two round trips), else accepting
 * pauses. So a flood of strangers holds a bounded number of descriptors, and cannot push
 * out a rank that is answering. */
#define PENDING_MAX 256
#define PENDING_AGE_S 2.0
/* Warnings for the first dropped connections, then a count at the end. */
#define WARN_EACH 10

struct conn {
    int fd;
    enum conn_state state;
    struct weft_boot_auth auth;
    uint8_t buf[WEFT_BOOT_HELLO_MAX];
    size_t want, got;
    struct weft_boot_peer peer;
    char addr[WEFT_ADDR_STRLEN];
    double since; /* accepted at */
};

struct root {
    int lfd;
    uint8_t secret[WEFT_BOOT_SECRET_BYTES];
    char addr[WEFT_ADDR_STRLEN];
    double timeout, deadline;
    struct conn **conns;
    size_t nconns, cap;
    int nranks; /* agreed number of ranks; -1 until the first hello */
    struct conn **by_rank;
    int joined;
    int max_nranks;
    /* Once the job has failed, every rank that still comes gets this answer. */
    weft_result_t fail;
    char fail_msg[WEFT_BOOT_ERRMSG_MAX];
    int answered;
    bool done;
    int dropped;
    double accept_paused_until;
};

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = CONN_CLOSED;
}

static void conn_drop(struct root *r, struct conn *c, const char *why)
{
    if (r->dropped++ < WARN_EACH)
        WEFT_WARN(BOOT, "bootstrap root at %s: dropped the connection from %s: %s", r->addr,
                  c->addr, why);
    conn_close(c);
}

/* A short bound for answers: they are small and the socket buffer is empty. */
static double answer_deadline(const struct root *r)
{
    return weft_boot_now() + (r->timeout < 5.0 ? r->timeout : 5.0);
}

static void send_error(struct root *r, struct conn *c, weft_result_t code, const char *msg)
{
    uint8_t payload[WEFT_BOOT_ERRMSG_MAX + 2];
    size_t len;

    if (weft_boot_errmsg_encode(msg, payload, sizeof(payload), &len) != WEFT_OK ||
        weft_boot_msg_send(c->fd, WEFT_BOOT_MSG_ERROR, (uint16_t)code, payload, len,
                           answer_deadline(r), c->addr) != WEFT_OK)
        WEFT_WARN(BOOT, "bootstrap root at %s: could not tell %s about the failure: %s", r->addr,
                  c->addr, weft_error_message());
    conn_close(c);
}

/* Ends the job with `code`: every rank that joined, and every one that comes later, is told. */
static void fail_job(struct root *r, weft_result_t code, const char *msg)
{
    r->fail = code;
    snprintf(r->fail_msg, sizeof(r->fail_msg), "%s", msg);
    WEFT_WARN(BOOT, "bootstrap root at %s: %s", r->addr, msg);
    for (size_t i = 0; i < r->nconns; i++) {
        if (r->conns[i]->state == CONN_JOINED) {
            send_error(r, r->conns[i], code, msg);
            r->answered++;
        }
    }
}

static void send_table(struct root *r)
{
    struct weft_boot_peer *peers = calloc((size_t)r->nranks, sizeof(*peers));
    uint8_t *buf = NULL;
    size_t len = 0;

    if (!peers) {
        fail_job(r, WEFT_ERR_NO_MEMORY, "the bootstrap root ran out of memory for the table");
        return;
    }
    for (int i = 0; i < r->nranks; i++)
        peers[i] = r->by_rank[i]->peer;
    if (weft_boot_table_encode(peers, r->nranks, &buf, &len) != WEFT_OK) {
        free(peers);
        fail_job(r, WEFT_ERR_INTERNAL, "the bootstrap root could not encode the table");
        return;
    }
    for (int i = 0; i < r->nranks; i++) {
        struct conn *c = r->by_rank[i];
        if (weft_boot_msg_send(c->fd, WEFT_BOOT_MSG_TABLE, 0, buf, len,
                               weft_boot_now() + r->timeout, c->addr) != WEFT_OK)
            WEFT_WARN(BOOT, "bootstrap root at %s: could not send the table to rank %d: %s",
                      r->addr, i, weft_error_message());
        conn_close(c);
    }
    WEFT_INFO(BOOT, "bootstrap root at %s: all %d ranks joined", r->addr, r->nranks);
    free(buf);
    free(peers);
}

static void handle_hello(struct root *r, struct conn *c)
{
    const struct weft_boot_peer *p = &c->peer;
    char msg[WEFT_BOOT_ERRMSG_MAX];

    if (p->nranks < 1 || p->nranks > WEFT_BOOT_NRANKS_MAX || p->rank < 0 ||
        p->rank >= p->nranks) {
        snprintf(msg, sizeof(msg), "rank %d of %d (pid %d on %s) is not a valid rank", p->rank,
                 p->nranks, p->pid, p->host);
        send_error(r, c, WEFT_ERR_INVALID_ARG, msg);
        return;
    }
    if (p->nranks > r->max_nranks)
        r->max_nranks = p->nranks;
    if (r->fail != WEFT_OK) {
        send_error(r, c, r->fail, r->fail_msg);
        r->answered++;
        r->done = r->answered >= r->max_nranks;
        return;
    }
    if (r->nranks < 0) {
        r->by_rank = calloc((size_t)p->nranks, sizeof(*r->by_rank));
        if (!r->by_rank) {
            send_error(r, c, WEFT_ERR_NO_MEMORY, "the bootstrap root ran out of memory");
            return;
        }
        r->nranks = p->nranks;
    }
    if (p->nranks != r->nranks) {
        const struct conn *first = NULL;
        for (int i = 0; i < r->nranks && !first; i++)
            first = r->by_rank[i];
        snprintf(msg, sizeof(msg),
                 "ranks disagree on the number of ranks: rank %d (pid %d on %s) says nranks=%d "
                 "but rank %d (pid %d on %s) says nranks=%d",
                 p->rank, p->pid, p->host, p->nranks, first ? first->peer.rank : -1,
                 first ? first->peer.pid : -1, first ? first->peer.host : "?", r->nranks);
        c->state = CONN_JOINED;
        fail_job(r, WEFT_ERR_INVALID_ARG, msg);
        r->done = r->answered >= r->max_nranks;
        return;
    }
    if (r->by_rank[p->rank]) {
        const struct conn *o = r->by_rank[p->rank];
        snprintf(msg, sizeof(msg), "rank %d joined twice: pid %d on %s and pid %d on %s",
                 p->rank, o->peer.pid, o->peer.host, p->pid, p->host);
        c->state = CONN_JOINED;
        fail_job(r, WEFT_ERR_INVALID_ARG, msg);
        r->done = r->answered >= r->max_nranks;
        return;
    }
    c->state = CONN_JOINED;
    r->by_rank[p->rank] = c;
    r->joined++;
    WEFT_TRACE(BOOT, "bootstrap root at %s: rank %d of %d joined from %s (%s, pid %d)", r->addr,
               p->rank, p->nranks, c->addr, p->host, p->pid);
    if (r->joined == r->nranks) {
        send_table(r);
        r->done = true;
    }
}

/* All expected bytes of the current step arrived: move the connection on. */
static void advance(struct root *r, struct conn *c)
{
    uint8_t verdict[WEFT_BOOT_AUTH_VERDICT_BYTES];
    struct weft_boot_hdr hdr;

    switch (c->state) {
    case CONN_AUTH: {
        bool ok = weft_boot_auth_judge(r->secret, &c->auth, c->buf, verdict);
        weft_result_t res = weft_boot_send_all(c->fd, verdict, sizeof(verdict),
                                               answer_deadline(r), c->addr);
        if (!ok) {
            conn_drop(r, c, "it failed the job-secret check (wrong WEFT_SECRET, or not a rank "
                            "of this job)");
            return;
        }
        if (res != WEFT_OK) {
            conn_drop(r, c, weft_error_message());
            return;
        }
        c->state = CONN_HDR;
        c->want = WEFT_BOOT_HDR_BYTES;
        break;
    }
    case CONN_HDR:
        if (weft_boot_hdr_decode(c->buf, c->got, &hdr) != WEFT_OK) {
            conn_drop(r, c, weft_error_message());
            return;
        }
        if (hdr.type != WEFT_BOOT_MSG_HELLO || hdr.len == 0 || hdr.len > WEFT_BOOT_HELLO_MAX) {
            conn_drop(r, c, "it sent something other than a hello");
            return;
        }
        c->state = CONN_BODY;
        c->want = hdr.len;
        break;
    case CONN_BODY:
        if (weft_boot_hello_decode(c->buf, c->got, &c->peer) != WEFT_OK) {
            conn_drop(r, c, weft_error_message());
            return;
        }
        handle_hello(r, c);
        return;
    default:
        return;
    }
    c->got = 0;
}

static void read_conn(struct root *r, struct conn *c)
{
    ssize_t k = recv(c->fd, c->buf + c->got, c->want - c->got, MSG_DONTWAIT);

    if (k == 0) {
        conn_drop(r, c, c->state == CONN_AUTH ? "it closed before authenticating"
                                              : "it closed before saying which rank it is");
        return;
    }
    if (k < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            conn_drop(r, c, strerror(errno));
        return;
    }
    c->got += (size_t)k;
    if (c->got == c->want)
        advance(r, c);
}

static bool pending(const struct conn *c)
{
    return c->state == CONN_AUTH || c->state == CONN_HDR || c->state == CONN_BODY;
}

/* Room for one more connection: false (accepting paused) while the oldest pending one is
 * younger than PENDING_AGE_S. */
static bool make_room(struct root *r)
{
    struct conn *oldest = NULL;
    size_t n = 0;
    for (size_t i = 0; i < r->nconns; i++) {
        if (pending(r->conns[i])) {
            n++;
            if (!oldest)
                oldest = r->conns[i];
        }
    }
    if (n < PENDING_MAX)
        return true;
    const double now = weft_boot_now();
    if (now - oldest->since < PENDING_AGE_S) {
        r->accept_paused_until = oldest->since + PENDING_AGE_S;
        return false;
    }
    conn_drop(r, oldest, "too many connections that have not joined: dropping the oldest");
    return true;
}

static void accept_all(struct root *r)
{
    for (;;) {
        struct sockaddr_storage addr;
        socklen_t len = sizeof(addr);
        if (!make_room(r))
            return;
        int fd = accept4(r->lfd, (struct sockaddr *)&addr, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            /* Out of descriptors: the listener stays readable, so wait instead of spinning. */
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                r->accept_paused_until = weft_boot_now() + 0.1;
            return;
        }
        if (r->nconns == r->cap) {
            size_t cap = r->cap ? 2 * r->cap : 16;
            struct conn **n = realloc(r->conns, cap * sizeof(*n));
            if (!n) {
                close(fd);
                return;
            }
            r->conns = n;
            r->cap = cap;
        }
        struct conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            return;
        }
        c->fd = fd;
        c->since = weft_boot_now();
        c->state = CONN_AUTH;
        c->want = WEFT_BOOT_AUTH_REPLY_BYTES;
        weft_sockaddr_str((const struct sockaddr *)&addr, c->addr, sizeof(c->addr));
        r->conns[r->nconns++] = c;
        if (weft_boot_auth_server_begin(fd, &c->auth, answer_deadline(r), c->addr) != WEFT_OK)
            conn_drop(r, c, weft_error_message());
    }
}

/* Frees closed connections that no rank slot refers to. */
static void compact(struct root *r)
{
    size_t j = 0;

    for (size_t i = 0; i < r->nconns; i++) {
        struct conn *c = r->conns[i];
        bool referenced = false;
        if (c->state == CONN_CLOSED && r->by_rank && c->peer.rank >= 0 &&
            c->peer.rank < r->nranks && r->by_rank[c->peer.rank] == c)
            referenced = true;
        if (c->state == CONN_CLOSED && !referenced)
            free(c);
        else
            r->conns[j++] = c;
    }
    r->nconns = j;
}

static void handle_timeout(struct root *r)
{
    char msg[WEFT_BOOT_ERRMSG_MAX];
    size_t off = 0;
    int missing = 0;

    if (r->fail != WEFT_OK)
        return;
    if (r->nranks < 0) {
        WEFT_WARN(BOOT, "bootstrap root at %s: no rank joined within WEFT_TIMEOUT=%g s", r->addr,
                  r->timeout);
        return;
    }
    for (int i = 0; i < r->nranks; i++)
        missing += r->by_rank[i] == NULL;
    off += (size_t)snprintf(msg + off, sizeof(msg) - off, "%s ", missing == 1 ? "rank" : "ranks");
    for (int i = 0, listed = 0; i < r->nranks && off < sizeof(msg) - 64; i++) {
        if (r->by_rank[i])
            continue;
        if (listed == 32) {
            off += (size_t)snprintf(msg + off, sizeof(msg) - off, ", ...");
            break;
        }
        off += (size_t)snprintf(msg + off, sizeof(msg) - off, "%s%d", listed ? ", " : "", i);
        listed++;
    }
    snprintf(msg + off, sizeof(msg) - off,
             " of %d never joined the rendezvous at %s within WEFT_TIMEOUT=%g s", r->nranks,
             r->addr, r->timeout);
    fail_job(r, WEFT_ERR_TIMEOUT, msg);
}

static void root_free(struct root *r)
{
    if (r->dropped > WARN_EACH)
        WEFT_WARN(BOOT, "bootstrap root at %s: dropped %d more connections", r->addr,
                  r->dropped - WARN_EACH);
    for (size_t i = 0; i < r->nconns; i++) {
        if (r->conns[i]->fd >= 0)
            close(r->conns[i]->fd);
        free(r->conns[i]);
    }
    free(r->conns);
    free(r->by_rank);
    if (r->lfd >= 0)
        close(r->lfd);
    sodium_memzero(r->secret, sizeof(r->secret));
    free(r);
}

/* Root threads running in this process: a rank that hosts one and fails must not exit
 * before the root has told the other ranks why (weft_boot_root_drain). */
static pthread_mutex_t roots_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t roots_done = PTHREAD_COND_INITIALIZER;
static int roots_running;

void weft_boot_root_drain(double max_s)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)max_s;
    until.tv_nsec += (long)((max_s - (double)(time_t)max_s) * 1e9);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&roots_lock);
    while (roots_running > 0)
        if (pthread_cond_timedwait(&roots_done, &roots_lock, &until) != 0)
            break;
    pthread_mutex_unlock(&roots_lock);
}

static void *root_main(void *arg)
{
    struct root *r = arg;
    struct pollfd *pfd = NULL;
    struct conn **polled = NULL;
    size_t pcap = 0;

    while (!r->done) {
        double left = r->deadline - weft_boot_now();
        if (left <= 0) {
            handle_timeout(r);
            break;
        }
        compact(r);
        if (pcap < r->nconns + 1) {
            pcap = 2 * (r->nconns + 1);
            struct pollfd *np = realloc(pfd, pcap * sizeof(*np));
            struct conn **nc = np ? realloc(polled, pcap * sizeof(*nc)) : NULL;
            if (np)
                pfd = np;
            if (nc)
                polled = nc;
            if (!np || !nc) {
                fail_job(r, WEFT_ERR_NO_MEMORY, "the bootstrap root ran out of memory");
                break;
            }
        }
        nfds_t n = 0;
        const double now = weft_boot_now();
        /* A paused listener is left out of the poll (it would be readable at once). */
        pfd[n++] = (struct pollfd){ .fd = now < r->accept_paused_until ? -1 : r->lfd,
                                    .events = POLLIN };
        if (now < r->accept_paused_until && r->accept_paused_until - now < left)
            left = r->accept_paused_until - now;
        for (size_t i = 0; i < r->nconns; i++) {
            struct conn *c = r->conns[i];
            if (c->state == CONN_AUTH || c->state == CONN_HDR || c->state == CONN_BODY) {
                polled[n] = c;
                pfd[n++] = (struct pollfd){ .fd = c->fd, .events = POLLIN };
            }
        }
        int ms = left > 3600 ? 3600 * 1000 : (int)(left * 1000.0) + 1;
        int rc = poll(pfd, n, ms);
        if (rc < 0 && errno != EINTR) {
            WEFT_WARN(BOOT, "bootstrap root at %s: poll failed: %s", r->addr, strerror(errno));
            break;
        }
        if (rc <= 0)
            continue;
        if (pfd[0].revents)
            accept_all(r);
        for (nfds_t i = 1; i < n && !r->done; i++) {
            if (pfd[i].revents && polled[i]->state != CONN_CLOSED &&
                polled[i]->state != CONN_JOINED)
                read_conn(r, polled[i]);
        }
    }
    free(pfd);
    free(polled);
    root_free(r);
    pthread_mutex_lock(&roots_lock);
    roots_running--;
    pthread_cond_broadcast(&roots_done);
    pthread_mutex_unlock(&roots_lock);
    return NULL;
}

/* Listens on `addr` and starts the root thread with `secret` (NULL: random). */
static weft_result_t root_start(const struct sockaddr_storage *addr, socklen_t addr_len,
                                const char *ifname, const uint8_t *secret, weft_unique_id_t *id)
{
    struct sockaddr_storage bound;
    socklen_t bound_len;
    struct weft_boot_id bid;
    pthread_attr_t attr;
    weft_result_t res;
    int err;

    struct root *r = calloc(1, sizeof(*r));
    if (!r)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "bootstrap root state");
    r->lfd = -1;
    r->nranks = -1;
    r->timeout = weft_config_double(WEFT_CFG_TIMEOUT);
    r->deadline = weft_boot_now() + r->timeout;
    WEFT_CHECK_GOTO(weft_boot_listen(addr, addr_len, &r->lfd, &bound, &bound_len), res, fail);
    weft_sockaddr_str((const struct sockaddr *)&bound, r->addr, sizeof(r->addr));
    if (secret)
        memcpy(r->secret, secret, sizeof(r->secret));
    else
        randombytes_buf(r->secret, sizeof(r->secret));
    memset(&bid, 0, sizeof(bid));
    bid.root = bound;
    bid.root_len = bound_len;
    memcpy(bid.secret, r->secret, sizeof(bid.secret));
    res = weft_boot_id_encode(&bid, id);
    sodium_memzero(&bid, sizeof(bid));
    if (res != WEFT_OK)
        goto fail;

    WEFT_INFO(BOOT, "bootstrap root listening on %s%s%s (one job, WEFT_TIMEOUT=%g s)", r->addr,
              ifname[0] ? " interface " : "", ifname, r->timeout);
    pthread_t thread;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_mutex_lock(&roots_lock);
    roots_running++;
    pthread_mutex_unlock(&roots_lock);
    err = pthread_create(&thread, &attr, root_main, r);
    pthread_attr_destroy(&attr);
    if (err != 0) {
        pthread_mutex_lock(&roots_lock);
        roots_running--;
        pthread_mutex_unlock(&roots_lock);
        res = WEFT_ERROR_ERR(WEFT_ERR_SYSTEM, err, "pthread_create",
                             "cannot start the bootstrap root thread");
        goto fail;
    }
    return WEFT_OK;
fail:
    root_free(r);
    return res;
}

weft_result_t weft_boot_root_start(const char *bind_host, weft_unique_id_t *id)
{
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char ifname[64] = "";

    if (!id)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_boot_root_start: id is NULL");
    if (sodium_init() < 0)
        return WEFT_ERROR(WEFT_ERR_SYSTEM, "libsodium failed to initialize");
    WEFT_CHECK(weft_config_load());
    if (bind_host)
        WEFT_CHECK(weft_sockaddr_parse(bind_host, &addr, &addr_len));
    else
        WEFT_CHECK(weft_netif_pick(&addr, &addr_len, ifname, sizeof(ifname)));
    return root_start(&addr, addr_len, ifname, NULL, id);
}

weft_result_t weft_boot_root_start_at(const char *bind, const uint8_t *secret,
                                      weft_unique_id_t *id)
{
    struct sockaddr_storage addr;
    socklen_t addr_len;

    if (!id || !bind)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_boot_root_start_at: bind or id is NULL");
    if (sodium_init() < 0)
        return WEFT_ERROR(WEFT_ERR_SYSTEM, "libsodium failed to initialize");
    WEFT_CHECK(weft_config_load());
    WEFT_CHECK(weft_sockaddr_parse(bind, &addr, &addr_len));
    return root_start(&addr, addr_len, "", secret, id);
}
