/*
 * boot_auth.c - fuzz target: the bootstrap's challenge-response (launcher/boot_auth.c) as a
 * stranger drives it: the first byte picks the side. 0: the acceptor judges a client reply;
 * 1 and 2: the acceptor and the connector over a socketpair whose other end sends the input
 * and hangs up. Only the job secret may pass, and a correct reply must always pass.
 */
#include <sodium.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "launcher/boot_auth.h"
#include "launcher/boot_sock.h"
#include "tests/fuzz/fuzz.h"

static const uint8_t secret[WEFT_BOOT_SECRET_BYTES] = "weft fuzz secret, 32 bytes long";

static void judge(const uint8_t *p, size_t n)
{
    struct weft_boot_auth st;
    uint8_t reply[WEFT_BOOT_AUTH_REPLY_BYTES], verdict[WEFT_BOOT_AUTH_VERDICT_BYTES];

    if (n < WEFT_BOOT_NONCE_BYTES + WEFT_BOOT_AUTH_REPLY_BYTES)
        return;
    memcpy(st.nonce_root, p, WEFT_BOOT_NONCE_BYTES);
    memcpy(reply, p + WEFT_BOOT_NONCE_BYTES, sizeof(reply));
    bool ok = weft_boot_auth_judge(secret, &st, reply, verdict);
    FUZZ_ASSERT(ok == (verdict[0] == 0));
    /* The honest reply for the same nonces passes, and its verdict convinces the client. */
    weft_boot_auth_mac(secret, "weft-client", st.nonce_root, reply, reply + WEFT_BOOT_NONCE_BYTES);
    FUZZ_ASSERT(weft_boot_auth_judge(secret, &st, reply, verdict));
    FUZZ_ASSERT(verdict[0] == 0);
    FUZZ_ASSERT(weft_boot_auth_mac_ok(secret, "weft-root", st.nonce_client, st.nonce_root,
                                      verdict + 1));
}

/* One side of the handshake against a peer that sends `p` and closes. */
static void over_socket(bool acceptor, const uint8_t *p, size_t n)
{
    int sv[2];
    struct weft_boot_auth st;
    double deadline = weft_boot_now() + 10.0;

    if (n > 512 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return;
    if (n)
        FUZZ_ASSERT(write(sv[1], p, n) == (ssize_t)n);
    shutdown(sv[1], SHUT_WR);
    weft_result_t r;
    if (acceptor) {
        r = weft_boot_auth_server_begin(sv[0], &st, deadline, "fuzz peer");
        if (r == WEFT_OK)
            r = weft_boot_auth_server_finish(sv[0], secret, &st, deadline, "fuzz peer");
    } else {
        r = weft_boot_auth_client_respond(sv[0], secret, &st, deadline, "fuzz peer");
        if (r == WEFT_OK)
            r = weft_boot_auth_client_finish(sv[0], secret, &st, deadline, "fuzz peer");
    }
    /* The nonces are fresh: bytes chosen in advance cannot carry a valid MAC. */
    FUZZ_ASSERT(r != WEFT_OK);
    close(sv[0]);
    close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0: judge(data + 1, size - 1); break;
    case 1: over_socket(true, data + 1, size - 1); break;
    default: over_socket(false, data + 1, size - 1); break;
    }
    return 0;
}
