/*
 * shm_internal.h - state shared by the shared-memory transport's files (shm.c: the ops table,
 * segments, connecting and peer liveness; shm_data.c: the send and receive data paths).
 */
#ifndef WEFT_TRANSPORT_SHM_INTERNAL_H
#define WEFT_TRANSPORT_SHM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "transport/shm_queue.h"
#include "transport/transport.h"

#define WEFT_SHM_NAME_MAX 96
/* A message's body moves through the ring in spans of consecutive slots of up to this many
 * bytes, one copy and one index update each, while a small message takes one slot: slots
 * small enough to let a sender run many small messages ahead cost large ones nothing. */
#define WEFT_SHM_SPAN_BYTES ((size_t)64 << 10)

struct weft_ep {
    struct weft_tp *tp;
    int peer;       /* rank in the communicator */
    int peer_local; /* rank among this host's ranks */
    pid_t pid;
    int pidfd; /* -1: fall back to kill(pid, 0) */
    void *peer_seg;
    size_t peer_seg_len;
    struct weft_shm_ring tx; /* my queue in the peer's segment */
    struct weft_shm_ring rx; /* the peer's queue in my segment */
    /* sender */
    struct weft_request_queue sendq; /* not yet wholly in the ring */
    struct weft_request_queue rndvq; /* rendezvous announced, waiting for the peer's read */
    uint64_t rndv_posted;
    bool tx_cma; /* rendezvous allowed towards this peer */
    /* receiver */
    struct weft_request_queue recvq;
    int rx_state; /* RX_* of shm_data.c; 0 is idle */
    size_t discard_left;
    uint64_t rx_addr;
    /* failure */
    bool exited;     /* the peer process is gone: buffered messages still deliver */
    bool peer_abort; /* the peer aborted: nothing delivers */
};

struct weft_tp {
    int rank, nranks, local_rank, local_nranks;
    char seg_name[WEFT_SHM_NAME_MAX];
    void *seg;
    size_t seg_len;
    bool unlinked;
    uint64_t nslots, span_slots;
    size_t slot_size, queue_bytes;
    bool cma;
    size_t cma_threshold;
    uint8_t key[WEFT_TRANSPORT_KEY_BYTES];
    struct weft_ep **eps; /* by local rank */
    long long next_check_ns;
    unsigned long polls; /* progress calls, to pace the death check's clock reads */
    bool aborted;
    int culprit; /* from the first peer's abort notice, WEFT_CULPRIT_NONE before */
    bool cma_refusal_logged;
};

/* shm.c */
bool weft_shm_pid_gone(const struct weft_ep *ep);

/* shm_data.c */
weft_result_t weft_shm_isend(struct weft_ep *ep, const void *buf, size_t len, uint64_t tag,
                             struct weft_request *req);
weft_result_t weft_shm_irecv(struct weft_ep *ep, void *buf, size_t len, uint64_t tag,
                             struct weft_request *req);
/* Moves the pair's sends and receives forward and fails what a dead peer leaves stuck. */
void weft_shm_ep_progress(struct weft_ep *ep, bool *progressed);
/* Completes every request of `ep` with `status` and resets its receive state. */
void weft_shm_ep_flush(struct weft_ep *ep, weft_result_t status);

#endif /* WEFT_TRANSPORT_SHM_INTERNAL_H */
