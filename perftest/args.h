/*
 * args.h - the command line of weft-perf: a subcommand followed by nccl-tests style options
 * (-b -e -f -n -w -c -d -o -r, --csv, --json, --gpu), or for the point-to-point tests
 * perftest's (-s -a -n -b -t -d -i -x --report_gbits).
 */
#ifndef WEFT_PERFTEST_ARGS_H
#define WEFT_PERFTEST_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "weft.h"

enum perf_format { PERF_FORMAT_TABLE = 0, PERF_FORMAT_CSV, PERF_FORMAT_JSON };

/* Where the collectives' buffers live (perftest/device.h). */
enum perf_memory {
    PERF_MEM_HOST = 0, /* host buffers, stream NULL: the default */
    PERF_MEM_CUDA,     /* --gpu: cudaMalloc'd buffers on a non-default stream */
    PERF_MEM_FAKE      /* --fake-gpu: --gpu's path with host memory as the device (tests) */
};

struct perf_args {
    const char *cmd; /* the subcommand as typed */
    size_t minbytes, maxbytes;
    size_t stepfactor;
    int iters, warmup;
    bool check;
    weft_dtype_t dtype;
    weft_op_t op;
    int root;
    enum perf_format format;
    enum perf_memory memory;
    bool verbose; /* --verbose: the plan (weft_coll_plan) beside each row */
    /* Point-to-point tests (send_bw, send_lat, ...) take perftest's options instead. */
    bool p2p;
    size_t size;       /* -s; 0: the test's default */
    bool all_sizes;    /* -a: 2 B .. 8 MiB by powers of two */
    bool iters_given;  /* -n was given: no clamping for big sizes */
    bool bidir;        /* -b */
    int tx_depth;      /* -t; 0: the default (128, as ib_write_bw) */
    bool report_gbits; /* --report_gbits */
    const char *ib_dev; /* -d, NULL when not given (verbs) */
    int ib_port;        /* -i, 0 when not given (verbs) */
    int gid_index;      /* -x, -1 when not given (verbs) */
    /* perftest's way of starting, without a launcher (docs/perftest.md): */
    const char *server_host; /* the positional HOST: this process is the client */
    int port;                /* -p; 0: 18515 as perftest */
    const char *secret_file; /* --secret-file; else WEFT_SECRET; else unauthenticated */
    const char *record_file; /* --json FILE: the run's record for links --compare */
    double line_rate_gbits;  /* --line-rate: the data rate to compare with; 0: the port's */
    const char *plot_file;   /* --plot FILE.svg|.png: bandwidth and latency against size */
};

enum perf_args_status { PERF_ARGS_OK = 0, PERF_ARGS_HELP, PERF_ARGS_BAD };

/* Parses argv into *args; on PERF_ARGS_BAD, `why` holds a one-line reason. */
enum perf_args_status perf_args_parse(int argc, char **argv, struct perf_args *args, char *why,
                                      size_t why_len);
/* Prints the options part of the usage text. */
void perf_args_usage(FILE *out);

/* True for the point-to-point subcommands, whose options are perftest's. */
bool perf_args_is_p2p(const char *cmd);

/* Name lookups shared with the report: nccl-tests aliases are accepted on input. */
bool perf_dtype_parse(const char *name, weft_dtype_t *dtype);
bool perf_op_parse(const char *name, weft_op_t *op);

#endif /* WEFT_PERFTEST_ARGS_H */
