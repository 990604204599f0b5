/*
 * main.c - weft-perf's entry point: parses the command line, joins the job started by
 * weft-run, and dispatches to the subcommand table (add new subcommands there).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "perftest/device.h"
#include "perftest/links.h"
#include "perftest/p2p.h"
#include "perftest/perf.h"
#include "weft_tools.h"

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
    fprintf(out, "  %-16s %s\n  %-16s %s\n", "links",
            "local RDMA ports decoded (generation, lanes, coding, rate); --table, --compare",
            "fabric", "every pair of nodes: bandwidth, latency, slow pairs; --check");
    perf_args_usage(out);
}

/* Every rank parses the same bad command line; only one of them should say so. */
static bool speaks(void)
{
    char rank[32];
    return weft_config_get("WEFT_RANK", rank, sizeof(rank)) != WEFT_OK || atoi(rank) <= 0;
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

/* "none: <why>" from weft_gpu_present reads as "<why>" after "there is none". */
static const char *no_gpu_reason(void)
{
    const char *why = "";
    (void)weft_gpu_present(&why);
    return strncmp(why, "none: ", 6) == 0 ? why + 6 : why;
}

#define PAIR_DEFAULT_PORT 18515 /* perftest's */

/* The shared secret of a server/client pair: --secret-file, else WEFT_SECRET, else none
 * (NULL: the test runs unauthenticated, and says so). False when the file cannot be read. */
static bool pair_secret(const struct perf_args *a, char *buf, size_t len, const char **secret)
{
    *secret = NULL;
    if (a->secret_file != NULL) {
        FILE *f = fopen(a->secret_file, "r");
        size_t n = f != NULL ? fread(buf, 1, len - 1, f) : 0;
        if (f == NULL) {
            fprintf(stderr, "weft-perf: --secret-file %s: %s\n", a->secret_file, strerror(errno));
            return false;
        }
        fclose(f);
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
            n--;
        buf[n] = '\0';
        if (n == 0) {
            fprintf(stderr, "weft-perf: --secret-file %s is empty\n", a->secret_file);
            return false;
        }
        *secret = buf;
        return true;
    }
    const char *env = getenv("WEFT_SECRET");
    if (env != NULL && env[0] != '\0') {
        *secret = env;
        return true;
    }
    return true;
}

/* perftest's start: `weft-perf TEST` waits as the server, `weft-perf TEST HOST` connects. */
static weft_result_t init_pair(struct perf_ctx *ctx, const struct perf_args *a)
{
    char buf[512];
    const char *secret;
    int port = a->port != 0 ? a->port : PAIR_DEFAULT_PORT;
    if (!pair_secret(a, buf, sizeof(buf), &secret))
        return WEFT_ERR_INVALID_ARG;
    if (secret == NULL)
        fprintf(stderr, "weft-perf: warning: no --secret-file and no WEFT_SECRET: this test is "
                        "UNAUTHENTICATED (any process that reaches port %d can join it)\n", port);
    if (a->server_host == NULL) {
        char timeout[32];
        if (weft_config_get("WEFT_TIMEOUT", timeout, sizeof(timeout)) != WEFT_OK)
            snprintf(timeout, sizeof(timeout), "?");
        printf("\n************************************\n* Waiting for client to connect... *\n"
               "************************************\n (port %d, up to WEFT_TIMEOUT=%s s)\n",
               port, timeout);
        fflush(stdout);
    }
    weft_result_t r = weft_comm_init_pair(&ctx->comm, a->server_host, port, secret);
    memset(buf, 0, sizeof(buf));
    ctx->pair = true;
    return r;
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
    /* Local subcommands: no job to join (fabric joins its own). */
    if (argc >= 2 && strcmp(argv[1], "links") == 0)
        return perf_links_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "fabric") == 0)
        return perf_fabric_main(argc - 1, argv + 1);
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
    if (args.memory == PERF_MEM_CUDA && !weft_gpu_present(NULL)) {
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
    /* A point-to-point test with a HOST, or with no launcher around it, starts as perftest's
     * server or client; anything else joins the launcher's job. */
    const char *launcher = NULL;
    int job_ranks = 0;
    if (cmd->run == perf_p2p_run && args.server_host == NULL)
        PERF_TRY(&ctx, weft_launcher(&launcher, &job_ranks));
    if (cmd->run == perf_p2p_run && (args.server_host != NULL || launcher == NULL))
        PERF_TRY(&ctx, init_pair(&ctx, &args));
    else
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
