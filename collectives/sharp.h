/*
 * sharp.h - SHARP offload (collectives/sharp.c): allreduce and barrier aggregated by the
 * switches through libsharp_coll, loaded with dlopen when WEFT_SHARP allows.
 */
#ifndef WEFT_COLL_SHARP_H
#define WEFT_COLL_SHARP_H

#include <stdbool.h>

#include "collectives/collectives.h"

/* Collective over the communicator, after weft_coll_ctx_init: loads the library, agrees with
 * every rank on whether it is usable and sets ctx->sharp. WEFT_SHARP=auto falls back to the
 * host algorithms (one INFO line) when any rank cannot load or initialise it; WEFT_SHARP=1
 * fails instead, naming the library, the rank and the cause. */
weft_result_t weft_coll_sharp_init(struct weft_coll_ctx *ctx);
/* Local: releases what init set up (no out-of-band traffic, so it is safe after a failure). */
void weft_coll_sharp_fini(struct weft_coll_ctx *ctx);
/* Whether SHARP runs `op` (a non-empty allreduce of a dtype and op the library supports, or
 * a barrier); the first refusal of each dtype/op logs one INFO line. Same answer on every
 * rank. */
bool weft_coll_sharp_takes(struct weft_coll_ctx *ctx, const struct weft_coll_op *op);
weft_result_t weft_coll_sharp_run(struct weft_coll_ctx *ctx, const struct weft_coll_op *op);

#endif /* WEFT_COLL_SHARP_H */
