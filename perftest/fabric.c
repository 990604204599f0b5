/*
 * fabric.c - `weft-perf fabric`: every pair of nodes (one rank each) in circle-method rounds,
 * bandwidth both ways and latency, port error counters before and after; rank 0 then reports.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "perftest/fabric.h"
#include "perftest/fabric_sched.h"
#include "perftest/links.h"
#include "perftest/perf.h"
#include "perftest/plot.h"
#include "weft_tools.h"

struct fab {
    const struct fab_opts *o;
    weft_comm_t comm;
    int rank, n;
    char *sendbuf, *recvbuf;
    double *bw_row, *lat_row; /* this rank: Gb/s to each peer; one-way usec to each peer */
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: srun -N NODES --ntasks-per-node=1 weft-perf fabric [options]\n"
            "       weft-perf fabric --hosts H1,H2,... [options]   (started on each host)\n"
            "every pair of ranks (one per node) in N-1 rounds (N odd: N, each node resting\n"
            "once), no node in two tests at once: bandwidth both ways, then latency\n"
            "  -s, --size N          message size of the bandwidth test (default 1M)\n"
            "  -n, --iters N         messages per direction (default 16)\n"
            "      --reps N          timed runs per direction, the best counts (default 3:\n"
            "                        a busy host only ever makes a run slower)\n"
            "      --lat-iters N     ping-pongs per pair (default 200)\n"
            "      --threshold PCT   flag a pair whose bandwidth either way is below PCT %% of\n"
            "                        the reference (default 75)\n"
            "      --against median|line  the reference: the median pair (default), or the\n"
            "                        slower end's port data rate (weft-perf links)\n"
            "      --line-rate G     the data rate of every port, Gb/s (for --against line)\n"
            "      --check           exit 1 naming the bad nodes when a pair is flagged or a\n"
            "                        port error counter rose (Slurm health check, prolog)\n"
            "      --json FILE, --csv FILE   the matrices and findings\n"
            "      --plot FILE       bandwidth heatmap, FILE.svg or .png (gnuplot)\n"
            "      --hosts H1,H2,... no launcher: start it on each host (pdsh, clush, ssh);\n"
            "                        this host's place in the list is its rank (--rank R\n"
            "                        says it), H1 hosts the rendezvous on --port (18517);\n"
            "                        WEFT_SECRET shared by all, else unauthenticated\n"
            "exit status: 0 healthy, 1 bad nodes (with --check), 2 cannot run\n");
}

static bool parse(int argc, char **argv, struct fab_opts *o)
{
    static const struct option longopts[] = {
        {"size", required_argument, NULL, 's'},
        {"iters", required_argument, NULL, 'n'},
        {"lat-iters", required_argument, NULL, 'l'},
        {"threshold", required_argument, NULL, 't'},
        {"against", required_argument, NULL, 'a'},
        {"line-rate", required_argument, NULL, 'L'},
        {"check", no_argument, NULL, 'c'},
        {"json", required_argument, NULL, 'J'},
        {"csv", required_argument, NULL, 'C'},
        {"plot", required_argument, NULL, 'P'},
        {"reps", required_argument, NULL, 'r'},
        {"hosts", required_argument, NULL, 'H'},
        {"rank", required_argument, NULL, 'R'},
        {"port", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct fab_opts){
        .size = 1u << 20, .iters = 16, .lat_iters = 200, .window = 8, .reps = 3, .threshold = 75.0,
        .rank = -1, .port = 18517};
    int c;
    char *end;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":s:n:h", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (!perf_parse_bytes(optarg, &o->size) || o->size == 0 || o->size > (1u << 30))
                goto bad;
            break;
        case 'n':
        case 'l':
        case 'r': {
            long v = strtol(optarg, &end, 10);
            if (*end != '\0' || v < 1 || v > 1000000)
                goto bad;
            *(c == 'n' ? &o->iters : c == 'l' ? &o->lat_iters : &o->reps) = (int)v;
            break;
        }
        case 'H': o->hosts = optarg; break;
        case 'R':
        case 'p': {
            long v = strtol(optarg, &end, 10);
            if (*end != '\0' || v < (c == 'R' ? 0 : 1) || v > 65535)
                goto bad;
            *(c == 'R' ? &o->rank : &o->port) = (int)v;
            break;
        }
        case 't':
            o->threshold = strtod(optarg, &end);
            if (*end != '\0' || !(o->threshold > 0.0 && o->threshold <= 100.0))
                goto bad;
            break;
        case 'a':
            if (strcmp(optarg, "median") != 0 && strcmp(optarg, "line") != 0)
                goto bad;
            o->against_line = strcmp(optarg, "line") == 0;
            break;
        case 'L':
            o->line_gbits = strtod(optarg, &end);
            if (*end != '\0' || !(o->line_gbits > 0.0))
                goto bad;
            break;
        case 'c':
            o->check = true;
            break;
        case 'J':
            o->json = optarg;
            break;
        case 'C':
            o->csv = optarg;
            break;
        case 'P':
            if (!perf_plot_name_ok(optarg))
                goto bad;
            o->plot = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            goto bad;
        }
    }
    if (optind == argc)
        return true;
bad:
    fprintf(stderr, "weft-perf fabric: bad option or value '%s'\n",
            optind > 1 && optind <= argc ? argv[optind - 1] : argv[argc - 1]);
    usage(stderr);
    return false;
}

/* Sums of the error counters over this node's ports; how many ports were read. */
static int read_counters(uint64_t sums[FAB_NCOUNTERS])
{
    struct perf_link *links;
    size_t n;
    char why[128], path[512], text[64];
    int read = 0;
    memset(sums, 0, FAB_NCOUNTERS * sizeof(uint64_t));
    if (!perf_links_list(NULL, &links, &n, why, sizeof(why)))
        return 0;
    for (size_t i = 0; i < n; i++) {
        bool any = false;
        for (int c = 0; c < FAB_NCOUNTERS; c++) {
            snprintf(path, sizeof(path), "/sys/class/infiniband/%s/ports/%d/counters/%s",
                     links[i].dev, links[i].port, perf_fab_counters[c]);
            FILE *f = fopen(path, "r");
            if (f == NULL)
                continue;
            if (fgets(text, sizeof(text), f) != NULL) {
                sums[c] += strtoull(text, NULL, 10);
                any = true;
            }
            fclose(f);
        }
        read += any;
    }
    free(links);
    return read;
}

#define FAB_TRY(call)                                                                         \
    do {                                                                                      \
        weft_result_t fab_r_ = (call);                                                        \
        if (fab_r_ != WEFT_OK) {                                                              \
            fprintf(stderr, "weft-perf fabric: rank %d: %s failed: %s: %s\n", f->rank, #call, \
                    weft_strerror(fab_r_), weft_last_error());                                \
            return fab_r_;                                                                    \
        }                                                                                     \
    } while (0)

/* `from` streams o->iters messages to `to`, which acknowledges the last; the sender's clock
 * from the first post to the acknowledgment gives the rate, the best of o->reps runs. Gb/s,
 * on the sender. */
static weft_result_t stream(struct fab *f, int from, int to, double *gbits)
{
    const struct fab_opts *o = f->o;
    bool sender = f->rank == from;
    int peer = sender ? to : from;
    char ack = 1, hello = 1;
    /* One untimed message first (connection setup, cold buffers), then both ends ready
     * before the clock starts. */
    if (sender)
        FAB_TRY(weft_send(f->sendbuf, o->size, WEFT_UINT8, peer, f->comm, NULL));
    else
        FAB_TRY(weft_recv(f->recvbuf, o->size, WEFT_UINT8, peer, f->comm, NULL));
    FAB_TRY(weft_group_start());
    FAB_TRY(weft_send(&hello, 1, WEFT_UINT8, peer, f->comm, NULL));
    FAB_TRY(weft_recv(&ack, 1, WEFT_UINT8, peer, f->comm, NULL));
    FAB_TRY(weft_group_end());
    *gbits = 0.0;
    for (int rep = 0; rep < o->reps; rep++) {
        double t0 = perf_now();
        for (int done = 0; done < o->iters;) {
            int k = o->iters - done < o->window ? o->iters - done : o->window;
            FAB_TRY(weft_group_start());
            for (int i = 0; i < k; i++) {
                if (sender)
                    FAB_TRY(weft_send(f->sendbuf, o->size, WEFT_UINT8, peer, f->comm, NULL));
                else
                    FAB_TRY(weft_recv(f->recvbuf, o->size, WEFT_UINT8, peer, f->comm, NULL));
            }
            FAB_TRY(weft_group_end());
            done += k;
        }
        if (sender)
            FAB_TRY(weft_recv(&ack, 1, WEFT_UINT8, peer, f->comm, NULL));
        else
            FAB_TRY(weft_send(&ack, 1, WEFT_UINT8, peer, f->comm, NULL));
        double dt = perf_now() - t0;
        double g = dt > 0.0 ? (double)o->size * o->iters * 8.0 / dt / 1e9 : 0.0;
        *gbits = g > *gbits ? g : *gbits;
    }
    return WEFT_OK;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b ? 1 : 0;
}

/* Lower rank pings: the median of half the round trips, in usec. */
static weft_result_t pingpong(struct fab *f, int a, int b, double *usec)
{
    int n = f->o->lat_iters, warm = n / 10 + 2;
    bool pinger = f->rank == a;
    int peer = pinger ? b : a;
    double *t = calloc((size_t)n, sizeof(double));
    uint64_t word = 0;
    if (t == NULL)
        return WEFT_ERR_NO_MEMORY;
    for (int i = -warm; i < n; i++) {
        double t0 = perf_now();
        if (pinger) {
            FAB_TRY(weft_send(&word, 1, WEFT_UINT64, peer, f->comm, NULL));
            FAB_TRY(weft_recv(&word, 1, WEFT_UINT64, peer, f->comm, NULL));
        } else {
            FAB_TRY(weft_recv(&word, 1, WEFT_UINT64, peer, f->comm, NULL));
            FAB_TRY(weft_send(&word, 1, WEFT_UINT64, peer, f->comm, NULL));
        }
        if (i >= 0)
            t[i] = (perf_now() - t0) * 1e6 / 2.0;
    }
    qsort(t, (size_t)n, sizeof(double), cmp_double);
    *usec = pinger ? t[n / 2] : NAN;
    free(t);
    return WEFT_OK;
}

/* Every round: this rank's pair (if any) measures a->b, b->a and the latency, then all wait
 * at a barrier so that no node is in two tests at once. */
static weft_result_t run_rounds(struct fab *f)
{
    int rounds = perf_fabric_rounds(f->n);
    int *pairs = calloc((size_t)f->n + 1, sizeof(int));
    if (pairs == NULL)
        return WEFT_ERR_NO_MEMORY;
    for (int r = 0; r < rounds; r++) {
        int k = perf_fabric_round(f->n, r, pairs);
        for (int i = 0; i < k; i++) {
            int a = pairs[2 * i], b = pairs[2 * i + 1];
            if (f->rank != a && f->rank != b)
                continue;
            int peer = f->rank == a ? b : a;
            double ab = 0.0, ba = 0.0, lat = NAN;
            FAB_TRY(stream(f, a, b, &ab));
            FAB_TRY(stream(f, b, a, &ba));
            FAB_TRY(pingpong(f, a, b, &lat));
            /* The sender's figure is the row's: rank a keeps a->b, rank b keeps b->a. */
            f->bw_row[peer] = f->rank == a ? ab : ba;
            if (f->rank == a)
                f->lat_row[peer] = lat;
        }
        FAB_TRY(weft_barrier(f->comm, NULL));
    }
    free(pairs);
    return WEFT_OK;
}

/* This node: host name, its port's data rate, and the counters before the test. */
static void describe_node(const struct fab_opts *o, struct fab_node *me)
{
    struct perf_link l;
    memset(me, 0, sizeof(*me));
    if (gethostname(me->host, sizeof(me->host) - 1) != 0)
        snprintf(me->host, sizeof(me->host), "unknown");
    if (o->line_gbits > 0.0) {
        me->line_gbits = o->line_gbits;
    } else if (perf_links_pick(NULL, NULL, 0, &l) && l.data_gbits > 0.0) {
        char gen[40];
        me->line_gbits = l.data_gbits;
        snprintf(me->port, sizeof(me->port), "%.20s:%d %dX %.12s", l.dev, l.port, l.lanes,
                 perf_link_gen_text(&l, gen, sizeof(gen)));
    }
    me->nports = read_counters(me->before);
}

static bool same_host(const char *a, const char *b)
{
    size_t la = strcspn(a, "."), lb = strcspn(b, ".");
    return strcmp(a, b) == 0 || (la == lb && strncmp(a, b, la) == 0);
}

/* --hosts: this process's rank and the rendezvous as torchrun-style variables (RANK,
 * WORLD_SIZE, WEFT_ROOT), with every other launcher's variables out of the way. */
static bool hosts_env(const struct fab_opts *o)
{
    char me[256] = "", root[300], num[16];
    int n = 0, rank = o->rank;
    const char *first = o->hosts;
    size_t first_len = strcspn(first, ",");
    (void)gethostname(me, sizeof(me) - 1);
    for (const char *h = o->hosts; *h != '\0'; n++) {
        size_t len = strcspn(h, ",");
        char name[256];
        snprintf(name, sizeof(name), "%.*s", (int)(len < 255 ? len : 255), h);
        if (o->rank < 0 && rank < 0 && same_host(name, me))
            rank = n;
        h += len + (h[len] == ',');
    }
    if (rank < 0 || rank >= n || first_len == 0 || first_len > 255) {
        fprintf(stderr, "weft-perf fabric: this host (%s) is not in --hosts %s%s\n", me,
                o->hosts, o->rank >= 0 ? " (or --rank is past its end)" : "");
        return false;
    }
    static const char *const others[] = {"WEFT_RANK", "WEFT_NRANKS", "PMIX_RANK",
                                         "OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMI_FD",
                                         "SLURM_PROCID", "SLURM_JOB_ID", NULL};
    for (int i = 0; others[i] != NULL; i++)
        unsetenv(others[i]);
    snprintf(root, sizeof(root), "%.*s:%d", (int)first_len, first, o->port);
    snprintf(num, sizeof(num), "%d", rank);
    setenv("RANK", num, 1);
    snprintf(num, sizeof(num), "%d", n);
    setenv("WORLD_SIZE", num, 1);
    setenv("WEFT_ROOT", root, 1);
    if (getenv("WEFT_SECRET") == NULL || getenv("WEFT_SECRET")[0] == '\0')
        fprintf(stderr, "weft-perf fabric: warning: no WEFT_SECRET: this check is "
                        "UNAUTHENTICATED (any process that reaches %s can join it)\n", root);
    return weft_config_refresh() == WEFT_OK;
}

int perf_fabric_main(int argc, char **argv)
{
    struct fab_opts o;
    if (!parse(argc, argv, &o))
        return 2;
    struct fab f = {.o = &o};
    if (o.hosts != NULL && !hosts_env(&o))
        return 2;
    weft_result_t r = weft_comm_init_env(&f.comm);
    if (r != WEFT_OK) {
        fprintf(stderr, "weft-perf fabric: cannot join the job: %s: %s\n", weft_strerror(r),
                weft_last_error());
        return 2;
    }
    weft_comm_rank(f.comm, &f.rank);
    weft_comm_size(f.comm, &f.n);
    int n = f.n;
    struct fab_node me, *nodes = calloc((size_t)n, sizeof(*nodes));
    f.sendbuf = malloc(o.size);
    f.recvbuf = malloc(o.size);
    f.bw_row = calloc((size_t)n, sizeof(double));
    f.lat_row = calloc((size_t)n, sizeof(double));
    double *bw = calloc((size_t)(n * n), sizeof(double));
    double *lat = calloc((size_t)(n * n), sizeof(double));
    int status = 2;
    if (nodes == NULL || f.sendbuf == NULL || f.recvbuf == NULL || f.bw_row == NULL ||
        f.lat_row == NULL || bw == NULL || lat == NULL) {
        fprintf(stderr, "weft-perf fabric: rank %d: out of memory\n", f.rank);
        weft_comm_abort(f.comm);
        return 2;
    }
    memset(f.sendbuf, 0x5a, o.size);
    for (int j = 0; j < n; j++)
        f.bw_row[j] = f.lat_row[j] = NAN;
    describe_node(&o, &me);
    if (n < 2) {
        if (f.rank == 0)
            fprintf(stderr, "weft-perf fabric: needs 2 ranks or more, one per node (srun -N "
                            "NODES --ntasks-per-node=1)\n");
        goto out;
    }
    double t0 = perf_now();
    if (weft_barrier(f.comm, NULL) != WEFT_OK || run_rounds(&f) != WEFT_OK) {
        fprintf(stderr, "weft-perf fabric: rank %d on %s: the pair tests failed: %s\n", f.rank,
                me.host, weft_last_error());
        weft_comm_abort(f.comm);
        f.comm = NULL;
        status = f.rank == 0 && o.check ? 1 : 2;
        goto out;
    }
    double secs = perf_now() - t0;
    uint64_t sums[FAB_NCOUNTERS];
    (void)read_counters(sums);
    memcpy(me.after, sums, sizeof(sums));
    /* Name the nodes by host; ranks that share one (a test on one machine) get #rank. */
    /* Gather everything at rank 0 (allgather: the job is small, and every rank then agrees). */
    if (weft_allgather(&me, nodes, sizeof(me), WEFT_UINT8, f.comm, NULL) != WEFT_OK ||
        weft_allgather(f.bw_row, bw, (size_t)n, WEFT_FLOAT64, f.comm, NULL) != WEFT_OK ||
        weft_allgather(f.lat_row, lat, (size_t)n, WEFT_FLOAT64, f.comm, NULL) != WEFT_OK) {
        fprintf(stderr, "weft-perf fabric: rank %d: gathering the results failed: %s\n", f.rank,
                weft_last_error());
        weft_comm_abort(f.comm);
        f.comm = NULL;
        goto out;
    }
    bool *shared = calloc((size_t)n, sizeof(bool));
    for (int i = 0; i < n && shared != NULL; i++)
        for (int j = 0; j < n; j++)
            shared[i] = shared[i] || (j != i && strcmp(nodes[i].host, nodes[j].host) == 0);
    for (int i = 0; i < n && shared != NULL; i++) {
        if (shared[i]) {
            size_t len = strnlen(nodes[i].host, PERF_HOST_MAX - 8);
            snprintf(nodes[i].host + len, PERF_HOST_MAX - len, "#%d", i);
        }
    }
    free(shared);
    /* Latency was measured by the lower rank of each pair: mirror it. */
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            lat[j * n + i] = lat[i * n + j];
    status = 0;
    if (f.rank == 0)
        status = perf_fabric_report(&o, n, bw, lat, nodes, secs);
    /* Every rank exits as rank 0 does, so srun's status is the verdict. */
    int32_t st = status, all = 0;
    if (weft_allreduce(&st, &all, 1, WEFT_INT32, WEFT_MAX, f.comm, NULL) == WEFT_OK)
        status = all;
out:
    if (f.comm != NULL)
        weft_comm_destroy(f.comm);
    free(nodes);
    free(f.sendbuf);
    free(f.recvbuf);
    free(f.bw_row);
    free(f.lat_row);
    free(bw);
    free(lat);
    return status;
}
