/*
 * fabric_report.c - rank 0's half of `weft-perf fabric`: the pairs below the threshold, the
 * nodes to blame, the counters that rose, and the table, JSON, CSV and heatmap of it all.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perftest/fabric.h"
#include "perftest/fabric_sched.h"
#include "perftest/plot.h"

const char *const perf_fab_counters[FAB_NCOUNTERS] = {"symbol_error", "link_downed",
                                                      "port_rcv_errors"};

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b ? 1 : 0;
}

/* ---- the findings (rank 0) ------------------------------------------------------------- */


static double pair_reference(const struct perf_fab_findings *fd, const struct fab_node *nodes, int i, int j)
{
    if (!fd->per_pair_line)
        return fd->reference;
    double a = nodes[i].line_gbits, b = nodes[j].line_gbits;
    return a > 0.0 && b > 0.0 ? (a < b ? a : b) : fd->median;
}

static bool majority(const struct perf_fab_findings *fd, int n, int i)
{
    return n > 2 && 2 * fd->slow[i] > n - 1;
}

void perf_fabric_judge(const struct fab_opts *o, int n, const double *bw, const struct fab_node *nodes,
                  struct perf_fab_findings *fd)
{
    double *vals = calloc((size_t)(n * n), sizeof(double));
    int nv = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (i != j)
                vals[nv++] = bw[i * n + j];
    qsort(vals, (size_t)nv, sizeof(double), cmp_double);
    fd->median = nv == 0 ? 0.0 : nv % 2 ? vals[nv / 2] : (vals[nv / 2 - 1] + vals[nv / 2]) / 2;
    free(vals);
    fd->per_pair_line = o->against_line;
    fd->reference = o->against_line ? 0.0 : fd->median;
    fd->flag = calloc((size_t)(n * n), sizeof(bool));
    fd->cell = calloc((size_t)(n * n), sizeof(bool));
    fd->slow = calloc((size_t)n, sizeof(int));
    fd->bad = calloc((size_t)n, sizeof(bool));
    fd->errors = calloc((size_t)n, sizeof(bool));
    fd->nflagged = 0;
    for (int i = 0; i < n; i++) {
        for (int j = i + 1; j < n; j++) {
            double limit = o->threshold / 100.0 * pair_reference(fd, nodes, i, j);
            fd->cell[i * n + j] = bw[i * n + j] < limit;
            fd->cell[j * n + i] = bw[j * n + i] < limit;
            if (fd->cell[i * n + j] || fd->cell[j * n + i]) {
                fd->flag[i * n + j] = true;
                fd->slow[i]++;
                fd->slow[j]++;
                fd->nflagged++;
            }
        }
    }
    /* A node in more than half of its pairs' trouble is the one to blame; a flagged pair
     * with neither end blamed names both (a cable or switch port between them). */
    for (int i = 0; i < n; i++)
        fd->bad[i] = majority(fd, n, i);
    /* Against the majority verdict alone, so the order of the pairs does not matter. */
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (fd->flag[i * n + j] && !majority(fd, n, i) && !majority(fd, n, j))
                fd->bad[i] = fd->bad[j] = true;
    for (int i = 0; i < n; i++) {
        for (int c = 0; c < FAB_NCOUNTERS; c++) {
            if (nodes[i].after[c] > nodes[i].before[c]) {
                fd->errors[i] = true;
                fd->bad[i] = true;
            }
        }
    }
}

static void print_matrix(const char *title, const char *unit, int n, const double *m,
                         const struct fab_node *nodes, const bool *flag)
{
    printf("%s [%s], row: sender, column: receiver%s\n", title, unit,
           flag != NULL ? " (* below the threshold)" : "");
    printf("%-14s", "");
    for (int j = 0; j < n; j++)
        printf(" %11.11s", nodes[j].host);
    printf("\n");
    for (int i = 0; i < n; i++) {
        printf("%-14.14s", nodes[i].host);
        for (int j = 0; j < n; j++) {
            if (i == j || isnan(m[i * n + j])) {
                printf(" %11s", "-");
                continue;
            }
            bool f = flag != NULL && flag[i * n + j];
            printf(" %10.4g%c", m[i * n + j], f ? '*' : ' ');
        }
        printf("\n");
    }
}

static void json_host(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++)
        if (*s != '"' && *s != '\\' && (unsigned char)*s >= 0x20)
            fputc(*s, out);
    fputc('"', out);
}

static bool write_json(const char *file, const struct fab_opts *o, int n, const double *bw,
                       const double *lat, const struct fab_node *nodes, const struct perf_fab_findings *fd,
                       double secs)
{
    FILE *out = fopen(file, "w");
    if (out == NULL)
        return false;
    fprintf(out, "{\"weft_perf_fabric\": 1, \"nodes\": [");
    for (int i = 0; i < n; i++) {
        fprintf(out, "%s\n  {\"host\": ", i ? "," : "");
        json_host(out, nodes[i].host);
        fprintf(out, ", \"port\": ");
        json_host(out, nodes[i].port);
        fprintf(out,
                ", \"line_gbits\": %.6g, \"flagged_pairs\": %d, \"bad\": %s, "
                "\"counter_ports\": %d, \"counters\": {",
                nodes[i].line_gbits, fd->slow[i], fd->bad[i] ? "true" : "false", nodes[i].nports);
        for (int c = 0; c < FAB_NCOUNTERS; c++)
            fprintf(out, "%s\"%s\": [%llu, %llu]", c ? ", " : "", perf_fab_counters[c],
                    (unsigned long long)nodes[i].before[c], (unsigned long long)nodes[i].after[c]);
        fprintf(out, "}}");
    }
    fprintf(out,
            "\n ],\n \"size\": %zu, \"iters\": %d, \"rounds\": %d, \"seconds\": %.3f, "
            "\"threshold_pct\": %g, \"against\": \"%s\", \"median_gbits\": %.6g,\n"
            " \"pairs\": [",
            o->size, o->iters, perf_fabric_rounds(n), secs, o->threshold,
            o->against_line ? "line" : "median", fd->median);
    int k = 0;
    for (int i = 0; i < n; i++) {
        for (int j = i + 1; j < n; j++) {
            fprintf(out, "%s\n  {\"a\": ", k++ ? "," : "");
            json_host(out, nodes[i].host);
            fprintf(out, ", \"b\": ");
            json_host(out, nodes[j].host);
            fprintf(out,
                    ", \"ab_gbits\": %.6g, \"ba_gbits\": %.6g, \"lat_us\": %.6g, "
                    "\"flagged\": %s}",
                    bw[i * n + j], bw[j * n + i], lat[i * n + j],
                    fd->flag[i * n + j] ? "true" : "false");
        }
    }
    fprintf(out, "\n]}\n");
    return fclose(out) == 0;
}

static bool write_csv(const char *file, int n, const double *bw, const double *lat,
                      const struct fab_node *nodes, const struct perf_fab_findings *fd)
{
    FILE *out = fopen(file, "w");
    if (out == NULL)
        return false;
    fprintf(out, "a,b,ab_gbits,ba_gbits,lat_us,flagged\n");
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            fprintf(out, "%s,%s,%.6g,%.6g,%.6g,%d\n", nodes[i].host, nodes[j].host, bw[i * n + j],
                    bw[j * n + i], lat[i * n + j], fd->flag[i * n + j] ? 1 : 0);
    return fclose(out) == 0;
}

int perf_fabric_report(const struct fab_opts *o, int n, const double *bw, const double *lat,
                  const struct fab_node *nodes, double secs)
{
    struct perf_fab_findings fd;
    perf_fabric_judge(o, n, bw, nodes, &fd);
    printf("weft-perf fabric: %d nodes, %d rounds of pairs (circle method), %zu B x %d each "
           "way, %.2f s in all\n",
           n, perf_fabric_rounds(n), o->size, o->iters, secs);
    print_matrix("bandwidth", "Gb/s", n, bw, nodes, fd.cell);
    print_matrix("latency (one way, median)", "usec", n, lat, nodes, NULL);
    if (fd.per_pair_line)
        printf("reference: each pair's slower port data rate (median %.4g Gb/s where unknown); "
               "threshold %g %%\n",
               fd.median, o->threshold);
    else
        printf("reference: the median pair, %.4g Gb/s; threshold %g %% = %.4g Gb/s\n", fd.median,
               o->threshold, fd.median * o->threshold / 100.0);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (fd.flag[i * n + j])
                printf("SLOW pair %s <-> %s: %.4g / %.4g Gb/s (limit %.4g)\n", nodes[i].host,
                       nodes[j].host, bw[i * n + j], bw[j * n + i],
                       o->threshold / 100.0 * pair_reference(&fd, nodes, i, j));
    int counted = 0;
    for (int i = 0; i < n; i++) {
        counted += nodes[i].nports > 0;
        for (int c = 0; c < FAB_NCOUNTERS; c++)
            if (nodes[i].after[c] > nodes[i].before[c])
                printf("ERRORS on %s: %s rose by %llu during the test\n", nodes[i].host,
                       perf_fab_counters[c],
                       (unsigned long long)(nodes[i].after[c] - nodes[i].before[c]));
    }
    printf("port error counters (%s): read on %d of %d nodes\n",
           "symbol_error, link_downed, port_rcv_errors", counted, n);
    int nbad = 0;
    for (int i = 0; i < n; i++)
        nbad += fd.bad[i];
    if (nbad == 0) {
        printf("fabric: OK (%d pairs, none flagged)\n", n * (n - 1) / 2);
    } else {
        printf("fabric: BAD nodes:");
        for (int i = 0; i < n; i++)
            if (fd.bad[i])
                printf(" %s", nodes[i].host);
        printf(" (%d of %d pairs flagged)\n", fd.nflagged, n * (n - 1) / 2);
    }
    int status = o->check && nbad > 0 ? 1 : 0;
    if (o->json != NULL && !write_json(o->json, o, n, bw, lat, nodes, &fd, secs)) {
        fprintf(stderr, "weft-perf fabric: --json %s: %s\n", o->json, strerror(errno));
        status = status ? status : 2;
    }
    if (o->csv != NULL && !write_csv(o->csv, n, bw, lat, nodes, &fd)) {
        fprintf(stderr, "weft-perf fabric: --csv %s: %s\n", o->csv, strerror(errno));
        status = status ? status : 2;
    }
    if (o->plot != NULL) {
        const char **names = calloc((size_t)n, sizeof(char *));
        char why[256];
        for (int i = 0; i < n; i++)
            names[i] = nodes[i].host;
        if (!perf_plot_heatmap(o->plot, "weft-perf fabric: bandwidth by pair [Gb/s]", "Gb/s", names,
                               bw, n, why, sizeof(why))) {
            fprintf(stderr, "weft-perf fabric: %s\n", why); /* the verdict stands */
        }
        free(names);
    }
    fflush(stdout);
    perf_fabric_findings_free(&fd);
    return status;
}

void perf_fabric_findings_free(struct perf_fab_findings *fd)
{
    free(fd->flag);
    free(fd->cell);
    free(fd->slow);
    free(fd->bad);
    free(fd->errors);
    memset(fd, 0, sizeof(*fd));
}
