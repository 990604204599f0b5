/*
 * model.c - the alpha-beta cost model of the collectives: per-link latency (alpha), time per
 * byte on the wire (beta) and per byte reduced (gamma), and each algorithm's predicted time
 * and best chunk size from the standard step and byte counts (docs/algorithms.md).
 */
#include <math.h>
#include <string.h>

#include "collectives/coll_internal.h"
#include "core/config.h"
#include "core/log.h"

/* Defaults per transport, measured on one host (shm, tcp over loopback) or typical of the
 * hardware (verbs, ucx: 100 Gb/s RDMA); the slowest link of the communicator is the one every
 * ring and tree waits for. */
static const struct {
    const char *name;
    double latency_us, bw_gbps;
} link_defaults[] = {
    {"shm", 1.0, 6.0}, {"verbs", 3.0, 10.0}, {"ucx", 3.0, 10.0}, {"tcp", 20.0, 1.5},
    {"fake", 1.0, 6.0},
};
#define REDUCE_GBPS_DEFAULT 5.0
/* What the pipeline engine (pipeline.c: slots, chunk bookkeeping, its polling loop) costs a
 * call above a plain exchange, whatever the link: measured 0.2-0.3 us at 8 B over 2 ranks
 * (the ring allgather against Bruck's one sendrecv, the ring reduce-scatter against
 * recursive halving's), where the alpha-beta terms of both are equal. */
#define PIPELINE_CALL_S 0.25e-6

void weft_coll_model_init(struct weft_coll_ctx *ctx)
{
    double lat = 0, bw = 0;
    const char *link = "shm";
    for (int p = 0; p < ctx->nranks; p++) {
        if (p == ctx->rank)
            continue;
        const char *tp = weft_net_peer_transport(ctx->net, p);
        for (size_t i = 0; i < sizeof(link_defaults) / sizeof(link_defaults[0]); i++) {
            if (strcmp(tp, link_defaults[i].name))
                continue;
            /* the worst of every peer's link, so that all ranks see the same one on a
             * uniform job */
            if (link_defaults[i].latency_us > lat || lat == 0)
                lat = link_defaults[i].latency_us;
            if (link_defaults[i].bw_gbps < bw || bw == 0) {
                bw = link_defaults[i].bw_gbps;
                link = link_defaults[i].name;
            }
        }
    }
    if (lat == 0)
        lat = link_defaults[0].latency_us;
    if (bw == 0)
        bw = link_defaults[0].bw_gbps;
    double red = REDUCE_GBPS_DEFAULT;
    if (weft_config_double(WEFT_CFG_MODEL_LATENCY_US) > 0)
        lat = weft_config_double(WEFT_CFG_MODEL_LATENCY_US);
    if (weft_config_double(WEFT_CFG_MODEL_BW_GBPS) > 0)
        bw = weft_config_double(WEFT_CFG_MODEL_BW_GBPS);
    if (weft_config_double(WEFT_CFG_MODEL_REDUCE_GBPS) > 0)
        red = weft_config_double(WEFT_CFG_MODEL_REDUCE_GBPS);
    ctx->model.alpha = lat * 1e-6;
    ctx->model.beta = 1.0 / (bw * 1e9);
    ctx->model.gamma = 1.0 / (red * 1e9);
    ctx->model.link = link;
}

static double log2ceil(int n)
{
    int l = 0;
    while ((1 << l) < n)
        l++;
    return l;
}

/* A pipeline of `stages` hops that moves `bytes` through each in chunks, each hop costing
 * alpha + chunk * per_byte: (stages - 1 + C) * (alpha + bytes / C * per_byte), least at
 * C = sqrt((stages - 1) * bytes * per_byte / alpha), as a chunk between min_chunk and
 * WEFT_MODEL_MAX_CHUNK. With a chunk forced, C follows from it. */
static double pipeline(const struct weft_coll_model *m, double stages, double bytes,
                       double per_byte, size_t min_chunk, size_t forced_chunk, size_t *chunk)
{
    double c;
    if (forced_chunk) {
        c = (double)forced_chunk;
    } else {
        const double nchunks = sqrt(fmax(stages - 1, 0) * bytes * per_byte / m->alpha);
        c = nchunks > 1 ? bytes / nchunks : bytes;
        /* below this the per-message costs the model leaves out (tags, progress passes)
         * dominate; above it the transports no longer overlap copy and wire */
        c = fmin(fmax(c, (double)min_chunk), (double)WEFT_MODEL_MAX_CHUNK);
    }
    if (c <= 0)
        c = 1;
    const double nch = fmax(ceil(bytes / c), 1);
    if (chunk)
        *chunk = (size_t)c;
    return (stages - 1 + nch) * (m->alpha + bytes / nch * per_byte);
}

double weft_coll_model_time(const struct weft_coll_model *m, enum weft_coll_kind kind,
                            const char *algo, int p, size_t count_bytes, size_t forced_chunk,
                            size_t *chunk)
{
    const double a = m->alpha, B = m->beta, g = m->gamma;
    const double S = (double)count_bytes, L = log2ceil(p);
    const int pof2 = weft_coll_pof2_below(p);
    const double fold = pof2 == p ? 0 : 1, lp = log2ceil(pof2);
    if (chunk)
        *chunk = 0;
    switch (kind) {
    case WEFT_COLL_ALLREDUCE:
        /* Every link busy at every step: chunking overlaps the reduction with the wire
         * but moves no fewer bytes, so the rings keep WEFT_CHUNK_SIZE (tuned on shm). */
        /* The ring's chunks overlap each reduction with the next transfer: its
         * reduce-scatter half costs the slower of the two per byte, not their sum. */
        if (!strcmp(algo, "ring"))
            return PIPELINE_CALL_S + 2.0 * (p - 1) * a + (p - 1.0) / p * S * B +
                   (p - 1.0) / p * S * fmax(B, g);
        if (!strcmp(algo, "rd"))
            return (lp + 2 * fold) * (a + S * B) + (lp + fold) * S * g;
        if (!strcmp(algo, "rabenseifner"))
            return (2 * lp + 2 * fold) * a + (2.0 * (pof2 - 1) / pof2 + 2 * fold) * S * B +
                   ((double)(pof2 - 1) / pof2 + fold) * S * g;
        if (!strcmp(algo, "tree")) {
            /* each tree carries half; a rank sends S in all at 2 ranks, about 2S above,
             * and an inner node reduces two halves */
            const double depth = floor(log2((double)p)) + 1;
            return PIPELINE_CALL_S + pipeline(m, 2 * depth, S / 2, (p == 2 ? 2 : 4) * B + 2 * g,
                                              WEFT_MODEL_MIN_TREE_CHUNK, forced_chunk, chunk);
        }
        break;
    case WEFT_COLL_ALLGATHER: /* S: one rank's block */
        if (!strcmp(algo, "ring"))
            return PIPELINE_CALL_S + (p - 1) * (a + S * B);
        if (!strcmp(algo, "bruck"))
            return L * a + (p - 1) * S * B + p * S * g / 2;
        break;
    case WEFT_COLL_REDUCE_SCATTER: /* S: one rank's block */
        if (!strcmp(algo, "ring")) /* overlapped like the allreduce ring's first half */
            return PIPELINE_CALL_S + (p - 1) * (a + S * fmax(B, g));
        if (!strcmp(algo, "halving"))
            return (lp + 2 * fold) * a +
                   ((double)(pof2 - 1) / pof2 * p * S + fold * (p * S + S)) * (B + g);
        break;
    case WEFT_COLL_BROADCAST:
        if (!strcmp(algo, "binomial"))
            return L * (a + S * B);
        if (!strcmp(algo, "chain"))
            return PIPELINE_CALL_S +
                   pipeline(m, p - 1, S, B, WEFT_MODEL_MIN_CHUNK, forced_chunk, chunk);
        if (!strcmp(algo, "scatter_allgather")) {
            /* each ring step moves one block, costed as at least the pipeline's smallest
             * chunk: below it the per-message costs the model leaves out dominate (measured:
             * at 64 KiB over 3 or 4 ranks it took twice the binomial tree's time) */
            const double block = fmax(S / p, (double)WEFT_MODEL_MIN_CHUNK);
            return PIPELINE_CALL_S + L * a + (p - 1.0) / p * S * B + (p - 1) * (a + block * B);
        }
        break;
    case WEFT_COLL_REDUCE:
        if (!strcmp(algo, "binomial"))
            return L * (a + S * B + S * g);
        if (!strcmp(algo, "chain"))
            return PIPELINE_CALL_S +
                   pipeline(m, p - 1, S, B + g, WEFT_MODEL_MIN_CHUNK, forced_chunk, chunk);
        break;
    case WEFT_COLL_ALLTOALL: return (p - 1) * (a + S * B);
    case WEFT_COLL_BARRIER: return L * a;
    default: break;
    }
    return INFINITY;
}
