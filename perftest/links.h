/*
 * links.h - what a local RDMA port's link is: the InfiniBand generation behind its speed
 * code, lanes, signalling, modulation, line code and FEC, and the data rate it can carry.
 */
#ifndef WEFT_PERFTEST_LINKS_H
#define WEFT_PERFTEST_LINKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* One InfiniBand generation, per lane. docs/perftest.md cites where each figure comes from. */
struct perf_link_gen {
    const char *name;       /* "SDR" .. "XDR" */
    unsigned speed;         /* the kernel's IB_SPEED_* code (ibv_port_attr.active_speed[_ex]) */
    double gbaud;           /* symbol rate, GBd */
    double signal_gbits;    /* line rate, Gb/s: gbaud times bits per symbol */
    const char *modulation; /* "NRZ" (1 bit per symbol) or "PAM4" (2) */
    const char *line_code;  /* "8b/10b", "64b/66b" */
    const char *fec;        /* "none", or the Reed-Solomon code */
    double data_gbits;      /* data rate after the line code (and FEC), Gb/s */
    double sysfs_gbits;     /* the kernel's nominal per-lane figure in ports/N/rate */
    const char *spec;       /* where the generation is defined */
};

/* The table, SDR first; `count` gets its length. */
const struct perf_link_gen *perf_link_gens(size_t *count);
/* The generation of a speed code, or NULL for a code this table does not know. */
const struct perf_link_gen *perf_link_gen_by_speed(unsigned speed);
const struct perf_link_gen *perf_link_gen_by_name(const char *name);
/* Lanes of an active_width code (1 1X, 2 4X, 4 8X, 8 12X, 16 2X), or 0 when unknown. */
int perf_link_lanes(unsigned width);
/* IBV_MTU_* code (1..5) to bytes, or 0. */
int perf_link_mtu_bytes(unsigned mtu);
/* ibv_port_state code to its name ("ACTIVE"), or NULL. */
const char *perf_link_state_name(unsigned state);

#define PERF_LINK_NAME_MAX 64

/* One local port, as read (raw codes) and as decoded. */
struct perf_link {
    char dev[PERF_LINK_NAME_MAX];
    int port;
    /* read */
    unsigned state, speed, width, mtu; /* ibv_query_port codes; 0 when unknown */
    bool from_verbs;                   /* the codes came from ibv_query_port, not sysfs */
    char link_layer[16];               /* "InfiniBand", "Ethernet", "" */
    char rate[64];                     /* sysfs ports/N/rate, e.g. "100 Gb/sec (4X EDR)" */
    char netdev[PERF_LINK_NAME_MAX];   /* RoCE: the Ethernet device under the port */
    long netdev_mbits;                 /* its speed in Mb/s; <= 0 unknown */
    /* decoded */
    const struct perf_link_gen *gen; /* NULL: speed unknown */
    int lanes;                       /* 0: width unknown */
    double data_gbits;               /* theoretical data rate of the port; 0 unknown */
    const char *data_from;           /* how data_gbits was found */
};

/* Fills the decoded half from the read half: pure, so the unit tests drive every code. */
void perf_link_decode(struct perf_link *l);
/* Speed and width codes from a sysfs rate text ("100 Gb/sec (4X EDR)"); false if unreadable. */
bool perf_link_parse_rate(const char *rate, unsigned *speed, unsigned *width);

/* Every port under `sysfs` (NULL: "/sys"; tests pass a fake tree), with ibv_query_port's codes
 * where verbs can open the device. *links is malloc'd (free it); 0 ports is not an error.
 * False with a reason in `why` when the listing fails. */
bool perf_links_list(const char *sysfs, struct perf_link **links, size_t *n, char *why,
                     size_t why_len);
/* The port a test over verbs uses: dev (NULL: the first active) and port (0: the first
 * active on it). False when none matches. */
bool perf_links_pick(const char *sysfs, const char *dev, int port, struct perf_link *out);

/* Human text of one decoded field, e.g. "unknown (raw 3)"; `buf` holds the result. */
const char *perf_link_gen_text(const struct perf_link *l, char *buf, size_t len);

/* `weft-perf links [--table] [--json] [--compare FILE...]` (links_cmd.c). */
int perf_links_main(int argc, char **argv);

#endif /* WEFT_PERFTEST_LINKS_H */
