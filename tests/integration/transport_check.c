/*
 * transport_check.c - the conformance test every transport runs: forked ranks on this host
 * exercise ordering, sizes, mismatches, peer death and abort through the transport ops table,
 * with the same assertions for every transport: a mismatch fails the receive with its exact
 * code, the send exactly as transport.h says, and the pair stays in step both ways; a message
 * sent before a peer exited still arrives; the errors name the exit and the abort.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "transport/transport.h"

#define MAXP 16
#define REASON_MAX 240
/* seconds any single wait of a check may take; TRANSPORT_CHECK_OP_S raises it */
#define OP_TIMEOUT op_timeout()
/* seconds before the parent kills a round's ranks; TRANSPORT_CHECK_ROUND_S raises it for
 * emulated fabrics (soft-RoCE moves 20-60 MB/s) */
#define ROUND_TIMEOUT round_timeout()
#define FLOOD_DEPTH 64

enum check_id {
    CK_SETUP, CK_PINGPONG, CK_FLOOD, CK_TAG, CK_LEN, CK_EXIT, CK_ABORT, CK_REFUSED, CK_COUNT
};
static const char *const check_names[CK_COUNT] = {
    "setup", "ping-pong", "64 in flight per peer both ways", "tag mismatch", "length mismatch",
    "peer exit", "abort", "single-copy refused falls back to copying",
};

struct result {
    int state; /* 0 not reported, 1 passed, 2 failed, 3 skipped (nothing to check here) */
    char reason[REASON_MAX];
};

/* Shared by the parent and its ranks: created before fork. */
struct shared {
    pthread_barrier_t bar;
    uint8_t blob[MAXP][WEFT_TRANSPORT_ADDR_MAX + WEFT_TRANSPORT_ADDR_PER_RANK * MAXP];
    size_t blob_len[MAXP];
    struct result res[MAXP][CK_COUNT];
    double bw_mbs[2]; /* 1 MiB, 64 MiB */
    pid_t pid[MAXP];
};

struct ctx {
    const struct weft_transport_ops *ops;
    struct weft_tp *tp;
    struct weft_ep *ep[MAXP];
    struct shared *sh;
    int rank, n;
};

/* 4056 and 4057: a default shm slot less its message header, and one byte more */
static const size_t pp_sizes[] = { 0, 1, 7, 4056, 4057, 4095, 65535, 65536, 65537,
                                   (1 << 20) + 3, 16 << 20 };
static const size_t flood_sizes[] = { 0, 1, 7, 64, 4095, 4096, 65535, 65536, 65537, 100000,
                                      262147, 1048579 };
#define NPP (sizeof(pp_sizes) / sizeof(pp_sizes[0]))
#define NFLOOD (sizeof(flood_sizes) / sizeof(flood_sizes[0]))

static bool verbose;
static const char *tp_name; /* the transport under test */

static double op_timeout(void)
{
    const char *s = getenv("TRANSPORT_CHECK_OP_S");
    return s && atof(s) > 0 ? atof(s) : 10.0;
}

static double round_timeout(void)
{
    const char *s = getenv("TRANSPORT_CHECK_ROUND_S");
    return s && atof(s) > 0 ? atof(s) : 40.0;
}


static uint8_t pattern(uint32_t seed, size_t i)
{
    return (uint8_t)(seed * 0x9e3779b1u + i * 131u + (i >> 9) * 7u);
}

static void fill(uint8_t *buf, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = pattern(seed, i);
}

/* Returns the first differing offset, or len when the buffer holds the pattern. */
static size_t verify(const uint8_t *buf, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != pattern(seed, i))
            return i;
    return len;
}

static uint32_t seed_of(int from, int to, size_t size, int k)
{
    return (uint32_t)from * 1000003u + (uint32_t)to * 10007u + (uint32_t)size * 31u +
           (uint32_t)k;
}

static void fail(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(char *why, const char *fmt, ...)
{
    if (why[0])
        return; /* keep the first reason */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, REASON_MAX, fmt, ap);
    va_end(ap);
}

static void record(struct ctx *c, enum check_id id, const char *why)
{
    struct result *r = &c->sh->res[c->rank][id];
    snprintf(r->reason, sizeof(r->reason), "%s", why);
    __atomic_store_n(&r->state, why[0] ? 2 : 1, __ATOMIC_RELEASE);
}

static void barrier(struct ctx *c)
{
    pthread_barrier_wait(&c->sh->bar);
}

/* Posting failures complete the (test-owned) request, so waits treat both alike. */
static void post(struct ctx *c, int is_send, int peer, void *buf, size_t len, uint64_t tag,
                 struct weft_request *req)
{
    weft_result_t r = is_send ? c->ops->isend(c->ep[peer], buf, len, tag, req)
                              : c->ops->irecv(c->ep[peer], buf, len, tag, req);
    if (r != WEFT_OK) {
        req->status = r;
        req->done = 1;
    }
}

/* Drives progress until every request is done; returns the first failure in array order,
 * or WEFT_ERR_TIMEOUT. */
static weft_result_t drive(struct ctx *c, struct weft_request **reqs, size_t n, double timeout)
{
    double deadline = weft_now_s() + timeout;
    int64_t spin = weft_config_int(WEFT_CFG_SPIN_COUNT), idle = 0;
    for (;;) {
        size_t pending = 0;
        for (size_t i = 0; i < n; i++)
            if (reqs[i] && !__atomic_load_n(&reqs[i]->done, __ATOMIC_ACQUIRE))
                pending++;
        if (pending == 0)
            break;
        bool progressed = false;
        weft_result_t r = c->ops->progress(c->tp, &progressed);
        if (r != WEFT_OK)
            return r;
        if (weft_now_s() > deadline)
            return WEFT_ERR_TIMEOUT;
        /* More ranks than cores must not starve the peer we wait for. */
        idle = progressed ? 0 : idle + 1;
        if (idle > spin)
            sched_yield();
    }
    for (size_t i = 0; i < n; i++)
        if (reqs[i] && reqs[i]->status != WEFT_OK)
            return reqs[i]->status;
    return WEFT_OK;
}

static weft_result_t drive2(struct ctx *c, struct weft_request *a, struct weft_request *b)
{
    struct weft_request *reqs[2] = { a, b };
    return drive(c, reqs, 2, OP_TIMEOUT);
}

/* ---- setup ------------------------------------------------------------------------------ */

static bool setup(struct ctx *c, const char *job_tag, char *why)
{
    struct weft_transport_params p;
    memset(&p, 0, sizeof(p));
    p.rank = c->rank;
    p.nranks = c->n;
    p.local_rank = c->rank;
    p.local_nranks = c->n;
    p.job_tag = job_tag;
    memset(p.key, 0x5a, sizeof(p.key));
    p.timeout_s = OP_TIMEOUT;
    uint8_t serves[MAXP];
    static const char *hostnames[MAXP]; /* the transport keeps it until fini */
    for (int r2 = 0; r2 < c->n; r2++) {
        serves[r2] = r2 != c->rank;
        hostnames[r2] = "localhost";
    }
    p.serves = serves;
    p.hostnames = hostnames;
    bool ok = true;
    weft_result_t r = c->ops->init(&p, &c->tp);
    if (r != WEFT_OK) {
        fail(why, "init: %s: %s", weft_strerror(r), weft_last_error());
        ok = false;
    }
    size_t len = sizeof(c->sh->blob[0]);
    if (ok && (r = c->ops->address(c->tp, c->sh->blob[c->rank], &len)) != WEFT_OK) {
        fail(why, "address: %s: %s", weft_strerror(r), weft_last_error());
        ok = false;
    }
    c->sh->blob_len[c->rank] = len;
    barrier(c);
    double deadline = weft_now_s() + OP_TIMEOUT;
    for (bool again = ok; again;) {
        again = false;
        for (int p2 = 0; p2 < c->n && ok; p2++) {
            if (p2 == c->rank || c->ep[p2])
                continue;
            r = c->ops->connect(c->tp, p2, c->sh->blob[p2], c->sh->blob_len[p2], &c->ep[p2]);
            if (r == WEFT_ERR_IN_PROGRESS) {
                again = true;
            } else if (r != WEFT_OK) {
                fail(why, "connect to rank %d: %s: %s", p2, weft_strerror(r), weft_last_error());
                ok = false;
            }
        }
        if (again && ok) {
            bool progressed;
            c->ops->progress(c->tp, &progressed);
            if (weft_now_s() > deadline) {
                fail(why, "connect did not finish in %.0f s", OP_TIMEOUT);
                ok = false;
                again = false;
            }
        }
    }
    barrier(c);
    if (ok && c->ops->connected && (r = c->ops->connected(c->tp)) != WEFT_OK) {
        fail(why, "connected: %s: %s", weft_strerror(r), weft_last_error());
        ok = false;
    }
    barrier(c);
    return ok;
}

/* ---- checks ----------------------------------------------------------------------------- */

/* One exchange of `size` bytes from a to b and back, verified on both ends. */
static void pingpong_once(struct ctx *c, int other, bool first, size_t size, int k, uint8_t *sbuf,
                          uint8_t *rbuf, char *why)
{
    struct weft_request sreq, rreq;
    int me = c->rank;
    fill(sbuf, size, seed_of(me, other, size, k));
    weft_result_t r;
    if (first) {
        post(c, 1, other, sbuf, size, (uint64_t)k, &sreq);
        post(c, 0, other, rbuf, size, (uint64_t)k + 1000, &rreq);
    } else {
        post(c, 0, other, rbuf, size, (uint64_t)k, &rreq);
        r = drive2(c, &rreq, NULL);
        if (r != WEFT_OK) {
            fail(why, "rank %d receiving %zu bytes from %d: %s: %s", me, size, other,
                 weft_strerror(r), weft_last_error());
            return;
        }
        post(c, 1, other, sbuf, size, (uint64_t)k + 1000, &sreq);
    }
    r = drive2(c, &sreq, &rreq);
    if (r != WEFT_OK) {
        fail(why, "rank %d exchanging %zu bytes with %d: %s: %s", me, size, other,
             weft_strerror(r), weft_last_error());
        return;
    }
    size_t at = verify(rbuf, size, seed_of(other, me, size, k));
    if (at != size)
        fail(why, "rank %d: %zu bytes from rank %d differ at offset %zu", me, size, other, at);
}

static void check_pingpong(struct ctx *c, char *why)
{
    size_t max = pp_sizes[NPP - 1];
    uint8_t *sbuf = malloc(max), *rbuf = malloc(max);
    if (!sbuf || !rbuf) {
        fail(why, "out of memory");
    }
    for (int a = 0; a < c->n; a++) {
        for (int b = a + 1; b < c->n; b++) {
            if (sbuf && rbuf && (c->rank == a || c->rank == b)) {
                int other = c->rank == a ? b : a;
                for (size_t i = 0; i < NPP && !why[0]; i++)
                    pingpong_once(c, other, c->rank == a, pp_sizes[i], (int)i, sbuf, rbuf, why);
            }
            barrier(c);
        }
    }
    free(sbuf);
    free(rbuf);
}

static size_t flood_size(int from, int to, int k)
{
    return flood_sizes[((size_t)k * 7 + (size_t)from * 3 + (size_t)to) % NFLOOD];
}

static void check_flood(struct ctx *c, char *why)
{
    int n = c->n, me = c->rank;
    size_t count = (size_t)n * FLOOD_DEPTH;
    struct weft_request *sreq = calloc(count, sizeof(*sreq));
    struct weft_request *rreq = calloc(count, sizeof(*rreq));
    struct weft_request **all = calloc(2 * count, sizeof(*all));
    uint8_t **sbuf = calloc(count, sizeof(*sbuf)), **rbuf = calloc(count, sizeof(*rbuf));
    if (!sreq || !rreq || !all || !sbuf || !rbuf) {
        fail(why, "out of memory");
        goto out;
    }
    for (int p = 0; p < n; p++) {
        for (int k = 0; k < FLOOD_DEPTH && p != me; k++) {
            size_t i = (size_t)p * FLOOD_DEPTH + (size_t)k;
            size_t ssz = flood_size(me, p, k), rsz = flood_size(p, me, k);
            sbuf[i] = malloc(ssz ? ssz : 1);
            rbuf[i] = malloc(rsz ? rsz : 1);
            if (!sbuf[i] || !rbuf[i]) {
                fail(why, "out of memory");
                goto out;
            }
            fill(sbuf[i], ssz, seed_of(me, p, ssz, k));
            memset(rbuf[i], 0xee, rsz);
        }
    }
    /* Receives first on some ranks, sends first on others: both orders must work. */
    for (int pass = 0; pass < 2; pass++) {
        int sends = (pass == 0) == (me % 2 == 0);
        for (int k = 0; k < FLOOD_DEPTH; k++) {
            for (int p = 0; p < n; p++) {
                if (p == me)
                    continue;
                size_t i = (size_t)p * FLOOD_DEPTH + (size_t)k;
                if (sends) {
                    post(c, 1, p, sbuf[i], flood_size(me, p, k), 5000 + (uint64_t)k, &sreq[i]);
                    all[i] = &sreq[i];
                } else {
                    post(c, 0, p, rbuf[i], flood_size(p, me, k), 5000 + (uint64_t)k, &rreq[i]);
                    all[count + i] = &rreq[i];
                }
            }
        }
    }
    weft_result_t r = drive(c, all, 2 * count, ROUND_TIMEOUT - 10); /* 30 s by default */
    if (r != WEFT_OK) {
        fail(why, "rank %d: %s: %s", me, weft_strerror(r), weft_last_error());
        goto out;
    }
    for (int p = 0; p < n; p++) {
        for (int k = 0; k < FLOOD_DEPTH && p != me; k++) {
            size_t i = (size_t)p * FLOOD_DEPTH + (size_t)k, rsz = flood_size(p, me, k);
            size_t at = verify(rbuf[i], rsz, seed_of(p, me, rsz, k));
            if (at != rsz) {
                fail(why, "rank %d: message %d (%zu bytes) from rank %d differs at offset %zu",
                     me, k, rsz, p, at);
                goto out;
            }
        }
    }
out:
    for (size_t i = 0; sbuf && rbuf && i < count; i++) {
        free(sbuf[i]);
        free(rbuf[i]);
    }
    free(sbuf);
    free(rbuf);
    free(all);
    free(sreq);
    free(rreq);
}

/* Mismatch cases, one per round: a transport may tear the pair down after a mismatch. */
static const struct {
    enum check_id id;
    size_t len, rlen;
} mismatch_cases[] = {
    { CK_TAG, 100, 100 },         { CK_TAG, 200000, 200000 },
    { CK_TAG, (1 << 20) + 3, (1 << 20) + 3 },
    { CK_LEN, 100, 200 },         { CK_LEN, 200, 100 },
    { CK_LEN, 200000, 300000 },   { CK_LEN, (1 << 20) + 3, 1 << 20 },
    /* across a transport's small/large boundary (eager/rendezvous, inline/payload) */
    { CK_LEN, 100, 200000 },      { CK_LEN, 200000, 100 },
};
#define NMISMATCH (sizeof(mismatch_cases) / sizeof(mismatch_cases[0]))
static size_t mismatch_now; /* set by the parent before it forks a mismatch round */

/* What the sender of a mismatched message sees (transport/transport.h): WEFT_OK where the
 * data leaves before the receiver has a say (every eager path; shm, tcp and ucx always), an
 * error where the sender waits for the receiver first: verbs' rendezvous (messages above a
 * ring slot, WEFT_IB_EAGER_SIZE), where the receiver's CTS shows the mismatch (its code) or
 * the receiver refuses the message (WEFT_ERR_REMOTE), whichever reaches the sender first.
 * The sizes of mismatch_cases stay far from the slot size, so that the rule is exact. */
static bool sender_sees_mismatch(size_t len)
{
    return strcmp(tp_name, "verbs") == 0 && len > weft_config_size(WEFT_CFG_IB_EAGER_SIZE);
}

/* One matched message of `len` bytes from rank `from` to rank `to` (ranks 0 and 1), checked
 * on both ends. */
static void matched(struct ctx *c, int from, int to, size_t len, uint64_t tag, uint8_t *buf,
                    const char *when, char *why)
{
    struct weft_request req;
    if (c->rank == from) {
        fill(buf, len, (uint32_t)tag);
        post(c, 1, to, buf, len, tag, &req);
    } else {
        memset(buf, 0xee, len);
        post(c, 0, from, buf, len, tag, &req);
    }
    weft_result_t r = drive2(c, &req, NULL);
    if (r != WEFT_OK)
        fail(why, "rank %d: %s, %zu bytes %d->%d (tag %llu): %s: %s", c->rank, when, len, from,
             to, (unsigned long long)tag, weft_strerror(r), weft_last_error());
    else if (c->rank == to && verify(buf, len, (uint32_t)tag) != len)
        fail(why, "rank %d: %s, %zu bytes %d->%d arrived corrupted at offset %zu", c->rank, when,
             len, from, to, verify(buf, len, (uint32_t)tag));
}

/* Rank 0 sends (tag 70, len) then a 4 KiB follow-up; rank 1 receives (tag 70 or 71, rlen)
 * and must get exactly the mismatch error, and the sender exactly what sender_sees_mismatch
 * says, on every transport alike. Then the pair must be in step: the follow-up arrives intact,
 * and matched rendezvous-size messages go back and forth. Nobody may hang. */
static void mismatch_case(struct ctx *c, char *why)
{
    size_t len = mismatch_cases[mismatch_now].len, rlen = mismatch_cases[mismatch_now].rlen;
    bool is_tag = mismatch_cases[mismatch_now].id == CK_TAG;
    uint64_t tag = 70, rtag = is_tag ? 71 : 70;
    weft_result_t want = is_tag ? WEFT_ERR_REMOTE : WEFT_ERR_INVALID_ARG;
    const size_t after = 200003; /* the matched messages afterwards: rendezvous-size */
    size_t max = len > rlen ? len : rlen;
    max = max > after ? max : after;
    uint8_t *buf = malloc(max + 1), *fbuf = malloc(4096);
    struct weft_request req, freq;
    struct weft_request *reqs[2] = { &req, &freq };
    if (!buf || !fbuf) {
        fail(why, "out of memory");
        goto out;
    }
    if (c->rank == 0) {
        fill(buf, len, 1);
        fill(fbuf, 4096, 2);
        post(c, 1, 1, buf, len, tag, &req);
        post(c, 1, 1, fbuf, 4096, tag + 1, &freq);
        if (drive(c, reqs, 2, OP_TIMEOUT) == WEFT_ERR_TIMEOUT)
            fail(why, "sender: sends still pending after %.0f s", OP_TIMEOUT);
        else if (sender_sees_mismatch(len) && req.status != want &&
                 req.status != WEFT_ERR_REMOTE)
            fail(why, "sender: the mismatched %zu-byte send got %s, expected %s or "
                 "WEFT_ERR_REMOTE (%s)", len, weft_strerror(req.status), weft_strerror(want),
                 weft_last_error());
        else if (!sender_sees_mismatch(len) && req.status != WEFT_OK)
            fail(why, "sender: the mismatched %zu-byte send got %s, expected WEFT_OK (the "
                 "data left before the receiver matched it): %s", len,
                 weft_strerror(req.status), weft_last_error());
        else if (freq.status != WEFT_OK)
            fail(why, "sender: the follow-up after a %zu-byte mismatch got %s: %s", len,
                 weft_strerror(freq.status), weft_last_error());
    } else if (c->rank == 1) {
        post(c, 0, 0, buf, rlen, rtag, &req);
        post(c, 0, 0, fbuf, 4096, tag + 1, &freq);
        weft_result_t r = drive(c, reqs, 2, OP_TIMEOUT);
        if (r == WEFT_ERR_TIMEOUT)
            fail(why, "receives (%zu bytes, tag %llu, for %zu bytes, tag %llu) still pending "
                 "after %.0f s", len, (unsigned long long)tag, rlen, (unsigned long long)rtag,
                 OP_TIMEOUT);
        else if (req.status != want)
            fail(why, "%zu-byte receive got %s, expected %s (%s)", len,
                 weft_strerror(req.status), weft_strerror(want), weft_last_error());
        else if (freq.status != WEFT_OK)
            fail(why, "follow-up after a %zu-byte mismatch: %s", len,
                 weft_strerror(freq.status));
        else if (verify(fbuf, 4096, 2) != 4096)
            fail(why, "follow-up after a %zu-byte mismatch arrived corrupted", len);
    }
    if (c->rank < 2 && !why[0]) {
        matched(c, 1, 0, after, 72, buf, "after the mismatch, backwards", why);
        if (!why[0])
            matched(c, 0, 1, after, 73, buf, "after the mismatch, forwards", why);
    }
out:
    free(buf);
    free(fbuf);
}

static void round_mismatch(struct ctx *c, bool ok)
{
    char why[REASON_MAX] = "";
    if (ok)
        mismatch_case(c, why);
    else
        fail(why, "setup failed");
    record(c, mismatch_cases[mismatch_now].id, why);
    barrier(c);
}

static double bandwidth(struct ctx *c, size_t size, int iters)
{
    uint8_t *sbuf = malloc(size), *rbuf = malloc(size);
    double mbs = 0;
    if (!sbuf || !rbuf)
        goto out;
    memset(sbuf, 1, size);
    memset(rbuf, 2, size);
    int other = 1 - c->rank;
    double t0 = 0;
    for (int i = -2; i < iters; i++) { /* two warm-up rounds */
        if (i == 0)
            t0 = weft_now_s();
        struct weft_request s, r;
        if (c->rank == 0) {
            post(c, 1, other, sbuf, size, 9, &s);
            post(c, 0, other, rbuf, size, 9, &r);
            if (drive2(c, &s, &r) != WEFT_OK)
                goto out;
        } else {
            post(c, 0, other, rbuf, size, 9, &r);
            if (drive2(c, &r, NULL) != WEFT_OK)
                goto out;
            post(c, 1, other, sbuf, size, 9, &s);
            if (drive2(c, &s, NULL) != WEFT_OK)
                goto out;
        }
    }
    mbs = (double)size * 2 * iters / (weft_now_s() - t0) / 1e6;
out:
    free(sbuf);
    free(rbuf);
    return mbs;
}

/* ---- rounds (run in the forked ranks) ---------------------------------------------------- */

typedef void (*check_fn)(struct ctx *c, char *why);

static void round_main(struct ctx *c, bool ok)
{
    static const struct {
        enum check_id id;
        check_fn fn;
    } checks[] = { { CK_PINGPONG, check_pingpong }, { CK_FLOOD, check_flood },
                 };
    for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
        char why[REASON_MAX] = "";
        if (ok)
            checks[i].fn(c, why);
        else
            fail(why, "setup failed");
        record(c, checks[i].id, why);
        barrier(c);
    }
    if (verbose && ok && c->rank < 2) {
        double a = bandwidth(c, 1 << 20, 200), b = bandwidth(c, 64 << 20, 10);
        if (c->rank == 0) {
            c->sh->bw_mbs[0] = a;
            c->sh->bw_mbs[1] = b;
        }
    }
    barrier(c);
}

/* The last rank sends one message to everyone, starts a second, and dies mid-exchange. */
static void round_exit(struct ctx *c, bool ok)
{
    char why[REASON_MAX] = "";
    int dying = c->n - 1;
    size_t big = 16 << 20;
    if (!ok) {
        fail(why, "setup failed");
        record(c, CK_EXIT, why);
        return;
    }
    if (c->rank == dying) {
        static struct weft_request reqs[2 * MAXP];
        uint8_t *a = malloc(4096), *b = malloc(big);
        if (!a || !b)
            _exit(3);
        fill(a, 4096, 77);
        memset(b, 3, big);
        struct weft_request *sent[MAXP];
        for (int p = 0; p < dying; p++) {
            post(c, 1, p, a, 4096, 1, &reqs[2 * p]);
            sent[p] = &reqs[2 * p];
        }
        if (drive(c, sent, (size_t)dying, OP_TIMEOUT) != WEFT_OK)
            _exit(3); /* the survivors then report the lost message */
        for (int p = 0; p < dying; p++)
            post(c, 1, p, b, big, 2, &reqs[2 * p + 1]);
        for (int i = 0; i < 50; i++) {
            bool progressed;
            c->ops->progress(c->tp, &progressed);
        }
        record(c, CK_EXIT, "");
        _exit(0);
    }
    uint8_t *a = malloc(4096), *b = malloc(big), cbuf[16];
    struct weft_request ra, rb, rc;
    if (!a || !b) {
        fail(why, "out of memory");
        goto out;
    }
    post(c, 0, dying, a, 4096, 1, &ra);
    post(c, 0, dying, b, big, 2, &rb);
    post(c, 0, dying, cbuf, sizeof(cbuf), 3, &rc);
    double t0 = weft_now_s();
    struct weft_request *reqs[3] = { &ra, &rb, &rc };
    weft_result_t r = drive(c, reqs, 3, OP_TIMEOUT);
    double took = weft_now_s() - t0;
    if (r == WEFT_ERR_TIMEOUT)
        fail(why, "rank %d: waits still pending after %.1f s", c->rank, took);
    else if (ra.status != WEFT_OK)
        fail(why, "rank %d: message sent before the exit got %s", c->rank,
             weft_strerror(ra.status));
    else if (ra.status == WEFT_OK && verify(a, 4096, 77) != 4096)
        fail(why, "rank %d: message sent before the exit arrived corrupted", c->rank);
    else if (rc.status != WEFT_ERR_REMOTE || (rb.status != WEFT_OK && rb.status != WEFT_ERR_REMOTE))
        fail(why, "rank %d: receives after the exit got %s / %s, expected WEFT_ERR_REMOTE",
             c->rank, weft_strerror(rb.status), weft_strerror(rc.status));
    else if (!strstr(weft_last_error(), "exited"))
        fail(why, "rank %d: error does not say the peer exited: %s", c->rank, weft_last_error());
    else if (took > 5.0)
        fail(why, "rank %d: death noticed only after %.1f s", c->rank, took);
out:
    free(a);
    free(b);
    record(c, CK_EXIT, why);
}

/* The last rank aborts with requests in flight; everyone waiting on it must hear of it, and
 * of the rank its notice blames (rank 0, as if the aborter had seen rank 0 die). */
#define ABORT_CULPRIT 0
static void round_abort(struct ctx *c, bool ok)
{
    char why[REASON_MAX] = "";
    int aborter = c->n - 1;
    if (!ok) {
        fail(why, "setup failed");
        record(c, CK_ABORT, why);
        barrier(c);
        return;
    }
    uint8_t buf[MAXP][64];
    struct weft_request reqs[MAXP];
    struct weft_request *ptrs[MAXP] = { NULL };
    if (c->rank == aborter) {
        for (int p = 0; p < c->n; p++) {
            if (p != aborter) {
                post(c, 0, p, buf[p], 64, 7, &reqs[p]);
                ptrs[p] = &reqs[p];
            }
        }
        barrier(c);
        c->ops->abort(c->tp, ABORT_CULPRIT);
        for (int p = 0; p < aborter; p++)
            if (!reqs[p].done || reqs[p].status != WEFT_ERR_ABORTED)
                fail(why, "rank %d: own receive from %d after abort: %s", c->rank, p,
                     reqs[p].done ? weft_strerror(reqs[p].status) : "not completed");
        struct weft_request late;
        if (c->ops->isend(c->ep[0], buf[0], 64, 8, &late) == WEFT_OK)
            fail(why, "rank %d: isend after abort succeeded", c->rank);
    } else {
        post(c, 0, aborter, buf[0], 64, 5, &reqs[0]);
        ptrs[0] = &reqs[0];
        barrier(c);
        double t0 = weft_now_s();
        weft_result_t r = drive(c, ptrs, 1, OP_TIMEOUT);
        double took = weft_now_s() - t0;
        if (r != WEFT_ERR_REMOTE)
            fail(why, "rank %d: receive from the aborted rank got %s, expected "
                 "WEFT_ERR_REMOTE", c->rank, weft_strerror(r));
        else if (!strstr(weft_last_error(), "abort"))
            fail(why, "rank %d: error does not say the peer aborted: %s", c->rank,
                 weft_last_error());
        else if (took > 5.0)
            fail(why, "rank %d: abort noticed only after %.1f s", c->rank, took);
        else if (c->ops->culprit(c->tp) != ABORT_CULPRIT)
            fail(why, "rank %d: the abort notice carried culprit %d, the aborter sent %d",
                 c->rank, c->ops->culprit(c->tp), ABORT_CULPRIT);
    }
    record(c, CK_ABORT, why);
    barrier(c);
}

/* Rank 0 turns non-dumpable and rank 1 drops CAP_SYS_PTRACE, so rank 1 may not read rank 0
 * with process_vm_readv (EPERM): large messages 0 -> 1 must still arrive, by copy. */
static void refuse_cma(int rank)
{
    if (rank == 0) {
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    } else if (rank == 1) {
        struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
        struct __user_cap_data_struct data[2];
        if (syscall(SYS_capget, &hdr, data) == 0) {
            data[CAP_SYS_PTRACE / 32].effective &= ~(1u << (CAP_SYS_PTRACE % 32));
            data[CAP_SYS_PTRACE / 32].permitted &= ~(1u << (CAP_SYS_PTRACE % 32));
            syscall(SYS_capset, &hdr, data);
        }
    }
}

static void round_refused(struct ctx *c, bool ok)
{
    char why[REASON_MAX] = "";
    static const size_t sizes[] = { (1 << 20) + 3, 16 << 20, 65536, 100 };
    uint8_t *sbuf = malloc(16 << 20), *rbuf = malloc(16 << 20);
    if (!ok)
        fail(why, "setup failed");
    else if (!sbuf || !rbuf)
        fail(why, "out of memory");
    for (int k = 0; k < 2 && !why[0] && c->rank < 2; k++)
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]) && !why[0]; i++)
            pingpong_once(c, 1 - c->rank, c->rank == 0, sizes[i], (int)i + 10 * k, sbuf, rbuf,
                          why);
    free(sbuf);
    free(rbuf);
    /* Only a refusal that happened tests the fallback: rank 1 tries to read rank 0 itself
     * (EPERM: refused; success or EFAULT: allowed, so the check had nothing to test). */
    static int probe_target;
    uint8_t byte;
    struct iovec local = { &byte, 1 }, remote = { &probe_target, 1 };
    if (c->rank == 1 && !why[0] &&
        (process_vm_readv(c->sh->pid[0], &local, 1, &remote, 1, 0) == 1 || errno != EPERM)) {
        struct result *r = &c->sh->res[c->rank][CK_REFUSED];
        snprintf(r->reason, sizeof(r->reason), "rank 1 can still read rank 0 with "
                 "process_vm_readv here, so the copying fallback was not exercised");
        __atomic_store_n(&r->state, 3, __ATOMIC_RELEASE);
    } else {
        record(c, CK_REFUSED, why);
    }
    barrier(c);
}

/* ---- the parent ------------------------------------------------------------------------- */

typedef void (*round_fn)(struct ctx *c, bool ok);

static int passed, failed;

static void report(bool ok, const char *label, const char *check, const char *reason)
{
    if (ok) {
        printf("ok - %s %s\n", label, check);
        passed++;
    } else {
        printf("not ok - %s %s: %s\n", label, check, reason);
        failed++;
    }
    fflush(stdout);
}

/* Counts /dev/shm entries a round's ranks left behind (named weft-<pid>-<job tag>). */
static int leftovers(const char *job_tag)
{
    DIR *d = opendir("/dev/shm");
    int count = 0;
    if (!d)
        return 0;
    size_t tl = strlen(job_tag);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, "weft-", 5) == 0 && l > tl &&
            strcmp(e->d_name + l - tl, job_tag) == 0 && e->d_name[l - tl - 1] == '-') {
            count++;
            shm_unlink(e->d_name);
        }
    }
    closedir(d);
    return count;
}

static void run_round(const struct weft_transport_ops *ops, int n, const char *label,
                      round_fn fn, const enum check_id *ids, size_t nids)
{
    bool refused = fn == round_refused;
    static int round_no;
    char job_tag[64];
    snprintf(job_tag, sizeof(job_tag), "tc%d-%d", (int)getpid(), round_no++);
    struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        report(false, label, "setup", "mmap of the shared region failed");
        return;
    }
    memset(sh, 0, sizeof(*sh));
    pthread_barrierattr_t attr;
    pthread_barrierattr_init(&attr);
    pthread_barrierattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_barrier_init(&sh->bar, &attr, (unsigned)n);
    pthread_barrierattr_destroy(&attr);

    pid_t pids[MAXP];
    for (int r = 0; r < n; r++) {
        pids[r] = fork();
        if (pids[r] == 0) {
            struct ctx c;
            memset(&c, 0, sizeof(c));
            c.ops = ops;
            c.sh = sh;
            c.rank = r;
            c.n = n;
            sh->pid[r] = getpid();
            weft_log_set_rank(r);
            if (refused)
                refuse_cma(r);
            char why[REASON_MAX] = "";
            bool ok = setup(&c, job_tag, why);
            record(&c, CK_SETUP, why);
            fn(&c, ok);
            if (c.tp)
                ops->fini(c.tp);
            _exit(0);
        }
        if (pids[r] < 0) {
            report(false, label, "setup", "fork failed");
            n = r; /* the forked ones are killed below */
            break;
        }
    }
    double deadline = weft_now_s() + ROUND_TIMEOUT;
    int alive = n;
    bool killed = false;
    while (alive > 0) {
        int status;
        pid_t w = waitpid(-1, &status, WNOHANG);
        if (w > 0) {
            alive--;
            continue;
        }
        if (w < 0 && errno == ECHILD)
            break;
        if (!killed && weft_now_s() > deadline) {
            for (int r = 0; r < n; r++)
                kill(pids[r], SIGKILL);
            killed = true;
        }
        usleep(2000);
    }
    for (size_t i = 0; i < 1 + nids; i++) {
        enum check_id id = i == 0 ? CK_SETUP : ids[i - 1];
        char reason[REASON_MAX + 64] = "", skip_reason[REASON_MAX] = "";
        for (int r = 0; r < n && !reason[0]; r++) {
            const struct result *res = &sh->res[r][id];
            if (res->state == 0)
                snprintf(reason, sizeof(reason), "rank %d did not report%s", r,
                         killed ? " (killed after the round's time limit)" : " (crashed?)");
            else if (res->state == 2)
                snprintf(reason, sizeof(reason), "%s", res->reason);
            else if (res->state == 3)
                snprintf(skip_reason, sizeof(skip_reason), "%s", res->reason);
        }
        if (!reason[0] && skip_reason[0])
            printf("# skip - %s %s: %s\n", label, check_names[id], skip_reason);
        else
            report(!reason[0], label, check_names[id], reason);
    }
    int left = leftovers(job_tag);
    if (left)
        report(false, label, "no segment left in /dev/shm", "segments left behind");
    else
        report(true, label, "no segment left in /dev/shm", "");
    if (verbose && sh->bw_mbs[0] > 0)
        printf("# %s ping-pong bandwidth: 1 MiB %.0f MB/s, 64 MiB %.0f MB/s\n", label,
               sh->bw_mbs[0], sh->bw_mbs[1]);
    fflush(stdout);
    /* Not pthread_barrier_destroy: glibc's waits for every rank that entered the barrier
     * to leave it, and a rank that failed or was killed mid-round never does (the parent
     * hung there once). Every rank is gone, so unmapping the region is all that is left. */
    munmap(sh, sizeof(*sh));
}

static void run_suite(const struct weft_transport_ops *ops, int n, const char *variant,
                      bool refused)
{
    char label[96];
    snprintf(label, sizeof(label), "%s%s np=%d", ops->name, variant, n);
    static const enum check_id main_ids[] = { CK_PINGPONG, CK_FLOOD };
    static const enum check_id exit_ids[] = { CK_EXIT };
    static const enum check_id abort_ids[] = { CK_ABORT };
    run_round(ops, n, label, round_main, main_ids, 2);
    for (mismatch_now = 0; mismatch_now < NMISMATCH; mismatch_now++) {
        char sub[160];
        snprintf(sub, sizeof(sub), "%s %zu->%zu B", label, mismatch_cases[mismatch_now].len,
                 mismatch_cases[mismatch_now].rlen);
        run_round(ops, n, sub, round_mismatch, &mismatch_cases[mismatch_now].id, 1);
    }
    run_round(ops, n, label, round_exit, exit_ids, 1);
    run_round(ops, n, label, round_abort, abort_ids, 1);
    if (refused) {
        static const enum check_id refused_ids[] = { CK_REFUSED };
        run_round(ops, n, label, round_refused, refused_ids, 1);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: transport_check [-v] <transport> [nprocs]\n"
                    "  runs the transport conformance checks with 2 and 4 ranks, or nprocs\n"
                    "  -v  print ping-pong bandwidth at 1 MiB and 64 MiB\n");
}

int main(int argc, char **argv)
{
    const char *name = NULL;
    int nprocs = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0) {
            verbose = true;
        } else if (!name) {
            name = argv[i];
        } else if (!nprocs) {
            nprocs = atoi(argv[i]);
            if (nprocs < 2 || nprocs > MAXP) {
                fprintf(stderr, "transport_check: nprocs must be 2..%d\n", MAXP);
                return 2;
            }
        } else {
            usage();
            return 2;
        }
    }
    if (!name) {
        usage();
        return 2;
    }
    if (weft_config_load() != WEFT_OK) {
        fprintf(stderr, "transport_check: %s\n", weft_last_error());
        return 2;
    }
    const struct weft_transport_ops *ops = weft_transport_find(name);
    if (!ops) {
        fprintf(stderr, "transport_check: no transport named \"%s\"\n", name);
        return 2;
    }
    char why[256] = "";
    if (ops->probe && !ops->probe(why, sizeof(why))) {
        printf("not ok - %s probe: %s\n0 passed, 1 failed\n", name, why);
        return 1;
    }
    int counts[2] = { 2, 4 };
    int ncounts = nprocs ? 1 : 2;
    if (nprocs)
        counts[0] = nprocs;
    bool is_shm = strcmp(name, "shm") == 0;
    tp_name = name;
    for (int cma = 1; cma >= 0; cma--) {
        if (is_shm) {
            setenv("WEFT_SHM_CMA", cma ? "1" : "0", 1);
            if (weft_config_reload() != WEFT_OK) {
                fprintf(stderr, "transport_check: %s\n", weft_last_error());
                return 2;
            }
        }
        for (int i = 0; i < ncounts; i++)
            run_suite(ops, counts[i], is_shm ? (cma ? " cma=1" : " cma=0") : "", is_shm && cma);
        if (!is_shm)
            break;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
