/*
 * net_watch.h - pidfds on the peers that share this host, so that a failure that another
 * rank merely reported (it aborted, or closed its connection, after seeing a death) can name
 * the process that actually died.
 */
#ifndef WEFT_TRANSPORT_NET_WATCH_H
#define WEFT_TRANSPORT_NET_WATCH_H

#include <stdbool.h>

struct weft_net_watch;

/* Watches pids[p] for every p with local[p] (not `self`); NULL when nothing can be watched
 * (no local peer, or no pidfd_open): a missing watch only makes messages less precise. */
struct weft_net_watch *weft_net_watch_open(int nranks, int self, const int *pids,
                                           const bool *local);
/* The ranks (and pids) whose processes have exited, at most `max`, in rank order, after
 * waiting up to `wait_ms` for the first; returns how many. */
int weft_net_watch_dead(const struct weft_net_watch *w, int wait_ms, int *ranks, int *pids,
                        int max);
void weft_net_watch_close(struct weft_net_watch *w);

#endif /* WEFT_TRANSPORT_NET_WATCH_H */
