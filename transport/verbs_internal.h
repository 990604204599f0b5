/*
 * verbs_internal.h - state shared by the verbs transport's files: verbs.c (the ops table,
 * device, queue pairs and their wire-up), verbs_mr.c (memory registration and its cache),
 * verbs_data.c (the message protocol).
 *
 * Wire-up goes through the bootstrap, not rdma_cm: every rank creates one RC queue pair per
 * verbs peer before the address exchange and publishes their numbers and random starting
 * packet numbers in its blob (struct verbs_peer_addr per rank), so a pair connects with one
 * allgather and no extra round trip, on InfiniBand and
 * RoCE alike. (rdma_cm would need an IP address per port and resolves routes through the
 * kernel's tables, which pick the loopback path when both ends are on one host, as in the
 * soft-RoCE test VM.)
 *
 * Protocol, per ordered pair of ranks:
 *   - Each receiver owns a ring of WEFT_IB_EAGER_SLOTS slots of WEFT_IB_EAGER_SIZE bytes for
 *     each peer, each ring registered for remote write on its own: a peer holds the key to
 *     its ring only. The sender writes one entry (a header, then up
 *     to a slot of payload) per slot with RDMA WRITE WITH IMMEDIATE; the immediate tells the
 *     receiver's completion queue a slot arrived. Entries arrive in order (RC).
 *   - Credits: the receiver frees slots as it consumes them and returns the count of freed
 *     slots in every entry it writes the other way, or, when it has nothing to send, with a
 *     zero-length WRITE WITH IMMEDIATE; a sender writes only into free slots.
 *   - Messages up to a slot's payload are eager: copied into the slot (inline in the work
 *     request when they fit, else from a registered staging slot). The send completes at once.
 *   - Larger messages are zero-copy rendezvous. Both ends know the protocol from the length
 *     (a receive's length must equal the send's). In write mode (default) the receiver, when
 *     it posts the receive, registers the buffer and sends a CTS entry (address, key); the
 *     sender sends an RTS entry when it posts the send, and on the CTS writes the data straight
 *     into the receive buffer, the last write WITH IMMEDIATE (FIN); when the CTS is there
 *     before the send is posted and agrees, the RTS is left out. In read mode
 *     (WEFT_IB_RNDV=read) the RTS carries the sender's address and key, the receiver reads the
 *     data and sends FIN back. RTS and CTS let both ends detect length and tag mismatches.
 *   - Requests complete in posting order per direction.
 *   - With WEFT_IB_QPS_PER_PEER=N above 1, each pair of ranks also has N-1 data queue pairs,
 *     which carry rendezvous data only, as plain RDMA WRITE or READ (no immediate, so they
 *     need no receive work requests). A rendezvous message is cut into N stripes, the first
 *     moved on the first queue pair and one on each data queue pair, every data queue pair
 *     getting the same number of work requests per message so that one posted count serves
 *     them all. Queue pairs are not ordered among themselves, so the FIN (write mode: from
 *     the sender; read mode: from the receiver, as always) is posted on the first queue pair
 *     only once every stripe has completed.
 *   - With WEFT_IB_RAILS=R above 1, a rank also opens the next R-1 selected ports (rails);
 *     data queue pair i sits on rail (i + 1) % R, so the stripes of one message cross
 *     several ports or HCAs. A rail on another device has its own context, protection domain
 *     and completion queue, and every rendezvous buffer is registered in each protection
 *     domain: RTS and CTS entries carry the key each data queue pair must use. Each rail
 *     has a small registered sink that peers may write to (the zero-length writes that show
 *     a data queue pair's earlier work is over), never read.
 */
#ifndef WEFT_TRANSPORT_VERBS_INTERNAL_H
#define WEFT_TRANSPORT_VERBS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <infiniband/verbs.h>

#include "core/host.h"
#include "transport/transport.h"
#include "transport/verbs_dev.h"
#include "transport/verbs_wrid.h"

#define VERBS_BLOB_MAGIC 0x57465642u /* "WFVB" */
#define VERBS_BLOB_VERSION 6u /* 4: a ring key per peer; 5: data queue pairs; 6: rails */
#define VERBS_MAX_QPS WEFT_VERBS_WR_MAX_QPS /* per peer, WEFT_IB_QPS_PER_PEER */

/* The immediate value: 2 bits of kind, 1 error bit, 29 bits of counter. */
#define VERBS_IMM_KIND_SHIFT 30
#define VERBS_IMM_ERROR (1u << 29)
#define VERBS_IMM_MASK ((1u << 29) - 1)
enum verbs_imm_kind {
    VERBS_IMM_ENTRY = 0,  /* a ring slot was written; counter: the slot's number */
    VERBS_IMM_CREDIT = 1, /* counter: slots the receiver has freed so far */
    VERBS_IMM_FIN = 2,    /* counter: the rendezvous message's number */
    VERBS_IMM_ABORT = 3,  /* the peer aborted its communicator */
};

enum verbs_entry_kind {
    VERBS_ENTRY_EAGER = 1, /* a whole message */
    VERBS_ENTRY_RTS = 2,   /* a rendezvous message is coming (read mode: from addr/rkey) */
    VERBS_ENTRY_CTS = 3,   /* the receiver is ready: write into addr/rkey */
};

/* The head of every ring entry, in the sender's byte order (both ends run this build). */
struct verbs_entry {
    uint32_t kind;
    uint32_t status; /* CTS: 0, or 1 when the receiver found the message does not match */
    uint64_t seq;    /* the message's number in its direction */
    uint64_t tag;
    uint64_t len;    /* bytes of the whole message */
    uint64_t addr;   /* RTS (read mode) and CTS: the buffer */
    uint32_t rkey;
    uint32_t credits; /* low bits of the slots the writer has freed in its ring for us */
    uint32_t data_rkey[VERBS_MAX_QPS - 1]; /* RTS (read mode), CTS: the key of addr that data
                                            * queue pair i uses (its rail's) */
    uint32_t pad; /* to 64 bytes */
};
_Static_assert(sizeof(struct verbs_entry) == 64, "a ring entry's header is 64 bytes");

/* How a rank's rail is reached. */
struct verbs_rail_addr {
    uint8_t gid[16];
    uint16_t lid;
    uint8_t link_layer; /* enum weft_ib_link_layer */
    uint8_t mtu;        /* enum ibv_mtu of the port's active MTU */
    uint32_t port;
    uint64_t sink;      /* the rail's sink and its key */
    uint32_t sink_rkey;
    char dev[32];
};

/* What every rank publishes: its rails (ports), its rings and its queue pair numbers per
 * peer. */
struct verbs_blob {
    uint32_t magic, version;
    uint64_t rings;     /* address of the receive rings (each peer's key covers its own) */
    uint32_t slot_bytes, slots, read_mode;
    uint32_t qps;       /* queue pairs per peer */
    uint32_t nrails;    /* ports in rail[]; the first queue pair is on rail[0] */
    struct verbs_rail_addr rail[VERBS_MAX_QPS];
    int32_t pid;
    char boot_id[WEFT_BOOT_ID_BYTES]; /* the kernel's: a peer with ours runs on this host */
    /* then a struct verbs_peer_addr per rank */
};

/* Per rank in the blob: how that rank reaches us. The starting packet number is random so
 * that packets still in flight to a destroyed queue pair whose number a new one reuses (the
 * next communicator's) fall outside its window instead of being taken for its own. Each
 * peer's ring is a registration of its own: the key a peer gets lets it write only there,
 * never into another peer's ring (every rank reads every blob). */
struct verbs_peer_addr {
    uint32_t qpn;  /* our queue pair for that rank, 0: none */
    uint32_t ring; /* index of that rank's ring in our receive rings */
    uint32_t psn;  /* the first packet number our queue pair sends */
    uint32_t rkey; /* of that rank's ring, and of nothing else */
    uint32_t data_qpn[VERBS_MAX_QPS - 1]; /* our data queue pairs for that rank (same psn) */
};
_Static_assert(sizeof(struct verbs_peer_addr) <= WEFT_TRANSPORT_ADDR_PER_RANK,
               "a verbs peer address must fit the bootstrap's room per rank");

/* A registered range. Registrations the user made (weft_mem_register) and, with
 * WEFT_IB_REG_CACHE, those made on the fly live in the transport's cache list; memory
 * released to the kernel (verbs_memhook.c) drops the latter from it. */
struct verbs_mr {
    struct ibv_mr *mr;
    struct ibv_mr *rail_mr[VERBS_MAX_QPS]; /* per rail (WEFT_IB_RAILS): [0] is mr, a rail that
                                            * shares a protection domain shares its entry */
    uintptr_t start;
    size_t len;
    int refs;         /* requests using it, plus one for a user registration */
    bool user;        /* made by weft_mem_register */
    bool cached;      /* in the cache list */
    struct verbs_mr *next;            /* in the cache list */
    struct verbs_mr *all_prev, *all_next; /* every live registration, for fini */
};

/* A registration kept past the end of its request (verbs_data.c, keep_mr). */
struct verbs_retired {
    struct verbs_mr *mr;
    uint64_t after;      /* the send queue's last work request when its request ended */
    uint64_t data_after; /* the data queue pairs' */
    struct verbs_retired *next;
};

struct verbs_cts {
    struct verbs_entry e;
    struct verbs_cts *next;
};

/* One verbs peer. */
struct weft_ep {
    struct weft_tp *tp;
    int rank;
    struct ibv_qp *qp;
    /* the data queue pairs (tp->qps - 1 of them): every one has had data_posted send work
     * requests posted, and data_done[i] of them are known complete */
    struct ibv_qp *data_qp[VERBS_MAX_QPS - 1];
    uint64_t data_posted;
    uint64_t data_done[VERBS_MAX_QPS - 1];
    bool connected;
    uint32_t ring; /* index of this peer's ring in our receive rings */
    struct ibv_mr *ring_mr; /* that ring alone, remote-writable: its key is this peer's only */
    /* the peer's ring for us */
    uint64_t remote_ring;
    uint32_t remote_rkey;
    /* the peer's sink on the rail of each of our data queue pairs */
    uint64_t data_sink[VERBS_MAX_QPS - 1];
    uint32_t data_sink_rkey[VERBS_MAX_QPS - 1];
    char remote_dev[32];
    int remote_port;
    int pid, pidfd; /* a peer on this host: its process (pidfd -1: none or not pollable) */
    uint32_t psn;   /* the first packet number we send (random, 24 bits) */
    /* send side */
    uint64_t tx_slots;  /* entries written */
    uint64_t tx_freed;  /* of them, freed by the peer (credits) */
    uint64_t tx_msgs;   /* messages posted */
    uint64_t wr_posted, wr_done; /* work requests posted on the send queue, known complete */
    uint64_t wr_signaled;        /* the last signaled one */
    struct weft_request_queue sends; /* in order; `spost` is the first not fully posted */
    struct weft_request *spost;
    struct verbs_cts *cts_head, *cts_tail; /* CTS entries received, in message order */
    struct verbs_retired *retired_head, *retired_tail; /* registrations kept, oldest first */
    /* receive side */
    uint64_t rx_slots;     /* entries arrived */
    uint64_t rx_freed;     /* contiguous prefix of slots freed */
    uint64_t rx_credited;  /* rx_freed last sent to the peer */
    bool *slot_free;       /* per slot: consumed but not yet in rx_freed */
    uint64_t *data_slots;  /* arrived eager/RTS entries not yet matched, FIFO */
    uint32_t data_head, data_count;
    uint64_t rx_msgs;      /* receives posted */
    uint32_t rq_posted;    /* receive work requests outstanding */
    struct weft_request_queue recvs; /* in order; `rmatch` is the first not yet matched, */
    struct weft_request *rmatch;     /* `rcts` the first that may still owe its CTS */
    struct weft_request *rcts;
    /* failure */
    weft_result_t failed;
    bool aborted_by_peer;
};

/* A port a rank uses (WEFT_IB_RAILS). Rail 0 is the transport's own port (its fields in
 * struct weft_tp); another rail on the same device shares its context, protection domain
 * and completion queue, one on another device has its own. */
struct verbs_rail {
    struct weft_ib_port port;
    struct ibv_context *ctx;
    struct ibv_pd *pd;
    struct ibv_cq *cq;
    bool own;       /* ctx, pd and cq are this rail's own, to close */
    int gid_index;
    union ibv_gid gid;
    uint16_t lid;
    void *sink;     /* what peers' zero-length writes on data queue pairs target */
    struct ibv_mr *sink_mr;
};

struct weft_tp {
    int rank, nranks;
    const char *const *hostnames;
    double timeout_s;
    struct ibv_context *ctx;
    struct ibv_pd *pd;
    struct ibv_cq *cq;
    struct weft_ib_port port;
    int gid_index;
    union ibv_gid gid;
    uint16_t lid;
    uint32_t max_inline;
    uint32_t max_msg;
    uint8_t ack_timeout; /* the queue pairs' ACK timeout exponent (WEFT_IB_TIMEOUT) */
    uint32_t sq_depth, rq_depth, cq_depth;
    uint32_t qps; /* queue pairs per peer: the first and qps - 1 data queue pairs */
    uint32_t nrails;
    struct verbs_rail rails[VERBS_MAX_QPS]; /* rails[0] mirrors ctx, pd, cq and port below */
    uint64_t rndv_bytes, striped_bytes; /* rendezvous data moved; of it, by data queue pairs */
    uint32_t slot_bytes, slots;
    bool read_mode;
    bool reg_cache;
    bool reg_cache_device;         /* WEFT_IB_REG_CACHE=1: device memory too */
    struct weft_memhook *memhook;  /* released memory, for the cache; NULL: none */
    size_t reg_cache_max, reg_cache_count;
    /* receive rings (each peer's registered on its own, see weft_ep.ring_mr) and send
     * staging, one ring's worth per peer */
    void *rings, *staging;
    size_t nrings;
    struct ibv_mr *staging_mr;
    struct weft_ep **peers; /* nranks; NULL where another transport serves the peer */
    struct verbs_mr *mrs;   /* the registration cache */
    struct verbs_mr *all_mrs; /* every live registration */
    unsigned dev_reg_logged;  /* verbs_mr.c: device registration methods logged, a bit each */
    double next_probe;      /* CLOCK_MONOTONIC time of the next liveness probe */
    long polls;             /* progress calls, to pace the async-event check */
    long idle;              /* progress calls in a row that found nothing */
    bool aborted;
    int culprit;            /* of the first peer's abort notice; WEFT_CULPRIT_NONE before */
    weft_result_t failed;   /* the whole context broke (device or port failure) */
};

/* verbs_mr.c */
/* WEFT_IB_REG_CACHE: whether on-the-fly registrations are cached, and the memory events that
 * keep the cache correct; one INFO line says which. */
weft_result_t weft_verbs_mr_init(struct weft_tp *tp);
/* A registration covering [buf, buf+len): a cached one (reference taken) or a new one.
 * Host and managed memory go through ibv_reg_mr; device memory through ibv_reg_dmabuf_mr,
 * else ibv_reg_mr (nvidia-peermem), else WEFT_ERR_UNSUPPORTED: the caller stages it. */
weft_result_t weft_verbs_mr_get(struct weft_tp *tp, void *buf, size_t len, struct verbs_mr **out);
/* Drops a reference; an unreferenced registration outside the cache is deregistered. */
void weft_verbs_mr_put(struct weft_tp *tp, struct verbs_mr *mr);
weft_result_t weft_verbs_reg(struct weft_tp *tp, void *buf, size_t len, void **handle);
weft_result_t weft_verbs_dereg(struct weft_tp *tp, void *handle);

/* verbs_data.c */
weft_result_t weft_verbs_isend(struct weft_ep *ep, const void *buf, size_t len, uint64_t tag,
                               struct weft_request *req);
weft_result_t weft_verbs_irecv(struct weft_ep *ep, void *buf, size_t len, uint64_t tag,
                               struct weft_request *req);
weft_result_t weft_verbs_progress(struct weft_tp *tp, bool *progressed);
/* Posts `n` more receive work requests on the peer's queue pair. */
weft_result_t weft_verbs_post_recvs(struct weft_ep *ep, uint32_t n);
/* Fails every request of `ep` with `status` (the message already raised). */
void weft_verbs_ep_fail(struct weft_ep *ep, weft_result_t status);
/* Drops the registrations `ep` kept past their requests (failure and teardown). */
void weft_verbs_ep_drop_retired(struct weft_ep *ep);
/* Drops every registration, including those of requests still in flight (fini). */
void weft_verbs_mr_fini(struct weft_tp *tp);
/* Waits (at most 1 s) until everything posted to live peers has left, after posting one
 * last signaled note to each: an abort notice, or credits (harmless) on a normal close. */
void weft_verbs_quiesce(struct weft_tp *tp, bool abort, int culprit);

/* The rail data queue pair `i` sits on. */
static inline uint32_t weft_verbs_data_rail(const struct weft_tp *tp, uint32_t i)
{
    return (i + 1) % tp->nrails;
}

/* verbs.c */
/* "rank 3 on host-b (rxe1 port 1)" for messages about `ep`'s peer. */
const char *weft_verbs_peer_name(const struct weft_ep *ep, char *buf, size_t len);

#endif /* WEFT_TRANSPORT_VERBS_INTERNAL_H */
