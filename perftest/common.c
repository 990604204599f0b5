/*
 * common.c - helpers every weft-perf subcommand uses: the fatal-error path, the clock, and
 * the allgather of who runs where for the report header.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "perftest/device.h"
#include "perftest/perf.h"
#include "weft_tools.h"

/* Before the communicator exists the launcher's WEFT_RANK is the best name for this rank. */
static void rank_text(const struct perf_ctx *ctx, char *buf, size_t len)
{
    long long rank = -1;
    if (ctx != NULL && ctx->rank >= 0)
        rank = ctx->rank;
    else
        rank = perf_knob_int("WEFT_RANK", -1);
    if (rank >= 0)
        snprintf(buf, len, "%lld", rank);
    else
        snprintf(buf, len, "?");
}

static _Noreturn void finish(const struct perf_ctx *ctx)
{
    fflush(stdout);
    /* Aborting makes the peers' pending operations fail at once rather than at WEFT_TIMEOUT. */
    if (ctx != NULL && ctx->comm != NULL)
        (void)weft_comm_abort(ctx->comm);
    exit(1);
}

void perf_fail(const struct perf_ctx *ctx, const char *call, weft_result_t res)
{
    /* PERF_TRY passes the whole expression; the function name is what helps. */
    int name_len = (int)strcspn(call, "(");
    char rank[24];
    rank_text(ctx, rank, sizeof(rank));
    fprintf(stderr, "weft-perf: rank %s: %.*s failed: %s: %s\n", rank, name_len, call,
            weft_strerror(res), weft_last_error());
    finish(ctx);
}

void perf_die(const struct perf_ctx *ctx, const char *what)
{
    char rank[24];
    rank_text(ctx, rank, sizeof(rank));
    fprintf(stderr, "weft-perf: rank %s: %s\n", rank, what);
    finish(ctx);
}

double perf_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void perf_gather_ranks(const struct perf_ctx *ctx, struct perf_rank_info *infos)
{
    struct perf_rank_info mine;
    memset(&mine, 0, sizeof(mine));
    mine.pid = (int32_t)getpid();
    int device = -1;
    PERF_TRY(ctx, weft_comm_device(ctx->comm, &device));
    /* The communicator has no device of its own yet; --gpu's buffers do. */
    if (ctx->dev != NULL && ctx->dev->device >= 0)
        device = ctx->dev->device;
    mine.device = device;
    if (gethostname(mine.host, sizeof(mine.host) - 1) != 0)
        snprintf(mine.host, sizeof(mine.host), "unknown");
    mine.host[sizeof(mine.host) - 1] = '\0';
    PERF_TRY(ctx, weft_allgather(&mine, infos, sizeof(mine), WEFT_UINT8, ctx->comm, NULL));
}

int perf_local_rank(const struct perf_ctx *ctx)
{
    if (!ctx->pair && perf_knob_int("WEFT_LOCAL_RANK", -1) >= 0)
        return (int)perf_knob_int("WEFT_LOCAL_RANK", -1);
    struct perf_rank_info *infos = calloc((size_t)ctx->nranks, sizeof(*infos));
    if (infos == NULL)
        perf_die(ctx, "cannot allocate the rank table");
    perf_gather_ranks(ctx, infos);
    int local = 0;
    for (int r = 0; r < ctx->rank; r++)
        local += strcmp(infos[r].host, infos[ctx->rank].host) == 0;
    free(infos);
    return local;
}

long long perf_knob_int(const char *name, long long fallback)
{
    char text[64], *end;
    if (weft_config_get(name, text, sizeof(text)) != WEFT_OK)
        return fallback;
    long long v = strtoll(text, &end, 10);
    return end == text ? fallback : v;
}

const char *perf_knob_str(const char *name, char *buf, size_t len)
{
    if (weft_config_get(name, buf, len) != WEFT_OK)
        buf[0] = '\0';
    return buf;
}
