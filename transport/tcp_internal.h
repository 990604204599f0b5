/*
 * tcp_internal.h - state shared by the TCP transport's files (tcp.c: the ops table,
 * tcp_conn.c: listening, connecting and the authenticated hello, tcp_data.c: framing).
 */
#ifndef WEFT_TRANSPORT_TCP_INTERNAL_H
#define WEFT_TRANSPORT_TCP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <sodium.h>

#include "core/netif.h"
#include "transport/transport.h"

#define WEFT_TCP_MAX_NSOCKS 64
/* Messages at least this large are cut into one part per socket. Below it one socket's
 * bandwidth is not the limit and the extra headers and wakeups cost more than they gain. */
#define WEFT_TCP_STRIPE_MIN ((size_t)128 * 1024)
#define WEFT_TCP_BLOB_MAGIC 0x57465442u  /* "WFTB" */
#define WEFT_TCP_HELLO_MAGIC 0x57465448u /* "WFTH" */
#define WEFT_TCP_FRAME_MAGIC 0x57465446u /* "WFTF" */
#define WEFT_TCP_ABORT_MAGIC 0x57465441u /* "WFTA": an abort notice, 1 + its culprit in `part` */
#define WEFT_TCP_HELLO_VERSION 2u
#define WEFT_TCP_HELLO_FIELDS 6 /* magic, version, from, to, index, nsocks */
#define WEFT_TCP_HELLO_BYTES (WEFT_TCP_HELLO_FIELDS * 4 + crypto_auth_hmacsha256_BYTES)
#define WEFT_TCP_NONCE_BYTES 32
/* The handshake of a data connection, in wire order: the acceptor's fresh nonce, the
 * initiator's hello (fields, then HMAC(key, "weft-tcp-hello" || nonce || fields)), the
 * acceptor's proof HMAC(key, "weft-tcp-accept" || nonce || fields). Offsets into it: */
#define WEFT_TCP_HS_HELLO WEFT_TCP_NONCE_BYTES
#define WEFT_TCP_HS_PROOF (WEFT_TCP_HS_HELLO + WEFT_TCP_HELLO_BYTES)
#define WEFT_TCP_HS_BYTES (WEFT_TCP_HS_PROOF + crypto_auth_hmacsha256_BYTES)

/* What an epoll event's data.ptr points at; every such object starts with its kind. */
enum weft_tcp_kind { WEFT_TCP_LISTENER = 1, WEFT_TCP_PENDING, WEFT_TCP_SOCK };

/* The header in front of every part on the wire, little-endian. */
struct weft_tcp_frame {
    uint32_t magic;
    uint32_t part;
    uint64_t tag;
    uint64_t total;    /* bytes of the whole message */
    uint64_t part_len; /* bytes of this part that follow the header */
};
#define WEFT_TCP_FRAME_BYTES sizeof(struct weft_tcp_frame)

enum weft_tcp_sock_state {
    WEFT_TCP_S_NONE = 0,   /* no connection yet */
    WEFT_TCP_S_CONNECTING, /* initiator: non-blocking connect in flight */
    WEFT_TCP_S_HELLO,      /* connected, handshake under way */
    WEFT_TCP_S_UP,         /* carries data */
    WEFT_TCP_S_CLOSED
};

#define WEFT_TCP_SEND_BATCH 16 /* messages gathered into one sendmsg */

/* One of the nsocks connections to a peer. Each direction keeps a cursor into the peer's
 * queue (the request whose part this socket moves now) and how many bytes of that part
 * (header included) are done, so EAGAIN anywhere resumes exactly there. */
struct weft_tcp_sock {
    enum weft_tcp_kind kind;
    int fd;
    int index;
    struct weft_ep *peer;
    enum weft_tcp_sock_state state;
    bool readable, writable; /* edge-triggered readiness not yet consumed */
    uint8_t hs[WEFT_TCP_HS_BYTES]; /* the handshake; hs_off bytes of it are done */
    size_t hs_off;
    struct weft_request *scur;
    size_t sdone;
    struct weft_tcp_frame sframes[WEFT_TCP_SEND_BATCH];
    struct weft_request *rcur;
    size_t rdone;
    struct weft_tcp_frame rframe;
};

/* The endpoint: everything about one peer. */
struct weft_ep {
    struct weft_tp *tp;
    int rank;
    bool have_addr, initiated, logged;
    bool remote_closed; /* the peer shut its sending side (it is going away) */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char addr_str[WEFT_ADDR_STRLEN];
    int nup;                    /* sockets in state UP */
    weft_result_t conn_result;  /* a failed connection attempt, returned by connect */
    weft_result_t failed;       /* WEFT_OK until the stream to this peer broke */
    int fail_err;               /* errno of the failure, 0 for EOF or a protocol error */
    const char *fail_call;
    struct weft_request *shead, *stail, *rhead, *rtail;
    struct weft_tcp_sock *socks; /* nsocks of them */
};

/* Unverified connections a listener keeps (plus nranks x nsocks); warnings for the first
 * dropped ones, then a count. */
#define WEFT_TCP_PENDING_MAX 256
#define WEFT_TCP_PENDING_WARN 10
/* An accepted connection whose hello has not been verified yet. */
struct weft_tcp_pending {
    enum weft_tcp_kind kind;
    int fd;
    char addr_str[WEFT_ADDR_STRLEN];
    uint8_t hs[WEFT_TCP_HS_BYTES];
    size_t hs_off;
    double deadline; /* CLOCK_MONOTONIC seconds by which the hello must have arrived */
    struct weft_tcp_pending *next;
};

struct weft_tcp_listener {
    enum weft_tcp_kind kind;
    int fd;
    int timer_fd; /* reports as the listener; fires when a pending hello is overdue */
};

struct weft_tp {
    int rank, nranks, nsocks;
    size_t bufsize;
    int dead_timeout_s; /* WEFT_SOCKET_DEAD_TIMEOUT, 0: the kernel's defaults */
    const char *const *hostnames; /* per rank, for messages (may be NULL) */
    uint8_t key[WEFT_TRANSPORT_KEY_BYTES];
    int epfd;
    struct weft_tcp_listener listener;
    struct sockaddr_storage laddr;
    socklen_t laddr_len;
    char laddr_str[WEFT_ADDR_STRLEN];
    char ifname[64];
    double timeout_s; /* WEFT_TIMEOUT: how long an accepted connection may take to say hello */
    struct weft_ep *peers; /* nranks of them */
    struct weft_tcp_pending *pending;
    int pending_dropped; /* stray connections dropped: warned one by one, then counted */
    bool accept_paused;  /* the cap stopped accepting: the timer retries in a moment */
    bool aborted;
    int culprit; /* of the first peer's abort notice; WEFT_CULPRIT_NONE before */
    uint8_t discard[64 * 1024]; /* sink for the payload of a mismatched message */
};

/* tcp_data.c: why a received frame header cannot be the next one on socket `index` (bad
 * magic, or a part that does not fit the length it announces), or NULL. */
const char *weft_tcp_frame_fault(const struct weft_tp *tp, const struct weft_tcp_frame *f,
                                 int index);

/* tcp_conn.c */
weft_result_t weft_tcp_listen(struct weft_tp *tp);
void weft_tcp_unlisten(struct weft_tp *tp);
weft_result_t weft_tcp_initiate(struct weft_tp *tp, struct weft_ep *peer);
/* Handles an epoll event of the listener, a pending connection or a socket still
 * connecting. */
void weft_tcp_conn_event(struct weft_tp *tp, void *obj, uint32_t events, bool *progressed);
void weft_tcp_sock_close(struct weft_tp *tp, struct weft_tcp_sock *s);
/* The handshake's MACs, on `hs` laid out as above. */
void weft_tcp_hello_encode(const uint8_t *key, uint8_t *hs,
                           const uint32_t fields[WEFT_TCP_HELLO_FIELDS]);
/* Checks the hello's MAC against the nonce; on success decodes its fields. */
bool weft_tcp_hello_verify(const uint8_t *key, const uint8_t *hs,
                           uint32_t fields[WEFT_TCP_HELLO_FIELDS]);
void weft_tcp_proof_encode(const uint8_t *key, uint8_t *hs);
bool weft_tcp_proof_verify(const uint8_t *key, const uint8_t *hs);

/* tcp_data.c */
size_t weft_tcp_nparts(const struct weft_tp *tp, size_t len);
void weft_tcp_post(struct weft_ep *peer, struct weft_request *req);
/* Handles an epoll event of a socket that is up. */
void weft_tcp_data_event(struct weft_tp *tp, struct weft_tcp_sock *s, uint32_t events);
/* Moves every request of `peer` forward as far as the sockets allow. */
void weft_tcp_drive(struct weft_tp *tp, struct weft_ep *peer, bool *progressed);
/* Records why the stream to `peer` broke, raises the message, fails every request to and
 * from it (`first`, if not NULL, with `first_status`, the others with `code`) and closes its
 * sockets. */
void weft_tcp_peer_fail(struct weft_ep *peer, weft_result_t code, int err, const char *call,
                        int sock, struct weft_request *first, weft_result_t first_status);
/* Sends the abort notice naming `culprit` on every socket to `peer` that is between frames
 * (one in the middle of a frame can only be shut: the peer then sees the close alone). */
void weft_tcp_send_abort(struct weft_tp *tp, struct weft_ep *peer, int culprit);
/* Raises the message of an earlier failure again (for a request posted after it). */
weft_result_t weft_tcp_peer_raise(const struct weft_ep *peer, int sock);
/* Completes every queued request of `peer` with `status` and forgets them. */
void weft_tcp_peer_flush(struct weft_ep *peer, struct weft_request *first,
                         weft_result_t first_status, weft_result_t status);

#endif /* WEFT_TRANSPORT_TCP_INTERNAL_H */
