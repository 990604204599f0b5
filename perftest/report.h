/*
 * report.h - weft-perf's output on rank 0: the nccl-tests table, CSV or JSON. Rows stream out
 * as they are measured so a long sweep shows progress; the other ranks print nothing.
 */
#ifndef WEFT_PERFTEST_REPORT_H
#define WEFT_PERFTEST_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "perftest/perf.h"

/* One measurement: out-of-place or in-place at one size. */
struct perf_result {
    bool valid;       /* false: not run (N/A) */
    double time_us;   /* mean per iteration, max over ranks */
    double algbw;     /* GB/s (1e9 bytes) */
    double busbw;     /* GB/s */
    long long wrong;  /* mismatching elements over all ranks, -1 when not checked */
};

struct perf_row {
    size_t bytes;
    size_t count;
    int root; /* -1 where the collective has none */
    struct perf_result place[2]; /* [0] out-of-place, [1] in-place */
};

struct perf_report {
    const struct perf_args *args;
    FILE *out;
    bool active; /* rank 0 */
    const char *collective;
    const char *redop;
    size_t nrows;
    double bw_sum;
    size_t bw_count;
    long long wrong;
    /* Kept for --plot: size, bus bandwidth and time of each place (NaN: not run). */
#define PERF_REPORT_PLOT_ROWS 64
    double plot_bytes[PERF_REPORT_PLOT_ROWS];
    double plot_busbw[2][PERF_REPORT_PLOT_ROWS], plot_time[2][PERF_REPORT_PLOT_ROWS];
};

/* Prints the header (rank table included) for `collective`; `redop` is "none" for
 * collectives that do not reduce. `infos` holds ctx->nranks entries. */
void perf_report_begin(struct perf_report *rep, const struct perf_ctx *ctx,
                       const char *collective, const char *redop,
                       const struct perf_rank_info *infos);
void perf_report_row(struct perf_report *rep, const struct perf_row *row);
/* Prints the footer; returns the total of wrong elements. */
long long perf_report_end(struct perf_report *rep);

#endif /* WEFT_PERFTEST_REPORT_H */
