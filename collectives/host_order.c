/*
 * host_order.c - ranks grouped by host from the net's host map: the host-ordered ring, this
 * host's ranks, and the per-local-index groups across hosts.
 */
#include "collectives/host_order.h"

#include <stdio.h>
#include <stdlib.h>

#include "collectives/hier.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"

int weft_host_order(const int *host_of, int n, int *order)
{
    /* Counting sort by host index: stable, so ranks keep their order within a host. */
    int nhosts = 0;
    for (int r = 0; r < n; r++)
        if (host_of[r] + 1 > nhosts)
            nhosts = host_of[r] + 1;
    int k = 0;
    for (int h = 0; h < nhosts; h++)
        for (int r = 0; r < n; r++)
            if (host_of[r] == h)
                order[k++] = r;
    int crossings = 0;
    for (int i = 0; i < n; i++)
        crossings += host_of[order[i]] != host_of[order[(i + 1) % n]];
    return crossings;
}

void weft_coll_groups_free(struct weft_coll_groups *g)
{
    if (!g)
        return;
    free(g->ring);
    free(g->ring_rev);
    free(g->pos_of);
    free(g->local);
    free(g->cross);
    free(g);
}

/* "0 2 | 1 3": the ring with a bar where it crosses hosts. */
static void format_ring(const struct weft_coll_groups *g, const int *host_of, int n, char *buf,
                        size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && at + 24 < len; i++) {
        const bool cross = i > 0 && host_of[g->ring[i]] != host_of[g->ring[i - 1]];
        at += (size_t)snprintf(buf + at, len - at, "%s%s%d", i ? " " : "", cross ? "| " : "",
                               g->ring[i]);
    }
    if (at + 24 >= len)
        snprintf(buf + at, len - at, " ...");
}

weft_result_t weft_coll_groups_init(struct weft_net *net, struct weft_coll_groups **out)
{
    const int n = weft_net_nranks(net), me = weft_net_rank(net);
    const int64_t nch = weft_config_int(WEFT_CFG_NCHANNELS);
    if (nch < 1)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "WEFT_NCHANNELS=%lld: must be at least 1",
                          (long long)nch);
    struct weft_coll_groups *g = calloc(1, sizeof(*g));
    int *host_of = calloc((size_t)n, sizeof(int));
    int *count = NULL;
    if (!g || !host_of)
        goto nomem;
    g->nchannels = nch > WEFT_COLL_MAX_CHANNELS ? WEFT_COLL_MAX_CHANNELS : (int)nch;
    if (nch > WEFT_COLL_MAX_CHANNELS)
        WEFT_INFO(COLL, "WEFT_NCHANNELS=%lld: using %d (one ring each way round; see "
                        "docs/topology.md)", (long long)nch, WEFT_COLL_MAX_CHANNELS);
    g->ring = calloc((size_t)n, sizeof(int));
    g->ring_rev = calloc((size_t)n, sizeof(int));
    g->pos_of = calloc((size_t)n, sizeof(int));
    g->local = calloc((size_t)n, sizeof(int));
    g->nhosts = weft_net_nhosts(net);
    g->cross = calloc((size_t)g->nhosts, sizeof(int));
    count = calloc((size_t)g->nhosts, sizeof(int));
    if (!g->ring || !g->ring_rev || !g->pos_of || !g->local || !g->cross || !count)
        goto nomem;
    for (int r = 0; r < n; r++)
        host_of[r] = weft_net_peer_host(net, r);
    for (int r = 0; r < n; r++) {
        count[host_of[r]]++;
        if (host_of[r] == host_of[me]) {
            if (r == me)
                g->local_idx = g->nlocal_me;
            g->local[g->nlocal_me++] = r;
        }
    }
    const int crossings = weft_host_order(host_of, n, g->ring);
    g->identity = true;
    for (int i = 0; i < n; i++)
        g->ring_rev[i] = g->ring[n - 1 - i];
    for (int i = 0; i < n; i++) {
        g->pos_of[g->ring[i]] = i;
        g->identity &= g->ring[i] == i;
        if (g->ring[i] == me)
            g->ring_pos = i;
    }
    g->nlocal = count[0];
    for (int h = 1; h < g->nhosts; h++)
        if (count[h] != g->nlocal)
            g->nlocal = -1;
    if (g->nlocal > 0) {
        /* local index i of host h: the i-th rank of h by rank */
        int *seen = count; /* reused as a per-host counter */
        for (int h = 0; h < g->nhosts; h++)
            seen[h] = 0;
        for (int r = 0; r < n; r++)
            if (seen[host_of[r]]++ == g->local_idx)
                g->cross[host_of[r]] = r;
        g->ncross = g->nhosts;
    }
    char line[512];
    format_ring(g, host_of, n, line, sizeof(line));
    WEFT_INFO(COLL, "ring order by host: %s (%d of %d hops cross hosts; %d host(s), %s)", line,
              crossings, n, g->nhosts,
              g->nlocal > 0 ? "the same number of ranks on each" : "uneven ranks per host");
    free(host_of);
    free(count);
    *out = g;
    return WEFT_OK;
nomem:
    free(host_of);
    free(count);
    weft_coll_groups_free(g);
    return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: cannot allocate the host groups of %d ranks",
                      me, n);
}
