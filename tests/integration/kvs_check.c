/*
 * kvs_check.c - one rank of a key-value exchange check: opens the process manager's service
 * (PMIx, PMI-2 or PMI-1), puts rank-specific values, fences, gets and checks every rank's.
 *   kvs_check [--len BYTES] [--expect CODE] [--expect-msg TEXT]
 * With --expect (REMOTE, TIMEOUT, ...), the exchange must fail with that code, and with
 * --expect-msg the message must contain that text: the bad-server tests.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "launcher/kvs.h"

static int failures;

static void check(int cond, int rank, const char *what)
{
    printf("%s - rank %d: %s\n", cond ? "ok" : "not ok", rank, what);
    if (!cond)
        failures++;
}

/* The code's name as --expect spells it. */
static const char *code_name(weft_result_t r)
{
    switch (r) {
    case WEFT_OK: return "OK";
    case WEFT_ERR_INVALID_ARG: return "INVALID_ARG";
    case WEFT_ERR_SYSTEM: return "SYSTEM";
    case WEFT_ERR_REMOTE: return "REMOTE";
    case WEFT_ERR_TIMEOUT: return "TIMEOUT";
    case WEFT_ERR_UNSUPPORTED: return "UNSUPPORTED";
    case WEFT_ERR_ABORTED: return "ABORTED";
    case WEFT_ERR_NO_MEMORY: return "NO_MEMORY";
    case WEFT_ERR_AUTH: return "AUTH";
    case WEFT_ERR_INTERNAL: return "INTERNAL";
    case WEFT_ERR_IN_PROGRESS: return "IN_PROGRESS";
    }
    return "?";
}

static uint8_t pattern(int rank, size_t i)
{
    /* Not periodic in 256, so a part read from the wrong offset shows. */
    return (uint8_t)(rank * 131 + (int)i * 7 + (int)(i / 256) * 29 + 1);
}

/* The whole exchange; the first failing call's result. */
static weft_result_t exchange(size_t len, int *rank_out)
{
    struct weft_kvs *kvs = NULL;
    int rank = -1, nranks = -1;
    weft_result_t res;
    uint8_t *mine = malloc(len + 1), *theirs = malloc(len + 1);
    char what[160];

    *rank_out = -1;
    if (mine == NULL || theirs == NULL)
        return WEFT_ERR_NO_MEMORY;
    WEFT_CHECK_GOTO(weft_kvs_open(&kvs, &rank, &nranks), res, out);
    *rank_out = rank;
    weft_log_set_rank(rank);
    printf("# %s on %s: rank %d of %d\n", weft_kvs_protocol(kvs), weft_log_hostname(), rank,
           nranks);
    check(rank >= 0 && rank < nranks, rank, "rank is within the job size");
    for (size_t i = 0; i < len; i++)
        mine[i] = pattern(rank, i);
    uint32_t small = (uint32_t)rank;
    WEFT_CHECK_GOTO(weft_kvs_put(kvs, "big", mine, len), res, out);
    WEFT_CHECK_GOTO(weft_kvs_put(kvs, "rank", &small, sizeof(small)), res, out);
    WEFT_CHECK_GOTO(weft_kvs_fence(kvs), res, out);
    int bad = 0;
    for (int r = 0; r < nranks; r++) {
        uint32_t got = UINT32_MAX;
        WEFT_CHECK_GOTO(weft_kvs_get(kvs, r, "rank", &got, sizeof(got)), res, out);
        WEFT_CHECK_GOTO(weft_kvs_get(kvs, r, "big", theirs, len), res, out);
        for (size_t i = 0; i < len; i++)
            bad += theirs[i] != pattern(r, i);
        bad += got != (uint32_t)r;
    }
    snprintf(what, sizeof(what), "got the %zu-byte and 4-byte values of all %d ranks intact", len,
             nranks);
    check(bad == 0, rank, what);
    res = WEFT_OK;
out:
    weft_kvs_close(kvs);
    free(mine);
    free(theirs);
    return res;
}

int main(int argc, char **argv)
{
    size_t len = 300; /* 600 hex digits: two wire keys with a 512-digit part limit */
    const char *expect = NULL, *expect_msg = NULL;
    int rank;

    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--len") == 0 && i + 1 < argc)
            len = (size_t)atol(argv[++i]);
        else if (strcmp(argv[i], "--expect") == 0 && i + 1 < argc)
            expect = argv[++i];
        else if (strcmp(argv[i], "--expect-msg") == 0 && i + 1 < argc)
            expect_msg = argv[++i];
        else {
            fprintf(stderr, "usage: kvs_check [--len BYTES] [--expect CODE] [--expect-msg TEXT]\n");
            return 2;
        }
    }
    if (weft_config_load() != WEFT_OK) {
        fprintf(stderr, "kvs_check: %s\n", weft_error_message());
        return 2;
    }
    printf("# available: %s\n", weft_kvs_available() ? weft_kvs_available() : "(none)");
    weft_result_t res = exchange(len, &rank);
    if (expect == NULL) {
        if (res != WEFT_OK) {
            printf("not ok - rank %d: exchange failed with %s: %s\n", rank, weft_strerror(res),
                   weft_error_message());
            return 1;
        }
        return failures ? 1 : 0;
    }
    printf("# rank %d: %s: %s\n", rank, weft_strerror(res), weft_error_message());
    check(strcmp(code_name(res), expect) == 0, rank, "failed with the expected code");
    if (expect_msg != NULL)
        check(strstr(weft_error_message(), expect_msg) != NULL, rank,
              "the message says what went wrong");
    return failures ? 1 : 0;
}
