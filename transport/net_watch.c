/*
 * net_watch.c - pidfds on the peers on this host: which of them has died, asked only when a
 * wait fails, so that the message names the dead rank rather than a survivor that passed it on.
 */
#include "transport/net_watch.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

struct weft_net_watch {
    int n;
    int *rank;
    int *pid;
    struct pollfd *fds;
};

struct weft_net_watch *weft_net_watch_open(int nranks, int self, const int *pids,
                                           const bool *local)
{
#ifdef SYS_pidfd_open
    struct weft_net_watch *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->rank = calloc((size_t)nranks, sizeof(*w->rank));
    w->pid = calloc((size_t)nranks, sizeof(*w->pid));
    w->fds = calloc((size_t)nranks, sizeof(*w->fds));
    if (!w->rank || !w->pid || !w->fds) {
        weft_net_watch_close(w);
        return NULL;
    }
    for (int p = 0; p < nranks; p++) {
        if (p == self || !local[p] || pids[p] <= 0)
            continue;
        int fd = (int)syscall(SYS_pidfd_open, (pid_t)pids[p], 0);
        if (fd < 0)
            continue; /* gone already: the transports report that on their own */
        w->rank[w->n] = p;
        w->pid[w->n] = pids[p];
        w->fds[w->n++] = (struct pollfd){.fd = fd, .events = POLLIN};
    }
    if (w->n == 0) {
        weft_net_watch_close(w);
        return NULL;
    }
    return w;
#else
    (void)nranks, (void)self, (void)pids, (void)local;
    return NULL;
#endif
}

int weft_net_watch_dead(const struct weft_net_watch *w, int wait_ms, int *ranks, int *pids,
                        int max)
{
    if (!w)
        return 0;
    int rc;
    do
        rc = poll(w->fds, (nfds_t)w->n, wait_ms);
    while (rc < 0 && errno == EINTR);
    int n = 0;
    for (int i = 0; rc > 0 && i < w->n && n < max; i++) {
        if (w->fds[i].revents) {
            ranks[n] = w->rank[i];
            pids[n++] = w->pid[i];
        }
    }
    return n;
}

void weft_net_watch_close(struct weft_net_watch *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->n; i++)
        close(w->fds[i].fd);
    free(w->rank);
    free(w->pid);
    free(w->fds);
    free(w);
}
