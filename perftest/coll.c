/*
 * coll.c - the collective sweeps: for each size, time out-of-place and in-place runs (mean of
 * the iterations, max over ranks), then check one run against the exact expected data. With
 * a device (--gpu) the data is filled and checked in host buffers and copied to and from the
 * device buffers the calls get.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "perftest/device.h"
#include "perftest/fill.h"
#include "perftest/perf.h"
#include "perftest/report.h"
#include "weft_tools.h"

struct coll_desc {
    const char *name;
    bool reduces;  /* takes -o */
    bool rooted;   /* takes -r */
    bool blocks;   /* the largest buffer is nranks blocks of the API's count */
    bool in_place; /* has an in-place form in weft.h */
};

static const struct coll_desc descs[] = {
    [PERF_ALLREDUCE] = {"allreduce", true, false, false, true},
    [PERF_ALLGATHER] = {"allgather", false, false, true, true},
    [PERF_REDUCE_SCATTER] = {"reduce_scatter", true, false, true, true},
    [PERF_BROADCAST] = {"broadcast", false, true, false, true},
    [PERF_REDUCE] = {"reduce", true, true, false, true},
    /* weft.h allows no aliasing for these: their in-place columns read N/A. */
    [PERF_ALLTOALL] = {"alltoall", false, false, true, false},
    [PERF_SENDRECV] = {"sendrecv", false, false, false, false},
};

/* nccl-tests' bus bandwidth factors: what each rank's link carries relative to the size. */
static double bus_factor(enum perf_coll coll, int nranks)
{
    double n = nranks;
    switch (coll) {
    case PERF_ALLREDUCE:
        return 2.0 * (n - 1.0) / n;
    case PERF_ALLGATHER:
    case PERF_REDUCE_SCATTER:
    case PERF_ALLTOALL:
        return (n - 1.0) / n;
    default:
        return 1.0;
    }
}

/* One size of one sweep. */
struct sweep {
    const struct perf_ctx *ctx;
    enum perf_coll coll;
    weft_dtype_t dtype;
    weft_op_t op;
    int root;
    size_t tsize;
    size_t count;                /* the API's count argument */
    size_t used;                 /* bytes of each buffer this size touches (the larger one's) */
    struct perf_dev *dev;        /* NULL: the calls get the host buffers */
    char *sendbase, *recvbase;   /* host: filled and checked here */
    char *dsendbase, *drecvbase; /* what the calls get: the device's, or the host ones */
    bool in_place;
    char *send, *recv;   /* where this run reads and writes, in the host buffers */
    char *dsend, *drecv; /* the same places in the buffers the calls get */
};

static void run_once(const struct sweep *s)
{
    const struct perf_ctx *ctx = s->ctx;
    weft_comm_t comm = ctx->comm;
    void *stream = s->dev ? s->dev->stream : NULL;
    switch (s->coll) {
    case PERF_ALLREDUCE:
        PERF_TRY(ctx, weft_allreduce(s->dsend, s->drecv, s->count, s->dtype, s->op, comm, stream));
        break;
    case PERF_ALLGATHER:
        PERF_TRY(ctx, weft_allgather(s->dsend, s->drecv, s->count, s->dtype, comm, stream));
        break;
    case PERF_REDUCE_SCATTER:
        PERF_TRY(ctx,
                 weft_reduce_scatter(s->dsend, s->drecv, s->count, s->dtype, s->op, comm, stream));
        break;
    case PERF_BROADCAST:
        PERF_TRY(ctx,
                 weft_broadcast(s->dsend, s->drecv, s->count, s->dtype, s->root, comm, stream));
        break;
    case PERF_REDUCE:
        PERF_TRY(ctx,
                 weft_reduce(s->dsend, s->drecv, s->count, s->dtype, s->op, s->root, comm, stream));
        break;
    case PERF_ALLTOALL:
        PERF_TRY(ctx, weft_alltoall(s->dsend, s->drecv, s->count, s->dtype, comm, stream));
        break;
    case PERF_SENDRECV: {
        int next = (ctx->rank + 1) % ctx->nranks;
        int prev = (ctx->rank + ctx->nranks - 1) % ctx->nranks;
        PERF_TRY(ctx, weft_group_start());
        PERF_TRY(ctx, weft_send(s->dsend, s->count, s->dtype, next, comm, stream));
        PERF_TRY(ctx, weft_recv(s->drecv, s->count, s->dtype, prev, comm, stream));
        PERF_TRY(ctx, weft_group_end());
        break;
    }
    }
}

/* The aliasing weft.h documents for each in-place form, in one pair of buffers. */
static void aim(const struct sweep *s, char *sendbase, char *recvbase, char **send, char **recv)
{
    size_t block = s->count * s->tsize;
    *send = sendbase;
    *recv = recvbase;
    if (!s->in_place)
        return;
    switch (s->coll) {
    case PERF_ALLGATHER:
        *send = recvbase + (size_t)s->ctx->rank * block;
        break;
    case PERF_REDUCE_SCATTER:
        *recv = sendbase + (size_t)s->ctx->rank * block;
        break;
    default:
        *send = recvbase;
        break;
    }
}

/* Host and device buffers keep the same layout, so whole-buffer copies carry the aliasing. */
static void place(struct sweep *s, bool in_place)
{
    s->in_place = in_place;
    aim(s, s->sendbase, s->recvbase, &s->send, &s->recv);
    aim(s, s->dsendbase, s->drecvbase, &s->dsend, &s->drecv);
}

/* Valid inputs, and outputs poisoned so that anything left unwritten counts as wrong. */
static void fill(const struct sweep *s)
{
    int r = s->ctx->rank, n = s->ctx->nranks;
    size_t count = s->count;
    switch (s->coll) {
    case PERF_ALLREDUCE:
    case PERF_REDUCE:
        if (!s->in_place)
            perf_poison(s->dtype, s->recv, count);
        perf_fill(s->dtype, s->send, count, s->op, r, n, 0);
        break;
    case PERF_BROADCAST:
        perf_poison(s->dtype, s->recv, count);
        if (r == s->root)
            perf_fill(s->dtype, s->send, count, PERF_COPY, r, n, 0);
        break;
    case PERF_ALLGATHER:
        perf_poison(s->dtype, s->recv, count * (size_t)n);
        perf_fill(s->dtype, s->send, count, PERF_COPY, r, n, 0);
        break;
    case PERF_REDUCE_SCATTER:
        if (!s->in_place)
            perf_poison(s->dtype, s->recv, count);
        perf_fill(s->dtype, s->send, count * (size_t)n, s->op, r, n, 0);
        break;
    case PERF_ALLTOALL:
        perf_poison(s->dtype, s->recv, count * (size_t)n);
        perf_fill(s->dtype, s->send, count * (size_t)n, PERF_COPY, r, n, 0);
        break;
    case PERF_SENDRECV:
        perf_poison(s->dtype, s->recv, count);
        perf_fill(s->dtype, s->send, count, PERF_COPY, r, n, 0);
        break;
    }
}

/* The inputs in place for the next call: filled, and on the device before the call. */
static void prepare(const struct sweep *s)
{
    if (s->dev != NULL) {
        /* All else poisoned: a call given the wrong device address reads poison, not what
         * an earlier run left there. */
        perf_poison(s->dtype, s->sendbase, s->used / s->tsize);
        perf_poison(s->dtype, s->recvbase, s->used / s->tsize);
    }
    fill(s);
    if (s->dev == NULL)
        return;
    PERF_TRY(s->ctx, s->dev->ops->upload(s->dev, s->dsendbase, s->sendbase, s->used));
    PERF_TRY(s->ctx, s->dev->ops->upload(s->dev, s->drecvbase, s->recvbase, s->used));
}

/* Stream calls return before they run and report failures later: wait for the stream, then
 * ask the communicator whether any of them failed. */
static void settle(const struct sweep *s)
{
    const struct perf_ctx *ctx = s->ctx;
    if (s->dev == NULL)
        return;
    PERF_TRY(ctx, s->dev->ops->sync(s->dev));
    char msg[1024], what[1400];
    weft_result_t failed = WEFT_OK;
    PERF_TRY(ctx, weft_comm_failure_message(ctx->comm, &failed, msg, sizeof(msg)));
    if (failed != WEFT_OK) {
        snprintf(what, sizeof(what), "%s on a stream failed: %s%s%s", s->ctx->args->cmd,
                 weft_strerror(failed), msg[0] ? ": " : "", msg);
        perf_die(ctx, what);
    }
}

/* Wrong elements in this rank's output; the stream must be settled. */
static size_t check(const struct sweep *s)
{
    int r = s->ctx->rank, n = s->ctx->nranks;
    size_t count = s->count, block = count * s->tsize, wrong = 0;
    if (s->dev != NULL) {
        /* Both: reduce_scatter in place writes into the send buffer. */
        PERF_TRY(s->ctx, s->dev->ops->download(s->dev, s->sendbase, s->dsendbase, s->used));
        PERF_TRY(s->ctx, s->dev->ops->download(s->dev, s->recvbase, s->drecvbase, s->used));
    }
    switch (s->coll) {
    case PERF_ALLREDUCE:
        return perf_wrong_reduced(s->dtype, s->recv, count, s->op, n, 0);
    case PERF_REDUCE:
        return r == s->root ? perf_wrong_reduced(s->dtype, s->recv, count, s->op, n, 0) : 0;
    case PERF_BROADCAST:
        return perf_wrong_copy(s->dtype, s->recv, count, s->root, n, 0);
    case PERF_REDUCE_SCATTER:
        return perf_wrong_reduced(s->dtype, s->recv, count, s->op, n, (size_t)r * count);
    case PERF_ALLGATHER:
        for (int p = 0; p < n; p++)
            wrong += perf_wrong_copy(s->dtype, s->recv + (size_t)p * block, count, p, n, 0);
        return wrong;
    case PERF_ALLTOALL:
        for (int p = 0; p < n; p++) {
            wrong += perf_wrong_copy(s->dtype, s->recv + (size_t)p * block, count, p, n,
                                     (size_t)r * count);
        }
        return wrong;
    case PERF_SENDRECV:
        return perf_wrong_copy(s->dtype, s->recv, count, (r + n - 1) % n, n, 0);
    }
    return 0;
}

static struct perf_result measure(struct sweep *s, bool in_place, size_t bytes)
{
    const struct perf_ctx *ctx = s->ctx;
    const struct perf_args *a = ctx->args;
    struct perf_result res = {.valid = true, .wrong = -1};

    place(s, in_place);
    prepare(s);
    for (int i = 0; i < a->warmup; i++)
        run_once(s);
    settle(s);
    PERF_TRY(ctx, weft_barrier(ctx->comm, NULL));
    double seconds;
    if (s->dev != NULL) {
        /* The calls only enqueue, so a host clock would time the enqueueing: CUDA events
         * on the stream time it from reaching the first call to leaving the last one (its
         * output copied back), which is what the stream's next kernel waits for. */
        PERF_TRY(ctx, s->dev->ops->timer_start(s->dev));
        for (int i = 0; i < a->iters; i++)
            run_once(s);
        PERF_TRY(ctx, s->dev->ops->timer_stop(s->dev, &seconds));
        settle(s);
    } else {
        double t0 = perf_now();
        for (int i = 0; i < a->iters; i++)
            run_once(s);
        seconds = perf_now() - t0;
    }
    double mine = seconds * 1e6 / a->iters;
    PERF_TRY(ctx, weft_allreduce(&mine, &res.time_us, 1, WEFT_FLOAT64, WEFT_MAX, ctx->comm, NULL));
    res.algbw = res.time_us > 0.0 ? (double)bytes / res.time_us / 1e3 : 0.0;
    res.busbw = res.algbw * bus_factor(s->coll, ctx->nranks);

    if (a->check) {
        prepare(s);
        run_once(s);
        settle(s);
        int64_t wrong = (int64_t)check(s), total = 0;
        PERF_TRY(ctx, weft_allreduce(&wrong, &total, 1, WEFT_INT64, WEFT_SUM, ctx->comm, NULL));
        res.wrong = total;
    }
    return res;
}

/* Elements in the largest buffer for `bytes`: whole elements, whole blocks of nranks. */
static size_t total_count(const struct coll_desc *d, size_t bytes, size_t tsize, int nranks)
{
    size_t total = bytes / tsize;
    return d->blocks ? total / (size_t)nranks * (size_t)nranks : total;
}

/* --verbose: the plan of the host call beside the row (table only; device buffers and
 * sendrecv have none). */
static void print_plan(const struct perf_ctx *ctx, const struct perf_report *rep,
                       const char *name, const struct sweep *s, const struct perf_row *row)
{
    weft_plan_t plan;
    if (!rep->active || ctx->args->format != PERF_FORMAT_TABLE || s->dev != NULL ||
        !row->place[0].valid || weft_coll_plan(ctx->comm, name, s->count, s->dtype, &plan))
        return;
    fprintf(rep->out, "#   plan: %s, chunk %zu, predicted %.1f us, measured %.1f us\n",
            plan.algorithm, plan.chunk_size, plan.predicted_us, row->place[0].time_us);
}

int perf_coll_run(const struct perf_ctx *ctx, const struct perf_cmd *cmd)
{
    const struct perf_args *a = ctx->args;
    enum perf_coll coll = (enum perf_coll)cmd->arg;
    const struct coll_desc *d = &descs[coll];
    struct sweep s = {
        .ctx = ctx,
        .coll = coll,
        .dtype = a->dtype,
        .op = a->op,
        .root = d->rooted ? a->root : -1,
        .tsize = weft_dtype_size(a->dtype),
        .dev = ctx->dev,
    };
    if (s.tsize == 0)
        perf_die(ctx, "internal error: dtype without a size");

    size_t max_elems = total_count(d, a->maxbytes, s.tsize, ctx->nranks);
    size_t buf_bytes = (max_elems > 0 ? max_elems : 1) * s.tsize;
    if (posix_memalign((void **)&s.sendbase, 4096, buf_bytes) != 0)
        perf_die(ctx, "cannot allocate the send buffer");
    if (posix_memalign((void **)&s.recvbase, 4096, buf_bytes) != 0)
        perf_die(ctx, "cannot allocate the receive buffer");
    s.dsendbase = s.sendbase;
    s.drecvbase = s.recvbase;
    if (s.dev != NULL) {
        PERF_TRY(ctx, s.dev->ops->alloc(s.dev, buf_bytes, (void **)&s.dsendbase));
        PERF_TRY(ctx, s.dev->ops->alloc(s.dev, buf_bytes, (void **)&s.drecvbase));
    }
    struct perf_rank_info *infos = calloc((size_t)ctx->nranks, sizeof(*infos));
    if (infos == NULL)
        perf_die(ctx, "cannot allocate the rank table");
    perf_gather_ranks(ctx, infos);

    struct perf_report rep;
    perf_report_begin(&rep, ctx, d->name, d->reduces ? weft_op_name(a->op) : "none", infos);
    size_t prev_total = 0;
    for (size_t bytes = a->minbytes;; bytes *= a->stepfactor) {
        size_t total = total_count(d, bytes, s.tsize, ctx->nranks);
        /* Sizes too small for one element per block, or equal after rounding, are skipped
         * (the same way on every rank). */
        if (total > 0 && total != prev_total) {
            prev_total = total;
            s.count = d->blocks ? total / (size_t)ctx->nranks : total;
            s.used = total * s.tsize;
            struct perf_row row = {
                .bytes = total * s.tsize,
                .count = total,
                .root = s.root,
            };
            row.place[0] = measure(&s, false, row.bytes);
            if (d->in_place)
                row.place[1] = measure(&s, true, row.bytes);
            perf_report_row(&rep, &row);
            if (a->verbose)
                print_plan(ctx, &rep, d->name, &s, &row);
        }
        if (bytes > a->maxbytes / a->stepfactor)
            break;
    }
    long long wrong = perf_report_end(&rep);
    free(infos);
    if (s.dev != NULL) {
        s.dev->ops->free(s.dev, s.drecvbase);
        s.dev->ops->free(s.dev, s.dsendbase);
    }
    free(s.recvbase);
    free(s.sendbase);
    return wrong > 0 ? 1 : 0;
}
