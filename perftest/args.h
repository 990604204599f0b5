/*
 * args.h - the command line of weft-perf: a subcommand followed by nccl-tests style options
 * (-b -e -f -n -w -c -d -o -r, --csv, --json).
 */
#ifndef WEFT_PERFTEST_ARGS_H
#define WEFT_PERFTEST_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "weft.h"

enum perf_format { PERF_FORMAT_TABLE = 0, PERF_FORMAT_CSV, PERF_FORMAT_JSON };

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
};

enum perf_args_status { PERF_ARGS_OK = 0, PERF_ARGS_HELP, PERF_ARGS_BAD };

/* Parses argv into *args; on PERF_ARGS_BAD, `why` holds a one-line reason. */
enum perf_args_status perf_args_parse(int argc, char **argv, struct perf_args *args, char *why,
                                      size_t why_len);
/* Prints the options part of the usage text. */
void perf_args_usage(FILE *out);

/* Name lookups shared with the report: nccl-tests aliases are accepted on input. */
bool perf_dtype_parse(const char *name, weft_dtype_t *dtype);
bool perf_op_parse(const char *name, weft_op_t *op);

#endif /* WEFT_PERFTEST_ARGS_H */
