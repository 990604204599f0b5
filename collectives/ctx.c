/*
 * ctx.c - the collective layer's per-communicator state: tuning read from the config once,
 * and the scratch buffer the algorithms share (one collective runs at a time).
 */
#include <stdlib.h>
#include <string.h>

#include "collectives/coll_internal.h"
#include "collectives/host_order.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"

weft_result_t weft_coll_ctx_init(struct weft_coll_ctx *ctx, struct weft_net *net)
{
    uint8_t forced[WEFT_COLL_KINDS];
    WEFT_CHECK(weft_config_load());
    WEFT_CHECK(weft_coll_parse_algo(weft_config_str(WEFT_CFG_ALGO), forced));
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
    memcpy(ctx->forced, forced, sizeof(forced));
    ctx->small_msg_size = weft_config_size(WEFT_CFG_SMALL_MSG_SIZE);
    ctx->chunk_size = chunk;
    ctx->chunk_forced = weft_config_is_set(WEFT_CFG_CHUNK_SIZE);
    ctx->pipeline_depth = (int)depth;
    ctx->timeout_s = weft_config_double(WEFT_CFG_TIMEOUT);
    ctx->check = weft_config_bool(WEFT_CFG_CHECK);
    weft_coll_model_init(ctx);
    WEFT_CHECK(weft_coll_groups_init(net, &ctx->groups));
    return WEFT_OK;
}

void weft_coll_keep_registered(struct weft_coll_ctx *ctx, void **reg, void *buf, size_t len)
{
    if (*reg)
        weft_net_dereg(ctx->net, *reg);
    *reg = NULL;
    if (buf && weft_net_reg(ctx->net, buf, len, reg) != WEFT_OK) {
        *reg = NULL;
        WEFT_INFO(COLL, "rank %d: %zu bytes of scratch stay unregistered: %s", ctx->rank, len,
                  weft_last_error());
    }
}

void weft_coll_ctx_fini(struct weft_coll_ctx *ctx)
{
    weft_coll_groups_free(ctx->groups);
    ctx->groups = NULL;
    weft_coll_keep_registered(ctx, &ctx->scratch_reg, NULL, 0);
    weft_coll_keep_registered(ctx, &ctx->wide_reg, NULL, 0);
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
        weft_coll_keep_registered(ctx, &ctx->scratch_reg, p, size);
        free(ctx->scratch);
        ctx->scratch = p;
        ctx->scratch_size = size;
    }
    *buf = ctx->scratch;
    return WEFT_OK;
}

size_t weft_coll_nchunks(const struct weft_coll_ctx *ctx, size_t count, size_t elsize)
{
    size_t chunk = (ctx->call_chunk ? ctx->call_chunk : ctx->chunk_size) / elsize;
    if (chunk == 0)
        chunk = 1;
    return count ? (count + chunk - 1) / chunk : 1;
}
