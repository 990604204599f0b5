/*
 * verbs_rkey_check.c - the verbs receive rings are fenced per peer: three ranks (contexts in
 * this process, on rxe0/rxe1 alternately) wire up; each peer must get its own ring key, and a
 * write with the key one peer got into the ring of another must fail with a remote access
 * error. Needs an RDMA device (the soft-RoCE VM, tests/rxe/run.sh); else exit 77.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/error.h"
#include "transport/transport.h"

#ifdef WEFT_HAVE_VERBS
#include "transport/verbs_internal.h"

#define N 3

static int failures;

static void check(bool ok, const char *what, const char *detail)
{
    printf("%s - verbs rings: %s%s%s\n", ok ? "ok" : "not ok", what, ok ? "" : ": ", ok ? "" : detail);
    failures += !ok;
}

static struct weft_tp *tp[N];
static struct weft_ep *ep[N][N];
static uint8_t blob[N][WEFT_TRANSPORT_ADDR_MAX + N * WEFT_TRANSPORT_ADDR_PER_RANK];
static size_t blob_len[N];

static bool wire_up(void)
{
    const struct weft_transport_ops *ops = &weft_transport_verbs;
    static const char *hostnames[N] = {"localhost", "localhost", "localhost"};
    for (int r = 0; r < N; r++) {
        struct weft_transport_params p;
        memset(&p, 0, sizeof(p));
        uint8_t serves[N];
        for (int q = 0; q < N; q++)
            serves[q] = q != r;
        p.rank = r;
        p.nranks = N;
        p.local_rank = r;
        p.local_nranks = N;
        p.job_tag = "rkeycheck";
        p.timeout_s = 30;
        p.serves = serves;
        p.hostnames = hostnames;
        blob_len[r] = sizeof(blob[r]);
        if (ops->init(&p, &tp[r]) != WEFT_OK || ops->address(tp[r], blob[r], &blob_len[r]) != WEFT_OK) {
            printf("not ok - verbs rings: rank %d init: %s\n", r, weft_last_error());
            return false;
        }
    }
    const double deadline = weft_now_s() + 30;
    for (bool again = true; again;) {
        again = false;
        for (int r = 0; r < N; r++)
            for (int q = 0; q < N; q++) {
                if (q == r || ep[r][q])
                    continue;
                weft_result_t st = ops->connect(tp[r], q, blob[q], blob_len[q], &ep[r][q]);
                if (st == WEFT_ERR_IN_PROGRESS) {
                    again = true;
                } else if (st != WEFT_OK) {
                    printf("not ok - verbs rings: rank %d connect %d: %s\n", r, q, weft_last_error());
                    return false;
                }
            }
        for (int r = 0; r < N && again; r++) {
            bool any;
            ops->progress(tp[r], &any);
        }
        if (again && weft_now_s() > deadline) {
            printf("not ok - verbs rings: wire-up did not finish in 30 s\n");
            return false;
        }
    }
    return true;
}

/* Rank `a` writes into rank `b`'s ring for rank `c` with the key `b` gave to `a`. */
static enum ibv_wc_status foreign_write(int a, int b, int c)
{
    struct weft_ep *e = ep[a][b];
    static uint8_t src[64];
    struct ibv_mr *mr = ibv_reg_mr(tp[a]->pd, src, sizeof(src), IBV_ACCESS_LOCAL_WRITE);
    if (!mr)
        return IBV_WC_GENERAL_ERR;
    const size_t ring_bytes = (size_t)tp[b]->slots * tp[b]->slot_bytes;
    const uint64_t target = (uint64_t)(uintptr_t)tp[b]->rings + ep[b][c]->ring * ring_bytes;
    struct ibv_sge sge = {.addr = (uintptr_t)src, .length = sizeof(src), .lkey = mr->lkey};
    struct ibv_send_wr wr = {.wr_id = 0x77, .sg_list = &sge, .num_sge = 1,
                             .opcode = IBV_WR_RDMA_WRITE, .send_flags = IBV_SEND_SIGNALED},
                       *bad;
    wr.wr.rdma.remote_addr = target;
    wr.wr.rdma.rkey = e->remote_rkey;
    enum ibv_wc_status st = IBV_WC_GENERAL_ERR;
    if (ibv_post_send(e->qp, &wr, &bad) == 0) {
        const double deadline = weft_now_s() + 60;
        for (bool seen = false; !seen && weft_now_s() < deadline;) {
            struct ibv_wc wc;
            if (ibv_poll_cq(tp[a]->cq, 1, &wc) == 1 && wc.wr_id == 0x77) {
                st = wc.status;
                seen = true;
            }
        }
    }
    ibv_dereg_mr(mr);
    return st;
}

int main(void)
{
    char why[256];
    if (weft_config_load() != WEFT_OK) {
        printf("not ok - verbs rings: %s\n", weft_last_error());
        return 1;
    }
    if (!weft_transport_verbs.probe(why, sizeof(why))) {
        printf("skip: no usable RDMA device (%s)\n", why);
        return 77;
    }
    if (!wire_up())
        return 1;
    char detail[256];
    /* every ring key a rank hands out is distinct */
    bool distinct = true;
    for (int b = 0; b < N; b++)
        for (int a = 0; a < N; a++)
            for (int c = 0; c < N; c++)
                if (a != b && c != b && c != a && ep[a][b]->remote_rkey == ep[c][b]->remote_rkey)
                    distinct = false;
    snprintf(detail, sizeof(detail), "rank 1 gave rank 0 key %#x and rank 2 key %#x",
             ep[0][1]->remote_rkey, ep[2][1]->remote_rkey);
    check(distinct, "each peer gets a ring key of its own", detail);
    /* and a key covers its peer's ring only */
    enum ibv_wc_status st = foreign_write(0, 1, 2);
    snprintf(detail, sizeof(detail), "rank 0 writing into rank 1's ring for rank 2: %s (%d)",
             ibv_wc_status_str(st), (int)st);
    check(st == IBV_WC_REM_ACCESS_ERR, "a write into another peer's ring is refused", detail);
    for (int r = 0; r < N; r++)
        weft_transport_verbs.fini(tp[r]);
    printf("verbs_rkey_check: %d failed\n", failures);
    return failures ? 1 : 0;
}
#else
int main(void)
{
    printf("skip: this build has no verbs transport\n");
    return 77;
}
#endif
