/*
 * boot_auth.c - challenge-response on the job secret with libsodium's HMAC-SHA-256. Fresh
 * nonces on both sides make every proof single-use; distinct labels for the two directions
 * stop a peer from reflecting our own proof back at us.
 */
#include "launcher/boot_auth.h"

#include <sodium.h>
#include <string.h>

#include "core/error.h"
#include "launcher/boot_sock.h"

#define LABEL_CLIENT "weft-client"
#define LABEL_ROOT "weft-root"
#define LABEL_MAX 16

static size_t auth_message(const char *label, const uint8_t *a, const uint8_t *b,
                           uint8_t msg[LABEL_MAX + 2 * WEFT_BOOT_NONCE_BYTES])
{
    size_t n = strnlen(label, LABEL_MAX);

    memcpy(msg, label, n);
    memcpy(msg + n, a, WEFT_BOOT_NONCE_BYTES);
    memcpy(msg + n + WEFT_BOOT_NONCE_BYTES, b, WEFT_BOOT_NONCE_BYTES);
    return n + 2 * WEFT_BOOT_NONCE_BYTES;
}

void weft_boot_auth_mac(const uint8_t secret[WEFT_BOOT_SECRET_BYTES], const char *label,
                        const uint8_t a[WEFT_BOOT_NONCE_BYTES],
                        const uint8_t b[WEFT_BOOT_NONCE_BYTES], uint8_t mac[WEFT_BOOT_MAC_BYTES])
{
    uint8_t msg[LABEL_MAX + 2 * WEFT_BOOT_NONCE_BYTES];
    size_t n = auth_message(label, a, b, msg);

    crypto_auth_hmacsha256(mac, msg, n, secret);
}

bool weft_boot_auth_mac_ok(const uint8_t secret[WEFT_BOOT_SECRET_BYTES], const char *label,
                           const uint8_t a[WEFT_BOOT_NONCE_BYTES],
                           const uint8_t b[WEFT_BOOT_NONCE_BYTES],
                           const uint8_t mac[WEFT_BOOT_MAC_BYTES])
{
    uint8_t msg[LABEL_MAX + 2 * WEFT_BOOT_NONCE_BYTES];
    size_t n = auth_message(label, a, b, msg);

    return crypto_auth_hmacsha256_verify(mac, msg, n, secret) == 0;
}

bool weft_boot_auth_judge(const uint8_t secret[WEFT_BOOT_SECRET_BYTES], struct weft_boot_auth *st,
                          const uint8_t reply[WEFT_BOOT_AUTH_REPLY_BYTES],
                          uint8_t verdict[WEFT_BOOT_AUTH_VERDICT_BYTES])
{
    memcpy(st->nonce_client, reply, WEFT_BOOT_NONCE_BYTES);
    memset(verdict, 0, WEFT_BOOT_AUTH_VERDICT_BYTES);
    if (!weft_boot_auth_mac_ok(secret, LABEL_CLIENT, st->nonce_root, st->nonce_client,
                               reply + WEFT_BOOT_NONCE_BYTES)) {
        /* Tell the peer it was refused, so it fails with WEFT_ERR_AUTH instead of waiting. */
        verdict[0] = 1;
        return false;
    }
    weft_boot_auth_mac(secret, LABEL_ROOT, st->nonce_client, st->nonce_root, verdict + 1);
    return true;
}

weft_result_t weft_boot_auth_server_begin(int fd, struct weft_boot_auth *st, double deadline,
                                          const char *what)
{
    randombytes_buf(st->nonce_root, sizeof(st->nonce_root));
    return weft_boot_send_all(fd, st->nonce_root, sizeof(st->nonce_root), deadline, what);
}

weft_result_t weft_boot_auth_server_finish(int fd, const uint8_t secret[WEFT_BOOT_SECRET_BYTES],
                                           struct weft_boot_auth *st, double deadline,
                                           const char *what)
{
    uint8_t reply[WEFT_BOOT_AUTH_REPLY_BYTES];
    uint8_t verdict[WEFT_BOOT_AUTH_VERDICT_BYTES];

    WEFT_CHECK(weft_boot_recv_all(fd, reply, sizeof(reply), deadline, what));
    bool ok = weft_boot_auth_judge(secret, st, reply, verdict);
    weft_result_t res = weft_boot_send_all(fd, verdict, sizeof(verdict), deadline, what);
    if (!ok)
        return WEFT_ERROR(WEFT_ERR_AUTH, "%s failed to prove the job secret (wrong WEFT_SECRET, "
                                         "or not part of this job)",
                          what);
    return res;
}

weft_result_t weft_boot_auth_client_respond(int fd, const uint8_t secret[WEFT_BOOT_SECRET_BYTES],
                                            struct weft_boot_auth *st, double deadline,
                                            const char *what)
{
    uint8_t reply[WEFT_BOOT_AUTH_REPLY_BYTES];

    WEFT_CHECK(weft_boot_recv_all(fd, st->nonce_root, sizeof(st->nonce_root), deadline, what));
    randombytes_buf(st->nonce_client, sizeof(st->nonce_client));
    memcpy(reply, st->nonce_client, WEFT_BOOT_NONCE_BYTES);
    weft_boot_auth_mac(secret, LABEL_CLIENT, st->nonce_root, st->nonce_client,
                       reply + WEFT_BOOT_NONCE_BYTES);
    return weft_boot_send_all(fd, reply, sizeof(reply), deadline, what);
}

weft_result_t weft_boot_auth_client_finish(int fd, const uint8_t secret[WEFT_BOOT_SECRET_BYTES],
                                           const struct weft_boot_auth *st, double deadline,
                                           const char *what)
{
    uint8_t verdict[WEFT_BOOT_AUTH_VERDICT_BYTES];

    WEFT_CHECK(weft_boot_recv_all(fd, verdict, sizeof(verdict), deadline, what));
    if (verdict[0] != 0)
        return WEFT_ERROR(WEFT_ERR_AUTH,
                          "%s rejected our proof of the job secret: this process's WEFT_SECRET "
                          "(or unique id) is not the job's",
                          what);
    if (!weft_boot_auth_mac_ok(secret, LABEL_ROOT, st->nonce_client, st->nonce_root,
                               verdict + 1))
        return WEFT_ERROR(WEFT_ERR_AUTH,
                          "%s failed to prove the job secret: it is not part of this job", what);
    return WEFT_OK;
}

weft_result_t weft_boot_auth_accept(int fd, const uint8_t secret[WEFT_BOOT_SECRET_BYTES],
                                    double deadline, const char *what)
{
    struct weft_boot_auth st;

    WEFT_CHECK(weft_boot_auth_server_begin(fd, &st, deadline, what));
    return weft_boot_auth_server_finish(fd, secret, &st, deadline, what);
}

weft_result_t weft_boot_auth_connect(int fd, const uint8_t secret[WEFT_BOOT_SECRET_BYTES],
                                     double deadline, const char *what)
{
    struct weft_boot_auth st;

    WEFT_CHECK(weft_boot_auth_client_respond(fd, secret, &st, deadline, what));
    return weft_boot_auth_client_finish(fd, secret, &st, deadline, what);
}

void weft_boot_derive_key(const uint8_t secret[WEFT_BOOT_SECRET_BYTES], uint8_t key[32])
{
    static const char ctx[] = "weft-transport-key-v1";

    crypto_generichash(key, 32, (const uint8_t *)ctx, sizeof(ctx) - 1, secret,
                       WEFT_BOOT_SECRET_BYTES);
}

void weft_boot_derive_tag(const uint8_t secret[WEFT_BOOT_SECRET_BYTES], char *out, size_t len)
{
    static const char ctx[] = "weft-job-tag-v1";
    uint8_t h[crypto_generichash_BYTES_MIN];

    if (len == 0)
        return;
    crypto_generichash(h, sizeof(h), (const uint8_t *)ctx, sizeof(ctx) - 1, secret,
                       WEFT_BOOT_SECRET_BYTES);
    /* 8 bytes are plenty to keep concurrent jobs apart in /dev/shm names. */
    sodium_bin2hex(out, len < 17 ? len : 17, h, 8);
}
