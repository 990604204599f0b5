/*
 * links.c - decodes a port's speed and width codes into its InfiniBand generation and data
 * rate, and lists the local ports from sysfs and, where verbs opens them, ibv_query_port.
 */
#include "perftest/links.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifdef WEFT_HAVE_VERBS
#include <infiniband/verbs.h>
#endif

/* The rates are the IBTA's (Volume 2 releases named in `spec`); HDR and later carry 256b/257b
 * transcoded 64b/66b blocks under RS(544,514), which is what makes 53.125 Gb/s carry exactly
 * 50 Gb/s: 53.125 * 514/544 * 256/257 = 50. FDR10 is Mellanox's, outside the IBTA spec. */
static const struct perf_link_gen gens[] = {
    {"SDR", 1, 2.5, 2.5, "NRZ", "8b/10b", "none", 2.0, 2.5, "IBTA Vol 2 Rel 1.0 (2000)"},
    {"DDR", 2, 5.0, 5.0, "NRZ", "8b/10b", "none", 4.0, 5.0, "IBTA Vol 2 Rel 1.2 (2004)"},
    {"QDR", 4, 10.0, 10.0, "NRZ", "8b/10b", "none", 8.0, 10.0, "IBTA Vol 2 Rel 1.2 (2004)"},
    {"FDR10", 8, 10.3125, 10.3125, "NRZ", "64b/66b", "none", 10.0, 10.0,
     "Mellanox (not in the IBTA spec)"},
    {"FDR", 16, 14.0625, 14.0625, "NRZ", "64b/66b", "none", 14.0625 * 64.0 / 66.0, 14.0,
     "IBTA Vol 2 Rel 1.3 (2012)"},
    {"EDR", 32, 25.78125, 25.78125, "NRZ", "64b/66b", "none or RS(528,514)", 25.0, 25.0,
     "IBTA Vol 2 Rel 1.3 (2012)"},
    {"HDR", 64, 26.5625, 53.125, "PAM4", "256b/257b", "RS(544,514)", 50.0, 50.0,
     "IBTA Vol 2 Rel 1.3.1 (2016)"},
    {"NDR", 128, 53.125, 106.25, "PAM4", "256b/257b", "RS(544,514)", 100.0, 100.0,
     "IBTA Vol 2 Rel 1.4 (2020)"},
    {"XDR", 256, 106.25, 212.5, "PAM4", "256b/257b", "RS(544,514)", 200.0, 200.0,
     "IBTA Vol 2 Rel 1.5 (2023)"},
};
#define NGENS (sizeof(gens) / sizeof(gens[0]))

const struct perf_link_gen *perf_link_gens(size_t *count)
{
    *count = NGENS;
    return gens;
}

const struct perf_link_gen *perf_link_gen_by_speed(unsigned speed)
{
    for (size_t i = 0; i < NGENS; i++) {
        if (gens[i].speed == speed)
            return &gens[i];
    }
    return NULL;
}

const struct perf_link_gen *perf_link_gen_by_name(const char *name)
{
    for (size_t i = 0; i < NGENS; i++) {
        if (strcasecmp(gens[i].name, name) == 0)
            return &gens[i];
    }
    return NULL;
}

int perf_link_lanes(unsigned width)
{
    switch (width) {
    case 1: return 1;
    case 2: return 4;
    case 4: return 8;
    case 8: return 12;
    case 16: return 2;
    default: return 0;
    }
}

static unsigned width_of_lanes(int lanes)
{
    for (unsigned w = 1; w <= 16; w <<= 1) {
        if (perf_link_lanes(w) == lanes)
            return w;
    }
    return 0;
}

int perf_link_mtu_bytes(unsigned mtu)
{
    return mtu >= 1 && mtu <= 5 ? 128 << mtu : 0;
}

const char *perf_link_state_name(unsigned state)
{
    static const char *const names[] = {"NOP", "DOWN", "INIT", "ARMED", "ACTIVE", "ACTIVE_DEFER"};
    return state < sizeof(names) / sizeof(names[0]) ? names[state] : NULL;
}

void perf_link_decode(struct perf_link *l)
{
    l->gen = perf_link_gen_by_speed(l->speed);
    l->lanes = perf_link_lanes(l->width);
    l->data_gbits = 0.0;
    l->data_from = "unknown";
    /* RoCE's speed and width codes are the driver's rounding of the Ethernet speed into IB
     * terms; the netdev's own speed is the rate the wire carries. */
    if (strcmp(l->link_layer, "Ethernet") == 0 && l->netdev_mbits > 0) {
        l->data_gbits = (double)l->netdev_mbits / 1000.0;
        l->data_from = "netdev speed";
    } else if (l->gen != NULL && l->lanes > 0) {
        l->data_gbits = l->gen->data_gbits * l->lanes;
        l->data_from = "speed x width";
    }
}

bool perf_link_parse_rate(const char *rate, unsigned *speed, unsigned *width)
{
    const char *paren = strchr(rate, '(');
    int lanes = 0, used = 0;
    if (paren == NULL || sscanf(paren + 1, "%dX%n", &lanes, &used) != 1)
        return false;
    unsigned w = width_of_lanes(lanes);
    if (w == 0)
        return false;
    const char *name = paren + 1 + used;
    while (*name == ' ')
        name++;
    char gen[16];
    size_t n = strcspn(name, ")");
    if (n >= sizeof(gen))
        return false;
    memcpy(gen, name, n);
    gen[n] = '\0';
    /* Older kernels print SDR as a bare "(4X)". */
    const struct perf_link_gen *g = n == 0 ? &gens[0] : perf_link_gen_by_name(gen);
    if (g == NULL)
        return false;
    *speed = g->speed;
    *width = w;
    return true;
}

const char *perf_link_gen_text(const struct perf_link *l, char *buf, size_t len)
{
    if (l->gen != NULL)
        snprintf(buf, len, "%s", l->gen->name);
    else
        snprintf(buf, len, "unknown (raw %u)", l->speed);
    return buf;
}

/* ---- reading the ports ------------------------------------------------------------------ */

/* The first line of a file, without its newline; false when it cannot be read. */
static bool read_line(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    bool ok = fgets(buf, (int)len, f) != NULL;
    fclose(f);
    if (ok)
        buf[strcspn(buf, "\n")] = '\0';
    return ok;
}

static void read_sysfs_port(const char *sysfs, struct perf_link *l)
{
    char path[512], text[128];
    snprintf(path, sizeof(path), "%s/class/infiniband/%s/ports/%d/rate", sysfs, l->dev, l->port);
    if (read_line(path, l->rate, sizeof(l->rate)))
        (void)perf_link_parse_rate(l->rate, &l->speed, &l->width);
    snprintf(path, sizeof(path), "%s/class/infiniband/%s/ports/%d/state", sysfs, l->dev, l->port);
    if (read_line(path, text, sizeof(text)))
        l->state = (unsigned)atoi(text); /* "4: ACTIVE" */
    snprintf(path, sizeof(path), "%s/class/infiniband/%s/ports/%d/link_layer", sysfs, l->dev,
             l->port);
    (void)read_line(path, l->link_layer, sizeof(l->link_layer));
    /* RoCE: the netdev of GID 0, and its speed. */
    snprintf(path, sizeof(path), "%s/class/infiniband/%s/ports/%d/gid_attrs/ndevs/0", sysfs,
             l->dev, l->port);
    if (read_line(path, l->netdev, sizeof(l->netdev)) && l->netdev[0] != '\0') {
        snprintf(path, sizeof(path), "%s/class/net/%s/speed", sysfs, l->netdev);
        l->netdev_mbits = read_line(path, text, sizeof(text)) ? atol(text) : -1;
    }
}

#ifdef WEFT_HAVE_VERBS
/* ibv_query_port's codes replace sysfs's where the device opens (it may not: permissions). */
static void read_verbs(struct perf_link *links, size_t n)
{
    int ndev = 0;
    struct ibv_device **devs = ibv_get_device_list(&ndev);
    if (devs == NULL)
        return;
    for (int d = 0; d < ndev; d++) {
        struct ibv_context *ctx = NULL;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(links[i].dev, ibv_get_device_name(devs[d])) != 0)
                continue;
            if (ctx == NULL && (ctx = ibv_open_device(devs[d])) == NULL)
                break;
            struct ibv_port_attr attr;
            memset(&attr, 0, sizeof(attr));
            if (ibv_query_port(ctx, (uint8_t)links[i].port, &attr) != 0)
                continue;
            links[i].from_verbs = true;
            links[i].state = attr.state;
            links[i].speed = attr.active_speed;
#ifdef WEFT_HAVE_IBV_SPEED_EX
            /* XDR's code (256) does not fit active_speed's 8 bits. */
            if (attr.active_speed_ex != 0)
                links[i].speed = attr.active_speed_ex;
#endif
            links[i].width = attr.active_width;
            links[i].mtu = attr.active_mtu;
            const char *ll = attr.link_layer == IBV_LINK_LAYER_ETHERNET ? "Ethernet"
                             : attr.link_layer == IBV_LINK_LAYER_INFINIBAND ? "InfiniBand"
                                                                           : NULL;
            if (ll != NULL)
                snprintf(links[i].link_layer, sizeof(links[i].link_layer), "%s", ll);
        }
        if (ctx != NULL)
            ibv_close_device(ctx);
    }
    ibv_free_device_list(devs);
}
#endif

static int cmp_link(const void *x, const void *y)
{
    const struct perf_link *a = x, *b = y;
    int c = strcmp(a->dev, b->dev);
    return c != 0 ? c : a->port - b->port;
}

bool perf_links_list(const char *sysfs, struct perf_link **links, size_t *n, char *why,
                     size_t why_len)
{
    char path[512];
    bool real = sysfs == NULL;
    sysfs = real ? "/sys" : sysfs;
    *links = NULL;
    *n = 0;
    snprintf(path, sizeof(path), "%s/class/infiniband", sysfs);
    DIR *top = opendir(path);
    if (top == NULL)
        return true; /* no RDMA device: an empty list */
    size_t cap = 0;
    struct perf_link *out = NULL;
    struct dirent *de;
    while ((de = readdir(top)) != NULL) {
        if (de->d_name[0] == '.' || strlen(de->d_name) >= PERF_LINK_NAME_MAX)
            continue;
        snprintf(path, sizeof(path), "%s/class/infiniband/%s/ports", sysfs, de->d_name);
        DIR *ports = opendir(path);
        if (ports == NULL)
            continue;
        struct dirent *pe;
        while ((pe = readdir(ports)) != NULL) {
            int port = atoi(pe->d_name);
            if (port <= 0)
                continue;
            if (*n == cap) {
                cap = cap ? 2 * cap : 8;
                struct perf_link *grown = realloc(out, cap * sizeof(*out));
                if (grown == NULL) {
                    closedir(ports);
                    closedir(top);
                    free(out);
                    snprintf(why, why_len, "out of memory listing the RDMA ports");
                    return false;
                }
                out = grown;
            }
            struct perf_link *l = &out[(*n)++];
            memset(l, 0, sizeof(*l));
            snprintf(l->dev, sizeof(l->dev), "%.*s", PERF_LINK_NAME_MAX - 1, de->d_name);
            l->port = port;
            read_sysfs_port(sysfs, l);
        }
        closedir(ports);
    }
    closedir(top);
#ifdef WEFT_HAVE_VERBS
    if (real)
        read_verbs(out, *n);
#endif
    for (size_t i = 0; i < *n; i++)
        perf_link_decode(&out[i]);
    if (*n > 1)
        qsort(out, *n, sizeof(*out), cmp_link);
    *links = out;
    return true;
}

bool perf_links_pick(const char *sysfs, const char *dev, int port, struct perf_link *out)
{
    struct perf_link *links;
    size_t n;
    char why[128];
    bool found = false;
    if (!perf_links_list(sysfs, &links, &n, why, sizeof(why)))
        return false;
    for (size_t i = 0; i < n && !found; i++) {
        if (dev != NULL && strcmp(links[i].dev, dev) != 0)
            continue;
        if (port != 0 ? links[i].port != port : links[i].state != 4)
            continue;
        *out = links[i];
        found = true;
    }
    free(links);
    return found;
}
