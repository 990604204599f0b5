/*
 * perf.h - what every weft-perf subcommand shares: the run context, the subcommand table
 * entry, and the fatal-error path that names the failing call on this rank.
 */
#ifndef WEFT_PERFTEST_PERF_H
#define WEFT_PERFTEST_PERF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "perftest/args.h"
#include "weft.h"

struct perf_dev;

struct perf_ctx {
    weft_comm_t comm;
    int rank;
    int nranks;
    const struct perf_args *args;
    struct perf_dev *dev; /* where the collectives' buffers live: NULL for host memory */
    bool pair;            /* started as perftest's server or client: both print */
};

/* One subcommand. `run` returns the process exit status (0: all good, 1: wrong results);
 * fatal errors do not return (perf_fail). `arg` selects a variant (e.g. which collective). */
struct perf_cmd {
    const char *name;
    const char *summary;
    int (*run)(const struct perf_ctx *ctx, const struct perf_cmd *cmd);
    int arg;
};

/* Who is in the job, for the report header. */
#define PERF_HOST_MAX 56
struct perf_rank_info {
    int32_t pid;
    int32_t device;
    char host[PERF_HOST_MAX];
};

/* Prints "weft-perf: rank R: <call> failed: <strerror>: <last error>", aborts the
 * communicator (so the peers fail fast instead of waiting out WEFT_TIMEOUT) and exits 1. */
_Noreturn void perf_fail(const struct perf_ctx *ctx, const char *call, weft_result_t res);
/* As perf_fail, for failures outside Weft (allocation); `what` is the whole message. */
_Noreturn void perf_die(const struct perf_ctx *ctx, const char *what);

#define PERF_TRY(ctx, call)                                 \
    do {                                                    \
        weft_result_t perf_try_r_ = (call);                 \
        if (perf_try_r_ != WEFT_OK)                         \
            perf_fail((ctx), #call, perf_try_r_);           \
    } while (0)

/* A WEFT_* knob's value (weft_config_get), as an integer (`fallback` when unreadable) or as
 * text in `buf` ("" when unreadable). */
long long perf_knob_int(const char *name, long long fallback);
const char *perf_knob_str(const char *name, char *buf, size_t len);
/* "64", "4K", "256M": powers of 1024 (args.c). */
bool perf_parse_bytes(const char *text, size_t *out);

/* Monotonic seconds. */
double perf_now(void);
/* Every rank's host, pid and device (collective); `infos` holds nranks entries. */
void perf_gather_ranks(const struct perf_ctx *ctx, struct perf_rank_info *infos);
/* This rank's place among the ranks on its host: WEFT_LOCAL_RANK where the launcher sets it,
 * else counted from every rank's host name (collective). */
int perf_local_rank(const struct perf_ctx *ctx);

/* The collective sweeps (coll.c); cmd->arg is an enum perf_coll. */
enum perf_coll {
    PERF_ALLREDUCE = 0,
    PERF_ALLGATHER,
    PERF_REDUCE_SCATTER,
    PERF_BROADCAST,
    PERF_REDUCE,
    PERF_ALLTOALL,
    PERF_SENDRECV,
};
int perf_coll_run(const struct perf_ctx *ctx, const struct perf_cmd *cmd);

/* `weft-perf fabric` (fabric.c): all pairs of nodes, its own job and command line. */
int perf_fabric_main(int argc, char **argv);

#endif /* WEFT_PERFTEST_PERF_H */
