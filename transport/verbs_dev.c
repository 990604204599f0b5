/*
 * verbs_dev.c - RDMA device and port discovery over libibverbs, WEFT_IB_HCA port selection
 * and GID choice. Without libibverbs only the discovery is a stub; the logic still builds.
 */
#include "transport/verbs_dev.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#ifdef WEFT_HAVE_VERBS
#include <infiniband/verbs.h>
#endif

#include "core/config.h"
#include "core/error.h"

const char *weft_ib_state_name(enum weft_ib_port_state state)
{
    switch (state) {
    case WEFT_IB_PORT_NOP: return "NOP";
    case WEFT_IB_PORT_DOWN: return "DOWN";
    case WEFT_IB_PORT_INIT: return "INIT";
    case WEFT_IB_PORT_ARMED: return "ARMED";
    case WEFT_IB_PORT_ACTIVE: return "ACTIVE";
    case WEFT_IB_PORT_ACTIVE_DEFER: return "ACTIVE_DEFER";
    }
    return "?";
}

const char *weft_ib_link_layer_name(enum weft_ib_link_layer ll)
{
    /* Old kernels report "unspecified" for InfiniBand ports, as ibv_devinfo assumes too. */
    return ll == WEFT_IB_LINK_ETHERNET ? "Ethernet" : "InfiniBand";
}

const char *weft_ib_gid_type_name(enum weft_ib_gid_type type)
{
    switch (type) {
    case WEFT_IB_GID_IB: return "IB";
    case WEFT_IB_GID_ROCE_V1: return "RoCE v1";
    case WEFT_IB_GID_ROCE_V2: return "RoCE v2";
    }
    return "?";
}

int weft_ib_width_lanes(int width_code)
{
    switch (width_code) {
    case 1: return 1;
    case 2: return 4;
    case 4: return 8;
    case 8: return 12;
    case 16: return 2;
    default: return 0;
    }
}

bool weft_ib_speed(int speed_code, const char **name, double *lane_gbps)
{
    /* Data rates per lane, after line encoding, as ibv_devinfo and perftest print them. */
    static const struct {
        int code;
        const char *name;
        double gbps;
    } tab[] = {{1, "SDR", 2.5},   {2, "DDR", 5.0},    {4, "QDR", 10.0},
               {8, "FDR10", 10.0}, {16, "FDR", 14.0},  {32, "EDR", 25.0},
               {64, "HDR", 50.0},  {128, "NDR", 100.0}, {256, "XDR", 200.0}};
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
        if (tab[i].code == speed_code) {
            *name = tab[i].name;
            *lane_gbps = tab[i].gbps;
            return true;
        }
    *name = "?";
    *lane_gbps = 0;
    return false;
}

int weft_ib_mtu_bytes(int mtu_code)
{
    return mtu_code >= 1 && mtu_code <= 5 ? 128 << mtu_code : 0;
}

int weft_ib_gid_addr(const uint8_t raw[16], char *buf, size_t len)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(raw, v4mapped, sizeof(v4mapped)) == 0) {
        if (!inet_ntop(AF_INET, raw + 12, buf, (socklen_t)len) && len)
            buf[0] = '\0';
        return AF_INET;
    }
    if (!inet_ntop(AF_INET6, raw, buf, (socklen_t)len) && len)
        buf[0] = '\0';
    return AF_INET6;
}

/* ---- WEFT_IB_HCA -------------------------------------------------------------------------- */

weft_result_t weft_ib_hca_parse(const char *text, struct weft_ib_hca_spec *spec)
{
    memset(spec, 0, sizeof(*spec));
    const char *p = text ? text : "";
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '^') {
        spec->exclude = true;
        p++;
    }
    if (*p == '=') {
        spec->exact = true;
        p++;
    }
    while (*p) {
        const char *end = p + strcspn(p, ",");
        const char *colon = memchr(p, ':', (size_t)(end - p));
        const char *name_end = colon ? colon : end;
        while (name_end > p && isspace((unsigned char)name_end[-1]))
            name_end--;
        while (p < name_end && isspace((unsigned char)*p))
            p++;
        size_t nlen = (size_t)(name_end - p);
        if (nlen == 0 && !colon && *end == ',') { /* tolerate "a,,b" */
            p = end + 1;
            continue;
        }
        if (nlen == 0 && !colon && *end == '\0')
            break;
        if (nlen == 0 || nlen >= WEFT_IB_NAME_MAX)
            return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                              "WEFT_IB_HCA=\"%s\": device name %s in entry \"%.*s\"", text,
                              nlen ? "too long" : "missing", (int)(end - p), p);
        if (spec->n >= WEFT_IB_HCA_MAX)
            return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "WEFT_IB_HCA=\"%s\": more than %d entries",
                              text, WEFT_IB_HCA_MAX);
        int port = -1;
        if (colon) {
            char *num_end;
            errno = 0;
            long v = strtol(colon + 1, &num_end, 10);
            while (num_end < end && isspace((unsigned char)*num_end))
                num_end++;
            if (num_end == colon + 1 || num_end != end || errno || v < 1 || v > 255)
                return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                                  "WEFT_IB_HCA=\"%s\": bad port in entry \"%.*s\" (want "
                                  "device[:port], port 1-255)",
                                  text, (int)(end - p), p);
            port = (int)v;
        }
        memcpy(spec->e[spec->n].name, p, nlen);
        spec->e[spec->n].name[nlen] = '\0';
        spec->e[spec->n].port = port;
        spec->n++;
        p = *end ? end + 1 : end;
    }
    return WEFT_OK;
}

bool weft_ib_hca_match(const struct weft_ib_hca_spec *spec, const char *dev, int port)
{
    if (spec->n == 0)
        return true; /* "", "^" and "=" alone select everything */
    bool listed = false;
    for (int i = 0; i < spec->n && !listed; i++) {
        const char *name = spec->e[i].name;
        bool name_ok = spec->exact ? strcmp(name, dev) == 0
                                   : strncmp(name, dev, strlen(name)) == 0;
        listed = name_ok && (spec->e[i].port < 0 || spec->e[i].port == port);
    }
    return listed != spec->exclude;
}

weft_result_t weft_ib_select(const struct weft_ib_port *ports, size_t nports,
                             const char *spec_text, size_t *idx, size_t max, size_t *count)
{
    struct weft_ib_hca_spec spec;
    WEFT_CHECK(weft_ib_hca_parse(spec_text, &spec));
    *count = 0;
    for (size_t i = 0; i < nports && *count < max; i++)
        if (ports[i].state == WEFT_IB_PORT_ACTIVE &&
            weft_ib_hca_match(&spec, ports[i].dev, ports[i].port))
            idx[(*count)++] = i;
    return WEFT_OK;
}

/* ---- GID choice --------------------------------------------------------------------------- */

static bool gid_link_local(const struct weft_ib_gid *g)
{
    return g->family == AF_INET6 && g->raw[0] == 0xfe && (g->raw[1] & 0xc0) == 0x80;
}

/* Lower is better; -1 unusable. RoCE v2 is routable, hence preferred over v1; within it the
 * wanted family first, and a link-local IPv6 address (always present, rarely routed) last. */
static int gid_rank(const struct weft_ib_port *port, const struct weft_ib_gid *g, int family)
{
    static const uint8_t zero[16];
    if (memcmp(g->raw, zero, sizeof(zero)) == 0)
        return -1;
    if (port->link_layer != WEFT_IB_LINK_ETHERNET)
        return g->type == WEFT_IB_GID_IB ? 0 : -1;
    if (g->type == WEFT_IB_GID_ROCE_V1)
        return 10;
    if (g->type != WEFT_IB_GID_ROCE_V2)
        return -1;
    int want = family == AF_INET6 ? AF_INET6 : AF_INET;
    if (g->family == want)
        return gid_link_local(g) ? 3 : 0;
    /* AF_UNSPEC takes the other family too, before falling back further. */
    if (family == AF_UNSPEC || family == 0)
        return gid_link_local(g) ? 4 : 1;
    return gid_link_local(g) ? 6 : 5;
}

weft_result_t weft_ib_pick_gid(const struct weft_ib_port *port, int forced, int family,
                               int *gid_index)
{
    if (forced >= 0) {
        for (int i = 0; i < port->ngids; i++)
            if (port->gids[i].index == forced) {
                *gid_index = forced;
                return WEFT_OK;
            }
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "WEFT_IB_GID_INDEX=%d: no such valid GID on %s port %d (%d valid)",
                          forced, port->dev, port->port, port->ngids);
    }
    int best = -1, best_rank = 0;
    for (int i = 0; i < port->ngids; i++) {
        int r = gid_rank(port, &port->gids[i], family);
        if (r >= 0 && (best < 0 || r < best_rank)) {
            best = i;
            best_rank = r;
        }
    }
    if (best < 0)
        return WEFT_ERROR(WEFT_ERR_UNSUPPORTED,
                          "%s port %d (%s): no usable GID among %d valid entries", port->dev,
                          port->port, weft_ib_link_layer_name(port->link_layer), port->ngids);
    *gid_index = port->gids[best].index;
    return WEFT_OK;
}

/* ---- discovery ---------------------------------------------------------------------------- */

#ifdef WEFT_HAVE_VERBS
bool weft_verbs_built(void)
{
    return true;
}

static void fill_gid(struct weft_ib_gid *g, int index, const union ibv_gid *gid,
                     enum ibv_gid_type type)
{
    char text[INET6_ADDRSTRLEN];
    g->index = index;
    memcpy(g->raw, gid->raw, sizeof(g->raw));
    g->type = type == IBV_GID_TYPE_ROCE_V2   ? WEFT_IB_GID_ROCE_V2
              : type == IBV_GID_TYPE_ROCE_V1 ? WEFT_IB_GID_ROCE_V1
                                             : WEFT_IB_GID_IB;
    g->family = g->type == WEFT_IB_GID_IB ? 0 : weft_ib_gid_addr(g->raw, text, sizeof(text));
}

/* The valid GIDs of one port, with the type the kernel records (sysfs gid_attrs/types, which
 * rdma-core reads when the kernel lacks the GID-entry ioctl). Empty slots give ENODATA; an
 * entry that cannot be read is left out rather than failing the whole listing. */
static void query_gids(struct ibv_context *ctx, struct weft_ib_port *p, int tbl_len)
{
    for (int i = 0; i < tbl_len && p->ngids < WEFT_IB_MAX_GIDS; i++) {
        struct ibv_gid_entry e;
        if (ibv_query_gid_ex(ctx, (uint32_t)p->port, (uint32_t)i, &e, 0) != 0)
            continue;
        fill_gid(&p->gids[p->ngids++], i, &e.gid, (enum ibv_gid_type)e.gid_type);
    }
}

weft_result_t weft_verbs_devices(struct weft_ib_port **ports, size_t *nports)
{
    *ports = NULL;
    *nports = 0;
    int ndev = 0;
    struct ibv_device **list = ibv_get_device_list(&ndev);
    if (!list) {
        /* ENOSYS: no RDMA in this kernel; that is "no devices", not a failure. */
        if (errno == ENOSYS || errno == ENOENT)
            return WEFT_OK;
        return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "ibv_get_device_list", "listing RDMA devices");
    }
    weft_result_t res = WEFT_OK;
    size_t cap = 0;
    for (int d = 0; d < ndev; d++) {
        const char *name = ibv_get_device_name(list[d]);
        struct ibv_context *ctx = ibv_open_device(list[d]);
        if (!ctx) {
            res = WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "ibv_open_device", "RDMA device %s", name);
            break;
        }
        struct ibv_device_attr da;
        int rc = ibv_query_device(ctx, &da);
        if (rc) {
            res = WEFT_ERROR_ERR(WEFT_ERR_SYSTEM, rc, "ibv_query_device", "RDMA device %s",
                                 name);
            ibv_close_device(ctx);
            break;
        }
        for (int port = 1; port <= da.phys_port_cnt; port++) {
            struct ibv_port_attr pa;
            rc = ibv_query_port(ctx, (uint8_t)port, &pa);
            if (rc) {
                res = WEFT_ERROR_ERR(WEFT_ERR_SYSTEM, rc, "ibv_query_port",
                                     "RDMA device %s port %d", name, port);
                break;
            }
            if (*nports == cap) {
                size_t ncap = cap ? cap * 2 : 4;
                struct weft_ib_port *np = realloc(*ports, ncap * sizeof(*np));
                if (!np) {
                    res = WEFT_ERROR(WEFT_ERR_NO_MEMORY, "RDMA device %s: %zu port records",
                                     name, ncap);
                    break;
                }
                *ports = np;
                cap = ncap;
            }
            struct weft_ib_port *p = &(*ports)[(*nports)++];
            memset(p, 0, sizeof(*p));
            snprintf(p->dev, sizeof(p->dev), "%s", name);
            p->port = port;
            p->state = (enum weft_ib_port_state)pa.state;
            p->link_layer = (enum weft_ib_link_layer)pa.link_layer;
            p->width_code = pa.active_width;
            p->speed_code = pa.active_speed;
            p->active_mtu = weft_ib_mtu_bytes(pa.active_mtu);
            p->max_mtu = weft_ib_mtu_bytes(pa.max_mtu);
            query_gids(ctx, p, pa.gid_tbl_len);
        }
        ibv_close_device(ctx);
        if (res != WEFT_OK)
            break;
    }
    ibv_free_device_list(list);
    if (res != WEFT_OK) {
        free(*ports);
        *ports = NULL;
        *nports = 0;
    }
    return res;
}
#else
bool weft_verbs_built(void)
{
    return false;
}

weft_result_t weft_verbs_devices(struct weft_ib_port **ports, size_t *nports)
{
    *ports = NULL;
    *nports = 0;
    return WEFT_ERROR(WEFT_ERR_UNSUPPORTED,
                      "verbs support not built (needs libibverbs-dev at build time)");
}
#endif

/* ---- weft-info ---------------------------------------------------------------------------- */

void weft_verbs_print(FILE *out)
{
    fprintf(out, "RDMA devices (libibverbs):\n");
    if (!weft_verbs_built()) {
        fprintf(out, "  verbs support not built\n");
        return;
    }
    struct weft_ib_port *ports;
    size_t n;
    if (weft_verbs_devices(&ports, &n) != WEFT_OK) {
        fprintf(out, "  error: %s\n", weft_last_error());
        return;
    }
    if (n == 0) {
        fprintf(out, "  no RDMA devices (libibverbs found none)\n");
        return;
    }
    struct weft_ib_hca_spec spec;
    const char *hca = weft_config_str(WEFT_CFG_IB_HCA);
    bool spec_ok = weft_ib_hca_parse(hca, &spec) == WEFT_OK;
    int forced = (int)weft_config_int(WEFT_CFG_IB_GID_INDEX);
    for (size_t i = 0; i < n; i++) {
        const struct weft_ib_port *p = &ports[i];
        const char *sname;
        double lane;
        weft_ib_speed(p->speed_code, &sname, &lane);
        int lanes = weft_ib_width_lanes(p->width_code);
        bool selected = spec_ok && p->state == WEFT_IB_PORT_ACTIVE &&
                        weft_ib_hca_match(&spec, p->dev, p->port);
        fprintf(out, "  %s port %d: %s, %s%s\n", p->dev, p->port, weft_ib_state_name(p->state),
                weft_ib_link_layer_name(p->link_layer),
                selected ? ", selected" : (spec_ok ? ", not selected" : ""));
        fprintf(out, "    width %dx, speed %s (%.1f Gb/s per lane, %.1f Gb/s total)\n", lanes,
                sname, lane, lane * lanes);
        fprintf(out, "    MTU %d active, %d max\n", p->active_mtu, p->max_mtu);
        int chosen = -1;
        if (weft_ib_pick_gid(p, forced, AF_UNSPEC, &chosen) != WEFT_OK)
            fprintf(out, "    GID choice: %s\n", weft_last_error());
        fprintf(out, "    GIDs (%d valid%s):\n", p->ngids,
                p->ngids == WEFT_IB_MAX_GIDS ? ", first shown" : "");
        for (int g = 0; g < p->ngids; g++) {
            const struct weft_ib_gid *gid = &p->gids[g];
            char text[INET6_ADDRSTRLEN];
            char raw[48];
            inet_ntop(AF_INET6, gid->raw, raw, sizeof(raw));
            weft_ib_gid_addr(gid->raw, text, sizeof(text));
            fprintf(out, "    %c %3d  %-7s  %-39s", gid->index == chosen ? '*' : ' ',
                    gid->index, weft_ib_gid_type_name(gid->type), raw);
            if (gid->type != WEFT_IB_GID_IB)
                fprintf(out, "  %s %s", gid->family == AF_INET ? "IPv4" : "IPv6", text);
            fprintf(out, "\n");
        }
    }
    if (!spec_ok)
        fprintf(out, "  WEFT_IB_HCA: %s\n", weft_last_error());
    free(ports);
}
