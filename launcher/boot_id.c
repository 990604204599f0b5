/*
 * boot_id.c - the 128-byte unique id (magic, version, root address, secret) and its
 * environment form WEFT_ROOT=host:port, WEFT_SECRET=<64 hex digits>.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "core/error.h"
#include "core/netif.h"
#include "launcher/boot_auth.h"
#include "launcher/bootstrap.h"

#define ID_MAGIC 0x57454654u /* "WEFT" */
#define ID_VERSION 1
#define OFF_MAGIC 0
#define OFF_VERSION 4
#define OFF_FAMILY 6
#define OFF_PORT 8
#define OFF_ADDR 12
#define OFF_SCOPE 28
#define OFF_SECRET 32

static const char env_help[] =
    "start the program with weft-run, or set both WEFT_ROOT=host:port and WEFT_SECRET=<64 "
    "hex digits> (as weft-run does)";

static void put_be(uint8_t *p, uint32_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint32_t get_be(const uint8_t *p, int bytes)
{
    uint32_t v = 0;

    for (int i = 0; i < bytes; i++)
        v = (v << 8) | p[i];
    return v;
}

weft_result_t weft_boot_id_encode(const struct weft_boot_id *in, weft_unique_id_t *out)
{
    uint8_t b[WEFT_UNIQUE_ID_BYTES];

    memset(b, 0, sizeof(b));
    put_be(b + OFF_MAGIC, ID_MAGIC, 4);
    put_be(b + OFF_VERSION, ID_VERSION, 2);
    if (in->root.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&in->root;
        b[OFF_FAMILY] = 4;
        put_be(b + OFF_PORT, ntohs(a->sin_port), 2);
        memcpy(b + OFF_ADDR, &a->sin_addr, 4);
    } else if (in->root.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&in->root;
        b[OFF_FAMILY] = 6;
        put_be(b + OFF_PORT, ntohs(a->sin6_port), 2);
        memcpy(b + OFF_ADDR, &a->sin6_addr, 16);
        put_be(b + OFF_SCOPE, a->sin6_scope_id, 4);
    } else {
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "cannot encode a root address of family %d",
                          in->root.ss_family);
    }
    memcpy(b + OFF_SECRET, in->secret, WEFT_BOOT_SECRET_BYTES);
    memcpy(out->internal, b, sizeof(b));
    sodium_memzero(b, sizeof(b));
    return WEFT_OK;
}

weft_result_t weft_boot_id_decode(const weft_unique_id_t *in, struct weft_boot_id *out)
{
    const uint8_t *b = (const uint8_t *)in->internal;
    struct weft_boot_id id;
    uint32_t magic = get_be(b + OFF_MAGIC, 4);
    uint32_t version = get_be(b + OFF_VERSION, 2);

    if (magic != ID_MAGIC)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "not a Weft unique id (magic 0x%08x): pass every rank the id that "
                          "weft_get_unique_id created",
                          magic);
    if (version != ID_VERSION)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "unique id version %u, this Weft understands version %d: are all ranks "
                          "running the same Weft?",
                          version, ID_VERSION);
    memset(&id, 0, sizeof(id));
    if (b[OFF_FAMILY] == 4) {
        struct sockaddr_in *a = (struct sockaddr_in *)&id.root;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)get_be(b + OFF_PORT, 2));
        memcpy(&a->sin_addr, b + OFF_ADDR, 4);
        id.root_len = sizeof(*a);
    } else if (b[OFF_FAMILY] == 6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&id.root;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)get_be(b + OFF_PORT, 2));
        memcpy(&a->sin6_addr, b + OFF_ADDR, 16);
        a->sin6_scope_id = get_be(b + OFF_SCOPE, 4);
        id.root_len = sizeof(*a);
    } else {
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "unique id holds an unknown address family %u",
                          b[OFF_FAMILY]);
    }
    memcpy(id.secret, b + OFF_SECRET, WEFT_BOOT_SECRET_BYTES);
    *out = id;
    sodium_memzero(&id, sizeof(id));
    return WEFT_OK;
}

weft_result_t weft_boot_id_from_env(weft_unique_id_t *id)
{
    struct weft_boot_id bid;
    const char *root, *secret, *end = NULL;
    size_t bin_len = 0;
    weft_result_t res;

    if (sodium_init() < 0)
        return WEFT_ERROR(WEFT_ERR_SYSTEM, "libsodium failed to initialize");
    WEFT_CHECK(weft_config_load());
    root = weft_config_str(WEFT_CFG_ROOT);
    secret = weft_config_str(WEFT_CFG_SECRET);
    if (!root || !root[0] || !secret || !secret[0])
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "WEFT_ROOT and WEFT_SECRET are not both set: %s",
                          env_help);
    memset(&bid, 0, sizeof(bid));
    res = weft_sockaddr_parse(root, &bid.root, &bid.root_len);
    if (res != WEFT_OK) {
        char why[256];
        snprintf(why, sizeof(why), "%s", weft_error_message());
        return WEFT_ERROR(res, "WEFT_ROOT=\"%s\" is not a host:port address (%s): %s", root,
                          why, env_help);
    }
    if (bid.root.ss_family == AF_INET
            ? ((struct sockaddr_in *)&bid.root)->sin_port == 0
            : ((struct sockaddr_in6 *)&bid.root)->sin6_port == 0)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "WEFT_ROOT=\"%s\" has no port: %s", root,
                          env_help);
    if (strlen(secret) != 2 * WEFT_BOOT_SECRET_BYTES ||
        sodium_hex2bin(bid.secret, sizeof(bid.secret), secret, strlen(secret), NULL, &bin_len,
                       &end) != 0 ||
        bin_len != WEFT_BOOT_SECRET_BYTES || (end && *end))
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "WEFT_SECRET is not %d hex digits (it has %zu characters): %s",
                          2 * WEFT_BOOT_SECRET_BYTES, strlen(secret), env_help);
    res = weft_boot_id_encode(&bid, id);
    sodium_memzero(&bid, sizeof(bid));
    return res;
}

weft_result_t weft_boot_id_to_env(const weft_unique_id_t *id, char *root, size_t root_len,
                                  char *secret_hex, size_t secret_len)
{
    struct weft_boot_id bid;
    char addr[WEFT_ADDR_STRLEN];

    if (secret_len < 2 * WEFT_BOOT_SECRET_BYTES + 1 || root_len < 2)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "buffers too small for WEFT_ROOT (%zu) or WEFT_SECRET (%zu, need %d)",
                          root_len, secret_len, 2 * WEFT_BOOT_SECRET_BYTES + 1);
    WEFT_CHECK(weft_boot_id_decode(id, &bid));
    weft_sockaddr_str((const struct sockaddr *)&bid.root, addr, sizeof(addr));
    if (strlen(addr) >= root_len)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "WEFT_ROOT \"%s\" does not fit in %zu bytes",
                          addr, root_len);
    snprintf(root, root_len, "%s", addr);
    sodium_bin2hex(secret_hex, secret_len, bid.secret, sizeof(bid.secret));
    sodium_memzero(&bid, sizeof(bid));
    return WEFT_OK;
}

weft_result_t weft_boot_id_job_tag(const weft_unique_id_t *id, char *out, size_t len)
{
    struct weft_boot_id bid;

    if (len < 17)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "job tag buffer of %zu bytes (need 17)", len);
    WEFT_CHECK(weft_boot_id_decode(id, &bid));
    weft_boot_derive_tag(bid.secret, out, len);
    sodium_memzero(&bid, sizeof(bid));
    return WEFT_OK;
}
