/*
 * ucx_internal.h - state shared by the UCX transport's files (ucx.c: the ops table, context,
 * worker and endpoints; ucx_data.c: tagged messages, their matching and completion).
 *
 * Wire format. Every Weft message takes one sequence number per direction and pair; the UCP
 * tag of its messages is (kind bits, sender rank, sequence number), and receives match it
 * with a full mask, so UCX's own matching gives exactly the FIFO order of the contract. The
 * first UCP message carries a header (the Weft tag and length) and, below WEFT_UCX_INLINE
 * bytes, the data too (copied through a bounce buffer); larger messages follow as a second
 * UCP message under the PAYLOAD bit, straight from and into the caller's buffers, so that UCX
 * moves them with its rendezvous protocols (zero-copy where its transports can).
 */
#ifndef WEFT_TRANSPORT_UCX_INTERNAL_H
#define WEFT_TRANSPORT_UCX_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ucp/api/ucp.h>

#include "transport/transport.h"

#define WEFT_UCX_BLOB_MAGIC 0x57465855u /* "WFXU" */
#define WEFT_UCX_BLOB_VERSION 1u
#define WEFT_UCX_HOST_BYTES 64

/* UCP tag: bit 63 control, bit 62 payload, bits 40..61 the sender's rank, 0..39 sequence. */
#define WEFT_UCX_TAG_CTRL ((ucp_tag_t)1 << 63)
#define WEFT_UCX_TAG_PAYLOAD ((ucp_tag_t)1 << 62)
#define WEFT_UCX_RANK_SHIFT 40
#define WEFT_UCX_MAX_RANKS (1 << 22)
#define WEFT_UCX_SEQ_MASK (((ucp_tag_t)1 << WEFT_UCX_RANK_SHIFT) - 1)
#define WEFT_UCX_TAG_FULL (~(ucp_tag_t)0)

/* Control messages (zero bytes; the kind is the tag's sequence field). */
enum weft_ucx_ctrl { WEFT_UCX_HELLO = 1, WEFT_UCX_ABORT = 2 };

/* In front of every message, little-endian. */
struct weft_ucx_hdr {
    uint64_t tag;
    uint64_t len; /* bit 63: the data follows as a separate payload message */
};
#define WEFT_UCX_HDR_BYTES sizeof(struct weft_ucx_hdr)
#define WEFT_UCX_HDR_PAYLOAD ((uint64_t)1 << 63)
#define WEFT_UCX_LEN_UNKNOWN SIZE_MAX

/* One posted send or receive: up to two UCP operations (header, payload). Pooled; lives on
 * until UCX has finished with both, even when its Weft request was forgotten earlier. */
struct weft_ucx_op {
    struct weft_ucx_op *next;     /* in its peer's FIFO, or in the free list */
    struct weft_ucx_op *all_next; /* every op the transport allocated */
    struct weft_request *req;     /* NULL once forgotten (the peer failed, or abort) */
    struct weft_ep *ep;
    void *ucp[2];       /* UCX requests still in flight: header message, payload */
    ucs_status_t st[2]; /* how each part ended */
    size_t got[2];      /* bytes each receive part delivered, or WEFT_UCX_LEN_UNKNOWN */
    uint8_t pending;    /* parts UCX has not finished */
    uint8_t done;       /* bit per part UCX finished */
    bool queued;        /* still in its peer's FIFO */
    bool is_send;
    bool payload; /* this side sends or expects a payload message */
    bool fixed;   /* a receive whose header was checked against the payload part */
    uint64_t seq;
    uint8_t buf[]; /* header plus up to inline_max bytes of data */
};

struct weft_ucx_fifo {
    struct weft_ucx_op *head, *tail;
};

/* Everything about one peer. */
struct weft_ep {
    struct weft_tp *tp;
    int rank;
    char host[WEFT_UCX_HOST_BYTES];
    ucp_ep_h ep;
    bool have_addr, hello_rcvd, logged;
    void *hello_send, *hello_recv, *abort_recv, *abort_send, *close_req;
    bool hello_sent; /* the hello send completed */
    uint64_t sseq, rseq;
    struct weft_ucx_fifo sends, recvs;
    weft_result_t failed; /* WEFT_OK until this peer failed or the transport aborted */
    const char *fail_call;
    ucs_status_t fail_status;
    /* Reported by callbacks, handled after progress: an error of the endpoint (UCX's error
     * callback or a failed control message), an abort notice from the peer. */
    bool err_pending, abort_rcvd;
    uint32_t abort_word; /* the abort notice: 1 + its culprit, little-endian (0: none) */
    bool marked;         /* in tp->marked */
    ucs_status_t err_status;
    const char *err_call;
};

struct weft_tp {
    int rank, nranks;
    double timeout_s;
    size_t inline_max;
    ucp_context_h ctx;
    ucp_worker_h worker;
    ucp_address_t *addr;
    size_t addr_len;
    struct weft_ep *peers; /* nranks of them */
    struct weft_ucx_op *free_ops, *all_ops;
    bool aborted, closing;
    uint32_t abort_word; /* the abort notice this rank sends (as weft_ep's) */
    int culprit;         /* of the first peer's abort notice; WEFT_CULPRIT_NONE before */
    struct weft_ep **marked; /* peers a callback left work for (after progress) */
    int nmarked;
    char tls[96], devices[96]; /* UCX_TLS and UCX_NET_DEVICES, for messages */
    char defaults[128];        /* the UCX settings Weft chose, for the log */
};

/* ucx_data.c */
weft_result_t weft_ucx_isend(struct weft_ep *ep, const void *buf, size_t len, uint64_t tag,
                             struct weft_request *req);
weft_result_t weft_ucx_irecv(struct weft_ep *ep, void *buf, size_t len, uint64_t tag,
                             struct weft_request *req);
/* Progresses the worker once, then handles what its callbacks reported. */
weft_result_t weft_ucx_progress(struct weft_tp *tp, bool *progressed);
/* Fails every request to and from `ep` (forgets them: `status` is what they complete with)
 * and cancels the receives UCX has not matched. */
void weft_ucx_peer_flush(struct weft_ep *ep, weft_result_t status);
/* Marks `ep` failed with WEFT_ERR_REMOTE, raises the message once and flushes it. */
void weft_ucx_peer_fail(struct weft_ep *ep, const char *what, ucs_status_t status);
/* Raises the message for a request posted to a peer that already failed. */
weft_result_t weft_ucx_peer_raise(const struct weft_ep *ep);
/* Queues `ep` for handling after progress (callbacks only record). */
void weft_ucx_mark(struct weft_ep *ep);
/* Posts the control receives of `ep` and sends it a hello. */
weft_result_t weft_ucx_ctrl_start(struct weft_ep *ep);
/* Sends `kind` to `ep` (ep->hello_send or ep->abort_send holds it while in flight). */
weft_result_t weft_ucx_ctrl_send(struct weft_ep *ep, enum weft_ucx_ctrl kind);
/* Frees every op; only once the worker is gone and no callback can run. */
void weft_ucx_ops_free(struct weft_tp *tp);

/* ucx.c */
/* Starts closing `ep`'s UCP endpoint (force: drop what is queued; else flush it first). */
void weft_ucx_ep_close(struct weft_ep *ep, bool force);

#endif /* WEFT_TRANSPORT_UCX_INTERNAL_H */
