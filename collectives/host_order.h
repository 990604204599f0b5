/*
 * host_order.h - which ranks share a host, as the algorithms use it: the ring order (ranks
 * ordered by host, so a ring crosses the network once per host whatever the placement), the
 * ranks of this host, and the ranks of the same local index on the other hosts (the groups
 * of the two-level allreduce, collectives/hier.c). Trees and chains number their members in
 * ring order too (coll_internal.h: weft_coll_vrank, weft_coll_vpeer).
 */
#ifndef WEFT_COLL_HOST_ORDER_H
#define WEFT_COLL_HOST_ORDER_H

#include <stdbool.h>

#include "transport/net.h"
#include "weft.h"

/* Ranks 0..n-1 ordered by host, then by rank: host_of[r] is r's host index. Writes
 * order[0..n); returns how many ring hops cross hosts (0 on one host, else the number of
 * hosts). */
int weft_host_order(const int *host_of, int n, int *order);

struct weft_coll_groups {
    int nhosts;
    int *ring;      /* every rank, in host order (weft_host_order) */
    int *ring_rev;  /* the same, reversed (the second channel's ring) */
    int nchannels;  /* WEFT_NCHANNELS, clamped to what the rings support */
    unsigned said_channels; /* a bit per collective kind: its two-channel INFO line is out */
    int ring_pos;   /* this rank's index in ring */
    int *pos_of;    /* by rank: its index in ring */
    int nlocal;     /* ranks on each host when every host has as many, else -1 */
    int *local;     /* the ranks on this host, by rank */
    int nlocal_me;  /* how many */
    int local_idx;  /* this rank's index in local */
    int *cross;     /* by host: the rank of local index local_idx there (nlocal > 0 only) */
    int ncross;
    bool identity;  /* ring is 0..n-1 */
};

/* Computes the groups of `net`'s ranks and logs the ring order at INFO once; reads
 * WEFT_NCHANNELS (an error when below 1). */
weft_result_t weft_coll_groups_init(struct weft_net *net, struct weft_coll_groups **out);
void weft_coll_groups_free(struct weft_coll_groups *g);

#endif /* WEFT_COLL_HOST_ORDER_H */
