/*
 * fabric.h - what `weft-perf fabric`'s two halves share: the options, each node's record, and
 * the report that rank 0 makes of the gathered matrices (fabric_report.c).
 */
#ifndef WEFT_PERFTEST_FABRIC_H
#define WEFT_PERFTEST_FABRIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "perftest/perf.h"

/* The port error counters read before and after, from sysfs ports/N/counters/. */
#define FAB_NCOUNTERS 3
extern const char *const perf_fab_counters[FAB_NCOUNTERS];

struct fab_opts {
    size_t size;
    int iters, lat_iters, window, reps;
    double threshold; /* % of the reference */
    bool against_line;
    double line_gbits; /* --line-rate; 0: the ports' */
    bool check;
    const char *json, *csv, *plot;
    const char *hosts; /* --hosts: started by hand on each of them, no launcher */
    int rank, port;    /* --rank (-1: by host name), --port of the rendezvous */
};

/* What each rank contributes to the gather: its row of the matrices and its counters. */
struct fab_node {
    char host[PERF_HOST_MAX];
    double line_gbits; /* its port's data rate, 0 unknown */
    char port[48];     /* "mlx5_0:1 4X HDR" or "" */
    uint64_t before[FAB_NCOUNTERS], after[FAB_NCOUNTERS];
    int nports; /* ports whose counters were read */
};

/* What rank 0 concludes from the n x n bandwidth matrix and the nodes' counters. */
struct perf_fab_findings {
    double reference; /* Gb/s a pair is compared with (median, or line per pair when 0) */
    bool per_pair_line;
    double median;
    int nflagged;
    bool *flag;   /* n*n, i<j: the pair i-j is slow either way */
    bool *cell;   /* n*n: this direction is below its limit */
    int *slow;    /* per node: flagged pairs it is in */
    bool *bad;    /* per node: blamed */
    bool *errors; /* per node: an error counter rose */
};
/* A pair is flagged when either direction is below the threshold of the reference; a node in
 * more than half of its pairs' flags is bad, a flagged pair with neither end bad names both,
 * and a node whose counters rose is bad. Free with perf_fabric_findings_free. */
void perf_fabric_judge(const struct fab_opts *o, int n, const double *bw,
                       const struct fab_node *nodes, struct perf_fab_findings *fd);
void perf_fabric_findings_free(struct perf_fab_findings *fd);

/* Prints the matrices, flags and verdict, writes --json, --csv and --plot; returns the exit
 * status (1: --check and a bad node). bw and lat are n x n, row the sender. */
int perf_fabric_report(const struct fab_opts *o, int n, const double *bw, const double *lat,
                       const struct fab_node *nodes, double secs);

#endif /* WEFT_PERFTEST_FABRIC_H */
