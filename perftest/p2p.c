/*
 * p2p.c - weft-perf's point-to-point tests after perftest: send_bw streams messages from rank
 * 1 to rank 0 (both ways with -b), send_lat ping-pongs; perftest's columns, any transport.
 */
#include "perftest/p2p.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "perftest/fill.h"

#define P2P_SERVER 0 /* receives in send_bw, answers in send_lat, prints */
#define P2P_CLIENT 1
#define P2P_ALL_MIN ((size_t)2)       /* -a: perftest's range */
#define P2P_ALL_MAX ((size_t)8 << 20)
#define P2P_TX_DEPTH 128              /* perftest's default: messages in flight per group */
/* Default iteration counts shrink for big sizes so that -a takes seconds, not minutes: at most
 * this many bytes per size and direction, and never fewer than P2P_MIN_ITERS. */
#define P2P_BW_BUDGET ((size_t)512 << 20)
#define P2P_LAT_BUDGET ((size_t)128 << 20)
#define P2P_MIN_ITERS 16

struct p2p_desc {
    const char *name;
    const char *title;
    bool lat;
    bool one_sided; /* RDMA write/read: needs the verbs transport */
};

static const struct p2p_desc descs[] = {
    [PERF_SEND_BW] = {"send_bw", "Send BW Test", false, false},
    [PERF_SEND_LAT] = {"send_lat", "Send Latency Test", true, false},
    [PERF_WRITE_BW] = {"write_bw", "RDMA Write BW Test", false, true},
    [PERF_WRITE_LAT] = {"write_lat", "RDMA Write Latency Test", true, true},
    [PERF_READ_BW] = {"read_bw", "RDMA Read BW Test", false, true},
    [PERF_READ_LAT] = {"read_lat", "RDMA Read Latency Test", true, true},
};

struct p2p {
    const struct perf_ctx *ctx;
    const struct p2p_desc *d;
    const struct perf_args *a;
    int peer;
    char *sendbuf, *recvbuf;
    double *stamps;  /* bw: time after each group */
    double *samples; /* lat: one-way latency of each iteration, usec */
    bool speaks;     /* rank 0 prints */
    size_t nrows;
    long long wrong;
};

struct bw_row {
    double peak, avg, msg_rate; /* in the report's unit; Mpps */
};

/* lat row: t_min t_max t_typical t_avg t_stdev 99% 99.9%, usec; sent client -> server. */
enum { LAT_MIN, LAT_MAX, LAT_TYPICAL, LAT_AVG, LAT_STDEV, LAT_P99, LAT_P999, LAT_NSTATS };

static const char *const line =
    "---------------------------------------------------------------------------------------";

static int iters_for(const struct p2p *p, size_t size)
{
    const struct perf_args *a = p->a;
    if (a->iters_given)
        return a->iters;
    size_t iters = p->d->lat ? 1000 : 5000;
    size_t cap = (p->d->lat ? P2P_LAT_BUDGET : P2P_BW_BUDGET) / size;
    if (cap < P2P_MIN_ITERS)
        cap = P2P_MIN_ITERS;
    return (int)(iters < cap ? iters : cap);
}

static const char *bw_unit(const struct perf_args *a)
{
    return a->report_gbits ? "Gb/sec" : "MB/sec";
}

/* perftest's units: MB/sec is 2^20 bytes per second, Gb/sec 10^9 bits per second. */
static double bw_in_unit(const struct perf_args *a, double bytes_per_s)
{
    return a->report_gbits ? bytes_per_s * 8.0 / 1e9 : bytes_per_s / 1048576.0;
}

/* One message of the known pattern each way the test moves data; the receiver counts the
 * wrong bytes. Every rank returns the total, so all of them agree on the exit status. */
static long long check_size(const struct p2p *p, size_t size, bool both_ways)
{
    const struct perf_ctx *ctx = p->ctx;
    int r = ctx->rank;
    bool sends = both_ways || r == P2P_CLIENT, recvs = both_ways || r == P2P_SERVER;
    if (sends)
        perf_fill(WEFT_UINT8, p->sendbuf, size, PERF_COPY, r, 2, 0);
    if (recvs)
        perf_poison(WEFT_UINT8, p->recvbuf, size);
    PERF_TRY(ctx, weft_group_start());
    if (sends)
        PERF_TRY(ctx, weft_send(p->sendbuf, size, WEFT_UINT8, p->peer, ctx->comm, NULL));
    if (recvs)
        PERF_TRY(ctx, weft_recv(p->recvbuf, size, WEFT_UINT8, p->peer, ctx->comm, NULL));
    PERF_TRY(ctx, weft_group_end());
    int64_t wrong = recvs ? (int64_t)perf_wrong_copy(WEFT_UINT8, p->recvbuf, size, p->peer, 2, 0)
                          : 0;
    int64_t total = 0;
    PERF_TRY(ctx, weft_allreduce(&wrong, &total, 1, WEFT_INT64, WEFT_SUM, ctx->comm, NULL));
    if (total > 0 && p->speaks) {
        fprintf(stderr, "weft-perf: %s: %lld of %zu bytes wrong at size %zu\n", p->d->name,
                (long long)total, both_ways ? 2 * size : size, size);
    }
    return total;
}

/* `count` messages, in groups of `group` so that many are in flight; stamps[g + 1] is the
 * time group g completed (when stamps is not NULL). */
static void bw_stream(const struct p2p *p, size_t size, int count, int group, double *stamps)
{
    const struct perf_ctx *ctx = p->ctx;
    bool sends = p->a->bidir || ctx->rank == P2P_CLIENT;
    bool recvs = p->a->bidir || ctx->rank == P2P_SERVER;
    if (stamps != NULL)
        stamps[0] = perf_now();
    for (int done = 0, g = 0; done < count; g++) {
        int n = count - done < group ? count - done : group;
        PERF_TRY(ctx, weft_group_start());
        for (int i = 0; i < n; i++) {
            if (sends)
                PERF_TRY(ctx, weft_send(p->sendbuf, size, WEFT_UINT8, p->peer, ctx->comm, NULL));
            if (recvs)
                PERF_TRY(ctx, weft_recv(p->recvbuf, size, WEFT_UINT8, p->peer, ctx->comm, NULL));
        }
        PERF_TRY(ctx, weft_group_end());
        done += n;
        if (stamps != NULL)
            stamps[g + 1] = perf_now();
    }
}

/* Timed on the server, which sees each message arrive: the average is all the bytes over
 * all the time, the peak the best window of about a tenth of the iterations. */
static struct bw_row bw_size(const struct p2p *p, size_t size, int iters)
{
    const struct perf_ctx *ctx = p->ctx;
    int group = iters / 10;
    group = group < 1 ? 1 : group > P2P_TX_DEPTH ? P2P_TX_DEPTH : group;
    int ngroups = (iters + group - 1) / group;

    bw_stream(p, size, iters < P2P_TX_DEPTH ? iters : P2P_TX_DEPTH, group, NULL); /* warmup */
    PERF_TRY(ctx, weft_barrier(ctx->comm, NULL));
    bw_stream(p, size, iters, group, p->stamps);

    /* Bidirectional: this rank moved each message both ways. */
    double ways = p->a->bidir ? 2.0 : 1.0;
    double total_s = p->stamps[ngroups] - p->stamps[0];
    struct bw_row row = {0};
    double msgs_per_s = total_s > 0.0 ? ways * iters / total_s : 0.0;
    double peak = 0.0;
    int window = ngroups / 10 > 1 ? ngroups / 10 : 1;
    for (int g = 0; g + window <= ngroups; g++) {
        int first = g * group, last = (g + window) * group;
        int msgs = (last < iters ? last : iters) - first;
        double dt = p->stamps[g + window] - p->stamps[g];
        if (dt > 0.0 && ways * msgs / dt > peak)
            peak = ways * msgs / dt;
    }
    if (peak < msgs_per_s) /* one window is the whole run */
        peak = msgs_per_s;
    row.avg = bw_in_unit(p->a, msgs_per_s * (double)size);
    row.peak = bw_in_unit(p->a, peak * (double)size);
    row.msg_rate = msgs_per_s / 1e6;
    return row;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b ? 1 : 0;
}

/* Nearest-rank percentile of sorted samples. */
static double percentile(const double *sorted, int n, double pct)
{
    int i = (int)ceil(pct / 100.0 * n) - 1;
    return sorted[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* perftest's send_lat convention: the client times each ping-pong and reports half of it. */
static void lat_size(const struct p2p *p, size_t size, int iters, double *stats)
{
    const struct perf_ctx *ctx = p->ctx;
    weft_comm_t comm = ctx->comm;
    bool client = ctx->rank == P2P_CLIENT;
    /* Untimed round trips first, so connection setup and cold caches stay out of t_max. */
    int warmup = iters < 50 ? iters : 50;
    PERF_TRY(ctx, weft_barrier(comm, NULL));
    for (int i = -warmup; i < iters; i++) {
        if (client) {
            double t0 = perf_now();
            PERF_TRY(ctx, weft_send(p->sendbuf, size, WEFT_UINT8, p->peer, comm, NULL));
            PERF_TRY(ctx, weft_recv(p->recvbuf, size, WEFT_UINT8, p->peer, comm, NULL));
            if (i >= 0)
                p->samples[i] = (perf_now() - t0) * 1e6 / 2.0;
        } else {
            PERF_TRY(ctx, weft_recv(p->recvbuf, size, WEFT_UINT8, p->peer, comm, NULL));
            PERF_TRY(ctx, weft_send(p->sendbuf, size, WEFT_UINT8, p->peer, comm, NULL));
        }
    }
    if (client) {
        double sum = 0.0, sq = 0.0;
        qsort(p->samples, (size_t)iters, sizeof(double), cmp_double);
        for (int i = 0; i < iters; i++)
            sum += p->samples[i];
        double avg = sum / iters;
        for (int i = 0; i < iters; i++)
            sq += (p->samples[i] - avg) * (p->samples[i] - avg);
        stats[LAT_MIN] = p->samples[0];
        stats[LAT_MAX] = p->samples[iters - 1];
        stats[LAT_TYPICAL] = percentile(p->samples, iters, 50.0);
        stats[LAT_AVG] = avg;
        stats[LAT_STDEV] = sqrt(sq / iters);
        stats[LAT_P99] = percentile(p->samples, iters, 99.0);
        stats[LAT_P999] = percentile(p->samples, iters, 99.9);
        PERF_TRY(ctx, weft_send(stats, LAT_NSTATS, WEFT_FLOAT64, p->peer, comm, NULL));
    } else {
        PERF_TRY(ctx, weft_recv(stats, LAT_NSTATS, WEFT_FLOAT64, p->peer, comm, NULL));
    }
}

static void print_header(const struct p2p *p, const struct perf_rank_info *infos)
{
    const struct perf_args *a = p->a;
    if (a->format == PERF_FORMAT_CSV) {
        if (p->d->lat)
            printf("test,bytes,iterations,t_min_us,t_max_us,t_typical_us,t_avg_us,t_stdev_us,"
                   "p99_us,p99.9_us\n");
        else
            printf("test,bytes,iterations,bw_peak,bw_average,msg_rate_mpps,bw_unit,"
                   "bidirectional\n");
        return;
    }
    if (a->format == PERF_FORMAT_JSON) {
        printf("{\"test\": \"%s\", \"nranks\": 2, \"server\": {\"pid\": %d, \"host\": \"%s\"}, "
               "\"client\": {\"pid\": %d, \"host\": \"%s\"}",
               p->d->name, (int)infos[P2P_SERVER].pid, infos[P2P_SERVER].host,
               (int)infos[P2P_CLIENT].pid, infos[P2P_CLIENT].host);
        if (!p->d->lat)
            printf(", \"bidirectional\": %s, \"bw_unit\": \"%s\"", a->bidir ? "true" : "false",
                   bw_unit(a));
        printf(",\n \"rows\": [");
        return;
    }
    printf("%s\n                    %s%s\n", line, p->d->title,
           !p->d->lat && a->bidir ? " (bidirectional)" : "");
    printf(" Server         : rank 0, pid %d on %s\n", (int)infos[P2P_SERVER].pid,
           infos[P2P_SERVER].host);
    printf(" Client         : rank 1, pid %d on %s\n", (int)infos[P2P_CLIENT].pid,
           infos[P2P_CLIENT].host);
    printf(" Data check     : one message per size and direction, pattern verified\n");
    printf("%s\n", line);
    if (p->d->lat)
        printf(" #bytes #iterations    t_min[usec]    t_max[usec]  t_typical[usec]    "
               "t_avg[usec]    t_stdev[usec]   99%% percentile[usec]   99.9%% "
               "percentile[usec] \n");
    else
        printf(" #bytes     #iterations    BW peak[%s]    BW average[%s]   MsgRate[Mpps]\n",
               bw_unit(a), bw_unit(a));
}

static void print_bw(struct p2p *p, size_t size, int iters, const struct bw_row *row)
{
    switch (p->a->format) {
    case PERF_FORMAT_TABLE:
        printf(" %-10zu %-14d %-18.2f %-20.2f %.6f\n", size, iters, row->peak, row->avg,
               row->msg_rate);
        break;
    case PERF_FORMAT_CSV:
        printf("%s,%zu,%d,%.4f,%.4f,%.6f,%s,%d\n", p->d->name, size, iters, row->peak, row->avg,
               row->msg_rate, bw_unit(p->a), p->a->bidir ? 1 : 0);
        break;
    case PERF_FORMAT_JSON:
        printf("%s\n  {\"bytes\": %zu, \"iterations\": %d, \"bw_peak\": %.4f, "
               "\"bw_average\": %.4f, \"msg_rate_mpps\": %.6f}",
               p->nrows > 0 ? "," : "", size, iters, row->peak, row->avg, row->msg_rate);
        break;
    }
}

static void print_lat(struct p2p *p, size_t size, int iters, const double *s)
{
    switch (p->a->format) {
    case PERF_FORMAT_TABLE:
        printf(" %-7zu %-14d %-14.2f %-12.2f %-18.2f %-14.2f %-15.2f %-22.2f %.2f\n",
               size, iters, s[LAT_MIN], s[LAT_MAX], s[LAT_TYPICAL], s[LAT_AVG], s[LAT_STDEV],
               s[LAT_P99], s[LAT_P999]);
        break;
    case PERF_FORMAT_CSV:
        printf("%s,%zu,%d,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f\n", p->d->name, size, iters,
               s[LAT_MIN], s[LAT_MAX], s[LAT_TYPICAL], s[LAT_AVG], s[LAT_STDEV], s[LAT_P99],
               s[LAT_P999]);
        break;
    case PERF_FORMAT_JSON:
        printf("%s\n  {\"bytes\": %zu, \"iterations\": %d, \"t_min_us\": %.3f, "
               "\"t_max_us\": %.3f, \"t_typical_us\": %.3f, \"t_avg_us\": %.3f, "
               "\"t_stdev_us\": %.3f, \"p99_us\": %.3f, \"p99.9_us\": %.3f}",
               p->nrows > 0 ? "," : "", size, iters, s[LAT_MIN], s[LAT_MAX], s[LAT_TYPICAL],
               s[LAT_AVG], s[LAT_STDEV], s[LAT_P99], s[LAT_P999]);
        break;
    }
}

static void print_footer(const struct p2p *p)
{
    switch (p->a->format) {
    case PERF_FORMAT_TABLE:
        printf("%s\n", line);
        if (p->wrong > 0)
            printf(" Data check FAILED: %lld wrong bytes\n", p->wrong);
        break;
    case PERF_FORMAT_CSV:
        break;
    case PERF_FORMAT_JSON:
        printf("\n ],\n \"wrong\": %lld, \"ok\": %s}\n", p->wrong, p->wrong > 0 ? "false" : "true");
        break;
    }
}

/* Refusals every rank reaches alike, so all exit 2 and rank 0 says why. */
static const char *refusal(const struct perf_ctx *ctx, const struct p2p_desc *d, char *buf,
                           size_t len)
{
    const struct perf_args *a = ctx->args;
    if (d->one_sided)
        return "needs a transport with one-sided RDMA (verbs), not available in this build: "
               "use send_bw/send_lat";
    if (a->ib_dev != NULL || a->ib_port != 0 || a->gid_index >= 0)
        return "-d, -i and -x choose an RDMA device, port and GID: they need the verbs "
               "transport, not available in this build";
    if (d->lat && a->bidir)
        return "-b applies to the bandwidth tests only";
    if (ctx->nranks != 2) {
        snprintf(buf, len, "runs on exactly 2 ranks (rank 0 the server, rank 1 the client), "
                 "not %d: weft-run -n 2", ctx->nranks);
        return buf;
    }
    return NULL;
}

int perf_p2p_run(const struct perf_ctx *ctx, const struct perf_cmd *cmd)
{
    const struct perf_args *a = ctx->args;
    struct p2p p = {
        .ctx = ctx,
        .d = &descs[cmd->arg],
        .a = a,
        .peer = 1 - ctx->rank,
        .speaks = ctx->rank == P2P_SERVER,
    };
    char why[160];
    const char *no = refusal(ctx, p.d, why, sizeof(why));
    if (no != NULL) {
        if (p.speaks)
            fprintf(stderr, "weft-perf: %s: %s\n", p.d->name, no);
        return 2;
    }

    size_t minsize = a->all_sizes ? P2P_ALL_MIN : a->size != 0 ? a->size : p.d->lat ? 2 : 65536;
    size_t maxsize = a->all_sizes ? P2P_ALL_MAX : minsize;
    int max_iters = a->iters_given ? a->iters : iters_for(&p, minsize);
    for (size_t s = minsize; s <= maxsize; s *= 2) {
        int it = iters_for(&p, s);
        max_iters = it > max_iters ? it : max_iters;
    }
    if (posix_memalign((void **)&p.sendbuf, 4096, maxsize) != 0 ||
        posix_memalign((void **)&p.recvbuf, 4096, maxsize) != 0)
        perf_die(ctx, "cannot allocate the message buffers");
    p.stamps = calloc((size_t)max_iters + 1, sizeof(double));
    p.samples = calloc((size_t)max_iters, sizeof(double));
    struct perf_rank_info infos[2];
    if (p.stamps == NULL || p.samples == NULL)
        perf_die(ctx, "cannot allocate the timing arrays");
    perf_gather_ranks(ctx, infos);

    if (p.speaks) {
        print_header(&p, infos);
        fflush(stdout);
    }
    for (size_t size = minsize; size <= maxsize; size *= 2) {
        int iters = iters_for(&p, size);
        /* send_lat's pong carries data too, so both directions are checked there. */
        p.wrong += check_size(&p, size, a->bidir || p.d->lat);
        if (p.d->lat) {
            double stats[LAT_NSTATS] = {0};
            lat_size(&p, size, iters, stats);
            if (p.speaks)
                print_lat(&p, size, iters, stats);
        } else {
            struct bw_row row = bw_size(&p, size, iters);
            if (p.speaks)
                print_bw(&p, size, iters, &row);
        }
        if (p.speaks)
            fflush(stdout);
        p.nrows++;
    }
    if (p.speaks) {
        print_footer(&p);
        fflush(stdout);
    }
    free(p.samples);
    free(p.stamps);
    free(p.recvbuf);
    free(p.sendbuf);
    return p.wrong > 0 ? 1 : 0;
}
