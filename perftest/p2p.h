/*
 * p2p.h - weft-perf's point-to-point tests in perftest's style (send_bw, send_lat, and the
 * one-sided write/read tests that need the verbs transport).
 */
#ifndef WEFT_PERFTEST_P2P_H
#define WEFT_PERFTEST_P2P_H

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

#endif /* WEFT_PERFTEST_P2P_H */
