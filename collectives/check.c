/*
 * check.c - WEFT_CHECK=1: before each call every rank allgathers a fingerprint of it (kind,
 * count, dtype, op, root, sequence number) and every rank reports the same mismatch.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "collectives/coll_internal.h"
#include "core/error.h"

/* Every field fixed-width, so that ranks of any build compare the same bytes. */
struct fingerprint {
    uint32_t kind; /* enum weft_coll_kind, or FP_GROUP */
    int32_t root;
    uint32_t dtype;
    uint32_t op;
    uint64_t count; /* a group: its number of collectives */
    uint64_t seq;   /* calls checked so far on this communicator */
    uint64_t hash;  /* a group: its collectives' fingerprints, folded */
};

#define FP_GROUP 0xffu

static bool is_p2p(enum weft_coll_kind kind)
{
    return kind == WEFT_COLL_SEND || kind == WEFT_COLL_RECV;
}

/* Only the fields the call takes, so that ignored arguments do not differ. */
static struct fingerprint of_op(const struct weft_coll_op *op)
{
    struct fingerprint fp = {.kind = (uint32_t)op->kind};
    if (op->kind == WEFT_COLL_BARRIER)
        return fp;
    fp.count = op->count;
    fp.dtype = (uint32_t)op->dtype;
    if (weft_coll_reduces(op->kind))
        fp.op = (uint32_t)op->op;
    if (op->kind == WEFT_COLL_BROADCAST || op->kind == WEFT_COLL_REDUCE)
        fp.root = op->root;
    return fp;
}

/* FNV-1a over a fingerprint's fields. */
static uint64_t fold(uint64_t h, const struct fingerprint *fp)
{
    const uint64_t v[5] = {fp->kind, (uint32_t)fp->root, fp->dtype, fp->op, fp->count};
    for (int i = 0; i < 5; i++)
        for (int b = 0; b < 8; b++) {
            h ^= (v[i] >> (8 * b)) & 0xff;
            h *= 0x100000001b3ull;
        }
    return h;
}

static bool same(const struct fingerprint *a, const struct fingerprint *b)
{
    return a->kind == b->kind && a->root == b->root && a->dtype == b->dtype && a->op == b->op &&
           a->count == b->count && a->seq == b->seq && a->hash == b->hash;
}

static void describe(const struct fingerprint *fp, bool with_seq, char *buf, size_t len)
{
    int at;
    const enum weft_coll_kind kind = (enum weft_coll_kind)fp->kind;
    if (fp->kind == FP_GROUP)
        at = snprintf(buf, len, "weft_group_end(%" PRIu64 " collectives, fingerprint %016" PRIx64
                      ")", fp->count, fp->hash);
    else if (kind == WEFT_COLL_BARRIER)
        at = snprintf(buf, len, "weft_barrier()");
    else if (weft_coll_reduces(kind) && kind == WEFT_COLL_REDUCE)
        at = snprintf(buf, len, "%s(count=%" PRIu64 ", %s, %s, root %d)",
                      weft_coll_call_name(kind), fp->count,
                      weft_dtype_name((weft_dtype_t)fp->dtype),
                      weft_op_name((weft_op_t)fp->op), (int)fp->root);
    else if (weft_coll_reduces(kind))
        at = snprintf(buf, len, "%s(count=%" PRIu64 ", %s, %s)", weft_coll_call_name(kind),
                      fp->count, weft_dtype_name((weft_dtype_t)fp->dtype),
                      weft_op_name((weft_op_t)fp->op));
    else if (kind == WEFT_COLL_BROADCAST)
        at = snprintf(buf, len, "%s(count=%" PRIu64 ", %s, root %d)", weft_coll_call_name(kind),
                      fp->count, weft_dtype_name((weft_dtype_t)fp->dtype), (int)fp->root);
    else
        at = snprintf(buf, len, "%s(count=%" PRIu64 ", %s)", weft_coll_call_name(kind),
                      fp->count, weft_dtype_name((weft_dtype_t)fp->dtype));
    if (with_seq && at >= 0 && (size_t)at < len)
        snprintf(buf + at, len - (size_t)at, " as its checked call #%" PRIu64, fp->seq + 1);
}

weft_result_t weft_coll_check_calls(struct weft_coll_ctx *ctx, const struct weft_coll_op *ops,
                                    size_t n)
{
    const int nranks = ctx->nranks, rank = ctx->rank;
    size_t ncoll = 0, last = 0;
    for (size_t i = 0; i < n; i++)
        if (!is_p2p(ops[i].kind)) {
            ncoll++;
            last = i;
        }
    /* Point-to-point calls involve only their peers, who legitimately call different ones. */
    if (!ctx->check || nranks < 2 || ncoll == 0)
        return WEFT_OK;
    if (!ctx->check_buf) {
        ctx->check_buf = calloc((size_t)nranks, sizeof(struct fingerprint));
        if (!ctx->check_buf)
            return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: WEFT_CHECK: no memory for %d "
                              "fingerprints", rank, nranks);
    }
    struct fingerprint *all = ctx->check_buf;
    if (n == 1) {
        all[0] = of_op(&ops[last]);
    } else {
        all[0] = (struct fingerprint){.kind = FP_GROUP, .count = ncoll, .hash = 0xcbf29ce484222325ull};
        for (size_t i = 0; i < n; i++)
            if (!is_p2p(ops[i].kind)) {
                const struct fingerprint one = of_op(&ops[i]);
                all[0].hash = fold(all[0].hash, &one);
            }
    }
    all[0].seq = ctx->check_seq++;
    /* Bruck's allgather: after the step of distance d, all[j] for j < 2d holds the record of
     * rank + j; ceil(log2 n) steps of at most n/2 records. The tag has no sequence number, so
     * ranks a call apart still meet and see it. */
    const uint32_t seq = ctx->seq;
    ctx->seq = 0; /* the tags' sequence number */
    uint32_t step = 0;
    weft_result_t r = WEFT_OK;
    for (int dist = 1; dist < nranks && r == WEFT_OK; dist <<= 1, step++) {
        const int cnt = dist < nranks - dist ? dist : nranks - dist;
        r = weft_coll_sendrecv(ctx, WEFT_COLL_CHECK, weft_coll_mod(rank - dist, nranks), all,
                               (rank + dist) % nranks, all + dist, (size_t)cnt * sizeof(*all),
                               step);
    }
    ctx->seq = seq;
    if (r != WEFT_OK)
        return r;
    /* all[j] is rank (rank + j) % n's: compare everyone with rank 0, so that every rank
     * names the same two. */
    const struct fingerprint *zero = &all[weft_coll_mod(-rank, nranks)];
    for (int q = 1; q < nranks; q++) {
        const struct fingerprint *fq = &all[weft_coll_mod(q - rank, nranks)];
        if (same(zero, fq))
            continue;
        char a[160], b[160];
        const bool seqs = zero->seq != fq->seq;
        describe(zero, seqs, a, sizeof(a));
        describe(fq, seqs, b, sizeof(b));
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "%s: rank %d: WEFT_CHECK: the ranks called different collectives: "
                          "rank 0 called %s but rank %d called %s",
                          n == 1 ? weft_coll_call_name(ops[last].kind) : "weft_group_end", rank,
                          a, q, b);
    }
    return WEFT_OK;
}
