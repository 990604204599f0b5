/*
 * main.c - weft-perf's entry point: parses the command line, joins the job started by
 * weft-run, and dispatches to the subcommand table (add new subcommands there).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "gpu/gpu.h"
#include "perftest/device.h"
#include "perftest/links.h"
#include "perftest/p2p.h"
#include "perftest/perf.h"

static const struct perf_cmd cmds[] = {
    {"allreduce", "reduction of every rank's buffer, on every rank", perf_coll_run,
     PERF_ALLREDUCE},
    {"allgather", "every rank's block, on every rank", perf_coll_run, PERF_ALLGATHER},
    {"reduce_scatter", "block r of the reduction, on rank r", perf_coll_run,
     PERF_REDUCE_SCATTER},
    {"broadcast", "the root's buffer, on every rank (-r)", perf_coll_run, PERF_BROADCAST},
    {"reduce", "reduction of every rank's buffer, on the root (-r)", perf_coll_run,
     PERF_REDUCE},
    {"alltoall", "block p of rank r goes to block r of rank p", perf_coll_run, PERF_ALLTOALL},
    {"sendrecv", "rank r sends to r+1 and receives from r-1", perf_coll_run, PERF_SENDRECV},
    {"send_bw", "perftest send bandwidth, rank 1 to rank 0 (-b: both ways)", perf_p2p_run,
     PERF_SEND_BW},
    {"send_lat", "perftest send latency: half a ping-pong round trip", perf_p2p_run,
     PERF_SEND_LAT},
    {"write_bw", "send_bw by RDMA WRITE over verbs (messages elsewhere)", perf_p2p_run,
     PERF_WRITE_BW},
    {"write_lat", "send_lat by RDMA WRITE over verbs (messages elsewhere)", perf_p2p_run,
     PERF_WRITE_LAT},
    {"read_bw", "send_bw, large messages by RDMA READ over verbs", perf_p2p_run,
     PERF_READ_BW},
    {"read_lat", "send_lat, large messages by RDMA READ over verbs", perf_p2p_run,
     PERF_READ_LAT},
};
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static void usage(FILE *out)
{
    fprintf(out, "usage: weft-run -n N weft-perf <subcommand> [options]\nsubcommands:\n");
    for (size_t i = 0; i < NCMDS; i++)
        fprintf(out, "  %-16s %s\n", cmds[i].name, cmds[i].summary);
    perf_args_usage(out);
}

/* Every rank parses the same bad command line; only one of them should say so. */
static bool speaks(void)
{
    return weft_config_load() != WEFT_OK || weft_config_int(WEFT_CFG_RANK) <= 0;
}

/* Exit status 2 for a job that cannot start. The launcher tears the job down at the first
 * rank that exits, so the ranks that say nothing give the one that speaks a head start. */
static int refuse(bool spoke)
{
    if (!spoke) {
        const struct timespec pause = {0, 500 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    return 2;
}

/* "none: <why>" from weft_gpu_describe reads as "<why>" after "there is none". */
static const char *no_gpu_reason(void)
{
    const char *why = weft_gpu_describe();
    return strncmp(why, "none: ", 6) == 0 ? why + 6 : why;
}

static const struct perf_cmd *find_cmd(const char *name)
{
    for (size_t i = 0; i < NCMDS; i++) {
        if (strcmp(cmds[i].name, name) == 0)
            return &cmds[i];
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct perf_args args;
    char why[256];
    /* Local subcommands: no job to join. */
    if (argc >= 2 && strcmp(argv[1], "links") == 0)
        return perf_links_main(argc - 1, argv + 1);
    switch (perf_args_parse(argc, argv, &args, why, sizeof(why))) {
    case PERF_ARGS_OK:
        break;
    case PERF_ARGS_HELP:
        if (speaks())
            usage(stdout);
        return 0;
    case PERF_ARGS_BAD:
        if (speaks()) {
            fprintf(stderr, "weft-perf: %s\n", why);
            usage(stderr);
            return refuse(true);
        }
        return refuse(false);
    }
    const struct perf_cmd *cmd = find_cmd(args.cmd);
    if (cmd == NULL) {
        if (speaks()) {
            fprintf(stderr, "weft-perf: unknown subcommand '%s'\n", args.cmd);
            usage(stderr);
            return refuse(true);
        }
        return refuse(false);
    }
    /* Before the job starts, so that every rank stops at once with the reason. */
    if (args.memory == PERF_MEM_CUDA && !weft_gpu_available()) {
        if (speaks()) {
            fprintf(stderr, "weft-perf: --gpu needs a GPU, and there is none: %s\n",
                    no_gpu_reason());
            return refuse(true);
        }
        return refuse(false);
    }
    /* The verbs transport reads its device and protocol knobs when the communicator is made. */
    if (cmd->run == perf_p2p_run && !perf_p2p_env(&args, (enum perf_p2p)cmd->arg, why,
                                                  sizeof(why))) {
        if (speaks()) {
            fprintf(stderr, "weft-perf: %s: %s\n", cmd->name, why);
            return refuse(true);
        }
        return refuse(false);
    }

    struct perf_ctx ctx = {.comm = NULL, .rank = -1, .nranks = 0, .args = &args};
    PERF_TRY(&ctx, weft_comm_init_env(&ctx.comm));
    PERF_TRY(&ctx, weft_comm_rank(ctx.comm, &ctx.rank));
    PERF_TRY(&ctx, weft_comm_size(ctx.comm, &ctx.nranks));
    /* The device is current before the first stream call: that call sets up Weft's staging
     * for the device current then. */
    if (args.memory == PERF_MEM_CUDA)
        PERF_TRY(&ctx, perf_dev_open_cuda(perf_local_rank(&ctx), &ctx.dev));
    else if (args.memory == PERF_MEM_FAKE)
        PERF_TRY(&ctx, perf_dev_open_fake(&ctx.dev));

    int status;
    if (args.root >= ctx.nranks) {
        if (ctx.rank == 0) {
            fprintf(stderr, "weft-perf: root %d is not a rank of %d\n", args.root, ctx.nranks);
            usage(stderr);
        }
        status = 2;
    } else {
        status = cmd->run(&ctx, cmd);
    }

    weft_comm_t comm = ctx.comm;
    ctx.comm = NULL; /* destroyed or not, it must not be aborted after this */
    PERF_TRY(&ctx, weft_comm_destroy(comm));
    /* After the communicator, which waits for what is still queued on the stream. */
    if (ctx.dev != NULL)
        ctx.dev->ops->close(ctx.dev);
    return status;
}
