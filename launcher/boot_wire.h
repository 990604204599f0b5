/*
 * boot_wire.h - the bootstrap's messages between ranks and the root: a 12-byte header
 * (magic, type, status, payload length; network byte order) and explicit payload encodings.
 * Errors travel as ERROR messages whose status is a weft_result_t.
 */
#ifndef WEFT_LAUNCHER_BOOT_WIRE_H
#define WEFT_LAUNCHER_BOOT_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "launcher/bootstrap.h"
#include "weft.h"

#define WEFT_BOOT_WIRE_MAGIC 0x57464254u /* "WFBT" */
#define WEFT_BOOT_HDR_BYTES 12
#define WEFT_BOOT_HELLO_MAX 256        /* largest HELLO payload */
#define WEFT_BOOT_MSG_MAX (64u << 20)  /* largest payload of any message */
#define WEFT_BOOT_ERRMSG_MAX 1024      /* longest error text carried */
#define WEFT_BOOT_NRANKS_MAX (1 << 22) /* sanity bound on nranks */

enum weft_boot_msg_type {
    WEFT_BOOT_MSG_HELLO = 1, /* rank -> root: who I am */
    WEFT_BOOT_MSG_TABLE = 2, /* root -> rank: everyone */
    WEFT_BOOT_MSG_ERROR = 3  /* root -> rank: status + text */
};

struct weft_boot_hdr {
    uint16_t type;
    uint16_t status; /* weft_result_t for ERROR, else 0 */
    uint32_t len;    /* payload bytes that follow */
};

/* What a rank announces; in the table, one per rank. addr_len 0: no ring listener. */
struct weft_boot_peer {
    int rank;
    int nranks;
    int pid;
    char host[WEFT_BOOT_HOST_MAX];
    struct sockaddr_storage addr;
    socklen_t addr_len;
};

void weft_boot_hdr_encode(const struct weft_boot_hdr *hdr, uint8_t out[WEFT_BOOT_HDR_BYTES]);
/* Fails with WEFT_ERR_REMOTE on a short buffer, a bad magic, an unknown type or a length
 * over WEFT_BOOT_MSG_MAX. */
weft_result_t weft_boot_hdr_decode(const uint8_t *in, size_t len, struct weft_boot_hdr *hdr);

/* Encoders write at most `cap` bytes and set *len (WEFT_ERR_INTERNAL if cap is too small). */
weft_result_t weft_boot_hello_encode(const struct weft_boot_peer *peer, uint8_t *buf,
                                     size_t cap, size_t *len);
weft_result_t weft_boot_hello_decode(const uint8_t *buf, size_t len, struct weft_boot_peer *peer);
/* The table: allocates *buf (free()). */
weft_result_t weft_boot_table_encode(const struct weft_boot_peer *peers, int n, uint8_t **buf,
                                     size_t *len);
/* Allocates *peers (free()). Entry i must be rank i. */
weft_result_t weft_boot_table_decode(const uint8_t *buf, size_t len, struct weft_boot_peer **peers,
                                     int *n);
weft_result_t weft_boot_errmsg_encode(const char *msg, uint8_t *buf, size_t cap, size_t *len);
weft_result_t weft_boot_errmsg_decode(const uint8_t *buf, size_t len, char *msg, size_t cap);

/* A whole message over a socket, bounded by `deadline`. */
weft_result_t weft_boot_msg_send(int fd, uint16_t type, uint16_t status, const void *payload,
                                 size_t len, double deadline, const char *what);
/* Receives one message of at most `max` payload bytes; *payload is malloc'ed (free()). */
weft_result_t weft_boot_msg_recv(int fd, size_t max, double deadline, const char *what,
                                 struct weft_boot_hdr *hdr, uint8_t **payload);

#endif /* WEFT_LAUNCHER_BOOT_WIRE_H */
