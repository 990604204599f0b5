/*
 * net.h - a communicator's connections: one endpoint per peer on the transport chosen for
 * that pair (shm on the same host, else tcp; WEFT_TRANSPORT forces one), and the waits that
 * drive every transport's progress with a deadline. Collectives talk to peers only here.
 *
 * Failure rule: when a wait fails (a request error, WEFT_TIMEOUT, an abort), the net aborts
 * itself: every transport forgets every in-flight request (so callers may free them) and
 * tells its peers, whose waits then fail with WEFT_ERR_REMOTE. A failed net stays failed.
 */
#ifndef WEFT_TRANSPORT_NET_H
#define WEFT_TRANSPORT_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport.h"

/* The out-of-band channel the caller supplies (the bootstrap). */
struct weft_oob {
    void *ctx;
    /* Every rank contributes `len` bytes; `all` receives nranks * len bytes in rank order. */
    weft_result_t (*allgather)(void *ctx, const void *mine, void *all, size_t len);
    weft_result_t (*barrier)(void *ctx);
};

struct weft_net_params {
    int rank;
    int nranks;
    const char *job_tag;                   /* unique per communicator */
    uint8_t key[WEFT_TRANSPORT_KEY_BYTES]; /* for authenticating data connections */
    double timeout_s;
    const char *hostname; /* this host, for messages */
};

struct weft_net;

/* Collective over the communicator: picks a transport per peer, exchanges addresses through
 * `oob`, connects every pair, and logs the map at INFO. */
weft_result_t weft_net_create(const struct weft_net_params *params, const struct weft_oob *oob,
                              struct weft_net **net);
void weft_net_destroy(struct weft_net *net);

weft_result_t weft_net_isend(struct weft_net *net, int peer, const void *buf, size_t len,
                             uint64_t tag, struct weft_request *req);
weft_result_t weft_net_irecv(struct weft_net *net, int peer, void *buf, size_t len, uint64_t tag,
                             struct weft_request *req);
/* Drives progress until every request in reqs[0..n) is done (NULL entries are skipped).
 * Returns WEFT_OK, or the first failure (then the net is aborted, see above). Spins for
 * WEFT_SPIN_COUNT idle polls, then yields the CPU between polls. */
weft_result_t weft_net_wait(struct weft_net *net, struct weft_request *const *reqs, size_t n);
/* Drives progress until `req` is done. */
weft_result_t weft_net_wait_one(struct weft_net *net, struct weft_request *req);
/* One non-blocking pass over every transport. */
weft_result_t weft_net_progress(struct weft_net *net);
/* Local abort: in-flight requests fail with WEFT_ERR_ABORTED; peers are told. */
void weft_net_abort(struct weft_net *net);
/* Safe from any thread: the thread in weft_net_wait (if any) fails its wait with
 * WEFT_ERR_ABORTED and aborts the net itself, so only that thread touches the transports. */
void weft_net_request_abort(struct weft_net *net);
/* Registers [buf, buf+len) with every transport that registers memory (verbs), for
 * zero-copy transfers without per-message registration; weft_net_dereg releases it. */
weft_result_t weft_net_reg(struct weft_net *net, void *buf, size_t len, void **handle);
void weft_net_dereg(struct weft_net *net, void *handle);
/* WEFT_OK, or the error that broke this net (WEFT_ERR_ABORTED once an abort was requested:
 * loops that drive the net themselves stop on it, and the next wait fails with the cause). */
weft_result_t weft_net_status(const struct weft_net *net);

int weft_net_rank(const struct weft_net *net);
int weft_net_nranks(const struct weft_net *net);
/* The transport that carries traffic to `peer` ("self" for this rank). */
const char *weft_net_peer_transport(const struct weft_net *net, int peer);
/* Index of the host of `peer` (0..nhosts-1, in order of first appearance by rank). */
int weft_net_peer_host(const struct weft_net *net, int peer);
int weft_net_nhosts(const struct weft_net *net);

#endif /* WEFT_TRANSPORT_NET_H */
