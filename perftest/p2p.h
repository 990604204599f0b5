/*
 * p2p.h - weft-perf's point-to-point tests in perftest's style: send_bw/send_lat, and
 * write_bw/write_lat/read_bw/read_lat, which over verbs move large messages by RDMA WRITE or
 * RDMA READ and elsewhere time the transport's message path.
 */
#ifndef WEFT_PERFTEST_P2P_H
#define WEFT_PERFTEST_P2P_H

#include <stdbool.h>
#include <stddef.h>

#include "perftest/links.h"
#include "perftest/perf.h"

/* cmd->arg is an enum perf_p2p. */
enum perf_p2p {
    PERF_SEND_BW = 0,
    PERF_SEND_LAT,
    PERF_WRITE_BW,
    PERF_WRITE_LAT,
    PERF_READ_BW,
    PERF_READ_LAT,
};
int perf_p2p_run(const struct perf_ctx *ctx, const struct perf_cmd *cmd);

/* Before the communicator exists (p2p_env.c): turns -d/-i/-x into WEFT_IB_HCA and
 * WEFT_IB_GID_INDEX, sets WEFT_IB_RNDV for write_* and read_*, and reloads the config.
 * False with a one-line reason in `why` when that cannot be done. */
bool perf_p2p_env(const struct perf_args *a, enum perf_p2p test, char *why, size_t why_len);
/* The verbs rendezvous mode `test` runs with: "write", "read", or NULL (the environment's). */
const char *perf_p2p_rndv(enum perf_p2p test);

/* The rows of a run (p2p_out.c): bandwidth in Gb/s and efficiency in %, or latency in usec;
 * NaN where not measured. */
struct perf_p2p_rows {
    size_t n, cap;
    double *bytes, *peak, *avg, *eff;
    double *lat_typical, *lat_avg, *lat_p99;
};
bool perf_p2p_rows_alloc(struct perf_p2p_rows *r, size_t cap);
void perf_p2p_rows_free(struct perf_p2p_rows *r);

/* What a record says besides its rows. */
struct perf_p2p_record {
    const char *test, *transport, *host, *peer, *role;
    bool lat, bidir;
    const struct perf_link *link; /* this end's port, or NULL */
    double line_gbits;            /* 0: unknown */
    const char *line_desc;
};
/* `--json FILE`: one JSON object (docs/perftest.md) that `weft-perf links --compare` reads. */
bool perf_p2p_save_record(const char *file, const struct perf_p2p_record *rec,
                          const struct perf_p2p_rows *rows, char *why, size_t why_len);
/* `--plot FILE`: bandwidth (peak, average) or latency (typical, average, 99%) against size. */
bool perf_p2p_plot(const char *file, const char *title, bool lat, bool bidir,
                   const struct perf_p2p_rows *rows, char *why, size_t why_len);

#endif /* WEFT_PERFTEST_P2P_H */
