/*
 * weft_info.c - weft-info: the version, the optional parts this build has, the transports
 * usable on this host (and why not the others), the RDMA devices and ports, and every
 * WEFT_* variable.
 */
#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "core/netif.h"
#include "core/topo.h"
#include "gpu/gpu.h"
#include "launcher/launch_env.h"
#include "transport/transport.h"
#include "transport/ucx_info.h"
#include "transport/verbs_dev.h"
#include "weft.h"

static void usage(FILE *out)
{
    fprintf(out, "Usage: weft-info [--config | --transports | --devices | --topo | --launch |\n"
                 "                  --version | --help]\n"
                 "With no option prints everything.\n"
                 "  --config      every WEFT_* variable: type, value, default, description\n"
                 "  --transports  the transports of this build and whether they run here\n"
                 "  --devices     RDMA devices and ports: state, link layer, width, speed, MTU,\n"
                 "                GIDs with their types and addresses (* marks the one chosen)\n"
                 "  --topo        NUMA nodes, cores, NICs and GPUs with their PCI locality, the\n"
                 "                NIC paired with each GPU, and what WEFT_BIND would do here\n"
                 "  --launch      what weft_comm_init_env would detect here (connects to nothing)\n"
                 "  --version     the version and build features\n");
}

static void print_version(void)
{
    printf("weft %d.%d.%d\n", WEFT_VERSION_MAJOR, WEFT_VERSION_MINOR, WEFT_VERSION_PATCH);
    printf("build features: %s\n", WEFT_FEATURES);
    printf("gpu: %s\n", weft_gpu_describe());
}

static void print_transports(void)
{
    printf("transports (auto picks shm on one host, verbs across hosts when both ends have an\n"
           "active RDMA port, tcp otherwise; ucx only when WEFT_TRANSPORT=ucx):\n");
    for (const struct weft_transport_ops *const *t = weft_transports(); *t; t++) {
        char why[256] = "";
        bool ok = (*t)->probe(why, sizeof(why));
        printf("  %-6s %s%s%s\n", (*t)->name, ok ? "usable" : "unusable",
               why[0] ? ": " : "", why);
    }
#ifndef WEFT_HAVE_VERBS
    printf("  %-6s not built: needs libibverbs (rdma-core)\n", "verbs");
#endif
#ifndef WEFT_HAVE_UCX
    weft_ucx_print(stdout);
#endif
    struct sockaddr_storage addr;
    socklen_t len;
    char ifname[64], text[WEFT_ADDR_STRLEN];
    if (weft_netif_pick(&addr, &len, ifname, sizeof(ifname)) == WEFT_OK)
        printf("socket interface: %s %s (WEFT_SOCKET_IFNAME=\"%s\")\n", ifname,
               weft_sockaddr_str((struct sockaddr *)&addr, text, sizeof(text)),
               weft_config_str(WEFT_CFG_SOCKET_IFNAME));
    else
        printf("socket interface: none: %s\n", weft_last_error());
#ifdef WEFT_HAVE_UCX
    weft_ucx_print(stdout);
#endif
}

static const char *num_or_unknown(int v, char *buf, size_t len)
{
    if (v < 0)
        return "(unknown)";
    snprintf(buf, len, "%d", v);
    return buf;
}

/* What weft_launch_detect would see in this environment; nothing is contacted. */
static void print_launch(void)
{
    struct weft_launch_plan p;
    char a[16], b[16];

    printf("launch (what weft_comm_init_env would use here; nothing contacted):\n");
    if (weft_launch_plan(&p) != WEFT_OK) {
        printf("  none: %s\n", weft_last_error());
        return;
    }
    printf("  source:      %s\n", p.l.source);
    printf("  rank:        %s of %s\n", num_or_unknown(p.l.rank, a, sizeof(a)),
           num_or_unknown(p.l.nranks, b, sizeof(b)));
    printf("  local rank:  %s of %s\n", num_or_unknown(p.l.local_rank, a, sizeof(a)),
           num_or_unknown(p.l.local_nranks, b, sizeof(b)));
    printf("  rendezvous:  %s\n", p.l.rendezvous);
    if (p.mode == WEFT_LAUNCH_ROOT_AT) {
        printf("  root:        %s:%d (%s)\n", p.root_host, p.root_port, p.root_from);
        printf("  secret:      %s\n", p.secret_from);
    } else if (p.mode == WEFT_LAUNCH_WEFT_RUN) {
        printf("  root:        %s\n", p.root_from);
    } else {
        printf("  root:        rank 0 starts it and publishes its address through %s\n",
               p.l.rendezvous);
    }
    if (p.note[0])
        printf("  note:        %s\n", p.note);
}

/* The topology, and WEFT_BIND's plan for local rank 0 (WEFT_LOCAL_RANK when set) of a job
 * that spans hosts (for one host, auto binds nothing). */
static void print_topo(void)
{
    weft_topo_print(stdout);
    const int64_t lr = weft_config_int(WEFT_CFG_LOCAL_RANK);
    const int local = lr > 0 ? (int)lr : 0;
    char what[600];
    if (weft_topo_bind_plan(local, 2, what, sizeof(what)) == WEFT_OK)
        printf("  bind: local rank %d of a multi-host job: %s\n", local, what);
    else
        printf("  bind: error: %s\n", weft_last_error());
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    if (strcmp(what, "--help") == 0 || strcmp(what, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (weft_config_load() != WEFT_OK)
        fprintf(stderr, "weft-info: %s\n", weft_last_error());
    if (strcmp(what, "--version") == 0) {
        print_version();
    } else if (strcmp(what, "--config") == 0) {
        weft_config_print(stdout);
    } else if (strcmp(what, "--transports") == 0) {
        print_transports();
    } else if (strcmp(what, "--devices") == 0) {
        weft_verbs_print(stdout);
    } else if (strcmp(what, "--topo") == 0) {
        print_topo();
    } else if (strcmp(what, "--launch") == 0) {
        print_launch();
    } else if (what[0] == '\0') {
        print_version();
        printf("\n");
        print_transports();
        printf("\n");
        weft_verbs_print(stdout);
        printf("\n");
        print_topo();
        printf("\n");
        print_launch();
        printf("\n");
        weft_config_print(stdout);
    } else {
        usage(stderr);
        return 2;
    }
    return 0;
}
