/*
 * p2p.c - weft-perf's point-to-point tests after perftest: *_bw streams messages from rank 1
 * to rank 0 (both ways with -b), *_lat ping-pongs; perftest's columns, any transport.
 */
#include "perftest/p2p.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "perftest/fill.h"
#include "perftest/links.h"
#include "perftest/plot.h"
#include "weft_tools.h"

#define P2P_SERVER 0 /* receives in send_bw, answers in send_lat, prints */
#define P2P_CLIENT 1
#define P2P_ALL_MIN ((size_t)2)       /* -a: perftest's range */
#define P2P_ALL_MAX ((size_t)8 << 20)
#define P2P_TX_DEPTH 128              /* ib_write_bw's default -t: messages in flight */
/* The head of each verbs ring entry (struct verbs_entry, transport/verbs_internal.h): a
 * message up to WEFT_IB_EAGER_SIZE less this goes eagerly, larger ones by rendezvous. */
#define P2P_VERBS_ENTRY_BYTES ((size_t)48)
/* Default iteration counts shrink for big sizes so that -a takes seconds, not minutes: at most
 * this many bytes per size and direction, and never fewer than P2P_MIN_ITERS. */
#define P2P_BW_BUDGET ((size_t)512 << 20)
#define P2P_LAT_BUDGET ((size_t)128 << 20)
#define P2P_MIN_ITERS 16
/* Untimed messages before each size: enough to warm the path, capped in bytes so that the
 * big sizes do not double a sweep's time on slow links (soft-RoCE moves tens of MB/s). */
#define P2P_WARMUP_BYTES ((size_t)4 << 20)
#define P2P_LAT_WARMUP 50

struct p2p_desc {
    const char *name;
    const char *title;
    bool lat;
};

static const struct p2p_desc descs[] = {
    [PERF_SEND_BW] = {"send_bw", "Send BW Test", false},
    [PERF_SEND_LAT] = {"send_lat", "Send Latency Test", true},
    [PERF_WRITE_BW] = {"write_bw", "RDMA Write BW Test", false},
    [PERF_WRITE_LAT] = {"write_lat", "RDMA Write Latency Test", true},
    [PERF_READ_BW] = {"read_bw", "RDMA Read BW Test", false},
    [PERF_READ_LAT] = {"read_lat", "RDMA Read Latency Test", true},
};

struct p2p {
    const struct perf_ctx *ctx;
    const struct p2p_desc *d;
    const struct perf_args *a;
    enum perf_p2p test;
    int peer;
    const char *transport; /* what carries the messages to the peer ("verbs", "shm", ...) */
    int tx_depth;          /* bw: messages in flight */
    size_t maxsize;        /* bytes of each buffer */
    char *sendbuf, *recvbuf;
    void *send_reg, *recv_reg; /* weft_mem_register handles */
    double *stamps;  /* bw: time after each group */
    double *samples; /* lat: one-way latency of each iteration, usec */
    bool speaks;     /* rank 0 prints; both do when started as server and client */
    size_t nrows;
    long long wrong;
    /* The link the bandwidth is compared with: the slower end's data rate, Gb/s; 0 unknown. */
    double line_gbits;
    char line_desc[300];
    struct perf_link link; /* this end's port (dev[0] == '\0': none) */
    struct perf_p2p_rows rows; /* every row, for --json FILE and --plot */
};

struct bw_row {
    double peak, avg, msg_rate;   /* in the report's unit; Mpps */
    double peak_gbits, avg_gbits; /* the same in Gb/s, for the record and the efficiency */
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

/* At most `most` untimed messages of `size`, within P2P_WARMUP_BYTES but at least 2. */
static int warmup_for(size_t size, int most)
{
    size_t cap = P2P_WARMUP_BYTES / size;
    cap = cap < 2 ? 2 : cap;
    return (size_t)most < cap ? most : (int)cap;
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

/* `count` messages, in groups of `group` so that many are in flight: weft's group posts them
 * all at once, so rendezvous handshakes overlap as under ib_write_bw's tx depth (the window
 * drains at each group's end, weft.h having no non-blocking send). stamps[g + 1] is the time
 * group g completed (when stamps is not NULL). */
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
 * all the time, the peak the best window of about a tenth of the groups (of the tx depth). */
static struct bw_row bw_size(const struct p2p *p, size_t size, int iters)
{
    const struct perf_ctx *ctx = p->ctx;
    int group = iters < p->tx_depth ? iters : p->tx_depth;
    int ngroups = (iters + group - 1) / group;

    int warmup = warmup_for(size, group);
    bw_stream(p, size, warmup, warmup, NULL);
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
    row.avg_gbits = msgs_per_s * (double)size * 8.0 / 1e9;
    row.peak_gbits = peak * (double)size * 8.0 / 1e9;
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
    int warmup = warmup_for(size, iters < P2P_LAT_WARMUP ? iters : P2P_LAT_WARMUP);
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

static bool over_verbs(const struct p2p *p)
{
    return strcmp(p->transport, "verbs") == 0;
}

/* The verbs protocol lines: eager, rendezvous, and for read_* that small messages stay writes. */
static void print_verbs_protocol(const struct p2p *p)
{
    char text[128], rndv[32], hca[128];
    size_t slot = 0, inline_max = 0;
    (void)perf_parse_bytes(perf_knob_str("WEFT_IB_EAGER_SIZE", text, sizeof(text)), &slot);
    (void)perf_parse_bytes(perf_knob_str("WEFT_IB_INLINE", text, sizeof(text)), &inline_max);
    size_t eager = slot > P2P_VERBS_ENTRY_BYTES ? slot - P2P_VERBS_ENTRY_BYTES : 0;
    bool read = strcmp(perf_knob_str("WEFT_IB_RNDV", rndv, sizeof(rndv)), "read") == 0;
    perf_knob_str("WEFT_IB_HCA", hca, sizeof(hca));
    long long gid = perf_knob_int("WEFT_IB_GID_INDEX", -1);
    printf(" Device         : %s%s, GID index %s", hca[0] ? "WEFT_IB_HCA=" : "",
           hca[0] ? hca : "every active port, one per local rank", gid < 0 ? "auto" : "");
    if (gid >= 0)
        printf("%lld", gid);
    printf("\n Eager          : up to %zu B by RDMA WRITE WITH IMMEDIATE into the peer's ring "
           "(inline up to %zu B)\n", eager, inline_max);
    printf(" Rendezvous     : above %zu B, zero-copy RDMA %s (WEFT_IB_RNDV=%s)\n", eager,
           read ? "READ of the send buffer" : "WRITE into the receive buffer",
           read ? "read" : "write");
    if (perf_p2p_rndv(p->test) != NULL && read)
        printf(" Note           : messages up to %zu B stay eager RDMA writes; only larger ones "
               "are RDMA READs\n", eager);
}

/* Which transport carried the test, and for verbs how. */
static void print_transport(const struct p2p *p)
{
    if (over_verbs(p)) {
        printf(" Transport      : verbs\n");
        print_verbs_protocol(p);
    } else if (perf_p2p_rndv(p->test) != NULL) {
        printf(" Transport      : %s (no one-sided RDMA there: %s runs as messages)\n",
               p->transport, p->d->name);
    } else {
        printf(" Transport      : %s\n", p->transport);
    }
    if (!over_verbs(p) && (p->a->ib_dev != NULL || p->a->ib_port != 0 || p->a->gid_index >= 0))
        printf(" Note           : -d, -i and -x apply to verbs only: unused here\n");
    printf(" Buffers        : 2 x %zu B, page-aligned, registered (weft_mem_register)\n",
           p->maxsize);
    if (!p->d->lat)
        printf(" TX depth       : %d\n", p->tx_depth);
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
                   "bidirectional%s\n", p->line_gbits > 0.0 ? ",efficiency_pct" : "");
        return;
    }
    if (a->format == PERF_FORMAT_JSON) {
        printf("{\"test\": \"%s\", \"nranks\": 2, \"server\": {\"pid\": %d, \"host\": \"%s\"}, "
               "\"client\": {\"pid\": %d, \"host\": \"%s\"}",
               p->d->name, (int)infos[P2P_SERVER].pid, infos[P2P_SERVER].host,
               (int)infos[P2P_CLIENT].pid, infos[P2P_CLIENT].host);
        printf(", \"transport\": \"%s\"", p->transport);
        char rndv[32];
        if (over_verbs(p))
            printf(", \"rndv\": \"%s\"", perf_knob_str("WEFT_IB_RNDV", rndv, sizeof(rndv)));
        if (!p->d->lat)
            printf(", \"bidirectional\": %s, \"bw_unit\": \"%s\", \"tx_depth\": %d",
                   a->bidir ? "true" : "false", bw_unit(a), p->tx_depth);
        printf(",\n \"rows\": [");
        return;
    }
    printf("%s\n                    %s%s\n", line, p->d->title,
           !p->d->lat && a->bidir ? " (bidirectional)" : "");
    printf(" Server         : rank 0, pid %d on %s\n", (int)infos[P2P_SERVER].pid,
           infos[P2P_SERVER].host);
    printf(" Client         : rank 1, pid %d on %s\n", (int)infos[P2P_CLIENT].pid,
           infos[P2P_CLIENT].host);
    print_transport(p);
    if (!p->d->lat)
        printf(" Line rate      : %s\n", p->line_gbits > 0.0 ? p->line_desc
                                     : "unknown (no RDMA port under the transport: "
                                       "--line-rate G sets one)");
    printf(" Data check     : one message per size and direction, pattern verified\n");
    printf("%s\n", line);
    if (p->d->lat)
        printf(" #bytes #iterations    t_min[usec]    t_max[usec]  t_typical[usec]    "
               "t_avg[usec]    t_stdev[usec]   99%% percentile[usec]   99.9%% "
               "percentile[usec] \n");
    else
        printf(" #bytes     #iterations    BW peak[%s]    BW average[%s]   MsgRate[Mpps]%s\n",
               bw_unit(a), bw_unit(a), p->line_gbits > 0.0 ? "   Efficiency[%]" : "");
}

/* Measured over theoretical, in percent: both directions count with -b. */
static double efficiency(const struct p2p *p, double gbits)
{
    double ways = p->a->bidir ? 2.0 : 1.0;
    return p->line_gbits > 0.0 ? 100.0 * gbits / (ways * p->line_gbits) : NAN;
}

static void print_bw(struct p2p *p, size_t size, int iters, const struct bw_row *row)
{
    switch (p->a->format) {
    case PERF_FORMAT_TABLE:
        printf(" %-10zu %-14d %-18.2f %-20.2f %.6f", size, iters, row->peak, row->avg,
               row->msg_rate);
        if (p->line_gbits > 0.0)
            printf("        %.1f", efficiency(p, row->avg_gbits));
        printf("\n");
        break;
    case PERF_FORMAT_CSV:
        printf("%s,%zu,%d,%.4f,%.4f,%.6f,%s,%d", p->d->name, size, iters, row->peak, row->avg,
               row->msg_rate, bw_unit(p->a), p->a->bidir ? 1 : 0);
        if (p->line_gbits > 0.0)
            printf(",%.2f", efficiency(p, row->avg_gbits));
        printf("\n");
        break;
    case PERF_FORMAT_JSON:
        printf("%s\n  {\"bytes\": %zu, \"iterations\": %d, \"bw_peak\": %.4f, "
               "\"bw_average\": %.4f, \"msg_rate_mpps\": %.6f",
               p->nrows > 0 ? "," : "", size, iters, row->peak, row->avg, row->msg_rate);
        if (p->line_gbits > 0.0)
            printf(", \"efficiency_pct\": %.2f", efficiency(p, row->avg_gbits));
        printf("}");
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
    if (d->lat && a->bidir)
        return "-b applies to the bandwidth tests only";
    if (d->lat && a->tx_depth != 0)
        return "-t applies to the bandwidth tests only";
    if (ctx->nranks != 2) {
        snprintf(buf, len, "runs on exactly 2 ranks (rank 0 the server, rank 1 the client), "
                 "not %d: weft-run -n 2", ctx->nranks);
        return buf;
    }
    return NULL;
}

/* Page-aligned send and receive buffers of `bytes`, registered so that no message pays for
 * its registration (the verbs rendezvous writes or reads them in place), and the timing
 * arrays for up to `max_iters` iterations. */
static void setup_buffers(struct p2p *p, size_t bytes, int max_iters)
{
    const struct perf_ctx *ctx = p->ctx;
    p->maxsize = bytes;
    if (posix_memalign((void **)&p->sendbuf, 4096, bytes) != 0 ||
        posix_memalign((void **)&p->recvbuf, 4096, bytes) != 0)
        perf_die(ctx, "cannot allocate the message buffers");
    /* Touch every page first, as perftest does, so registration pins real memory. */
    memset(p->sendbuf, 0, bytes);
    memset(p->recvbuf, 0, bytes);
    p->stamps = calloc((size_t)max_iters + 1, sizeof(double));
    p->samples = calloc((size_t)max_iters, sizeof(double));
    if (p->stamps == NULL || p->samples == NULL)
        perf_die(ctx, "cannot allocate the timing arrays");
    PERF_TRY(ctx, weft_mem_register(ctx->comm, p->sendbuf, bytes, &p->send_reg));
    PERF_TRY(ctx, weft_mem_register(ctx->comm, p->recvbuf, bytes, &p->recv_reg));
}

static void free_buffers(struct p2p *p)
{
    const struct perf_ctx *ctx = p->ctx;
    PERF_TRY(ctx, weft_mem_deregister(ctx->comm, p->recv_reg));
    PERF_TRY(ctx, weft_mem_deregister(ctx->comm, p->send_reg));
    free(p->samples);
    free(p->stamps);
    free(p->recvbuf);
    free(p->sendbuf);
}

/* The port under a verbs transport: -d/-i, else WEFT_IB_HCA's first device ("=mlx5_0:1",
 * "mlx5_0,mlx5_1", "^mlx5_2" excludes: ignored), else the first active port. */
static bool local_port(const struct p2p *p, struct perf_link *out)
{
    char hca[128], dev[PERF_LINK_NAME_MAX] = "";
    int port = p->a->ib_port;
    if (p->a->ib_dev != NULL) {
        snprintf(dev, sizeof(dev), "%s", p->a->ib_dev);
    } else {
        const char *h = perf_knob_str("WEFT_IB_HCA", hca, sizeof(hca));
        if (h[0] == '=')
            h++;
        if (h[0] != '^' && h[0] != '\0') {
            size_t n = strcspn(h, ":,");
            snprintf(dev, sizeof(dev), "%.*s", (int)(n < sizeof(dev) ? n : sizeof(dev) - 1), h);
            if (h[n] == ':' && port == 0)
                port = atoi(h + n + 1);
        }
    }
    return perf_links_pick(NULL, dev[0] ? dev : NULL, port, out) && out->data_gbits > 0.0;
}

/* Collective: the data rate the bandwidth is compared with, the slower end's. */
static void find_line_rate(struct p2p *p)
{
    struct {
        double gbits;
        char desc[120];
    } mine, both[2];
    memset(&mine, 0, sizeof(mine));
    if (p->a->line_rate_gbits > 0.0) {
        mine.gbits = p->a->line_rate_gbits;
        snprintf(mine.desc, sizeof(mine.desc), "%g Gb/s (--line-rate)", mine.gbits);
    } else if (over_verbs(p) && local_port(p, &p->link)) {
        char gen[40];
        mine.gbits = p->link.data_gbits;
        snprintf(mine.desc, sizeof(mine.desc), "%.40s:%d %dX %.40s, %g Gb/s", p->link.dev,
                 p->link.port, p->link.lanes, perf_link_gen_text(&p->link, gen, sizeof(gen)),
                 mine.gbits);
    }
    PERF_TRY(p->ctx, weft_allgather(&mine, both, sizeof(mine), WEFT_UINT8, p->ctx->comm, NULL));
    int slow = both[0].gbits > 0.0 && (both[1].gbits <= 0.0 || both[0].gbits <= both[1].gbits)
                   ? 0 : 1;
    p->line_gbits = both[slow].gbits;
    if (p->line_gbits > 0.0)
        snprintf(p->line_desc, sizeof(p->line_desc), "%.4g Gb/s data rate (server %s; client %s)",
                 p->line_gbits, both[0].gbits > 0.0 ? both[0].desc : "unknown",
                 both[1].gbits > 0.0 ? both[1].desc : "unknown");
}

/* --json FILE and --plot FILE, on each rank that was given them and prints. */
static void save_outputs(struct p2p *p, const struct perf_rank_info *infos)
{
    char why[256];
    if (!p->speaks)
        return;
    if (p->a->record_file != NULL) {
        struct perf_p2p_record rec = {
            .test = p->d->name, .lat = p->d->lat, .bidir = p->a->bidir,
            .transport = p->transport, .host = infos[p->ctx->rank].host,
            .peer = infos[p->peer].host, .role = p->ctx->rank == P2P_SERVER ? "server" : "client",
            .link = p->link.dev[0] ? &p->link : NULL, .line_gbits = p->line_gbits,
            .line_desc = p->line_desc,
        };
        if (!perf_p2p_save_record(p->a->record_file, &rec, &p->rows, why, sizeof(why)))
            fprintf(stderr, "weft-perf: %s\n", why);
    }
    if (p->a->plot_file != NULL &&
        !perf_p2p_plot(p->a->plot_file, p->d->title, p->d->lat, p->a->bidir, &p->rows, why,
                       sizeof(why)))
        fprintf(stderr, "weft-perf: %s\n", why);
}

/* One row: the data check, then the timed run. */
static void run_size(struct p2p *p, size_t size)
{
    int iters = iters_for(p, size);
    /* The *_lat pong carries data too, so both directions are checked there. */
    p->wrong += check_size(p, size, p->a->bidir || p->d->lat);
    if (p->d->lat) {
        double stats[LAT_NSTATS] = {0};
        lat_size(p, size, iters, stats);
        if (p->speaks)
            print_lat(p, size, iters, stats);
        p->rows.lat_typical[p->nrows] = stats[LAT_TYPICAL];
        p->rows.lat_avg[p->nrows] = stats[LAT_AVG];
        p->rows.lat_p99[p->nrows] = stats[LAT_P99];
    } else {
        struct bw_row row = bw_size(p, size, iters);
        /* The server timed the arrivals; a client that prints shows the server's figures. */
        if (p->ctx->pair) {
            size_t nd = sizeof(row) / sizeof(double);
            if (p->ctx->rank == P2P_SERVER)
                PERF_TRY(p->ctx, weft_send(&row, nd, WEFT_FLOAT64, p->peer, p->ctx->comm, NULL));
            else
                PERF_TRY(p->ctx, weft_recv(&row, nd, WEFT_FLOAT64, p->peer, p->ctx->comm, NULL));
        }
        if (p->speaks)
            print_bw(p, size, iters, &row);
        struct perf_p2p_rows *r = &p->rows;
        r->peak[p->nrows] = row.peak_gbits;
        r->avg[p->nrows] = row.avg_gbits;
        r->eff[p->nrows] = efficiency(p, row.avg_gbits);
    }
    p->rows.bytes[p->nrows] = (double)size;
    p->rows.n = p->nrows + 1;
    if (p->speaks)
        fflush(stdout);
    p->nrows++;
}

int perf_p2p_run(const struct perf_ctx *ctx, const struct perf_cmd *cmd)
{
    const struct perf_args *a = ctx->args;
    struct p2p p = {
        .ctx = ctx,
        .d = &descs[cmd->arg],
        .a = a,
        .test = (enum perf_p2p)cmd->arg,
        .peer = 1 - ctx->rank,
        .tx_depth = a->tx_depth > 0 ? a->tx_depth : P2P_TX_DEPTH,
        .speaks = ctx->rank == P2P_SERVER || ctx->pair,
    };
    char why[160];
    const char *no = refusal(ctx, p.d, why, sizeof(why));
    if (no != NULL) {
        if (p.speaks)
            fprintf(stderr, "weft-perf: %s: %s\n", p.d->name, no);
        return 2;
    }
    PERF_TRY(ctx, weft_comm_peer_transport(ctx->comm, p.peer, &p.transport));

    size_t minsize = a->all_sizes ? P2P_ALL_MIN : a->size != 0 ? a->size : p.d->lat ? 2 : 65536;
    size_t maxsize = a->all_sizes ? P2P_ALL_MAX : minsize;
    int max_iters = 0;
    for (size_t s = minsize; s <= maxsize; s *= 2) {
        int it = iters_for(&p, s);
        max_iters = it > max_iters ? it : max_iters;
    }
    setup_buffers(&p, maxsize, max_iters);
    struct perf_rank_info infos[2];
    perf_gather_ranks(ctx, infos);
    if (!p.d->lat)
        find_line_rate(&p);
    if (!perf_p2p_rows_alloc(&p.rows, 64))
        perf_die(ctx, "cannot allocate the row table");

    if (p.speaks) {
        print_header(&p, infos);
        fflush(stdout);
    }
    for (size_t size = minsize; size <= maxsize; size *= 2)
        run_size(&p, size);
    if (p.speaks) {
        print_footer(&p);
        fflush(stdout);
    }
    save_outputs(&p, infos);
    perf_p2p_rows_free(&p.rows);
    free_buffers(&p);
    return p.wrong > 0 ? 1 : 0;
}
