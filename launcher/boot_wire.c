/*
 * boot_wire.c - encoding and decoding of the bootstrap's messages. Every field has a fixed
 * width and byte order; every decoder checks lengths before reading, so garbage or a
 * truncated message fails cleanly instead of reading past the buffer.
 */
#include "launcher/boot_wire.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "launcher/boot_sock.h"

struct writer {
    uint8_t *buf;
    size_t cap, off;
    bool overflow;
};

struct reader {
    const uint8_t *buf;
    size_t len, off;
    bool bad;
};

static void put(struct writer *w, const void *p, size_t n)
{
    if (w->overflow || n > w->cap - w->off) {
        w->overflow = true;
        return;
    }
    memcpy(w->buf + w->off, p, n);
    w->off += n;
}

static void put_u8(struct writer *w, uint8_t v)
{
    put(w, &v, 1);
}

static void put_u16(struct writer *w, uint16_t v)
{
    uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };
    put(w, b, 2);
}

static void put_u32(struct writer *w, uint32_t v)
{
    uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
    put(w, b, 4);
}

static const uint8_t *get(struct reader *r, size_t n)
{
    if (r->bad || n > r->len - r->off) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->buf + r->off;
    r->off += n;
    return p;
}

static uint8_t get_u8(struct reader *r)
{
    const uint8_t *p = get(r, 1);
    return p ? p[0] : 0;
}

static uint16_t get_u16(struct reader *r)
{
    const uint8_t *p = get(r, 2);
    return p ? (uint16_t)((p[0] << 8) | p[1]) : 0;
}

static uint32_t get_u32(struct reader *r)
{
    const uint8_t *p = get(r, 4);
    return p ? ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3]
             : 0;
}

/* A string: u16 length, then the bytes (no NUL). */
static void put_str(struct writer *w, const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    put_u16(w, (uint16_t)n);
    put(w, s, n);
}

static void get_str(struct reader *r, char *out, size_t cap)
{
    uint16_t n = get_u16(r);
    const uint8_t *p = get(r, n);

    if (!p || n >= cap || memchr(p, 0, n)) {
        r->bad = true;
        out[0] = '\0';
        return;
    }
    memcpy(out, p, n);
    out[n] = '\0';
}

/* An address: u8 family (0 none, 4, 6), u16 port, 4 or 16 address bytes, u32 scope (v6). */
static void put_addr(struct writer *w, const struct sockaddr_storage *ss, socklen_t len)
{
    if (len == 0 || ss->ss_family == AF_UNSPEC) {
        put_u8(w, 0);
    } else if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        put_u8(w, 4);
        put_u16(w, ntohs(in->sin_port));
        put(w, &in->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        put_u8(w, 6);
        put_u16(w, ntohs(in6->sin6_port));
        put(w, &in6->sin6_addr, 16);
        put_u32(w, in6->sin6_scope_id);
    } else {
        w->overflow = true; /* unencodable family: reported as an encode failure */
    }
}

static void get_addr(struct reader *r, struct sockaddr_storage *ss, socklen_t *len)
{
    uint8_t fam = get_u8(r);

    memset(ss, 0, sizeof(*ss));
    *len = 0;
    if (fam == 0)
        return;
    if (fam == 4) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(get_u16(r));
        const uint8_t *p = get(r, 4);
        if (p)
            memcpy(&in->sin_addr, p, 4);
        *len = sizeof(*in);
    } else if (fam == 6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(get_u16(r));
        const uint8_t *p = get(r, 16);
        if (p)
            memcpy(&in6->sin6_addr, p, 16);
        in6->sin6_scope_id = get_u32(r);
        *len = sizeof(*in6);
    } else {
        r->bad = true;
    }
}

void weft_boot_hdr_encode(const struct weft_boot_hdr *hdr, uint8_t out[WEFT_BOOT_HDR_BYTES])
{
    struct writer w = { out, WEFT_BOOT_HDR_BYTES, 0, false };

    put_u32(&w, WEFT_BOOT_WIRE_MAGIC);
    put_u16(&w, hdr->type);
    put_u16(&w, hdr->status);
    put_u32(&w, hdr->len);
}

weft_result_t weft_boot_hdr_decode(const uint8_t *in, size_t len, struct weft_boot_hdr *hdr)
{
    struct reader r = { in, len, 0, false };
    struct weft_boot_hdr h;

    if (len < WEFT_BOOT_HDR_BYTES)
        return WEFT_ERROR(WEFT_ERR_REMOTE, "bootstrap message header truncated (%zu of %d bytes)",
                          len, WEFT_BOOT_HDR_BYTES);
    uint32_t magic = get_u32(&r);
    h.type = get_u16(&r);
    h.status = get_u16(&r);
    h.len = get_u32(&r);
    if (magic != WEFT_BOOT_WIRE_MAGIC)
        return WEFT_ERROR(WEFT_ERR_REMOTE,
                          "not a Weft bootstrap message (magic 0x%08x): is another program "
                          "talking to this port?",
                          magic);
    if (h.type < WEFT_BOOT_MSG_HELLO || h.type > WEFT_BOOT_MSG_ERROR)
        return WEFT_ERROR(WEFT_ERR_REMOTE, "unknown bootstrap message type %u", h.type);
    if (h.len > WEFT_BOOT_MSG_MAX)
        return WEFT_ERROR(WEFT_ERR_REMOTE, "bootstrap message of %u bytes is over the limit %u",
                          h.len, WEFT_BOOT_MSG_MAX);
    *hdr = h;
    return WEFT_OK;
}

weft_result_t weft_boot_hello_encode(const struct weft_boot_peer *peer, uint8_t *buf,
                                     size_t cap, size_t *len)
{
    struct writer w = { buf, cap, 0, false };

    put_u32(&w, (uint32_t)peer->rank);
    put_u32(&w, (uint32_t)peer->nranks);
    put_u32(&w, (uint32_t)peer->pid);
    put_str(&w, peer->host, WEFT_BOOT_HOST_MAX - 1);
    put_addr(&w, &peer->addr, peer->addr_len);
    if (w.overflow)
        return WEFT_ERROR(WEFT_ERR_INTERNAL, "cannot encode the bootstrap hello of rank %d",
                          peer->rank);
    *len = w.off;
    return WEFT_OK;
}

weft_result_t weft_boot_hello_decode(const uint8_t *buf, size_t len, struct weft_boot_peer *peer)
{
    struct reader r = { buf, len, 0, false };
    struct weft_boot_peer p;

    memset(&p, 0, sizeof(p));
    p.rank = (int32_t)get_u32(&r);
    p.nranks = (int32_t)get_u32(&r);
    p.pid = (int32_t)get_u32(&r);
    get_str(&r, p.host, sizeof(p.host));
    get_addr(&r, &p.addr, &p.addr_len);
    if (r.bad || r.off != len)
        return WEFT_ERROR(WEFT_ERR_REMOTE, "malformed bootstrap hello (%zu bytes)", len);
    *peer = p;
    return WEFT_OK;
}

weft_result_t weft_boot_table_encode(const struct weft_boot_peer *peers, int n, uint8_t **buf,
                                     size_t *len)
{
    size_t cap = 4 + (size_t)n * (4 + 2 + WEFT_BOOT_HOST_MAX + 1 + 2 + 16 + 4);
    struct writer w = { malloc(cap), cap, 0, false };

    if (!w.buf)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "bootstrap table of %d ranks", n);
    put_u32(&w, (uint32_t)n);
    for (int i = 0; i < n; i++) {
        put_u32(&w, (uint32_t)peers[i].pid);
        put_str(&w, peers[i].host, WEFT_BOOT_HOST_MAX - 1);
        put_addr(&w, &peers[i].addr, peers[i].addr_len);
    }
    if (w.overflow) {
        free(w.buf);
        return WEFT_ERROR(WEFT_ERR_INTERNAL, "cannot encode the bootstrap table of %d ranks", n);
    }
    *buf = w.buf;
    *len = w.off;
    return WEFT_OK;
}

weft_result_t weft_boot_table_decode(const uint8_t *buf, size_t len, struct weft_boot_peer **peers,
                                     int *n)
{
    struct reader r = { buf, len, 0, false };
    uint32_t count = get_u32(&r);

    /* Every entry takes at least 7 bytes: refuse counts the buffer cannot hold before
     * allocating anything. */
    if (r.bad || count == 0 || count > WEFT_BOOT_NRANKS_MAX || count > (len - 4) / 7)
        return WEFT_ERROR(WEFT_ERR_REMOTE, "malformed bootstrap table (%zu bytes, %u ranks)",
                          len, count);
    struct weft_boot_peer *p = calloc(count, sizeof(*p));
    if (!p)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "bootstrap table of %u ranks", count);
    for (uint32_t i = 0; i < count && !r.bad; i++) {
        p[i].rank = (int)i;
        p[i].nranks = (int)count;
        p[i].pid = (int32_t)get_u32(&r);
        get_str(&r, p[i].host, sizeof(p[i].host));
        get_addr(&r, &p[i].addr, &p[i].addr_len);
    }
    if (r.bad || r.off != len) {
        free(p);
        return WEFT_ERROR(WEFT_ERR_REMOTE, "malformed bootstrap table (%zu bytes, %u ranks)",
                          len, count);
    }
    *peers = p;
    *n = (int)count;
    return WEFT_OK;
}

weft_result_t weft_boot_errmsg_encode(const char *msg, uint8_t *buf, size_t cap, size_t *len)
{
    struct writer w = { buf, cap, 0, false };

    put_str(&w, msg, WEFT_BOOT_ERRMSG_MAX - 1);
    if (w.overflow)
        return WEFT_ERROR(WEFT_ERR_INTERNAL, "cannot encode a bootstrap error message");
    *len = w.off;
    return WEFT_OK;
}

weft_result_t weft_boot_errmsg_decode(const uint8_t *buf, size_t len, char *msg, size_t cap)
{
    struct reader r = { buf, len, 0, false };
    char text[WEFT_BOOT_ERRMSG_MAX];

    get_str(&r, text, sizeof(text));
    if (r.bad || r.off != len)
        return WEFT_ERROR(WEFT_ERR_REMOTE, "malformed bootstrap error message (%zu bytes)", len);
    snprintf(msg, cap, "%s", text);
    return WEFT_OK;
}

weft_result_t weft_boot_msg_send(int fd, uint16_t type, uint16_t status, const void *payload,
                                 size_t len, double deadline, const char *what)
{
    struct weft_boot_hdr hdr = { type, status, (uint32_t)len };
    uint8_t h[WEFT_BOOT_HDR_BYTES];

    if (len > WEFT_BOOT_MSG_MAX)
        return WEFT_ERROR(WEFT_ERR_INTERNAL, "bootstrap message of %zu bytes to %s is too large",
                          len, what);
    weft_boot_hdr_encode(&hdr, h);
    WEFT_CHECK(weft_boot_send_all(fd, h, sizeof(h), deadline, what));
    return weft_boot_send_all(fd, payload, len, deadline, what);
}

weft_result_t weft_boot_msg_recv(int fd, size_t max, double deadline, const char *what,
                                 struct weft_boot_hdr *hdr, uint8_t **payload)
{
    uint8_t h[WEFT_BOOT_HDR_BYTES];
    struct weft_boot_hdr got;
    weft_result_t res;

    WEFT_CHECK(weft_boot_recv_all(fd, h, sizeof(h), deadline, what));
    WEFT_CHECK(weft_boot_hdr_decode(h, sizeof(h), &got));
    if (got.len > max)
        return WEFT_ERROR(WEFT_ERR_REMOTE, "%s sent a bootstrap message of %u bytes (limit %zu)",
                          what, got.len, max);
    uint8_t *p = malloc(got.len ? got.len : 1);
    if (!p)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "bootstrap message of %u bytes", got.len);
    WEFT_CHECK_GOTO(weft_boot_recv_all(fd, p, got.len, deadline, what), res, fail);
    *hdr = got;
    *payload = p;
    return WEFT_OK;
fail:
    free(p);
    return res;
}
