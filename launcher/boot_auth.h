/*
 * boot_auth.h - mutual challenge-response on the job secret. The accepting side (root, or a
 * rank accepting its ring predecessor) sends a nonce; the connecting side answers with its
 * own nonce and HMAC-SHA-256(secret, "weft-client" || nonce_root || nonce_client); the
 * acceptor checks it and answers a verdict byte and HMAC(secret, "weft-root" || nonce_client
 * || nonce_root), which the connector checks. Both halves are split in two steps so that a
 * ring of ranks can interleave them without waiting on each other in a cycle.
 */
#ifndef WEFT_LAUNCHER_BOOT_AUTH_H
#define WEFT_LAUNCHER_BOOT_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "launcher/bootstrap.h"
#include "weft.h"

#define WEFT_BOOT_NONCE_BYTES 32
#define WEFT_BOOT_MAC_BYTES 32
#define WEFT_BOOT_AUTH_REPLY_BYTES (WEFT_BOOT_NONCE_BYTES + WEFT_BOOT_MAC_BYTES)
#define WEFT_BOOT_AUTH_VERDICT_BYTES (1 + WEFT_BOOT_MAC_BYTES)

struct weft_boot_auth {
    uint8_t nonce_root[WEFT_BOOT_NONCE_BYTES];
    uint8_t nonce_client[WEFT_BOOT_NONCE_BYTES];
};

/* HMAC-SHA-256(secret, label || a || b). */
void weft_boot_auth_mac(const uint8_t secret[WEFT_BOOT_SECRET_BYTES], const char *label,
                        const uint8_t a[WEFT_BOOT_NONCE_BYTES],
                        const uint8_t b[WEFT_BOOT_NONCE_BYTES], uint8_t mac[WEFT_BOOT_MAC_BYTES]);
bool weft_boot_auth_mac_ok(const uint8_t secret[WEFT_BOOT_SECRET_BYTES], const char *label,
                           const uint8_t a[WEFT_BOOT_NONCE_BYTES],
                           const uint8_t b[WEFT_BOOT_NONCE_BYTES],
                           const uint8_t mac[WEFT_BOOT_MAC_BYTES]);
/* The acceptor's answer to a client reply (64 bytes): fills `verdict` (33 bytes) and returns
 * whether the client proved the secret. */
bool weft_boot_auth_judge(const uint8_t secret[WEFT_BOOT_SECRET_BYTES], struct weft_boot_auth *st,
                          const uint8_t reply[WEFT_BOOT_AUTH_REPLY_BYTES],
                          uint8_t verdict[WEFT_BOOT_AUTH_VERDICT_BYTES]);

/* Acceptor: send the nonce. */
weft_result_t weft_boot_auth_server_begin(int fd, struct weft_boot_auth *st, double deadline,
                                          const char *what);
/* Acceptor: check the reply and send the verdict. WEFT_ERR_AUTH if the peer failed. */
weft_result_t weft_boot_auth_server_finish(int fd, const uint8_t secret[WEFT_BOOT_SECRET_BYTES],
                                           struct weft_boot_auth *st, double deadline,
                                           const char *what);
/* Connector: receive the nonce and send the reply. */
weft_result_t weft_boot_auth_client_respond(int fd, const uint8_t secret[WEFT_BOOT_SECRET_BYTES],
                                            struct weft_boot_auth *st, double deadline,
                                            const char *what);
/* Connector: receive and check the verdict. WEFT_ERR_AUTH if either side failed. */
weft_result_t weft_boot_auth_client_finish(int fd, const uint8_t secret[WEFT_BOOT_SECRET_BYTES],
                                           const struct weft_boot_auth *st, double deadline,
                                           const char *what);

/* Both steps of one side. */
weft_result_t weft_boot_auth_accept(int fd, const uint8_t secret[WEFT_BOOT_SECRET_BYTES],
                                    double deadline, const char *what);
weft_result_t weft_boot_auth_connect(int fd, const uint8_t secret[WEFT_BOOT_SECRET_BYTES],
                                     double deadline, const char *what);

/* Keys derived from the secret (keyed BLAKE2b with a fixed context per use). */
void weft_boot_derive_key(const uint8_t secret[WEFT_BOOT_SECRET_BYTES], uint8_t key[32]);
/* 16 hex digits and a NUL into out (len >= 17). */
void weft_boot_derive_tag(const uint8_t secret[WEFT_BOOT_SECRET_BYTES], char *out, size_t len);

#endif /* WEFT_LAUNCHER_BOOT_AUTH_H */
