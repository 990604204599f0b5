/*
 * transport.h - the contract every transport fills: a versioned table of operations, like
 * UCX's uct_iface_ops_t or NCCL's net plugins. Nothing above transport/ knows a socket, a
 * shared segment or a queue pair; it sees endpoints, tagged messages and requests.
 *
 * Message semantics (every transport):
 *   - An endpoint connects this rank to one peer. Messages from this rank to that peer are
 *     matched to the peer's receives in posting order (FIFO per direction), and the tag of
 *     each receive must equal the tag of the send it matches: a mismatch completes the
 *     receive with WEFT_ERR_REMOTE ("ranks called operations in different orders").
 *   - The receive length must equal the send length (as NCCL requires); a mismatch completes
 *     the receive with WEFT_ERR_INVALID_ARG naming both lengths.
 *   - A mismatched message is dropped and the pair stays in step: the next messages match the
 *     next receives. Its send completes with WEFT_OK where the data leaves before the receiver
 *     has a say (eager paths; shm, tcp, ucx always): that rank learns of the mismatch only
 *     from the receiving rank's error (it fails its call). Where the sender waits for the
 *     receiver first (verbs' rendezvous), the send fails too (tests/integration/transport_check.c
 *     asserts exactly this for every transport).
 *   - isend/irecv never block. Many may be in flight per endpoint; they complete in posting
 *     order per direction. A send may complete before the peer posted its receive (the
 *     transport buffers it) or only after (rendezvous); callers must not rely on either.
 *   - Zero-length messages are legal and carry their tag.
 *   - Requests are caller-owned and must stay alive and untouched until done != 0.
 *   - progress() moves every in-flight request of the context forward without blocking.
 *     Errors of one request complete it with a status; progress itself fails only when the
 *     whole context is broken.
 */
#ifndef WEFT_TRANSPORT_H
#define WEFT_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "weft.h"

/* 2: explicit_only, serves, hostnames, per-rank address room; 3: abort carries the culprit */
#define WEFT_TRANSPORT_OPS_VERSION 3
/* An address blob has at most WEFT_TRANSPORT_ADDR_MAX bytes plus WEFT_TRANSPORT_ADDR_PER_RANK
 * per rank of the communicator (room for per-peer connection data such as a queue pair
 * number). */
#define WEFT_TRANSPORT_ADDR_MAX 2048
#define WEFT_TRANSPORT_ADDR_PER_RANK 32
#define WEFT_TRANSPORT_KEY_BYTES 32 /* per-job key for authenticating data connections */
#define WEFT_CULPRIT_NONE (-1)      /* abort notices: the failure's origin is not known */

struct weft_tp; /* one transport's per-communicator context (opaque; each transport's own) */
struct weft_ep; /* one connection to one peer (opaque) */

/* A non-blocking operation. The caller allocates it (on its stack or in a plan) and reads
 * done/status/bytes; the transport fills the rest and may link it into its queues. */
struct weft_request {
    /* filled by isend/irecv from their arguments */
    void *buf;
    size_t len;
    uint64_t tag;
    int peer;
    int is_send;
    /* results */
    volatile int done;    /* becomes 1 once the request completed, successfully or not */
    weft_result_t status; /* valid once done: WEFT_OK or the error */
    /* owned by the transport while in flight */
    struct weft_request *next;
    size_t offset;
    uint64_t priv[6];
};

/* What a transport's init receives. */
struct weft_transport_params {
    int rank;           /* in the communicator */
    int nranks;
    int local_rank;     /* among ranks on this host */
    int local_nranks;
    const char *job_tag; /* unique per communicator: safe in file and segment names */
    uint8_t key[WEFT_TRANSPORT_KEY_BYTES]; /* derived from the job secret */
    double timeout_s;   /* WEFT_TIMEOUT */
    /* Per rank: nonzero when this transport carries traffic to that rank, so that it sets up
     * only what it needs (valid during init), and the rank's host name (valid until fini). */
    const uint8_t *serves;
    const char *const *hostnames;
};

struct weft_transport_ops {
    size_t size;      /* sizeof(struct weft_transport_ops) the table was built with */
    uint32_t version; /* WEFT_TRANSPORT_OPS_VERSION */
    const char *name; /* "shm", "tcp", ... */
    bool explicit_only; /* never chosen by auto: only when WEFT_TRANSPORT names it */

    /* Can this transport run on this host? On false, writes the reason to why. */
    bool (*probe)(char *why, size_t why_len);
    weft_result_t (*init)(const struct weft_transport_params *params, struct weft_tp **tp);
    /* Writes this rank's address blob (at most *len bytes, which is WEFT_TRANSPORT_ADDR_MAX
     * plus WEFT_TRANSPORT_ADDR_PER_RANK per rank; *len becomes the bytes used). Every rank
     * receives every blob. */
    weft_result_t (*address)(struct weft_tp *tp, void *blob, size_t *len);
    /* Non-blocking connect to `peer` whose blob the bootstrap delivered. Returns
     * WEFT_ERR_IN_PROGRESS until connected (call progress in between, then again), WEFT_OK
     * with *ep set once connected. Every rank calls it for every peer it will talk to. */
    weft_result_t (*connect)(struct weft_tp *tp, int peer, const void *blob, size_t len,
                             struct weft_ep **ep);
    /* Called once every rank has connected every peer (after a bootstrap barrier):
     * release rendezvous resources (unlink segments, close listeners). Optional. */
    weft_result_t (*connected)(struct weft_tp *tp);
    weft_result_t (*isend)(struct weft_ep *ep, const void *buf, size_t len, uint64_t tag,
                           struct weft_request *req);
    weft_result_t (*irecv)(struct weft_ep *ep, void *buf, size_t len, uint64_t tag,
                           struct weft_request *req);
    /* Moves everything forward. *progressed tells whether the state of a user request changed:
     * one completed, or bytes of a user message moved. It paces the net's backoff and restarts
     * its WEFT_TIMEOUT deadline, so what a transport does on its own (liveness probes, credit
     * notes, keepalives, handshakes) must not set it: two live ranks waiting on each other
     * would never time out. */
    weft_result_t (*progress)(struct weft_tp *tp, bool *progressed);
    /* Fails every in-flight request with WEFT_ERR_ABORTED and tells the peers, so that their
     * requests on this context fail with WEFT_ERR_REMOTE instead of waiting. The notice
     * carries `culprit`, the rank the failure started at (this rank for its own timeout or
     * abort, a dead peer's rank when it saw one die), so that every rank can name it. */
    void (*abort)(struct weft_tp *tp, int culprit);
    /* The culprit carried by the first abort notice a peer sent here, or WEFT_CULPRIT_NONE
     * (none arrived, or it carried none: a peer that died sends nothing). */
    int (*culprit)(const struct weft_tp *tp);
    /* Optional memory registration for zero-copy (NULL when not needed). */
    weft_result_t (*reg)(struct weft_tp *tp, void *buf, size_t len, void **handle);
    weft_result_t (*dereg)(struct weft_tp *tp, void *handle);
    /* Closes endpoints and frees the context. */
    void (*fini)(struct weft_tp *tp);
};

/* The built-in transports. */
extern const struct weft_transport_ops weft_transport_shm;
extern const struct weft_transport_ops weft_transport_tcp;
extern const struct weft_transport_ops weft_transport_verbs; /* built with libibverbs */
extern const struct weft_transport_ops weft_transport_ucx;   /* built with UCX */

/* Every built-in transport, in preference order, NULL-terminated. */
const struct weft_transport_ops *const *weft_transports(void);
const struct weft_transport_ops *weft_transport_find(const char *name);

/* Helpers shared by transports. */
/* Completes `req` with `status` (sets status, then done). */
static inline void weft_request_complete(struct weft_request *req, weft_result_t status)
{
    req->status = status;
    __atomic_store_n(&req->done, 1, __ATOMIC_RELEASE);
}

/* Readies `req` for posting: the caller's arguments, not done, nothing owned yet. */
static inline void weft_request_init(struct weft_request *req, void *buf, size_t len,
                                     uint64_t tag, int peer, int is_send)
{
    req->buf = buf;
    req->len = len;
    req->tag = tag;
    req->peer = peer;
    req->is_send = is_send;
    req->status = WEFT_OK;
    req->next = NULL;
    req->offset = 0;
    memset(req->priv, 0, sizeof(req->priv));
    __atomic_store_n(&req->done, 0, __ATOMIC_RELEASE);
}

/* A FIFO of requests linked through their `next`; zero-initialised means empty. */
struct weft_request_queue {
    struct weft_request *head, *tail;
};

static inline bool weft_request_queue_empty(const struct weft_request_queue *q)
{
    return q->head == NULL;
}

/* The oldest request, left in place; NULL when empty. */
static inline struct weft_request *weft_request_queue_peek(const struct weft_request_queue *q)
{
    return q->head;
}

static inline void weft_request_queue_push(struct weft_request_queue *q, struct weft_request *req)
{
    req->next = NULL;
    if (q->tail)
        q->tail->next = req;
    else
        q->head = req;
    q->tail = req;
}

/* Puts `req` back in front, as the next to pop. */
static inline void weft_request_queue_push_front(struct weft_request_queue *q,
                                                 struct weft_request *req)
{
    req->next = q->head;
    q->head = req;
    if (!q->tail)
        q->tail = req;
}

/* Takes the oldest request out; NULL when empty. */
static inline struct weft_request *weft_request_queue_pop(struct weft_request_queue *q)
{
    struct weft_request *req = q->head;
    if (req) {
        q->head = req->next;
        if (!q->head)
            q->tail = NULL;
        req->next = NULL;
    }
    return req;
}

/* Completes every queued request with `status`, oldest first, and empties the queue. Each
 * leaves the queue before it completes: its owner may reuse it at once. */
static inline void weft_request_queue_fail(struct weft_request_queue *q, weft_result_t status)
{
    struct weft_request *req;
    while ((req = weft_request_queue_pop(q)) != NULL)
        weft_request_complete(req, status);
}

#endif /* WEFT_TRANSPORT_H */
