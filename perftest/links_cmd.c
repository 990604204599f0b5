/*
 * links_cmd.c - `weft-perf links`: the local ports decoded, the SDR..XDR table, and side by
 * side runs saved by `--json FILE` (from different link generations) as a table and a plot.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perftest/links.h"
#include "perftest/plot.h"

#ifdef WEFT_HAVE_JANSSON
#include <jansson.h>
#endif

static void usage(FILE *out)
{
    fprintf(out,
            "usage: weft-perf links [--json] [--sysfs DIR]\n"
            "       weft-perf links --table\n"
            "       weft-perf links --compare A.json B.json ... [--plot FILE.svg|.png]\n"
            "  (no option)    every local RDMA port: state, link layer, MTU, generation, lanes,\n"
            "                 per-lane signalling, modulation, line code, FEC, data rate\n"
            "  --table        the InfiniBand generations SDR..XDR (sources: docs/perftest.md)\n"
            "  --json         the ports as JSON\n"
            "  --compare ...  records saved by 'weft-perf <p2p test> --json FILE', side by side\n"
            "  --plot FILE    with --compare: bandwidth and efficiency against size\n"
            "  --sysfs DIR    read DIR instead of /sys (a test aid; no ibv_query_port then)\n"
            "  --check [--expect [NX]GEN]  exit 1 naming each port that is not ACTIVE, or\n"
            "                 (with --expect, e.g. 4XHDR or NDR) slower than GEN or narrower\n"
            "                 than N lanes; exit 1 too when there is no port (a Slurm\n"
            "                 HealthCheckProgram: docs/perftest.md)\n");
}

static void print_table(void)
{
    size_t n;
    const struct perf_link_gen *g = perf_link_gens(&n);
    printf("%-6s %5s %9s %10s %5s %-9s %-19s %11s %11s  %s\n", "GEN", "CODE", "LANE GBd",
           "LANE Gb/s", "MOD", "CODING", "FEC", "DATA 1X", "DATA 4X", "DEFINED IN");
    for (size_t i = 0; i < n; i++)
        printf("%-6s %5u %9.7g %10.7g %5s %-9s %-19s %7.4g Gb/s %7.4g Gb/s  %s\n", g[i].name,
               g[i].speed, g[i].gbaud, g[i].signal_gbits, g[i].modulation, g[i].line_code,
               g[i].fec, g[i].data_gbits, 4 * g[i].data_gbits, g[i].spec);
    printf("widths: 1X 2X 4X 8X 12X (active_width codes 1 16 2 4 8); RoCE ports: the "
           "netdev's speed\n");
}

static void print_ports(const struct perf_link *l, size_t n, const char *source)
{
    if (n == 0) {
        printf("weft-perf links: no RDMA port (%s has no class/infiniband)\n", source);
        return;
    }
    printf("%-10s %4s %-8s %-10s %5s %-16s %5s %9s %10s %4s %-9s %-19s %10s  %s\n", "DEVICE",
           "PORT", "STATE", "LINK", "MTU", "GEN", "LANES", "LANE GBd", "LANE Gb/s", "MOD",
           "CODING", "FEC", "DATA Gb/s", "SYSFS RATE / NETDEV");
    for (size_t i = 0; i < n; i++) {
        char gen[40], lanes[24], mtu[16], state[24];
        const struct perf_link_gen *g = l[i].gen;
        perf_link_gen_text(&l[i], gen, sizeof(gen));
        if (l[i].lanes > 0)
            snprintf(lanes, sizeof(lanes), "%dX", l[i].lanes);
        else
            snprintf(lanes, sizeof(lanes), "? (raw %u)", l[i].width);
        if (perf_link_mtu_bytes(l[i].mtu) > 0)
            snprintf(mtu, sizeof(mtu), "%d", perf_link_mtu_bytes(l[i].mtu));
        else
            snprintf(mtu, sizeof(mtu), "-");
        const char *sn = perf_link_state_name(l[i].state);
        if (sn != NULL)
            snprintf(state, sizeof(state), "%s", sn);
        else
            snprintf(state, sizeof(state), "raw %u", l[i].state);
        printf("%-10s %4d %-8s %-10s %5s %-16s %5s ", l[i].dev, l[i].port, state,
               l[i].link_layer[0] ? l[i].link_layer : "?", mtu, gen, lanes);
        if (g != NULL)
            printf("%9.7g %10.7g %4s %-9s %-19s ", g->gbaud, g->signal_gbits, g->modulation,
                   g->line_code, g->fec);
        else
            printf("%9s %10s %4s %-9s %-19s ", "?", "?", "?", "?", "?");
        if (l[i].data_gbits > 0)
            printf("%10.4g  ", l[i].data_gbits);
        else
            printf("%10s  ", "unknown");
        printf("%s", l[i].rate[0] ? l[i].rate : "-");
        if (l[i].netdev[0] != '\0') {
            if (l[i].netdev_mbits > 0)
                printf(" / %s %ld Mb/s", l[i].netdev, l[i].netdev_mbits);
            else
                printf(" / %s (speed unknown)", l[i].netdev);
        }
        printf("\n");
    }
    printf("codes from %s; DATA Gb/s from the speed x width, or for RoCE from the netdev\n",
           l[0].from_verbs ? "ibv_query_port" : "sysfs");
    for (size_t i = 0; i < n; i++) {
        if (strcmp(l[i].link_layer, "Ethernet") == 0) {
            printf("RoCE: GEN and LANES are the driver's IB-equivalent of the Ethernet speed, "
                   "not a physical IB link\n");
            break;
        }
    }
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            putchar('\\');
        if ((unsigned char)*s >= 0x20)
            putchar(*s);
    }
    putchar('"');
}

static void print_ports_json(const struct perf_link *l, size_t n)
{
    printf("{\"ports\": [");
    for (size_t i = 0; i < n; i++) {
        printf("%s\n  {\"device\": ", i ? "," : "");
        json_str(l[i].dev);
        printf(", \"port\": %d, \"state\": %u, \"speed_code\": %u, \"width_code\": %u, "
               "\"mtu\": %d, \"link_layer\": ",
               l[i].port, l[i].state, l[i].speed, l[i].width, perf_link_mtu_bytes(l[i].mtu));
        json_str(l[i].link_layer);
        printf(", \"generation\": ");
        if (l[i].gen != NULL)
            json_str(l[i].gen->name);
        else
            printf("null");
        printf(", \"lanes\": %d, \"data_gbits\": %.6g, \"rate\": ", l[i].lanes, l[i].data_gbits);
        json_str(l[i].rate);
        printf(", \"netdev\": ");
        json_str(l[i].netdev);
        printf(", \"netdev_mbits\": %ld, \"from\": \"%s\"}", l[i].netdev_mbits,
               l[i].from_verbs ? "ibv_query_port" : "sysfs");
    }
    printf("\n]}\n");
}

#ifdef WEFT_HAVE_JANSSON
struct run {
    const char *file;
    char label[96];
    size_t nrows;
    double *bytes, *bw, *eff;
};

/* A record of `weft-perf <bw test> --json FILE` into a run. */
static bool load_run(const char *file, struct run *r)
{
    json_error_t err;
    json_t *root = json_load_file(file, 0, &err);
    if (root == NULL) {
        fprintf(stderr, "weft-perf links: %s: line %d: %s\n", file, err.line, err.text);
        return false;
    }
    json_t *rows = json_object_get(root, "rows");
    if (json_integer_value(json_object_get(root, "weft_perf_record")) != 1 ||
        !json_is_array(rows)) {
        fprintf(stderr, "weft-perf links: %s is not a weft-perf record (--json FILE)\n", file);
        json_decref(root);
        return false;
    }
    r->file = file;
    json_t *link = json_object_get(root, "link");
    const char *host = json_string_value(json_object_get(root, "host"));
    const char *test = json_string_value(json_object_get(root, "test"));
    const char *gen = json_string_value(json_object_get(link, "generation"));
    long long lanes = json_integer_value(json_object_get(link, "lanes"));
    if (gen != NULL && lanes > 0)
        snprintf(r->label, sizeof(r->label), "%lldX %s %s", lanes, gen, test ? test : "");
    else
        snprintf(r->label, sizeof(r->label), "%s %s %s", host ? host : file,
                 json_string_value(json_object_get(root, "transport")) ?: "", test ? test : "");
    double line = json_number_value(json_object_get(root, "line_rate_gbits"));
    size_t used = strlen(r->label);
    if (line > 0.0 && used < sizeof(r->label))
        snprintf(r->label + used, sizeof(r->label) - used, " (%g Gb/s)", line);
    r->nrows = json_array_size(rows);
    r->bytes = calloc(r->nrows + 1, sizeof(double));
    r->bw = calloc(r->nrows + 1, sizeof(double));
    r->eff = calloc(r->nrows + 1, sizeof(double));
    if (r->bytes == NULL || r->bw == NULL || r->eff == NULL) {
        json_decref(root);
        return false;
    }
    for (size_t i = 0; i < r->nrows; i++) {
        json_t *row = json_array_get(rows, i);
        json_t *e = json_object_get(row, "efficiency_pct");
        json_t *bw = json_object_get(row, "bw_avg_gbits");
        r->bytes[i] = json_number_value(json_object_get(row, "bytes"));
        r->bw[i] = json_is_number(bw) ? json_number_value(bw) : NAN;
        r->eff[i] = json_is_number(e) ? json_number_value(e) : NAN;
    }
    json_decref(root);
    return true;
}

static int compare(int nfiles, char **files, const char *plot)
{
    struct run *runs = calloc((size_t)nfiles, sizeof(*runs));
    int status = 0;
    if (runs == NULL)
        return 1;
    for (int i = 0; i < nfiles && status == 0; i++)
        status = load_run(files[i], &runs[i]) ? 0 : 1;
    if (status == 0) {
        for (int i = 0; i < nfiles; i++)
            printf("[%d] %s: %s\n", i + 1, runs[i].file, runs[i].label);
        printf("%10s", "#bytes");
        for (int i = 0; i < nfiles; i++)
            printf("  [%d] Gb/s   eff%%", i + 1);
        printf("\n");
        /* Rows by size over the union of sizes: each run's sizes ascend. */
        size_t *at = calloc((size_t)nfiles, sizeof(size_t));
        for (;;) {
            double next = INFINITY;
            for (int i = 0; i < nfiles; i++)
                if (at[i] < runs[i].nrows && runs[i].bytes[at[i]] < next)
                    next = runs[i].bytes[at[i]];
            if (isinf(next))
                break;
            printf("%10.0f", next);
            for (int i = 0; i < nfiles; i++) {
                struct run *r = &runs[i];
                if (at[i] < r->nrows && r->bytes[at[i]] == next) {
                    if (!isnan(r->eff[at[i]]))
                        printf("  %9.3f %5.1f%%", r->bw[at[i]], r->eff[at[i]]);
                    else
                        printf("  %9.3f %6s", r->bw[at[i]], "");
                    at[i]++;
                } else {
                    printf("  %9s %6s", "-", "");
                }
            }
            printf("\n");
        }
        free(at);
    }
    if (status == 0 && plot != NULL) {
        struct perf_plot_series *bw = calloc((size_t)nfiles, sizeof(*bw));
        struct perf_plot_series *eff = calloc((size_t)nfiles, sizeof(*eff));
        size_t neff = 0;
        for (int i = 0; i < nfiles; i++) {
            bw[i] = (struct perf_plot_series){runs[i].label, runs[i].bytes, runs[i].bw,
                                              runs[i].nrows};
            bool any = false;
            for (size_t k = 0; k < runs[i].nrows; k++)
                any = any || !isnan(runs[i].eff[k]);
            if (any)
                eff[neff++] = (struct perf_plot_series){runs[i].label, runs[i].bytes,
                                                        runs[i].eff, runs[i].nrows};
        }
        struct perf_plot_axes a = {"Bandwidth by link", "message size", "Gb/s", true, false,
                                   true};
        struct perf_plot_axes b = {"Efficiency: share of the port's data rate", "message size",
                                   "% of theoretical", true, false, true};
        char why[256];
        if (!perf_plot_two(plot, &a, bw, (size_t)nfiles, &b, eff, neff, why, sizeof(why))) {
            fprintf(stderr, "weft-perf links: %s\n", why);
            status = 1;
        } else {
            printf("plot: %s\n", plot);
        }
        free(bw);
        free(eff);
    }
    for (int i = 0; i < nfiles; i++) {
        free(runs[i].bytes);
        free(runs[i].bw);
        free(runs[i].eff);
    }
    free(runs);
    return status;
}
#endif

/* --check: every port ACTIVE and, with --expect "[N]X]GEN", at least that fast and wide. */
static int check_ports(const struct perf_link *l, size_t n, const char *expect)
{
    const struct perf_link_gen *want = NULL;
    int lanes = 0, used = 0;
    if (expect != NULL) {
        if (sscanf(expect, "%d%*[xX]%n", &lanes, &used) < 1 || used == 0)
            lanes = used = 0;
        want = perf_link_gen_by_name(expect + used);
        if (want == NULL) {
            fprintf(stderr, "weft-perf links: --expect %s: not [NX]GEN with GEN one of SDR DDR "
                            "QDR FDR10 FDR EDR HDR NDR XDR\n", expect);
            return 2;
        }
    }
    int bad = 0;
    if (n == 0) {
        printf("links: BAD: no RDMA port on this host\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        char gen[40];
        const char *why = NULL;
        if (l[i].state != 4)
            why = "not ACTIVE";
        else if (want != NULL && (l[i].gen == NULL || l[i].gen->data_gbits < want->data_gbits))
            why = "slower than expected";
        else if (lanes > 0 && l[i].lanes < lanes)
            why = "fewer lanes than expected";
        if (why != NULL) {
            const char *sn = perf_link_state_name(l[i].state);
            printf("links: BAD port %s:%d: %s (%s, %dX %s)\n", l[i].dev, l[i].port, why,
                   sn ? sn : "state unknown", l[i].lanes,
                   perf_link_gen_text(&l[i], gen, sizeof(gen)));
            bad++;
        }
    }
    if (bad == 0)
        printf("links: OK (%zu port%s%s%s)\n", n, n == 1 ? "" : "s",
               expect ? " as expected: " : "", expect ? expect : "");
    return bad ? 1 : 0;
}

int perf_links_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"table", no_argument, NULL, 'T'}, {"json", no_argument, NULL, 'J'},
        {"compare", no_argument, NULL, 'C'}, {"plot", required_argument, NULL, 'P'},
        {"sysfs", required_argument, NULL, 'S'}, {"help", no_argument, NULL, 'h'},
        {"check", no_argument, NULL, 'K'},       {"expect", required_argument, NULL, 'E'},
        {NULL, 0, NULL, 0},
    };
    bool table = false, json = false, cmp = false, check = false;
    const char *sysfs = NULL, *plot = NULL, *expect = NULL;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'T': table = true; break;
        case 'J': json = true; break;
        case 'C': cmp = true; break;
        case 'P': plot = optarg; break;
        case 'S': sysfs = optarg; break;
        case 'K': check = true; break;
        case 'E': expect = optarg; break;
        case 'h': usage(stdout); return 0;
        default:
            fprintf(stderr, "weft-perf links: bad option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (cmp) {
        if (optind >= argc) {
            fprintf(stderr, "weft-perf links: --compare needs record files\n");
            return 2;
        }
        if (plot != NULL && !perf_plot_name_ok(plot)) {
            fprintf(stderr, "weft-perf links: --plot %s: the name must end in .svg or .png\n",
                    plot);
            return 2;
        }
#ifdef WEFT_HAVE_JANSSON
        return compare(argc - optind, argv + optind, plot);
#else
        fprintf(stderr, "weft-perf links: --compare reads JSON with libjansson, which this "
                        "build lacks (apt-get install libjansson-dev, then rebuild)\n");
        return 2;
#endif
    }
    if (optind < argc || plot != NULL) {
        fprintf(stderr, "weft-perf links: unexpected '%s'\n",
                optind < argc ? argv[optind] : "--plot");
        usage(stderr);
        return 2;
    }
    if (table) {
        print_table();
        return 0;
    }
    struct perf_link *links;
    size_t n;
    char why[256];
    if (!perf_links_list(sysfs, &links, &n, why, sizeof(why))) {
        fprintf(stderr, "weft-perf links: %s\n", why);
        return 1;
    }
    if (json)
        print_ports_json(links, n);
    else
        print_ports(links, n, sysfs ? sysfs : "/sys");
    int status = 0;
    if (check || expect != NULL)
        status = check_ports(links, n, expect);
    free(links);
    return status;
}
