/*
 * bootstrap.c - a rank's side of the rendezvous: join the root, receive the table, then form
 * an authenticated ring (connect to rank+1, accept rank-1) that carries out-of-band
 * allgathers and barriers during set-up.
 */
#include "launcher/bootstrap.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/netif.h"
#include "launcher/boot_auth.h"
#include "launcher/boot_ring.h"
#include "launcher/boot_sock.h"
#include "launcher/boot_wire.h"

#define WHAT_LEN 192
/* The root enforces WEFT_TIMEOUT and then names the missing ranks; waiting a little longer
 * for its answer turns our own timeout into that more useful message. */
#define ROOT_ANSWER_GRACE_S 2.0

struct weft_boot {
    int rank;
    int nranks;
    int next_fd;
    int prev_fd;
    struct weft_boot_peer *peers;
    uint8_t key[32];
    char tag[17];
    char next_what[WHAT_LEN];
    char prev_what[WHAT_LEN];
};

static void describe(const struct weft_boot_peer *p, char *out, size_t len)
{
    char addr[WEFT_ADDR_STRLEN] = "-";

    if (p->addr_len)
        weft_sockaddr_str((const struct sockaddr *)&p->addr, addr, sizeof(addr));
    snprintf(out, len, "rank %d (host %s, pid %d, %s)", p->rank, p->host, p->pid, addr);
}

/* Listen where the root's ranks can reach us: loopback if the root is local-only. */
static weft_result_t open_ring_listener(const struct weft_boot_id *bid, int *lfd,
                                        struct sockaddr_storage *addr, socklen_t *addr_len)
{
    struct sockaddr_storage want;
    socklen_t want_len;
    char ifname[64];

    memset(&want, 0, sizeof(want));
    if (weft_boot_addr_is_loopback((const struct sockaddr *)&bid->root)) {
        if (bid->root.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&want;
            a->sin6_family = AF_INET6;
            a->sin6_addr = in6addr_loopback;
            want_len = sizeof(*a);
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&want;
            a->sin_family = AF_INET;
            a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            want_len = sizeof(*a);
        }
    } else {
        WEFT_CHECK(weft_netif_pick(&want, &want_len, ifname, sizeof(ifname)));
    }
    return weft_boot_listen(&want, want_len, lfd, addr, addr_len);
}

static weft_result_t root_answer(int fd, const struct weft_boot_hdr *hdr, const uint8_t *payload,
                                 int nranks, const char *what, struct weft_boot_peer **peers)
{
    char msg[WEFT_BOOT_ERRMSG_MAX];
    struct weft_boot_peer *p;
    int n;

    (void)fd;
    if (hdr->type == WEFT_BOOT_MSG_ERROR) {
        WEFT_CHECK(weft_boot_errmsg_decode(payload, hdr->len, msg, sizeof(msg)));
        weft_result_t code = (weft_result_t)hdr->status;
        if (code <= WEFT_OK || code > WEFT_ERR_IN_PROGRESS)
            code = WEFT_ERR_REMOTE;
        return WEFT_ERROR(code, "%s", msg);
    }
    if (hdr->type != WEFT_BOOT_MSG_TABLE)
        return WEFT_ERROR(WEFT_ERR_REMOTE, "%s sent message type %u instead of the rank table",
                          what, hdr->type);
    WEFT_CHECK(weft_boot_table_decode(payload, hdr->len, &p, &n));
    if (n != nranks) {
        free(p);
        return WEFT_ERROR(WEFT_ERR_REMOTE, "%s sent a table of %d ranks, expected %d", what, n,
                          nranks);
    }
    *peers = p;
    return WEFT_OK;
}

static weft_result_t rendezvous(const struct weft_boot_id *bid, const struct weft_boot_peer *me,
                                double deadline, struct weft_boot_peer **peers)
{
    char addr[WEFT_ADDR_STRLEN], what[WHAT_LEN];
    uint8_t hello[WEFT_BOOT_HELLO_MAX];
    struct weft_boot_hdr hdr;
    uint8_t *payload = NULL;
    weft_result_t res;
    size_t len;
    int fd = -1;

    weft_sockaddr_str((const struct sockaddr *)&bid->root, addr, sizeof(addr));
    snprintf(what, sizeof(what), "the bootstrap root at %s", addr);
    WEFT_CHECK(weft_boot_hello_encode(me, hello, sizeof(hello), &len));
    WEFT_CHECK(weft_boot_connect(&bid->root, bid->root_len, deadline, what, &fd));
    WEFT_CHECK_GOTO(weft_boot_auth_connect(fd, bid->secret, deadline, what), res, out);
    WEFT_CHECK_GOTO(weft_boot_msg_send(fd, WEFT_BOOT_MSG_HELLO, 0, hello, len, deadline, what),
                    res, out);
    WEFT_CHECK_GOTO(weft_boot_msg_recv(fd, WEFT_BOOT_MSG_MAX, deadline + ROOT_ANSWER_GRACE_S,
                                       what, &hdr, &payload),
                    res, out);
    WEFT_CHECK_GOTO(root_answer(fd, &hdr, payload, me->nranks, what, peers), res, out);
out:
    free(payload);
    close(fd);
    return res;
}

static void put_rank(uint8_t b[4], int rank)
{
    uint32_t v = htonl((uint32_t)rank);
    memcpy(b, &v, 4);
}

static int get_rank(const uint8_t b[4])
{
    uint32_t v;
    memcpy(&v, b, 4);
    return (int)ntohl(v);
}

/* Connect to rank+1, then prove the secret to it while waiting for rank-1 to prove it to us
 * (boot_ring.c), so that no rank waits on its successor while the successor waits on it. */
static weft_result_t ring_connect(struct weft_boot *b, int lfd, const uint8_t *secret,
                                  double deadline)
{
    int next = (b->rank + 1) % b->nranks, prev = (b->rank + b->nranks - 1) % b->nranks;
    const struct weft_boot_peer *np = &b->peers[next];
    uint8_t rb[4];

    WEFT_CHECK(weft_boot_connect(&np->addr, np->addr_len, deadline, b->next_what, &b->next_fd));
    WEFT_CHECK(weft_boot_ring_link(lfd, b->next_fd, secret, b->rank, b->next_what, deadline,
                                   &b->prev_fd));
    put_rank(rb, b->rank);
    WEFT_CHECK(weft_boot_send_all(b->next_fd, rb, sizeof(rb), deadline, b->next_what));
    WEFT_CHECK(weft_boot_recv_all(b->prev_fd, rb, sizeof(rb), deadline, b->prev_what));
    if (get_rank(rb) != prev)
        return WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d: ring predecessor says it is rank %d, not %d",
                          b->rank, get_rank(rb), prev);
    WEFT_INFO(BOOT, "rank %d of %d: ring prev %s, next %s", b->rank, b->nranks, b->prev_what,
              b->next_what);
    return WEFT_OK;
}

weft_result_t weft_boot_init(const weft_unique_id_t *id, int rank, int nranks,
                             struct weft_boot **boot)
{
    struct weft_boot_peer me;
    struct weft_boot_id bid;
    struct weft_boot *b;
    weft_result_t res;
    int lfd = -1;

    if (!id || !boot)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_boot_init: id or boot is NULL");
    if (nranks < 1 || nranks > WEFT_BOOT_NRANKS_MAX || rank < 0 || rank >= nranks)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "rank %d is out of range for nranks %d (need 0 <= rank < nranks)", rank,
                          nranks);
    if (sodium_init() < 0)
        return WEFT_ERROR(WEFT_ERR_SYSTEM, "libsodium failed to initialize");
    WEFT_CHECK(weft_config_load());
    WEFT_CHECK(weft_boot_id_decode(id, &bid));

    b = calloc(1, sizeof(*b));
    if (!b) {
        res = WEFT_ERROR(WEFT_ERR_NO_MEMORY, "bootstrap state");
        goto out;
    }
    b->rank = rank;
    b->nranks = nranks;
    b->next_fd = b->prev_fd = -1;
    double deadline = weft_boot_deadline();

    memset(&me, 0, sizeof(me));
    me.rank = rank;
    me.nranks = nranks;
    me.pid = (int)getpid();
    snprintf(me.host, sizeof(me.host), "%s", weft_log_hostname());
    if (nranks > 1)
        WEFT_CHECK_GOTO(open_ring_listener(&bid, &lfd, &me.addr, &me.addr_len), res, fail);
    WEFT_CHECK_GOTO(rendezvous(&bid, &me, deadline, &b->peers), res, fail);
    if (nranks > 1) {
        describe(&b->peers[(rank + 1) % nranks], b->next_what, sizeof(b->next_what));
        describe(&b->peers[(rank + nranks - 1) % nranks], b->prev_what, sizeof(b->prev_what));
        WEFT_CHECK_GOTO(ring_connect(b, lfd, bid.secret, deadline), res, fail);
        close(lfd);
        lfd = -1;
    }
    weft_boot_derive_key(bid.secret, b->key);
    weft_boot_derive_tag(bid.secret, b->tag, sizeof(b->tag));
    *boot = b;
    res = WEFT_OK;
    goto out;
fail:
    if (lfd >= 0)
        close(lfd);
    weft_boot_destroy(b);
out:
    sodium_memzero(&bid, sizeof(bid));
    return res;
}

void weft_boot_destroy(struct weft_boot *boot)
{
    if (!boot)
        return;
    if (boot->next_fd >= 0)
        close(boot->next_fd);
    if (boot->prev_fd >= 0)
        close(boot->prev_fd);
    free(boot->peers);
    sodium_memzero(boot->key, sizeof(boot->key));
    free(boot);
}

weft_result_t weft_boot_allgather(struct weft_boot *boot, const void *mine, void *all, size_t len)
{
    int n, r;

    if (!boot || (len && (!mine || !all)))
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_boot_allgather: NULL argument");
    n = boot->nranks;
    r = boot->rank;
    if (len == 0)
        return WEFT_OK;
    memmove((char *)all + (size_t)r * len, mine, len);
    double deadline = weft_boot_deadline();
    /* Step s forwards the block received in step s-1: after n-1 steps everyone has all. */
    for (int s = 0; s < n - 1; s++) {
        int send_idx = (r - s + n) % n;
        int recv_idx = (r - s - 1 + n) % n;
        WEFT_CHECK(weft_boot_sendrecv(boot->next_fd, (const char *)all + (size_t)send_idx * len,
                                      len, boot->next_what, boot->prev_fd,
                                      (char *)all + (size_t)recv_idx * len, len,
                                      boot->prev_what, deadline));
    }
    return WEFT_OK;
}

weft_result_t weft_boot_barrier(struct weft_boot *boot)
{
    uint8_t one = 1, stack[64];
    uint8_t *all = stack;
    weft_result_t res;

    if (!boot)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_boot_barrier: boot is NULL");
    if ((size_t)boot->nranks > sizeof(stack)) {
        all = malloc((size_t)boot->nranks);
        if (!all)
            return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "barrier buffer for %d ranks", boot->nranks);
    }
    res = weft_boot_allgather(boot, &one, all, 1);
    if (all != stack)
        free(all);
    return res;
}

int weft_boot_rank(const struct weft_boot *boot)
{
    return boot->rank;
}

int weft_boot_nranks(const struct weft_boot *boot)
{
    return boot->nranks;
}

const char *weft_boot_hostname(const struct weft_boot *boot, int rank)
{
    if (rank < 0 || rank >= boot->nranks)
        return "?";
    return boot->peers[rank].host;
}

int weft_boot_pid(const struct weft_boot *boot, int rank)
{
    if (rank < 0 || rank >= boot->nranks)
        return -1;
    return boot->peers[rank].pid;
}

void weft_boot_transport_key(const struct weft_boot *boot, uint8_t key[32])
{
    memcpy(key, boot->key, 32);
}

const char *weft_boot_job_tag(const struct weft_boot *boot)
{
    return boot->tag;
}
