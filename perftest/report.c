/*
 * report.c - formats weft-perf rows as nccl-tests' table (same columns and footer lines, so
 * the usual scripts read it), as CSV with a header line, or as one JSON object.
 */
#include "perftest/report.h"

#include <math.h>
#include <string.h>

#include "perftest/device.h"
#include "perftest/plot.h"

static const char *const place_name[2] = {"out_of_place", "in_place"};
static const char *const memory_name[] = {
    [PERF_MEM_HOST] = "host",
    [PERF_MEM_CUDA] = "cuda",
    [PERF_MEM_FAKE] = "fake-gpu",
};

/* nccl-tests' time column: fewer decimals as the number grows. */
static void format_time(char *buf, size_t len, double us)
{
    if (us >= 10000.0)
        snprintf(buf, len, "%7.0f", us);
    else if (us >= 100.0)
        snprintf(buf, len, "%7.1f", us);
    else
        snprintf(buf, len, "%7.2f", us);
}

/* Host names are plain, but never let one break the JSON. */
static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static void begin_table(const struct perf_report *rep, const struct perf_ctx *ctx,
                        const struct perf_rank_info *infos)
{
    const struct perf_args *a = rep->args;
    FILE *out = rep->out;
    fprintf(out,
            "# weft-perf %s: nranks %d minBytes %zu maxBytes %zu step: %zu(factor) "
            "warmup iters: %d iters: %d validation: %d\n",
            rep->collective, ctx->nranks, a->minbytes, a->maxbytes, a->stepfactor, a->warmup,
            a->iters, a->check ? 1 : 0);
    if (ctx->dev != NULL)
        fprintf(out, "# Buffers: %s\n", ctx->dev->what);
    fprintf(out, "#\n# Using devices\n");
    for (int r = 0; r < ctx->nranks; r++) {
        fprintf(out, "#  Rank %2d Group  0 Pid %6d on %10s device %2d [%s]\n", r,
                (int)infos[r].pid, infos[r].host, (int)infos[r].device,
                infos[r].device < 0 ? "host" : "cuda");
    }
    fprintf(out, "#\n");
    /* Each place is 33 columns wide; the labels sit over its middle. */
    fprintf(out, "# %10s  %12s  %8s  %6s  %6s  %-31s  %-31s\n", "", "", "", "", "",
            "          out-of-place", "            in-place");
    fprintf(out, "# %10s  %12s  %8s  %6s  %6s", "size", "count", "type", "redop", "root");
    for (int p = 0; p < 2; p++)
        fprintf(out, "  %7s  %6s  %6s  %6s", "time", "algbw", "busbw", "#wrong");
    fprintf(out, "\n# %10s  %12s  %8s  %6s  %6s", "(B)", "(elements)", "", "", "");
    for (int p = 0; p < 2; p++)
        fprintf(out, "  %7s  %6s  %6s  %6s", "(us)", "(GB/s)", "(GB/s)", "");
    fprintf(out, "\n");
}

static void begin_json(const struct perf_report *rep, const struct perf_ctx *ctx,
                       const struct perf_rank_info *infos)
{
    const struct perf_args *a = rep->args;
    FILE *out = rep->out;
    fprintf(out, "{\"collective\": \"%s\", \"nranks\": %d, \"type\": \"%s\", \"redop\": \"%s\", "
                 "\"min_bytes\": %zu, \"max_bytes\": %zu, \"step_factor\": %zu, \"iters\": %d, "
                 "\"warmup\": %d, \"check\": %s, \"memory\": \"%s\",\n \"ranks\": [",
            rep->collective, ctx->nranks, weft_dtype_name(a->dtype), rep->redop, a->minbytes,
            a->maxbytes, a->stepfactor, a->iters, a->warmup, a->check ? "true" : "false",
            memory_name[a->memory]);
    for (int r = 0; r < ctx->nranks; r++) {
        fprintf(out, "%s{\"rank\": %d, \"host\": ", r > 0 ? ", " : "", r);
        json_string(out, infos[r].host);
        fprintf(out, ", \"pid\": %d, \"device\": %d}", (int)infos[r].pid, (int)infos[r].device);
    }
    fprintf(out, "],\n \"rows\": [");
}

void perf_report_begin(struct perf_report *rep, const struct perf_ctx *ctx,
                       const char *collective, const char *redop,
                       const struct perf_rank_info *infos)
{
    memset(rep, 0, sizeof(*rep));
    rep->args = ctx->args;
    rep->out = stdout;
    rep->active = ctx->rank == 0;
    rep->collective = collective;
    rep->redop = redop;
    if (!rep->active)
        return;
    switch (rep->args->format) {
    case PERF_FORMAT_TABLE:
        begin_table(rep, ctx, infos);
        break;
    case PERF_FORMAT_CSV:
        fprintf(rep->out, "collective,size,count,type,redop,root");
        for (int p = 0; p < 2; p++) {
            const char *n = p == 0 ? "oop" : "ip";
            fprintf(rep->out, ",%s_time_us,%s_algbw,%s_busbw,%s_wrong", n, n, n, n);
        }
        fprintf(rep->out, "\n");
        break;
    case PERF_FORMAT_JSON:
        begin_json(rep, ctx, infos);
        break;
    }
    fflush(rep->out);
}

static void row_table(const struct perf_report *rep, const struct perf_row *row)
{
    FILE *out = rep->out;
    fprintf(out, "%12zu  %12zu  %8s  %6s  %6d", row->bytes, row->count,
            weft_dtype_name(rep->args->dtype), rep->redop, row->root);
    for (int p = 0; p < 2; p++) {
        const struct perf_result *res = &row->place[p];
        if (!res->valid) {
            fprintf(out, "  %7s  %6s  %6s  %6s", "N/A", "N/A", "N/A", "N/A");
            continue;
        }
        char t[32], w[32];
        format_time(t, sizeof(t), res->time_us);
        if (res->wrong < 0)
            snprintf(w, sizeof(w), "N/A");
        else
            snprintf(w, sizeof(w), "%lld", res->wrong);
        fprintf(out, "  %7s  %6.2f  %6.2f  %6s", t, res->algbw, res->busbw, w);
    }
    fprintf(out, "\n");
}

static void row_csv(const struct perf_report *rep, const struct perf_row *row)
{
    FILE *out = rep->out;
    fprintf(out, "%s,%zu,%zu,%s,%s,%d", rep->collective, row->bytes, row->count,
            weft_dtype_name(rep->args->dtype), rep->redop, row->root);
    for (int p = 0; p < 2; p++) {
        const struct perf_result *res = &row->place[p];
        if (!res->valid) {
            fprintf(out, ",,,,");
            continue;
        }
        fprintf(out, ",%.3f,%.6f,%.6f,", res->time_us, res->algbw, res->busbw);
        if (res->wrong >= 0)
            fprintf(out, "%lld", res->wrong);
    }
    fprintf(out, "\n");
}

static void row_json(const struct perf_report *rep, const struct perf_row *row)
{
    FILE *out = rep->out;
    fprintf(out, "%s\n  {\"size\": %zu, \"count\": %zu, \"root\": %d", rep->nrows > 0 ? "," : "",
            row->bytes, row->count, row->root);
    for (int p = 0; p < 2; p++) {
        const struct perf_result *res = &row->place[p];
        fprintf(out, ", \"%s\": ", place_name[p]);
        if (!res->valid) {
            fprintf(out, "null");
            continue;
        }
        fprintf(out, "{\"time_us\": %.3f, \"algbw\": %.6f, \"busbw\": %.6f, \"wrong\": ",
                res->time_us, res->algbw, res->busbw);
        if (res->wrong >= 0)
            fprintf(out, "%lld}", res->wrong);
        else
            fprintf(out, "null}");
    }
    fprintf(out, "}");
}

void perf_report_row(struct perf_report *rep, const struct perf_row *row)
{
    if (rep->nrows < PERF_REPORT_PLOT_ROWS) {
        rep->plot_bytes[rep->nrows] = (double)row->bytes;
        for (int p = 0; p < 2; p++) {
            rep->plot_busbw[p][rep->nrows] = row->place[p].valid ? row->place[p].busbw : NAN;
            rep->plot_time[p][rep->nrows] = row->place[p].valid ? row->place[p].time_us : NAN;
        }
    }
    for (int p = 0; p < 2; p++) {
        if (!row->place[p].valid)
            continue;
        rep->bw_sum += row->place[p].busbw;
        rep->bw_count++;
        if (row->place[p].wrong > 0)
            rep->wrong += row->place[p].wrong;
    }
    if (rep->active) {
        switch (rep->args->format) {
        case PERF_FORMAT_TABLE: row_table(rep, row); break;
        case PERF_FORMAT_CSV: row_csv(rep, row); break;
        case PERF_FORMAT_JSON: row_json(rep, row); break;
        }
        fflush(rep->out);
    }
    rep->nrows++;
}

/* --plot: bus bandwidth and time against size, out-of-place and in-place. */
static void plot(const struct perf_report *rep)
{
    size_t n = rep->nrows < PERF_REPORT_PLOT_ROWS ? rep->nrows : PERF_REPORT_PLOT_ROWS;
    char title[96], why[256];
    snprintf(title, sizeof(title), "weft-perf %s (%s)", rep->collective,
             weft_dtype_name(rep->args->dtype));
    struct perf_plot_series bw[2], t[2];
    for (int p = 0; p < 2; p++) {
        bw[p] = (struct perf_plot_series){place_name[p], rep->plot_bytes, rep->plot_busbw[p], n};
        t[p] = (struct perf_plot_series){place_name[p], rep->plot_bytes, rep->plot_time[p], n};
    }
    struct perf_plot_axes a = {title, "message size", "bus bandwidth [GB/s]", true, false, true};
    struct perf_plot_axes b = {"time per call", "message size", "time [usec]", true, true, true};
    if (!perf_plot_two(rep->args->plot_file, &a, bw, 2, &b, t, 2, why, sizeof(why)))
        fprintf(stderr, "weft-perf: %s\n", why);
}

long long perf_report_end(struct perf_report *rep)
{
    if (rep->active && rep->args->plot_file != NULL)
        plot(rep);
    double avg = rep->bw_count > 0 ? rep->bw_sum / (double)rep->bw_count : 0.0;
    if (rep->active) {
        switch (rep->args->format) {
        case PERF_FORMAT_TABLE:
            fprintf(rep->out, "# Out of bounds values : %lld %s\n", rep->wrong,
                    rep->wrong > 0 ? "FAILED" : "OK");
            fprintf(rep->out, "# Avg bus bandwidth    : %g \n#\n", avg);
            break;
        case PERF_FORMAT_CSV:
            break;
        case PERF_FORMAT_JSON:
            fprintf(rep->out, "\n ],\n \"out_of_bounds\": %lld, \"avg_busbw\": %g, \"ok\": %s}\n",
                    rep->wrong, avg, rep->wrong > 0 ? "false" : "true");
            break;
        }
        fflush(rep->out);
    }
    return rep->wrong;
}
