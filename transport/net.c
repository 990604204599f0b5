/*
 * net.c - a communicator's connections: groups ranks by host, picks a transport per peer,
 * exchanges addresses through the bootstrap, connects every pair, and runs the waits.
 */
#include "net.h"
#include "core/clock.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/host.h"
#include "core/error.h"
#include "core/log.h"
#include "transport/net_watch.h"

#define NET_MAX_TRANSPORTS 4
/* Room for one transport's address: a fixed part plus a few bytes per rank (verbs publishes
 * a queue pair number and a starting packet number per peer). */
#define ADDR_CAPACITY(nranks) (WEFT_TRANSPORT_ADDR_MAX + WEFT_TRANSPORT_ADDR_PER_RANK * (size_t)(nranks))
#define HOST_NAME_BYTES 64

/* In preference order: shm on one host, then verbs across hosts, then tcp. UCX is
 * explicit_only: used when WEFT_TRANSPORT=ucx asks for it. */
static const struct weft_transport_ops *const builtin[] = {
    &weft_transport_shm,
#ifdef WEFT_HAVE_VERBS
    &weft_transport_verbs,
#endif
#ifdef WEFT_HAVE_UCX
    &weft_transport_ucx,
#endif
    &weft_transport_tcp,
    NULL,
};
_Static_assert(sizeof(builtin) / sizeof(builtin[0]) - 1 <= NET_MAX_TRANSPORTS,
               "raise NET_MAX_TRANSPORTS");

const struct weft_transport_ops *const *weft_transports(void)
{
    return builtin;
}

const struct weft_transport_ops *weft_transport_find(const char *name)
{
    for (size_t i = 0; builtin[i]; i++)
        if (strcmp(builtin[i]->name, name) == 0)
            return builtin[i];
    return NULL;
}

/* What each rank tells the others about itself. Two ranks share a host when both the host
 * name and the kernel boot id agree (containers on one kernel with distinct names do not). */
struct host_record {
    char hostname[HOST_NAME_BYTES];
    char boot_id[WEFT_BOOT_ID_BYTES];
};

/* What each rank tells the others about its transports: which ones probed usable here (a
 * pair uses a transport only when both ends can), and how long each address blob is. */
struct tp_record {
    uint32_t usable; /* bit t: builtin[t] probed usable */
    uint32_t len[NET_MAX_TRANSPORTS];
};

struct peer {
    int host;                                /* index into the job's hosts */
    int transport;                           /* index into builtin[], -1 for self */
    struct weft_ep *ep;
};

/* Sends and receives a rank posts to itself, matched in order. */
struct self_queue {
    struct weft_request_queue sends, recvs;
};

struct weft_net {
    int rank, nranks, nhosts;
    struct peer *peers;
    struct host_record *hosts; /* per rank */
    struct tp_record *tps;     /* per rank */
    const char **hostnames;    /* per rank, into hosts */
    uint8_t *serves;           /* scratch: which ranks the transport being started serves */
    struct weft_tp *tp[NET_MAX_TRANSPORTS];
    struct self_queue self;
    double timeout_s;
    long spin_count;
    weft_result_t status;
    struct weft_net_watch *watch; /* peers on this host, to name the one that died */
    int culprit;   /* where the failure started, once failed; what the abort notices carry */
    int abort_req; /* set by weft_net_request_abort from any thread */
};



/* Host index per rank, in order of first appearance. */
static void group_hosts(struct weft_net *net)
{
    net->nhosts = 0;
    for (int r = 0; r < net->nranks; r++) {
        int h = -1;
        for (int q = 0; q < r && h < 0; q++)
            if (memcmp(&net->hosts[q], &net->hosts[r], sizeof(net->hosts[r])) == 0)
                h = net->peers[q].host;
        net->peers[r].host = h >= 0 ? h : net->nhosts++;
    }
}

static int transport_index(const char *name)
{
    for (int i = 0; builtin[i]; i++)
        if (strcmp(builtin[i]->name, name) == 0)
            return i;
    return -1;
}

static const char *transport_names(void)
{
    static char names[96];
    if (!names[0]) {
        size_t o = snprintf(names, sizeof(names), "auto");
        for (int t = 0; builtin[t] && o < sizeof(names); t++)
            o += snprintf(names + o, sizeof(names) - o, ", %s", builtin[t]->name);
    }
    return names;
}

/* Probes every transport here; bit t of the result says builtin[t] can run. */
static uint32_t probe_transports(int forced)
{
    uint32_t usable = 0;
    for (int t = 0; builtin[t]; t++) {
        char why[200] = "";
        if (builtin[t]->explicit_only && t != forced)
            continue; /* not probed: auto never picks it */
        if (builtin[t]->probe(why, sizeof(why)))
            usable |= 1u << t;
        else if (t == forced)
            WEFT_WARN(NET, "WEFT_TRANSPORT=%s, but %s is unusable here: %s", builtin[t]->name,
                      builtin[t]->name, why);
        else
            WEFT_INFO(NET, "%s transport unusable here: %s", builtin[t]->name, why);
    }
    return usable;
}

/* Per peer: shm on this host, verbs across hosts, tcp otherwise, each only when both ends
 * probed it usable; UCX only when forced. WEFT_TRANSPORT forces one for every peer. */
static weft_result_t choose_transports(struct weft_net *net, int force)
{
    const int shm = transport_index("shm"), verbs = transport_index("verbs"),
              tcp = transport_index("tcp");
    const int me = net->peers[net->rank].host;
    const uint32_t mine = net->tps[net->rank].usable;
    for (int p = 0; p < net->nranks; p++) {
        struct peer *peer = &net->peers[p];
        const uint32_t both = mine & net->tps[p].usable;
        if (p == net->rank) {
            peer->transport = -1;
        } else if (force >= 0) {
            if (force == shm && peer->host != me)
                return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                                  "WEFT_TRANSPORT=shm, but rank %d is on host %s, not this "
                                  "host %s",
                                  p, net->hosts[p].hostname, net->hosts[net->rank].hostname);
            if (!(both & (1u << force)))
                return WEFT_ERROR(WEFT_ERR_UNSUPPORTED,
                                  "WEFT_TRANSPORT=%s, but %s is unusable on %s (rank %d); "
                                  "weft-info --transports says why",
                                  builtin[force]->name, builtin[force]->name,
                                  (mine & (1u << force)) ? net->hosts[p].hostname
                                                         : net->hosts[net->rank].hostname,
                                  (mine & (1u << force)) ? p : net->rank);
            peer->transport = force;
        } else if (peer->host == me && (both & (1u << shm))) {
            peer->transport = shm;
        } else if (peer->host != me && verbs >= 0 && (both & (1u << verbs))) {
            peer->transport = verbs;
        } else {
            peer->transport = tcp;
        }
    }
    return WEFT_OK;
}

/* Spinning ranks that outnumber the CPUs starve the rank they wait for (272 us instead of
 * 7 us for a 4-rank allreduce on 2 CPUs), so oversubscribed waits yield at once. */
static void choose_spin(struct weft_net *net, int local_nranks)
{
    cpu_set_t cpus;
    int ncpus = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? CPU_COUNT(&cpus) : 0;
    if (weft_config_is_set(WEFT_CFG_SPIN_COUNT) || ncpus <= 0 || local_nranks <= ncpus)
        return;
    net->spin_count = 0;
    WEFT_INFO(NET, "%d ranks on this host share %d CPUs: waits yield instead of spinning "
                   "(set WEFT_SPIN_COUNT to override)",
              local_nranks, ncpus);
}

static int uses_transport(const struct weft_net *net, int t)
{
    for (int p = 0; p < net->nranks; p++)
        if (net->peers[p].transport == t)
            return 1;
    return 0;
}

/* Starts every transport some peer uses and writes its address into blobs[t] (capacity
 * ADDR_CAPACITY bytes each), its length into lens[t]. */
static weft_result_t init_transports(struct weft_net *net, const struct weft_net_params *params,
                                     uint8_t *blobs, uint32_t *lens)
{
    const int me = net->peers[net->rank].host;
    struct weft_transport_params tp = {
        .rank = params->rank,
        .nranks = params->nranks,
        .job_tag = params->job_tag,
        .timeout_s = params->timeout_s,
    };
    memcpy(tp.key, params->key, sizeof(tp.key));
    for (int r = 0; r < net->nranks; r++) {
        if (net->peers[r].host != me)
            continue;
        if (r == net->rank)
            tp.local_rank = tp.local_nranks;
        tp.local_nranks++;
    }
    choose_spin(net, tp.local_nranks);
    tp.hostnames = net->hostnames;
    tp.serves = net->serves;
    for (int t = 0; builtin[t]; t++) {
        if (!uses_transport(net, t))
            continue;
        for (int r = 0; r < net->nranks; r++)
            net->serves[r] = net->peers[r].transport == t;
        WEFT_CHECK(builtin[t]->init(&tp, &net->tp[t]));
        size_t len = ADDR_CAPACITY(net->nranks);
        WEFT_CHECK(builtin[t]->address(net->tp[t], blobs + (size_t)t * ADDR_CAPACITY(net->nranks),
                                       &len));
        lens[t] = (uint32_t)len;
    }
    return WEFT_OK;
}

/* Every rank's address blobs, through two allgathers: the lengths, then the blobs packed
 * at a stride of the longest blob of each transport. */
static weft_result_t exchange_addresses(struct weft_net *net, const struct weft_oob *oob,
                                        const uint8_t *mine, const uint32_t *lens,
                                        uint8_t **all, size_t *offset, size_t *stride)
{
    struct tp_record rec = net->tps[net->rank];
    memcpy(rec.len, lens, sizeof(rec.len));
    WEFT_CHECK(oob->allgather(oob->ctx, &rec, net->tps, sizeof(rec)));
    *stride = 0;
    for (int t = 0; t < NET_MAX_TRANSPORTS; t++) {
        uint32_t longest = 0;
        for (int r = 0; r < net->nranks; r++)
            longest = net->tps[r].len[t] > longest ? net->tps[r].len[t] : longest;
        offset[t] = *stride;
        *stride += longest;
    }
    uint8_t *packed = calloc(1, *stride ? *stride : 1);
    *all = calloc((size_t)net->nranks, *stride ? *stride : 1);
    if (!packed || !*all) {
        free(packed);
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "cannot allocate %d addresses of %zu bytes",
                          net->nranks, *stride);
    }
    for (int t = 0; t < NET_MAX_TRANSPORTS; t++)
        memcpy(packed + offset[t], mine + (size_t)t * ADDR_CAPACITY(net->nranks), lens[t]);
    weft_result_t r = oob->allgather(oob->ctx, packed, *all, *stride);
    free(packed);
    return r;
}

static weft_result_t connect_all(struct weft_net *net, const uint8_t *addrs,
                                 const size_t *offset, size_t stride)
{
    const double deadline = weft_now_s() + net->timeout_s;
    int pending = 1;
    while (pending) {
        pending = 0;
        for (int p = 0; p < net->nranks; p++) {
            struct peer *peer = &net->peers[p];
            if (peer->transport < 0 || peer->ep)
                continue;
            const int t = peer->transport;
            const uint32_t len = net->tps[p].len[t];
            if (len == 0)
                return WEFT_ERROR(WEFT_ERR_INTERNAL, "rank %d on %s published no %s address",
                                  p, net->hosts[p].hostname, builtin[t]->name);
            weft_result_t r = builtin[t]->connect(net->tp[t], p,
                                                  addrs + (size_t)p * stride + offset[t], len,
                                                  &peer->ep);
            if (r == WEFT_ERR_IN_PROGRESS) {
                pending = 1;
                continue;
            }
            WEFT_CHECK(r);
        }
        if (!pending)
            break;
        WEFT_CHECK(weft_net_progress(net));
        if (weft_now_s() > deadline) {
            for (int p = 0; p < net->nranks; p++)
                if (net->peers[p].transport >= 0 && !net->peers[p].ep)
                    return WEFT_ERROR(WEFT_ERR_TIMEOUT,
                                      "could not connect to rank %d on %s over %s within "
                                      "WEFT_TIMEOUT=%.0f s",
                                      p, net->hosts[p].hostname,
                                      builtin[net->peers[p].transport]->name, net->timeout_s);
        }
        sched_yield();
    }
    return WEFT_OK;
}

static void log_map(const struct weft_net *net)
{
    if (!weft_log_enabled(WEFT_LOG_INFO, WEFT_SUBSYS_NET))
        return;
    char line[1024];
    size_t o = 0;
    for (int p = 0; p < net->nranks && o < sizeof(line) - 32; p++) {
        int n = snprintf(line + o, sizeof(line) - o, "%s%d:%s", p ? " " : "", p,
                         weft_net_peer_transport(net, p));
        if (n > 0)
            o += (size_t)n;
    }
    WEFT_INFO(NET, "rank %d of %d on %s (host %d of %d): peers %s", net->rank, net->nranks,
              net->hosts[net->rank].hostname, net->peers[net->rank].host, net->nhosts, line);
}

/* What every rank publishes first: its host, and which transports it can run. */
struct rank_record {
    struct host_record host;
    uint32_t usable;
    int32_t pid;
};

/* The transport WEFT_TRANSPORT forces (-1 for auto); fails on a name this build lacks. */
static weft_result_t forced_transport(int *force)
{
    const char *forced = weft_config_str(WEFT_CFG_TRANSPORT);
    *force = -1;
    if (strcmp(forced, "auto") == 0 || !forced[0])
        return WEFT_OK;
    *force = transport_index(forced);
    if (*force < 0)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "WEFT_TRANSPORT=%s is not a transport of this build (%s)", forced,
                          transport_names());
    return WEFT_OK;
}

static void watch_local_peers(struct weft_net *net, const struct rank_record *ranks)
{
    const size_t n = (unsigned)net->nranks; /* positive; the cast keeps gcc's range in bounds */
    int *pids = calloc(n, sizeof(*pids));
    bool *local = calloc(n, sizeof(*local));
    if (pids && local) {
        for (int p = 0; p < net->nranks; p++) {
            pids[p] = ranks[p].pid;
            local[p] = net->peers[p].host == net->peers[net->rank].host;
        }
        net->watch = weft_net_watch_open(net->nranks, net->rank, pids, local);
    }
    free(pids);
    free(local);
}

weft_result_t weft_net_create(const struct weft_net_params *params, const struct weft_oob *oob,
                              struct weft_net **out)
{
    weft_result_t r;
    struct rank_record *ranks = NULL;
    uint8_t *blobs = NULL, *addrs = NULL;
    struct weft_net *net = calloc(1, sizeof(*net));
    if (!net)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "cannot allocate the net");
    net->rank = params->rank;
    net->culprit = WEFT_CULPRIT_NONE;
    net->nranks = params->nranks;
    net->timeout_s = params->timeout_s;
    net->spin_count = (long)weft_config_int(WEFT_CFG_SPIN_COUNT);
    net->peers = calloc((size_t)params->nranks, sizeof(*net->peers));
    net->hosts = calloc((size_t)params->nranks, sizeof(*net->hosts));
    net->tps = calloc((size_t)params->nranks, sizeof(*net->tps));
    net->hostnames = calloc((size_t)params->nranks, sizeof(*net->hostnames));
    net->serves = calloc((size_t)params->nranks, 1);
    ranks = calloc((size_t)params->nranks, sizeof(*ranks));
    blobs = calloc(NET_MAX_TRANSPORTS, ADDR_CAPACITY(params->nranks));
    if (!net->peers || !net->hosts || !net->tps || !net->hostnames || !net->serves || !ranks ||
        !blobs) {
        r = WEFT_ERROR(WEFT_ERR_NO_MEMORY, "cannot allocate the net for %d ranks",
                       params->nranks);
        goto fail;
    }

    int force;
    WEFT_CHECK_GOTO(forced_transport(&force), r, fail);
    struct rank_record me = {.usable = probe_transports(force), .pid = (int32_t)getpid()};
    snprintf(me.host.hostname, sizeof(me.host.hostname), "%s", params->hostname);
    weft_host_boot_id(me.host.boot_id, sizeof(me.host.boot_id));
    WEFT_CHECK_GOTO(oob->allgather(oob->ctx, &me, ranks, sizeof(me)), r, fail);
    for (int p = 0; p < net->nranks; p++) {
        net->hosts[p] = ranks[p].host;
        net->tps[p].usable = ranks[p].usable;
        net->hostnames[p] = net->hosts[p].hostname;
    }
    group_hosts(net);
    watch_local_peers(net, ranks);
    WEFT_CHECK_GOTO(choose_transports(net, force), r, fail);

    uint32_t lens[NET_MAX_TRANSPORTS] = {0};
    size_t offset[NET_MAX_TRANSPORTS], stride;
    WEFT_CHECK_GOTO(init_transports(net, params, blobs, lens), r, fail);
    WEFT_CHECK_GOTO(exchange_addresses(net, oob, blobs, lens, &addrs, offset, &stride), r, fail);
    WEFT_CHECK_GOTO(connect_all(net, addrs, offset, stride), r, fail);
    WEFT_CHECK_GOTO(oob->barrier(oob->ctx), r, fail);
    for (int t = 0; builtin[t]; t++)
        if (net->tp[t] && builtin[t]->connected)
            WEFT_CHECK_GOTO(builtin[t]->connected(net->tp[t]), r, fail);
    log_map(net);
    free(ranks);
    free(blobs);
    free(addrs);
    *out = net;
    return WEFT_OK;

fail:
    free(ranks);
    free(blobs);
    free(addrs);
    weft_net_destroy(net);
    return r;
}

void weft_net_destroy(struct weft_net *net)
{
    if (!net)
        return;
    for (int t = 0; builtin[t]; t++)
        if (net->tp[t])
            builtin[t]->fini(net->tp[t]);
    free(net->peers);
    free(net->hosts);
    free(net->tps);
    free(net->hostnames);
    free(net->serves);
    weft_net_watch_close(net->watch);
    free(net);
}

/* ---- self messages -------------------------------------------------------------------- */

static void self_match(struct weft_net *net)
{
    struct self_queue *q = &net->self;
    while (!weft_request_queue_empty(&q->sends) && !weft_request_queue_empty(&q->recvs)) {
        struct weft_request *s = weft_request_queue_pop(&q->sends);
        struct weft_request *r = weft_request_queue_pop(&q->recvs);
        weft_result_t st = WEFT_OK;
        if (s->tag != r->tag)
            st = WEFT_ERROR(WEFT_ERR_INTERNAL,
                            "rank %d sent itself tag %#llx but expected %#llx", net->rank,
                            (unsigned long long)s->tag, (unsigned long long)r->tag);
        else if (s->len != r->len)
            st = WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                            "rank %d sent itself %zu bytes but receives %zu", net->rank,
                            s->len, r->len);
        else if (s->len && s->buf != r->buf)
            memmove(r->buf, s->buf, s->len);
        weft_request_complete(s, st);
        weft_request_complete(r, st);
    }
}

/* ---- data path ------------------------------------------------------------------------ */

static weft_result_t fail(struct weft_net *net, weft_result_t r, int peer);

static weft_result_t post(struct weft_net *net, int peer, void *buf, size_t len, uint64_t tag,
                          struct weft_request *req, int is_send)
{
    if (net->status != WEFT_OK)
        return WEFT_ERROR(net->status, "rank %d: communicator already failed (%s)", net->rank,
                          weft_strerror(net->status));
    if (peer < 0 || peer >= net->nranks)
        return WEFT_ERROR(WEFT_ERR_INTERNAL, "rank %d: peer %d out of range", net->rank, peer);
    weft_request_init(req, buf, len, tag, peer, is_send);
    struct peer *p = &net->peers[peer];
    if (p->transport < 0) {
        weft_request_queue_push(is_send ? &net->self.sends : &net->self.recvs, req);
        self_match(net);
        return WEFT_OK;
    }
    const struct weft_transport_ops *ops = builtin[p->transport];
    weft_result_t r = is_send ? ops->isend(p->ep, buf, len, tag, req)
                              : ops->irecv(p->ep, buf, len, tag, req);
    /* A peer failure seen while posting fails the net as one seen while waiting does (and
     * names a dead process on this host rather than the survivor that passed it on). */
    return r == WEFT_ERR_REMOTE ? fail(net, r, peer) : r;
}

weft_result_t weft_net_isend(struct weft_net *net, int peer, const void *buf, size_t len,
                             uint64_t tag, struct weft_request *req)
{
    return post(net, peer, (void *)buf, len, tag, req, 1);
}

weft_result_t weft_net_irecv(struct weft_net *net, int peer, void *buf, size_t len, uint64_t tag,
                             struct weft_request *req)
{
    return post(net, peer, buf, len, tag, req, 0);
}

static weft_result_t progress(struct weft_net *net, bool *progressed)
{
    for (int t = 0; builtin[t]; t++) {
        if (!net->tp[t])
            continue;
        bool any = false;
        WEFT_CHECK(builtin[t]->progress(net->tp[t], &any));
        *progressed |= any;
    }
    return WEFT_OK;
}

weft_result_t weft_net_progress(struct weft_net *net)
{
    bool progressed = false;
    return progress(net, &progressed);
}

/* Whether `msg` names "<what> <n>" (not followed by another digit). */
static bool names(const char *msg, const char *what, int n)
{
    char needle[32];
    snprintf(needle, sizeof(needle), "%s %d", what, n);
    for (const char *at = strstr(msg, needle); at; at = strstr(at + 1, needle)) {
        const char next = at[strlen(needle)];
        if (next < '0' || next > '9')
            return true;
    }
    return false;
}

static bool names_pid(const char *msg, int pid)
{
    return names(msg, "pid", pid);
}

static bool names_rank(const char *msg, int rank)
{
    return names(msg, "rank", rank);
}

/* The culprit of the first abort notice any transport received, or WEFT_CULPRIT_NONE. */
static int notice_culprit(const struct weft_net *net)
{
    for (int t = 0; builtin[t]; t++) {
        const int c = net->tp[t] && builtin[t]->culprit ? builtin[t]->culprit(net->tp[t])
                                                        : WEFT_CULPRIT_NONE;
        if (c >= 0 && c < net->nranks)
            return c;
    }
    return WEFT_CULPRIT_NONE;
}

/* A peer failure seen through another rank (it aborted, or closed its connections after it
 * saw the failure) names the rank where the failure started: a process on this host that
 * died (its pidfd), else the rank the other ranks' abort notices carry, else `peer` itself.
 * The dying process closes its sockets a moment before its pidfd reports the exit, and a
 * notice may trail the close that reported the failure here: wait that long for either. A
 * rank the message names already (a survivor that aborted, then exited) adds nothing. */
#define BLAME_WAIT_MS 250
static weft_result_t blame(struct weft_net *net, weft_result_t r, int peer)
{
    char seen[1024], dead[512];
    snprintf(seen, sizeof(seen), "%s", weft_error_message());
    int ranks[8], pids[8], n, culprit;
    const double until = weft_now_s() + BLAME_WAIT_MS / 1e3;
    for (;;) {
        n = weft_net_watch_dead(net->watch, 0, ranks, pids, 8);
        culprit = notice_culprit(net);
        if (n > 0 || culprit != WEFT_CULPRIT_NONE || weft_now_s() >= until)
            break;
        bool any = false;
        (void)progress(net, &any); /* failures it finds are this one's echoes */
        const struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    int named = 0;
    size_t off = 0;
    for (int i = 0; i < n && off < sizeof(dead); i++) {
        if (names_pid(seen, pids[i]))
            continue;
        off += (size_t)snprintf(dead + off, sizeof(dead) - off, "%srank %d (pid %d)",
                                named ? ", " : "", ranks[i], pids[i]);
        ranks[named++] = ranks[i];
    }
    if (named > 0) {
        net->culprit = ranks[0];
        return WEFT_ERROR(r, "%s on host %s exited; rank %d then saw: %s", dead,
                          net->hostnames[ranks[0]], net->rank, seen);
    }
    net->culprit = n > 0 ? ranks[0] : culprit != WEFT_CULPRIT_NONE ? culprit : peer;
    if (culprit == WEFT_CULPRIT_NONE || culprit == peer || culprit == net->rank ||
        names_rank(seen, culprit)) {
        weft_error_restore(seen);
        return r;
    }
    return WEFT_ERROR(r, "rank %d on host %s failed first (the abort notices of the other "
                      "ranks carry it); rank %d then saw: %s", culprit,
                      net->hostnames[culprit], net->rank, seen);
}

/* Fails the net with `r`; `peer` is the rank whose request failed, or -1. */
static weft_result_t fail(struct weft_net *net, weft_result_t r, int peer)
{
    if (net->status == WEFT_OK) {
        if (r == WEFT_ERR_REMOTE)
            r = blame(net, r, peer);
        else
            net->culprit = net->rank; /* a timeout or an abort here starts the failure */
        net->status = r;
    }
    weft_net_abort(net);
    return r;
}

/* The last part of WEFT_TIMEOUT, during which a rank about to time out keeps quiet before it
 * tells its peers (the abort). Ranks stuck on calls that can never match time out within
 * moments of each other; told at once, all but the first would report that rank's abort
 * instead of what they waited for. On a loaded host their waits start up to most of a second
 * apart (0.7 s measured in the VM). */
#define TIMEOUT_GRACE_S 1.0
static double timeout_grace_s(const struct weft_net *net)
{
    return net->timeout_s / 4 < TIMEOUT_GRACE_S ? net->timeout_s / 4 : TIMEOUT_GRACE_S;
}

static size_t count_done(struct weft_request *const *reqs, size_t n)
{
    size_t done = 0;
    for (size_t i = 0; i < n; i++)
        done += !reqs[i] || __atomic_load_n(&reqs[i]->done, __ATOMIC_ACQUIRE);
    return done;
}

/* The grace is the last part of WEFT_TIMEOUT, not added to it: the wait keeps progressing the
 * transports without telling anyone, and goes on (true) if a request moves meanwhile. A peer's
 * abort notice arriving now does not end the grace early into reporting that abort: this rank
 * still reports its own timeout. */
static bool moved_within_grace(struct weft_net *net, struct weft_request *const *reqs, size_t n,
                               size_t done)
{
    const double until = weft_now_s() + timeout_grace_s(net);
    while (weft_now_s() < until) {
        bool any = false;
        if (progress(net, &any) != WEFT_OK || net->status != WEFT_OK)
            return false;
        for (size_t i = 0; i < n; i++) /* failed by a peer's abort: not a move */
            if (reqs[i] && __atomic_load_n(&reqs[i]->done, __ATOMIC_ACQUIRE) &&
                reqs[i]->status != WEFT_OK)
                return false;
        if (any || count_done(reqs, n) != done)
            return true;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    return false;
}

static weft_result_t timed_out(struct weft_net *net, const struct weft_request *req,
                               size_t pending)
{
    const struct peer *p = &net->peers[req->peer];
    return WEFT_ERROR(WEFT_ERR_TIMEOUT,
                      "no progress for WEFT_TIMEOUT=%.0f s: %s of %zu bytes (tag %#llx) %s rank "
                      "%d on %s (via %s) still pending, %zu request%s of this wait unfinished",
                      net->timeout_s, req->is_send ? "send" : "receive", req->len,
                      (unsigned long long)req->tag, req->is_send ? "to" : "from", req->peer,
                      net->hosts[req->peer].hostname,
                      p->transport >= 0 ? builtin[p->transport]->name : "self", pending,
                      pending == 1 ? "" : "s");
}

/* Progress, for the WEFT_TIMEOUT deadline, is a change in the state of a user request: one of
 * those awaited completing, or a transport reporting bytes of user messages moving. Traffic
 * a transport makes on its own (liveness probes, credit notes, keepalives, handshakes of idle
 * connections) is not: two live ranks waiting on each other must still time out. */
weft_result_t weft_net_wait(struct weft_net *net, struct weft_request *const *reqs, size_t n)
{
    /* From the start of the wait (once the first look finds it unfinished, so that a wait
     * for requests already done reads no clock), not from the first idle clock read: on a
     * loaded host the polls before that read can take long, and ranks that wait alike must
     * time out alike. */
    double deadline = -1;
    long idle = 0, polls = 0;
    size_t first = 0;    /* requests before this one are done */
    size_t finished = 0; /* awaited requests seen done when the deadline last restarted */
    for (;;) {
        /* Before the requests: a rank whose reductions are slower than its network finds
         * every request done when it waits, and would otherwise see the abort only once the
         * whole collective is over. */
        if (__atomic_load_n(&net->abort_req, __ATOMIC_ACQUIRE))
            return fail(net, WEFT_ERROR(WEFT_ERR_ABORTED, "weft_comm_abort was called during "
                                        "this call on rank %d", net->rank), -1);
        while (first < n && (!reqs[first] || __atomic_load_n(&reqs[first]->done,
                                                            __ATOMIC_ACQUIRE)))
            first++;
        for (size_t i = first; i < n; i++)
            if (reqs[i] && __atomic_load_n(&reqs[i]->done, __ATOMIC_ACQUIRE) &&
                reqs[i]->status != WEFT_OK)
                return fail(net, reqs[i]->status, reqs[i]->peer);
        for (size_t i = 0; i < first; i++)
            if (reqs[i] && reqs[i]->status != WEFT_OK)
                return fail(net, reqs[i]->status, reqs[i]->peer);
        const size_t done = first + count_done(reqs + first, n - first);
        if (done == n)
            return WEFT_OK;
        if (deadline < 0)
            deadline = weft_coarse_now_s() + net->timeout_s;
        if (net->status != WEFT_OK)
            return fail(net, WEFT_ERROR(WEFT_ERR_ABORTED, "rank %d: communicator aborted",
                                        net->rank), -1);
        bool progressed = false;
        weft_result_t r = progress(net, &progressed);
        if (r != WEFT_OK)
            return fail(net, r, -1);
        if (done != finished) {
            finished = done;
            deadline = 0;
        }
        if (progressed) {
            idle = 0;
            deadline = 0;
            continue;
        }
        if (++idle > net->spin_count)
            sched_yield();
        /* The clock is read only while idle: every 64 polls while spinning, at every poll once
         * yielding (a system call costs more than the read); a deadline of 0 restarts here. */
        if (idle > net->spin_count || (++polls & 63) == 0) {
            double t = weft_coarse_now_s();
            if (deadline == 0) {
                deadline = t + net->timeout_s;
            } else if (t > deadline - timeout_grace_s(net)) {
                if (!moved_within_grace(net, reqs, n, done))
                    return fail(net, timed_out(net, reqs[first], n - done), -1);
                deadline = 0;
                idle = 0;
            }
        }
    }
}

weft_result_t weft_net_wait_one(struct weft_net *net, struct weft_request *req)
{
    return weft_net_wait(net, &req, 1);
}

void weft_net_request_abort(struct weft_net *net)
{
    __atomic_store_n(&net->abort_req, 1, __ATOMIC_RELEASE);
}

void weft_net_abort(struct weft_net *net)
{
    if (net->status == WEFT_OK) {
        net->status = WEFT_ERR_ABORTED;
        net->culprit = net->rank;
    }
    for (int t = 0; builtin[t]; t++)
        if (net->tp[t])
            builtin[t]->abort(net->tp[t], net->culprit);
    weft_request_queue_fail(&net->self.sends, WEFT_ERR_ABORTED);
    weft_request_queue_fail(&net->self.recvs, WEFT_ERR_ABORTED);
}

/* A registration with every transport of the net that registers memory. */
struct net_reg {
    void *handle[NET_MAX_TRANSPORTS];
};

weft_result_t weft_net_reg(struct weft_net *net, void *buf, size_t len, void **handle)
{
    struct net_reg *reg = calloc(1, sizeof(*reg));
    if (!reg)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: registration record", net->rank);
    for (int t = 0; builtin[t]; t++) {
        if (!net->tp[t] || !builtin[t]->reg)
            continue;
        weft_result_t r = builtin[t]->reg(net->tp[t], buf, len, &reg->handle[t]);
        if (r != WEFT_OK) {
            weft_net_dereg(net, reg);
            return r;
        }
    }
    *handle = reg;
    return WEFT_OK;
}

void weft_net_dereg(struct weft_net *net, void *handle)
{
    struct net_reg *reg = handle;
    for (int t = 0; builtin[t]; t++)
        if (reg->handle[t])
            builtin[t]->dereg(net->tp[t], reg->handle[t]);
    free(reg);
}

weft_result_t weft_net_status(const struct weft_net *net)
{
    if (net->status == WEFT_OK && __atomic_load_n(&net->abort_req, __ATOMIC_ACQUIRE))
        return WEFT_ERR_ABORTED;
    return net->status;
}

int weft_net_rank(const struct weft_net *net)
{
    return net->rank;
}

int weft_net_nranks(const struct weft_net *net)
{
    return net->nranks;
}

const char *weft_net_peer_transport(const struct weft_net *net, int peer)
{
    int t = net->peers[peer].transport;
    return t >= 0 ? builtin[t]->name : "self";
}

int weft_net_peer_host(const struct weft_net *net, int peer)
{
    return net->peers[peer].host;
}

int weft_net_nhosts(const struct weft_net *net)
{
    return net->nhosts;
}
