/*
 * verbs_dev.h - RDMA device and port discovery (the first brick of the verbs transport):
 * what each port of each device is, which ports WEFT_IB_HCA selects, which GID to use.
 */
#ifndef WEFT_TRANSPORT_VERBS_DEV_H
#define WEFT_TRANSPORT_VERBS_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "weft.h"

/* Kept free of <infiniband/verbs.h> so that the selection logic and its tests build without
 * rdma-core; the values are those of the ibv_* enums they mirror. */
enum weft_ib_port_state { WEFT_IB_PORT_NOP = 0, WEFT_IB_PORT_DOWN = 1, WEFT_IB_PORT_INIT = 2,
                          WEFT_IB_PORT_ARMED = 3, WEFT_IB_PORT_ACTIVE = 4,
                          WEFT_IB_PORT_ACTIVE_DEFER = 5 };
enum weft_ib_link_layer { WEFT_IB_LINK_UNSPECIFIED = 0, WEFT_IB_LINK_INFINIBAND = 1,
                          WEFT_IB_LINK_ETHERNET = 2 };
enum weft_ib_gid_type { WEFT_IB_GID_IB = 0, WEFT_IB_GID_ROCE_V1 = 1, WEFT_IB_GID_ROCE_V2 = 2 };

#define WEFT_IB_NAME_MAX 64
#define WEFT_IB_MAX_GIDS 32 /* valid entries kept per port; ports seldom have more */

struct weft_ib_gid {
    int index;
    uint8_t raw[16];
    enum weft_ib_gid_type type;
    int family; /* AF_INET for an IPv4-mapped GID, AF_INET6 otherwise (RoCE), 0 for IB */
};

struct weft_ib_port {
    char dev[WEFT_IB_NAME_MAX];
    int port; /* 1-based, as verbs numbers them */
    enum weft_ib_port_state state;
    enum weft_ib_link_layer link_layer;
    int width_code; /* ibv_port_attr.active_width */
    int speed_code; /* ibv_port_attr.active_speed */
    int active_mtu, max_mtu; /* bytes */
    int ngids;
    struct weft_ib_gid gids[WEFT_IB_MAX_GIDS];
};

/* Every port of every RDMA device (ibv_get_device_list, ibv_query_port, the GID table).
 * *ports is malloc'ed (free it); *nports is 0 when libibverbs finds no device.
 * WEFT_ERR_UNSUPPORTED when built without libibverbs. */
weft_result_t weft_verbs_devices(struct weft_ib_port **ports, size_t *nports);
/* Whether this build has libibverbs. */
bool weft_verbs_built(void);

const char *weft_ib_state_name(enum weft_ib_port_state state);
const char *weft_ib_link_layer_name(enum weft_ib_link_layer ll);
const char *weft_ib_gid_type_name(enum weft_ib_gid_type type);
/* Lanes of an active_width code (1, 2, 4, 8, 12), or 0 for an unknown code. */
int weft_ib_width_lanes(int width_code);
/* Name ("SDR".."XDR") and per-lane data rate in Gb/s of an active_speed code; false when
 * the code is unknown (name "?" and 0). */
bool weft_ib_speed(int speed_code, const char **name, double *lane_gbps);
/* Bytes of an ibv_mtu code (1: 256 .. 5: 4096), 0 when unknown. */
int weft_ib_mtu_bytes(int mtu_code);
/* Classifies a raw GID: AF_INET when IPv4-mapped (::ffff:a.b.c.d), else AF_INET6. Writes
 * the address text (dotted quad for IPv4) to buf. */
int weft_ib_gid_addr(const uint8_t raw[16], char *buf, size_t len);

/* WEFT_IB_HCA, in NCCL_IB_HCA's syntax: a comma-separated list of device[:port]; a leading
 * "^" selects every port except those listed; a leading "=" (after any "^") makes names
 * exact instead of prefixes. Empty selects everything. */
#define WEFT_IB_HCA_MAX 32
struct weft_ib_hca_spec {
    bool exclude, exact;
    int n;
    struct {
        char name[WEFT_IB_NAME_MAX];
        int port; /* -1: every port */
    } e[WEFT_IB_HCA_MAX];
};
weft_result_t weft_ib_hca_parse(const char *text, struct weft_ib_hca_spec *spec);
bool weft_ib_hca_match(const struct weft_ib_hca_spec *spec, const char *dev, int port);
/* Indices (into ports[]) of the ACTIVE ports that `spec_text` selects, in order; *count may be
 * 0. Fails on a malformed spec. */
weft_result_t weft_ib_select(const struct weft_ib_port *ports, size_t nports,
                             const char *spec_text, size_t *idx, size_t max, size_t *count);

/* The GID index to use on `port`: `forced` >= 0 (WEFT_IB_GID_INDEX) must be a valid entry;
 * otherwise InfiniBand takes the first IB GID, Ethernet the first RoCE v2 GID of `family`
 * (AF_INET, AF_INET6; AF_UNSPEC prefers IPv4), not link-local when another exists, then any
 * RoCE v2, then RoCE v1. WEFT_ERR_UNSUPPORTED naming the port when none fits. */
weft_result_t weft_ib_pick_gid(const struct weft_ib_port *port, int forced, int family,
                               int *gid_index);

/* The table weft-info --devices prints: one block per port, "*" marking the chosen GID. */
void weft_verbs_print(FILE *out);

#endif /* WEFT_TRANSPORT_VERBS_DEV_H */
