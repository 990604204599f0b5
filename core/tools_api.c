/*
 * tools_api.c - include/weft_tools.h: the server/client pair without a launcher, and the
 * read-only views of the launcher, transports, knobs and build that weft-perf reports.
 */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/comm.h"
#include "core/config.h"
#include "core/dtype.h"
#include "core/error.h"
#include "gpu/gpu.h"
#include "launcher/bootstrap.h"
#include "launcher/launch_env.h"
#include "core/netif.h"
#include "transport/net.h"
#include "weft_tools.h"

#ifndef WEFT_FEATURES
#define WEFT_FEATURES "unknown"
#endif

#define PAIR_CONTEXT "weft-pair-secret-v1"
#define PAIR_OPEN "weft-pair-unauthenticated-v1"

static weft_result_t pair_secret(const char *text, uint8_t key[WEFT_BOOT_SECRET_BYTES])
{
    size_t bin_len = 0;
    const char *end = NULL;
    if (text == NULL) {
        crypto_generichash(key, WEFT_BOOT_SECRET_BYTES, (const unsigned char *)PAIR_OPEN,
                           strlen(PAIR_OPEN), NULL, 0);
        return WEFT_OK;
    }
    if (strlen(text) == 2 * WEFT_BOOT_SECRET_BYTES &&
        sodium_hex2bin(key, WEFT_BOOT_SECRET_BYTES, text, strlen(text), NULL, &bin_len, &end) ==
            0 &&
        bin_len == WEFT_BOOT_SECRET_BYTES && (end == NULL || *end == '\0'))
        return WEFT_OK;
    if (text[0] == '\0')
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_comm_init_pair: the secret is empty");
    crypto_generichash(key, WEFT_BOOT_SECRET_BYTES, (const unsigned char *)text, strlen(text),
                       (const unsigned char *)PAIR_CONTEXT, strlen(PAIR_CONTEXT));
    return WEFT_OK;
}

weft_result_t weft_comm_init_pair(weft_comm_t *comm, const char *host, int port,
                                  const char *secret)
{
    uint8_t key[WEFT_BOOT_SECRET_BYTES];
    weft_unique_id_t id;
    char spec[300];
    weft_error_clear();
    if (comm == NULL || port < 1 || port > 65535)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "weft_comm_init_pair: comm is NULL or port %d is outside 1..65535",
                          port);
    if (sodium_init() < 0)
        return WEFT_ERROR(WEFT_ERR_SYSTEM, "libsodium failed to initialize");
    WEFT_CHECK(weft_config_load());
    WEFT_CHECK(pair_secret(secret, key));
    weft_result_t res;
    if (host == NULL) {
        snprintf(spec, sizeof(spec), "0.0.0.0:%d", port);
        res = weft_boot_root_start_at(spec, key, &id);
    } else {
        struct weft_boot_id bid;
        memset(&bid, 0, sizeof(bid));
        snprintf(spec, sizeof(spec), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
        res = weft_sockaddr_parse(spec, &bid.root, &bid.root_len);
        if (res == WEFT_OK) {
            memcpy(bid.secret, key, sizeof(bid.secret));
            res = weft_boot_id_encode(&bid, &id);
        }
        sodium_memzero(&bid, sizeof(bid));
    }
    sodium_memzero(key, sizeof(key));
    if (res != WEFT_OK)
        return res;
    res = weft_comm_init_rank(comm, 2, id, host == NULL ? 0 : 1);
    sodium_memzero(&id, sizeof(id));
    return res;
}

weft_result_t weft_launcher(const char **source, int *nranks)
{
    struct weft_launch_plan p;
    if (source == NULL || nranks == NULL)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_launcher: source or nranks is NULL");
    *source = NULL;
    *nranks = 0;
    weft_result_t res = weft_launch_plan(&p);
    sodium_memzero(p.secret, sizeof(p.secret));
    if (res == WEFT_OK) {
        *source = p.l.source;
        *nranks = p.l.nranks;
        return WEFT_OK;
    }
    /* "No launcher" is an answer here, not a failure; a half-set environment is one. */
    if (res == WEFT_ERR_INVALID_ARG && strstr(weft_last_error(), "no launcher environment"))
        return WEFT_OK;
    return res;
}

weft_result_t weft_comm_peer_transport(weft_comm_t comm, int peer, const char **name)
{
    if (comm == NULL || name == NULL || peer < 0 || peer >= comm->nranks)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "weft_comm_peer_transport: bad communicator, name or peer %d", peer);
    *name = weft_net_peer_transport(comm->net, peer);
    return WEFT_OK;
}

weft_result_t weft_config_get(const char *name, char *value, size_t len)
{
    struct weft_config_row rows[256];
    if (name == NULL || value == NULL || len == 0)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_config_get: name or value is NULL");
    WEFT_CHECK(weft_config_load());
    size_t n = weft_config_rows(rows, sizeof(rows) / sizeof(rows[0]));
    for (size_t i = 0; i < n; i++) {
        if (strcmp(rows[i].name, name) == 0) {
            snprintf(value, len, "%s", rows[i].value ? rows[i].value : "");
            return WEFT_OK;
        }
    }
    return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_config_get: no knob named %s (weft-info "
                                            "--config lists them)", name);
}

weft_result_t weft_config_refresh(void)
{
    return weft_config_reload();
}

const char *weft_features(void)
{
    return WEFT_FEATURES;
}

int weft_gpu_present(const char **why)
{
    if (why != NULL)
        *why = weft_gpu_describe();
    return weft_gpu_available() ? 1 : 0;
}

double weft_dtype_get(weft_dtype_t dtype, const void *buf, size_t i)
{
    return weft_dtype_load(dtype, buf, i);
}

void weft_dtype_set(weft_dtype_t dtype, void *buf, size_t i, double v)
{
    weft_dtype_store(dtype, buf, i, v);
}

weft_result_t weft_set_error(weft_result_t code, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    return WEFT_ERROR(code, "%s", text);
}

weft_result_t weft_comm_failure_message(weft_comm_t comm, weft_result_t *failure, char *msg,
                                        size_t len)
{
    if (comm == NULL || failure == NULL || (msg == NULL && len > 0))
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "weft_comm_failure_message: comm, failure or msg is NULL");
    if (len > 0)
        msg[0] = '\0';
    *failure = weft_comm_failure(comm, msg, len);
    return WEFT_OK;
}
