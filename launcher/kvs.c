/*
 * kvs.c - picks the process manager's key-value service (PMIx, PMI-2, PMI-1) and, for the PMI
 * wire protocols, hex-encodes values and splits them into parts the server's limits allow.
 */
#include "launcher/kvs.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "launcher/kvs_pmi.h"

/* Longest hex part per wire key. PMI-1 servers read requests into lines of about 1024 bytes
 * (kvsname and key included), so stay well below that even when vallen_max allows more. */
#define PART_MAX 512
#define KEY_MAX 48 /* caller's key: room for "weft-<key>-<rank>-<part>" in 64 */

const char *weft_kvs_available(void)
{
    if (getenv("PMIX_RANK") != NULL && weft_kvs_pmix_built())
        return "PMIx";
    if (getenv("PMI_FD") != NULL)
        return weft_kvs_pmi_version() == 2 ? "PMI-2" : "PMI-1";
    return NULL;
}

const char *weft_kvs_protocol(const struct weft_kvs *kvs)
{
    switch (kvs->kind) {
    case WEFT_KVS_PMIX:
        return "PMIx";
    case WEFT_KVS_PMI2:
        return "PMI-2";
    case WEFT_KVS_PMI1:
        break;
    }
    return "PMI-1";
}

weft_result_t weft_kvs_open(struct weft_kvs **out, int *rank, int *nranks)
{
    const char *proto = weft_kvs_available();
    struct weft_kvs *kvs;
    weft_result_t res;

    *out = NULL;
    if (proto == NULL) {
        if (getenv("PMIX_RANK") != NULL)
            return WEFT_ERROR(WEFT_ERR_UNSUPPORTED,
                              "PMIX_RANK is set but PMIx support was not built (libpmix-dev "
                              "was missing at build time), and PMI_FD is not set");
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "no process manager key-value service: neither PMIX_RANK (PMIx) nor "
                          "PMI_FD (PMI-1/PMI-2) is set");
    }
    if (sodium_init() < 0)
        return WEFT_ERROR(WEFT_ERR_INTERNAL, "sodium_init failed");
    kvs = calloc(1, sizeof(*kvs));
    if (kvs == NULL)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "no memory for the key-value exchange");
    kvs->fd = -1;
    if (strcmp(proto, "PMIx") == 0) {
        kvs->kind = WEFT_KVS_PMIX;
        WEFT_CHECK_GOTO(weft_kvs_pmix_open(kvs), res, fail);
    } else {
        kvs->kind = strcmp(proto, "PMI-2") == 0 ? WEFT_KVS_PMI2 : WEFT_KVS_PMI1;
        WEFT_CHECK_GOTO(weft_kvs_pmi_open(kvs), res, fail);
    }
    *rank = kvs->rank;
    *nranks = kvs->nranks;
    *out = kvs;
    return WEFT_OK;
fail:
    if (kvs->kind != WEFT_KVS_PMIX && kvs->fd >= 0)
        weft_kvs_pmi_close(kvs); /* no finalize after a failure: it only closes PMI_FD */
    free(kvs);
    return res;
}

static weft_result_t check_key(const char *key)
{
    size_t n = strlen(key);

    if (n == 0 || n > KEY_MAX)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "key-value key '%s' must have 1 to %d characters",
                          key, KEY_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.';
        if (!ok)
            return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                              "key-value key '%s': only letters, digits, '_' and '.' travel "
                              "through every PMI",
                              key);
    }
    return WEFT_OK;
}

/* Hex characters per wire key, from the server's value limit. */
static weft_result_t part_len(const struct weft_kvs *kvs, size_t *out)
{
    size_t n = kvs->vallen_max > 0 ? kvs->vallen_max - 1 : 0;

    if (n > PART_MAX)
        n = PART_MAX;
    if (n < 2)
        return WEFT_ERROR(WEFT_ERR_REMOTE, "%s: the server allows values of only %zu characters",
                          weft_kvs_protocol(kvs), kvs->vallen_max);
    *out = n;
    return WEFT_OK;
}

static weft_result_t wire_key(const struct weft_kvs *kvs, const char *key, int rank, size_t part,
                              char *out, size_t cap)
{
    int n = snprintf(out, cap, "weft-%s-%d-%zu", key, rank, part);

    if (n < 0 || (size_t)n >= cap || (kvs->keylen_max > 0 && (size_t)n >= kvs->keylen_max))
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "%s: key %s of rank %d is longer than the server's %zu characters",
                          weft_kvs_protocol(kvs), key, rank, kvs->keylen_max);
    return WEFT_OK;
}

weft_result_t weft_kvs_put(struct weft_kvs *kvs, const char *key, const void *value, size_t len)
{
    char hex[2 * WEFT_KVS_VALUE_MAX + 1], part[PART_MAX + 1], wkey[128];
    size_t plen;

    WEFT_CHECK(check_key(key));
    if (len > WEFT_KVS_VALUE_MAX)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "key-value value of %zu bytes for %s (at most %d)",
                          len, key, WEFT_KVS_VALUE_MAX);
    if (kvs->kind == WEFT_KVS_PMIX)
        return weft_kvs_pmix_put(kvs, key, value, len);
    /* PMI values are text without spaces, ';' or '=': hex fits every server. */
    sodium_bin2hex(hex, sizeof(hex), value, len);
    WEFT_CHECK(part_len(kvs, &plen));
    for (size_t off = 0, i = 0; off < 2 * len || i == 0; off += plen, i++) {
        size_t n = 2 * len - off < plen ? 2 * len - off : plen;
        memcpy(part, hex + off, n);
        part[n] = '\0';
        WEFT_CHECK(wire_key(kvs, key, kvs->rank, i, wkey, sizeof(wkey)));
        WEFT_CHECK(weft_kvs_pmi_put(kvs, wkey, part));
    }
    WEFT_TRACE(BOOT, "%s put %s: %zu bytes", weft_kvs_protocol(kvs), key, len);
    return WEFT_OK;
}

weft_result_t weft_kvs_fence(struct weft_kvs *kvs)
{
    if (kvs->kind == WEFT_KVS_PMIX)
        return weft_kvs_pmix_fence(kvs);
    return weft_kvs_pmi_fence(kvs);
}

weft_result_t weft_kvs_get(struct weft_kvs *kvs, int rank, const char *key, void *value,
                           size_t len)
{
    char hex[2 * WEFT_KVS_VALUE_MAX + 1], part[PART_MAX + 2], wkey[128];
    size_t plen, got = 0;

    WEFT_CHECK(check_key(key));
    if (len > WEFT_KVS_VALUE_MAX)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "key-value value of %zu bytes for %s (at most %d)",
                          len, key, WEFT_KVS_VALUE_MAX);
    if (rank < 0 || rank >= kvs->nranks)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "key-value get of %s from rank %d of %d", key,
                          rank, kvs->nranks);
    if (kvs->kind == WEFT_KVS_PMIX)
        return weft_kvs_pmix_get(kvs, rank, key, value, len);
    WEFT_CHECK(part_len(kvs, &plen));
    for (size_t i = 0; got < 2 * len || i == 0; i++) {
        size_t want = 2 * len - got < plen ? 2 * len - got : plen;
        WEFT_CHECK(wire_key(kvs, key, rank, i, wkey, sizeof(wkey)));
        WEFT_CHECK(weft_kvs_pmi_get(kvs, rank, wkey, part, sizeof(part)));
        if (strlen(part) != want)
            return WEFT_ERROR(WEFT_ERR_REMOTE,
                              "%s: key %s of rank %d has %zu hex digits, expected %zu (did that "
                              "rank put %zu bytes?)",
                              weft_kvs_protocol(kvs), wkey, rank, strlen(part), want, len);
        memcpy(hex + got, part, want);
        got += want;
    }
    hex[got] = '\0';
    size_t bin_len = 0;
    if (sodium_hex2bin(value, len, hex, got, NULL, &bin_len, NULL) != 0 || bin_len != len)
        return WEFT_ERROR(WEFT_ERR_REMOTE, "%s: key %s of rank %d is not hex",
                          weft_kvs_protocol(kvs), key, rank);
    return WEFT_OK;
}

void weft_kvs_close(struct weft_kvs *kvs)
{
    if (kvs == NULL)
        return;
    if (kvs->kind == WEFT_KVS_PMIX)
        weft_kvs_pmix_close(kvs);
    else
        weft_kvs_pmi_close(kvs);
    free(kvs);
}
