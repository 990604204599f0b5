/*
 * ctx.c - the collective layer's per-communicator state: tuning read from the config once,
 * and the scratch buffer the algorithms share (one collective runs at a time).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "collectives/coll_internal.h"
#include "collectives/host_order.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"

static weft_result_t parse_algo(const char *text, enum weft_coll_algo *algo)
{
    if (!strcasecmp(text, "auto") || !text[0])
        *algo = WEFT_ALGO_AUTO;
    else if (!strcasecmp(text, "ring"))
        *algo = WEFT_ALGO_RING;
    else if (!strcasecmp(text, "rd"))
        *algo = WEFT_ALGO_RD;
    else if (!strcasecmp(text, "hier"))
        *algo = WEFT_ALGO_HIER;
    else
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "WEFT_ALGO=%s: expected auto, ring, rd or hier",
                          text);
    return WEFT_OK;
}

weft_result_t weft_coll_ctx_init(struct weft_coll_ctx *ctx, struct weft_net *net)
{
    enum weft_coll_algo algo = WEFT_ALGO_AUTO;
    WEFT_CHECK(weft_config_load());
    WEFT_CHECK(parse_algo(weft_config_str(WEFT_CFG_ALGO), &algo));
    const size_t chunk = weft_config_size(WEFT_CFG_CHUNK_SIZE);
    if (chunk == 0)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "WEFT_CHUNK_SIZE=0: must be at least 1 byte");
    int64_t depth = weft_config_int(WEFT_CFG_PIPELINE_DEPTH);
    if (depth < 1)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "WEFT_PIPELINE_DEPTH=%lld: must be at least 1",
                          (long long)depth);
    if (depth > WEFT_COLL_MAX_DEPTH) {
        WEFT_WARN(COLL, "WEFT_PIPELINE_DEPTH=%lld: using the maximum, %d", (long long)depth,
                  WEFT_COLL_MAX_DEPTH);
        depth = WEFT_COLL_MAX_DEPTH;
    }
    memset(ctx, 0, sizeof(*ctx));
    ctx->net = net;
    ctx->rank = weft_net_rank(net);
    ctx->nranks = weft_net_nranks(net);
    ctx->algo = algo;
    ctx->small_msg_size = weft_config_size(WEFT_CFG_SMALL_MSG_SIZE);
    ctx->chunk_size = chunk;
    ctx->pipeline_depth = (int)depth;
    ctx->timeout_s = weft_config_double(WEFT_CFG_TIMEOUT);
    ctx->check = weft_config_bool(WEFT_CFG_CHECK);
    WEFT_CHECK(weft_coll_groups_init(net, &ctx->groups));
    return WEFT_OK;
}

void weft_coll_ctx_fini(struct weft_coll_ctx *ctx)
{
    weft_coll_groups_free(ctx->groups);
    ctx->groups = NULL;
    free(ctx->scratch);
    ctx->scratch = NULL;
    ctx->scratch_size = 0;
    free(ctx->check_buf);
    ctx->check_buf = NULL;
    free(ctx->wide);
    ctx->wide = NULL;
    ctx->wide_size = 0;
}

weft_result_t weft_coll_scratch(struct weft_coll_ctx *ctx, size_t bytes, void **buf)
{
    if (bytes > ctx->scratch_size) {
        /* The old contents are dead between calls, so no realloc copy. */
        size_t size = weft_coll_align_up(bytes);
        void *p = aligned_alloc(WEFT_COLL_ALIGN, size);
        if (!p)
            return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: cannot allocate %zu bytes of scratch",
                              ctx->rank, size);
        free(ctx->scratch);
        ctx->scratch = p;
        ctx->scratch_size = size;
    }
    *buf = ctx->scratch;
    return WEFT_OK;
}

size_t weft_coll_nchunks(const struct weft_coll_ctx *ctx, size_t count, size_t elsize)
{
    size_t chunk = ctx->chunk_size / elsize;
    if (chunk == 0)
        chunk = 1;
    return count ? (count + chunk - 1) / chunk : 1;
}
