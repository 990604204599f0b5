/*
 * verbs.c - the verbs transport's set-up: opens the RDMA port this rank uses, creates the
 * completion queue, the receive rings and one RC queue pair per verbs peer, publishes them
 * in the address blob and connects each pair (INIT -> RTR -> RTS). The protocol itself is in
 * verbs_data.c; verbs_internal.h describes both.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sodium.h>

#include "core/config.h"
#include "core/host.h"
#include "core/error.h"
#include "core/log.h"
#include "transport/transport.h"

#ifdef WEFT_HAVE_VERBS
#include "transport/verbs_internal.h"
#include "transport/verbs_wrid.h"

#define RING_ALIGN 4096

const char *weft_verbs_peer_name(const struct weft_ep *ep, char *buf, size_t len)
{
    snprintf(buf, len, "rank %d on %s (%s port %d)", ep->rank, ep->tp->hostnames[ep->rank],
             ep->remote_dev[0] ? ep->remote_dev : "?", ep->remote_port);
    return buf;
}

/* The ACTIVE ports WEFT_IB_HCA selects, into *ports (caller frees) and idx[]. */
static weft_result_t selected_ports(struct weft_ib_port **ports, size_t *idx, size_t max,
                                    size_t *count)
{
    size_t nports = 0;
    *count = 0;
    WEFT_CHECK(weft_verbs_devices(ports, &nports));
    weft_result_t r = weft_ib_select(*ports, nports, weft_config_str(WEFT_CFG_IB_HCA), idx, max,
                                     count);
    if (r != WEFT_OK) {
        free(*ports);
        *ports = NULL;
    }
    return r;
}

static bool verbs_probe(char *why, size_t why_len)
{
    struct weft_ib_port *ports = NULL;
    size_t idx[64], count = 0;
    if (selected_ports(&ports, idx, 64, &count) != WEFT_OK) {
        snprintf(why, why_len, "%s", weft_last_error());
        return false;
    }
    free(ports);
    if (count == 0) {
        const char *hca = weft_config_str(WEFT_CFG_IB_HCA);
        snprintf(why, why_len, "no ACTIVE RDMA port%s%s (weft-info --devices lists them)",
                 hca[0] ? " matches WEFT_IB_HCA=" : "", hca);
        return false;
    }
    return true;
}

/* rdma-core needs ibv_fork_init before any registration unless the kernel copies pinned
 * pages on fork (5.13+), so that a child process cannot corrupt registered memory. */
static void fork_safety(void)
{
    enum ibv_fork_status st = ibv_is_fork_initialized();
    if (st == IBV_FORK_DISABLED) {
        int err = ibv_fork_init();
        WEFT_INFO(NET, "verbs: ibv_fork_init %s", err ? strerror(err) : "done (fork safe)");
    } else {
        WEFT_INFO(NET, "verbs: fork safety %s",
                  st == IBV_FORK_UNNEEDED ? "provided by the kernel" : "already on");
    }
}

static weft_result_t open_device(const struct weft_tp *tp, const char *name,
                                 struct ibv_context **ctx)
{
    int n = 0;
    struct ibv_device **list = ibv_get_device_list(&n);
    if (!list)
        return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "ibv_get_device_list", "rank %d: listing RDMA devices",
                                tp->rank);
    for (int i = 0; i < n && !*ctx; i++)
        if (strcmp(ibv_get_device_name(list[i]), name) == 0)
            *ctx = ibv_open_device(list[i]);
    int err = errno;
    ibv_free_device_list(list);
    if (!*ctx)
        return WEFT_ERROR_ERR(WEFT_ERR_SYSTEM, err, "ibv_open_device", "rank %d: opening %s",
                              tp->rank, name);
    return WEFT_OK;
}

/* The GID, LID and largest message of `rail`'s port, its context open. */
static weft_result_t address_rail(struct weft_tp *tp, struct verbs_rail *rail)
{
    const struct weft_ib_port *port = &rail->port;
    weft_result_t r = weft_ib_pick_gid(port, (int)weft_config_int(WEFT_CFG_IB_GID_INDEX),
                                       AF_UNSPEC, &rail->gid_index);
    if (port->link_layer != WEFT_IB_LINK_ETHERNET && r != WEFT_OK) {
        rail->gid_index = -1; /* InfiniBand without GIDs: LIDs route */
        r = WEFT_OK;
    }
    WEFT_CHECK(r);
    struct ibv_port_attr pa;
    int err = ibv_query_port(rail->ctx, (uint8_t)port->port, &pa);
    if (err)
        return WEFT_ERROR_ERR(WEFT_ERR_SYSTEM, err, "ibv_query_port", "rank %d: %s port %d",
                              tp->rank, port->dev, port->port);
    rail->lid = pa.lid;
    if (pa.max_msg_sz && pa.max_msg_sz < tp->max_msg)
        tp->max_msg = pa.max_msg_sz;
    if (rail->gid_index >= 0 &&
        (err = ibv_query_gid(rail->ctx, (uint8_t)port->port, rail->gid_index, &rail->gid)))
        return WEFT_ERROR_ERR(WEFT_ERR_SYSTEM, err, "ibv_query_gid", "rank %d: %s port %d index %d",
                              tp->rank, port->dev, port->port, rail->gid_index);
    return WEFT_OK;
}

/* Picks this rank's port (local ranks spread round-robin over the selected ports) and the
 * ports of its other rails (the next ones of the selection), opens the first and reads what
 * the queue pairs need. */
static weft_result_t open_port(struct weft_tp *tp, int local_rank, uint32_t rails)
{
    struct weft_ib_port *ports = NULL;
    size_t idx[64], count = 0;
    WEFT_CHECK(selected_ports(&ports, idx, 64, &count));
    if (count == 0) {
        free(ports);
        return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "rank %d: no ACTIVE RDMA port (WEFT_IB_HCA=%s)",
                          tp->rank, weft_config_str(WEFT_CFG_IB_HCA));
    }
    tp->nrails = rails < count ? rails : (uint32_t)count;
    if (tp->nrails < rails)
        WEFT_INFO(NET, "verbs: rank %d: WEFT_IB_RAILS=%u but %zu port%s selected: %u rail%s",
                  tp->rank, rails, count, count == 1 ? " is" : "s are", tp->nrails,
                  tp->nrails == 1 ? "" : "s");
    for (uint32_t r = 0; r < tp->nrails; r++)
        tp->rails[r].port = ports[idx[((size_t)local_rank + r) % count]];
    free(ports);
    struct verbs_rail *first = &tp->rails[0];
    tp->port = first->port;
    tp->max_msg = 1u << 30;
    WEFT_CHECK(open_device(tp, tp->port.dev, &tp->ctx));
    first->ctx = tp->ctx;
    WEFT_CHECK(address_rail(tp, first));
    tp->gid_index = first->gid_index;
    tp->gid = first->gid;
    tp->lid = first->lid;
    return WEFT_OK;
}

/* Opens rail `r` (r >= 1): its port's addressing and, on another device than the first
 * port's, a context, protection domain and completion queue of its own. */
static weft_result_t open_rail(struct weft_tp *tp, uint32_t r, size_t cqe)
{
    struct verbs_rail *rail = &tp->rails[r];
    const char *dev = rail->port.dev;
    if (strcmp(dev, tp->port.dev) == 0) {
        rail->ctx = tp->ctx;
        rail->pd = tp->pd;
        rail->cq = tp->cq;
    } else {
        rail->own = true;
        WEFT_CHECK(open_device(tp, dev, &rail->ctx));
        if (!(rail->pd = ibv_alloc_pd(rail->ctx)))
            return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "ibv_alloc_pd", "rank %d: %s (rail %u)",
                                    tp->rank, dev, r);
        if (!(rail->cq = ibv_create_cq(rail->ctx, (int)(cqe ? cqe : 1), NULL, NULL, 0)))
            return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "ibv_create_cq",
                                    "rank %d: %zu entries on %s (rail %u)", tp->rank, cqe, dev, r);
    }
    return address_rail(tp, rail);
}

static weft_result_t alloc_registered(struct weft_tp *tp, size_t bytes, int access,
                                      const char *what, void **buf, struct ibv_mr **mr)
{
    if (posix_memalign(buf, RING_ALIGN, bytes ? bytes : RING_ALIGN))
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: cannot allocate %zu bytes of %s",
                          tp->rank, bytes, what);
    memset(*buf, 0, bytes);
    if (!mr)
        return WEFT_OK;
    *mr = ibv_reg_mr(tp->pd, *buf, bytes ? bytes : RING_ALIGN, access);
    if (!*mr)
        return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "ibv_reg_mr",
                                "rank %d: registering %zu bytes of %s on %s", tp->rank, bytes,
                                what, tp->port.dev);
    return WEFT_OK;
}

/* A queue pair towards `ep`'s rank in INIT: the first (`data` false), which gets its receive
 * work requests, or a data queue pair, which is never sent anything that consumes one. */
static weft_result_t create_qp(struct weft_tp *tp, struct weft_ep *ep, bool data,
                               const struct verbs_rail *rail, struct ibv_qp **qp)
{
    struct ibv_qp_init_attr ia = {
        .send_cq = rail->cq,
        .recv_cq = rail->cq,
        .qp_type = IBV_QPT_RC,
        .sq_sig_all = 0,
        .cap = {.max_send_wr = tp->sq_depth, .max_recv_wr = data ? 1 : tp->rq_depth,
                .max_send_sge = 2, .max_recv_sge = 1, .max_inline_data = tp->max_inline},
    };
    *qp = ibv_create_qp(rail->pd, &ia);
    if (!*qp && ia.cap.max_inline_data) { /* the device may not inline that much */
        ia.cap.max_inline_data = 0;
        *qp = ibv_create_qp(rail->pd, &ia);
    }
    if (!*qp)
        return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "ibv_create_qp",
                                "rank %d: RC %squeue pair for rank %d on %s port %d (%u send, %u "
                                "receive work requests)",
                                tp->rank, data ? "data " : "", ep->rank, rail->port.dev,
                                rail->port.port, tp->sq_depth, ia.cap.max_recv_wr);
    if (ia.cap.max_inline_data < tp->max_inline)
        tp->max_inline = ia.cap.max_inline_data;
    struct ibv_qp_attr a = {
        .qp_state = IBV_QPS_INIT,
        .pkey_index = 0,
        .port_num = (uint8_t)rail->port.port,
        .qp_access_flags = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
                           IBV_ACCESS_REMOTE_READ,
    };
    int err = ibv_modify_qp(*qp, &a,
                            IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
    if (err)
        return WEFT_ERROR_ERR(WEFT_ERR_SYSTEM, err, "ibv_modify_qp",
                              "rank %d: queue pair for rank %d to INIT on %s port %d", tp->rank,
                              ep->rank, rail->port.dev, rail->port.port);
    return data ? WEFT_OK : weft_verbs_post_recvs(ep, tp->rq_depth);
}

/* The first queue pair towards `ep`'s rank and its data queue pairs, each on its rail. */
static weft_result_t create_qps(struct weft_tp *tp, struct weft_ep *ep)
{
    WEFT_CHECK(create_qp(tp, ep, false, &tp->rails[0], &ep->qp));
    for (uint32_t i = 0; i + 1 < tp->qps; i++)
        WEFT_CHECK(create_qp(tp, ep, true, &tp->rails[weft_verbs_data_rail(tp, i)],
                             &ep->data_qp[i]));
    return WEFT_OK;
}

static int verbs_culprit(const struct weft_tp *tp)
{
    return tp->culprit;
}

static void tp_free(struct weft_tp *tp);

/* Soft-RoCE (rdma_rxe, which reports vendor id 0xffffff) sends its ACKs from kernel work on
 * the same CPUs as the ranks, so on a busy host an ACK can take longer than the default 67 ms
 * and the sender retransmits for nothing: 40 to 120 times per device in a 4-rank test run in
 * the soft-RoCE VM, each costing CPU the emulation lacks and each a chance for rdma_rxe's
 * resend of completed work (see keep_mr in verbs_data.c). So soft-RoCE gets 1 s per try
 * unless WEFT_IB_TIMEOUT is set. */
#define RXE_VENDOR_ID 0xffffff
#define RXE_ACK_TIMEOUT 18

static uint8_t ack_timeout(const struct weft_tp *tp, const struct ibv_device_attr *da)
{
    const uint8_t t = (uint8_t)weft_config_int(WEFT_CFG_IB_TIMEOUT);
    if (da->vendor_id != RXE_VENDOR_ID || weft_config_is_set(WEFT_CFG_IB_TIMEOUT) ||
        t >= RXE_ACK_TIMEOUT)
        return t;
    WEFT_INFO(NET, "verbs: rank %d: %s is soft-RoCE: ACK timeout exponent %d (%.2f s per try) "
              "instead of %d; set WEFT_IB_TIMEOUT to choose", tp->rank, tp->port.dev,
              RXE_ACK_TIMEOUT, 4.096e-6 * (1 << RXE_ACK_TIMEOUT), t);
    return RXE_ACK_TIMEOUT;
}

static weft_result_t verbs_init(const struct weft_transport_params *params, struct weft_tp **out)
{
    weft_result_t r;
    if (params->nranks - 1 > WEFT_VERBS_WR_MAX_RANK)
        return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "rank %d: the verbs transport serves at most %d "
                          "ranks, not %d", params->rank, WEFT_VERBS_WR_MAX_RANK + 1,
                          params->nranks);
    struct weft_tp *tp = calloc(1, sizeof(*tp));
    if (!tp)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: cannot allocate the verbs context",
                          params->rank);
    tp->rank = params->rank;
    tp->nranks = params->nranks;
    tp->culprit = WEFT_CULPRIT_NONE;
    tp->hostnames = params->hostnames;
    tp->timeout_s = params->timeout_s;
    tp->slot_bytes = (uint32_t)weft_config_size(WEFT_CFG_IB_EAGER_SIZE);
    tp->slots = (uint32_t)weft_config_int(WEFT_CFG_IB_EAGER_SLOTS);
    tp->sq_depth = (uint32_t)weft_config_int(WEFT_CFG_IB_QP_DEPTH);
    const int64_t qps = weft_config_int(WEFT_CFG_IB_QPS_PER_PEER);
    const int64_t rails = weft_config_int(WEFT_CFG_IB_RAILS);
    tp->qps = qps >= 1 && qps <= VERBS_MAX_QPS ? (uint32_t)qps : 0;
    tp->max_inline = (uint32_t)weft_config_size(WEFT_CFG_IB_INLINE);
    tp->reg_cache_max = (size_t)weft_config_int(WEFT_CFG_IB_REG_CACHE_MAX);
    const char *rndv = weft_config_str(WEFT_CFG_IB_RNDV);
    tp->read_mode = strcmp(rndv, "read") == 0;
    if (!tp->read_mode && strcmp(rndv, "write") != 0) {
        r = WEFT_ERROR(WEFT_ERR_INVALID_ARG, "WEFT_IB_RNDV=%s: want write or read", rndv);
        goto fail;
    }
    if (tp->slot_bytes < 2 * sizeof(struct verbs_entry) || tp->slot_bytes > (1u << 30) ||
        tp->slots < 2 || tp->slots > (1u << 16) || tp->sq_depth < 16 || tp->qps == 0 ||
        rails < 1 || rails > VERBS_MAX_QPS) {
        r = WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                       "WEFT_IB_EAGER_SIZE=%u (want %zu..1G), WEFT_IB_EAGER_SLOTS=%u (want "
                       "2..65536), WEFT_IB_QP_DEPTH=%u (want >= 16), WEFT_IB_QPS_PER_PEER=%lld "
                       "and WEFT_IB_RAILS=%lld (want 1..%d)",
                       tp->slot_bytes, 2 * sizeof(struct verbs_entry), tp->slots, tp->sq_depth,
                       (long long)qps, (long long)rails, VERBS_MAX_QPS);
        goto fail;
    }
    /* Receive work requests: one per entry in flight, plus room for credits and FINs. */
    tp->rq_depth = 2 * tp->slots + 64;
    tp->peers = calloc((size_t)tp->nranks, sizeof(*tp->peers));
    if (!tp->peers) {
        r = WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: verbs peers", tp->rank);
        goto fail;
    }
    for (int p = 0; p < tp->nranks; p++)
        tp->nrings += params->serves[p] != 0;

    fork_safety();
    WEFT_CHECK_GOTO(open_port(tp, params->local_rank, (uint32_t)rails), r, fail);
    /* from the setting, not the rails found, so that every rank raises it alike */
    if (tp->qps < (uint32_t)rails) {
        WEFT_INFO(NET, "verbs: rank %d: %lld queue pairs per peer instead of %u, one per rail "
                  "(WEFT_IB_RAILS)", tp->rank, (long long)rails, tp->qps);
        tp->qps = (uint32_t)rails;
    }
    struct ibv_device_attr da;
    int err = ibv_query_device(tp->ctx, &da);
    if (err) {
        r = WEFT_ERROR_ERR(WEFT_ERR_SYSTEM, err, "ibv_query_device", "rank %d: %s", tp->rank,
                           tp->port.dev);
        goto fail;
    }
    tp->ack_timeout = ack_timeout(tp, &da);
    if (tp->sq_depth > (uint32_t)da.max_qp_wr)
        tp->sq_depth = (uint32_t)da.max_qp_wr;
    if (tp->rq_depth > (uint32_t)da.max_qp_wr)
        tp->rq_depth = (uint32_t)da.max_qp_wr;
    size_t cqe = tp->nrings * (tp->qps * tp->sq_depth + tp->rq_depth);
    tp->cq_depth = (uint32_t)(cqe < (size_t)da.max_cqe ? cqe : (size_t)da.max_cqe);
    if (!(tp->pd = ibv_alloc_pd(tp->ctx))) {
        r = WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "ibv_alloc_pd", "rank %d: %s", tp->rank,
                             tp->port.dev);
        goto fail;
    }
    if (!(tp->cq = ibv_create_cq(tp->ctx, (int)(tp->cq_depth ? tp->cq_depth : 1), NULL, NULL, 0))) {
        r = WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "ibv_create_cq", "rank %d: %u entries on %s",
                             tp->rank, tp->cq_depth, tp->port.dev);
        goto fail;
    }
    tp->rails[0].pd = tp->pd;
    tp->rails[0].cq = tp->cq;
    for (uint32_t rr = 1; rr < tp->nrails; rr++)
        WEFT_CHECK_GOTO(open_rail(tp, rr, tp->nrings * tp->qps * (size_t)tp->sq_depth), r, fail);
    for (uint32_t rr = 0; rr < tp->nrails; rr++) {
        struct verbs_rail *rail = &tp->rails[rr];
        if (posix_memalign(&rail->sink, 64, 64)) {
            r = WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: rail sink", tp->rank);
            goto fail;
        }
        rail->sink_mr = ibv_reg_mr(rail->pd, rail->sink, 64,
                                   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
        if (!rail->sink_mr) {
            r = WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "ibv_reg_mr", "rank %d: rail sink on %s",
                                 tp->rank, rail->port.dev);
            goto fail;
        }
    }
    const size_t ring_bytes = (size_t)tp->slots * tp->slot_bytes;
    WEFT_CHECK_GOTO(alloc_registered(tp, tp->nrings * ring_bytes, 0, "receive rings",
                                     &tp->rings, NULL),
                    r, fail);
    WEFT_CHECK_GOTO(alloc_registered(tp, tp->nrings * ring_bytes, IBV_ACCESS_LOCAL_WRITE,
                                     "send staging", &tp->staging, &tp->staging_mr),
                    r, fail);
    WEFT_CHECK_GOTO(weft_verbs_mr_init(tp), r, fail);
    uint32_t ring = 0;
    for (int p = 0; p < tp->nranks; p++) {
        if (!params->serves[p])
            continue;
        struct weft_ep *ep = calloc(1, sizeof(*ep));
        bool *slot_free = calloc(tp->slots, sizeof(bool));
        uint64_t *data_slots = calloc(tp->slots, sizeof(uint64_t));
        if (!ep || !slot_free || !data_slots) {
            free(ep);
            free(slot_free);
            free(data_slots);
            r = WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: verbs peer %d", tp->rank, p);
            goto fail;
        }
        *ep = (struct weft_ep){.tp = tp, .rank = p, .ring = ring++, .slot_free = slot_free,
                               .data_slots = data_slots, .pidfd = -1,
                               .psn = randombytes_uniform(1u << 24)};
        tp->peers[p] = ep;
        ep->ring_mr = ibv_reg_mr(tp->pd, (uint8_t *)tp->rings + (size_t)ep->ring * ring_bytes,
                                 ring_bytes, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
        if (!ep->ring_mr) {
            r = WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "ibv_reg_mr",
                                 "rank %d: registering the %zu-byte receive ring of rank %d on %s",
                                 tp->rank, ring_bytes, p, tp->port.dev);
            goto fail;
        }
        WEFT_CHECK_GOTO(create_qps(tp, ep), r, fail);
    }
    char gid[64] = "-", more[160] = "";
    if (tp->gid_index >= 0)
        weft_ib_gid_addr(tp->gid.raw, gid, sizeof(gid));
    for (uint32_t rr = 1; rr < tp->nrails; rr++)
        snprintf(more + strlen(more), sizeof(more) - strlen(more), "%s%s:%d",
                 rr == 1 ? ", rails also on " : " ", tp->rails[rr].port.dev,
                 tp->rails[rr].port.port);
    WEFT_INFO(NET,
              "verbs: rank %d uses %s port %d (%s, MTU %d, GID index %d %s, LID %u): %zu queue "
              "pairs (%u per peer), rings of %u x %u bytes, inline %u bytes, rendezvous by RDMA "
              "%s%s%s",
              tp->rank, tp->port.dev, tp->port.port, weft_ib_link_layer_name(tp->port.link_layer),
              tp->port.active_mtu, tp->gid_index, gid, tp->lid, tp->nrings * tp->qps, tp->qps,
              tp->slots, tp->slot_bytes, tp->max_inline, tp->read_mode ? "read" : "write",
              tp->qps > 1 ? ", striped over every queue pair of the peer" : "", more);
    *out = tp;
    return WEFT_OK;

fail:
    tp_free(tp);
    return r;
}


static int mtu_code(int bytes)
{
    switch (bytes) {
    case 256: return IBV_MTU_256;
    case 512: return IBV_MTU_512;
    case 1024: return IBV_MTU_1024;
    case 2048: return IBV_MTU_2048;
    default: return IBV_MTU_4096;
    }
}

static weft_result_t verbs_address(struct weft_tp *tp, void *blob, size_t *len)
{
    const size_t need = sizeof(struct verbs_blob) + sizeof(struct verbs_peer_addr) * (size_t)tp->nranks;
    if (*len < need)
        return WEFT_ERROR(WEFT_ERR_INTERNAL, "verbs address needs %zu bytes, has %zu", need, *len);
    struct verbs_blob b = {
        .magic = VERBS_BLOB_MAGIC,
        .version = VERBS_BLOB_VERSION,
        .rings = (uint64_t)(uintptr_t)tp->rings,
        .slot_bytes = tp->slot_bytes,
        .slots = tp->slots,
        .read_mode = tp->read_mode,
        .qps = tp->qps,
        .nrails = tp->nrails,
    };
    for (uint32_t r = 0; r < tp->nrails; r++) {
        const struct verbs_rail *rail = &tp->rails[r];
        struct verbs_rail_addr *ra = &b.rail[r];
        *ra = (struct verbs_rail_addr){
            .lid = rail->lid,
            .link_layer = (uint8_t)rail->port.link_layer,
            .mtu = (uint8_t)mtu_code(rail->port.active_mtu),
            .port = (uint32_t)rail->port.port,
            .sink = (uint64_t)(uintptr_t)rail->sink,
            .sink_rkey = rail->sink_mr->rkey,
        };
        memcpy(ra->gid, rail->gid.raw, sizeof(ra->gid));
        snprintf(ra->dev, sizeof(ra->dev), "%.31s", rail->port.dev);
    }
    b.pid = (int32_t)getpid();
    weft_host_boot_id(b.boot_id, sizeof(b.boot_id));
    memcpy(blob, &b, sizeof(b));
    uint8_t *per = (uint8_t *)blob + sizeof(b);
    for (int p = 0; p < tp->nranks; p++) {
        const struct weft_ep *ep = tp->peers[p];
        struct verbs_peer_addr a = {.qpn = ep ? ep->qp->qp_num : 0,
                                    .ring = ep ? ep->ring : 0,
                                    .psn = ep ? ep->psn : 0,
                                    .rkey = ep ? ep->ring_mr->rkey : 0};
        for (uint32_t i = 0; ep && i + 1 < tp->qps; i++)
            a.data_qpn[i] = ep->data_qp[i]->qp_num;
        memcpy(per + sizeof(a) * (size_t)p, &a, sizeof(a));
    }
    *len = need;
    return WEFT_OK;
}

/* INIT -> RTR -> RTS of our `qp` on `rail` towards the peer's queue pair `qpn` on its rail
 * `b`. */
static weft_result_t bring_up(struct weft_ep *ep, struct ibv_qp *qp, const struct verbs_rail *rail,
                              uint32_t qpn, const struct verbs_rail_addr *b,
                              const struct verbs_peer_addr *remote)
{
    struct weft_tp *tp = ep->tp;
    char who[160];
    weft_verbs_peer_name(ep, who, sizeof(who));
    int mine = mtu_code(rail->port.active_mtu);
    struct ibv_qp_attr a = {
        .qp_state = IBV_QPS_RTR,
        .path_mtu = (enum ibv_mtu)(b->mtu < mine ? b->mtu : mine),
        .dest_qp_num = qpn,
        .rq_psn = remote->psn,
        .max_dest_rd_atomic = 16,
        .min_rnr_timer = 12, /* 0.64 ms */
        .ah_attr = {.dlid = b->lid, .sl = 0, .port_num = (uint8_t)rail->port.port},
    };
    if (b->link_layer == WEFT_IB_LINK_ETHERNET || rail->port.link_layer == WEFT_IB_LINK_ETHERNET) {
        a.ah_attr.is_global = 1;
        memcpy(a.ah_attr.grh.dgid.raw, b->gid, 16);
        a.ah_attr.grh.sgid_index = (uint8_t)(rail->gid_index < 0 ? 0 : rail->gid_index);
        a.ah_attr.grh.hop_limit = 64;
    }
    int err = ibv_modify_qp(qp, &a,
                            IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
                                IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER);
    if (err)
        return WEFT_ERROR_ERR(WEFT_ERR_SYSTEM, err, "ibv_modify_qp",
                              "rank %d: queue pair to RTR towards %s (qpn %u on %.31s port %u) "
                              "on %s port %d",
                              tp->rank, who, qpn, b->dev, b->port, rail->port.dev,
                              rail->port.port);
    memset(&a, 0, sizeof(a));
    a.qp_state = IBV_QPS_RTS;
    a.timeout = tp->ack_timeout;
    a.retry_cnt = (uint8_t)weft_config_int(WEFT_CFG_IB_RETRY_CNT);
    a.rnr_retry = 7; /* an RNR means the peer has not reposted yet: wait, never fail */
    a.sq_psn = ep->psn;
    a.max_rd_atomic = 16;
    err = ibv_modify_qp(qp, &a,
                        IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
                            IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC);
    if (err)
        return WEFT_ERROR_ERR(WEFT_ERR_SYSTEM, err, "ibv_modify_qp",
                              "rank %d: queue pair to RTS towards %s on %s port %d", tp->rank,
                              who, rail->port.dev, rail->port.port);
    return WEFT_OK;
}

static weft_result_t verbs_connect(struct weft_tp *tp, int peer, const void *blob, size_t len,
                                   struct weft_ep **out)
{
    struct weft_ep *ep = tp->peers[peer];
    struct verbs_blob b;
    if (!ep)
        return WEFT_ERROR(WEFT_ERR_INTERNAL, "rank %d: no verbs queue pair for rank %d", tp->rank,
                          peer);
    if (len < sizeof(b) + sizeof(struct verbs_peer_addr) * (size_t)tp->nranks)
        return WEFT_ERROR(WEFT_ERR_INTERNAL, "rank %d: verbs address of rank %d is %zu bytes",
                          tp->rank, peer, len);
    memcpy(&b, blob, sizeof(b));
    if (b.magic != VERBS_BLOB_MAGIC || b.version != VERBS_BLOB_VERSION)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "rank %d: rank %d on %s runs another verbs wire version", tp->rank,
                          peer, tp->hostnames[peer]);
    if (b.slot_bytes != tp->slot_bytes || b.slots != tp->slots ||
        b.read_mode != (uint32_t)tp->read_mode || b.qps != tp->qps)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "rank %d and rank %d on %s disagree on WEFT_IB_EAGER_SIZE (%u, %u), "
                          "WEFT_IB_EAGER_SLOTS (%u, %u), WEFT_IB_RNDV (%s, %s) or "
                          "WEFT_IB_QPS_PER_PEER (%u, %u): set them alike on every rank",
                          tp->rank, peer, tp->hostnames[peer], tp->slot_bytes, b.slot_bytes,
                          tp->slots, b.slots, tp->read_mode ? "read" : "write",
                          b.read_mode ? "read" : "write", tp->qps, b.qps);
    struct verbs_peer_addr remote;
    memcpy(&remote, (const uint8_t *)blob + sizeof(b) + sizeof(remote) * (size_t)tp->rank,
           sizeof(remote));
    if (remote.qpn == 0)
        return WEFT_ERROR(WEFT_ERR_INTERNAL, "rank %d: rank %d on %s has no verbs queue pair for "
                          "it (the ranks chose different transports)",
                          tp->rank, peer, tp->hostnames[peer]);
    if (b.nrails < 1 || b.nrails > VERBS_MAX_QPS)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "rank %d: rank %d on %s publishes %u rails",
                          tp->rank, peer, tp->hostnames[peer], b.nrails);
    for (uint32_t r = 0; r < b.nrails; r++)
        b.rail[r].dev[sizeof(b.rail[r].dev) - 1] = '\0';
    snprintf(ep->remote_dev, sizeof(ep->remote_dev), "%s", b.rail[0].dev);
    ep->remote_port = (int)b.rail[0].port;
    ep->remote_rkey = remote.rkey;
    ep->remote_ring = b.rings + (uint64_t)remote.ring * tp->slots * tp->slot_bytes;
    WEFT_CHECK(bring_up(ep, ep->qp, &tp->rails[0], remote.qpn, &b.rail[0], &remote));
    /* Our data queue pair i and the peer's sit on rail (i + 1) % rails of each side. */
    for (uint32_t i = 0; i + 1 < tp->qps; i++) {
        const struct verbs_rail_addr *theirs = &b.rail[(i + 1) % b.nrails];
        WEFT_CHECK(bring_up(ep, ep->data_qp[i], &tp->rails[weft_verbs_data_rail(tp, i)],
                            remote.data_qpn[i], theirs, &remote));
        ep->data_sink[i] = theirs->sink;
        ep->data_sink_rkey[i] = theirs->sink_rkey;
    }
    /* On this host a peer's death is seen at once through its pidfd; across hosts it shows
     * as retry-exceeded on the next write to it (verbs_data.c probes while waiting). */
    char boot_id[sizeof(b.boot_id)];
    weft_host_boot_id(boot_id, sizeof(boot_id));
    b.boot_id[sizeof(b.boot_id) - 1] = '\0';
    if (strcmp(boot_id, b.boot_id) == 0 && strcmp(boot_id, "unknown") != 0) {
        ep->pid = b.pid;
        ep->pidfd = (int)syscall(SYS_pidfd_open, (pid_t)b.pid, 0);
    }
    ep->connected = true;
    *out = ep;
    return WEFT_OK;
}

static void verbs_abort(struct weft_tp *tp, int culprit)
{
    if (tp->aborted)
        return;
    tp->aborted = true;
    weft_verbs_quiesce(tp, true, culprit);
    for (int p = 0; p < tp->nranks; p++)
        if (tp->peers[p])
            weft_verbs_ep_fail(tp->peers[p], WEFT_ERR_ABORTED);
}

/* What open_device, ibv_alloc_pd and ibv_create_cq gave, whichever of them did. */
static void close_device(struct ibv_context *ctx, struct ibv_pd *pd, struct ibv_cq *cq)
{
    if (cq)
        ibv_destroy_cq(cq);
    if (pd)
        ibv_dealloc_pd(pd);
    if (ctx)
        ibv_close_device(ctx);
}

static void tp_free(struct weft_tp *tp)
{
    if (tp->peers) {
        for (int p = 0; p < tp->nranks; p++) {
            struct weft_ep *ep = tp->peers[p];
            if (!ep)
                continue; /* requests still queued are the caller's: left untouched */
            if (ep->qp)
                ibv_destroy_qp(ep->qp);
            for (uint32_t i = 0; i + 1 < tp->qps; i++)
                if (ep->data_qp[i])
                    ibv_destroy_qp(ep->data_qp[i]);
            if (ep->ring_mr)
                ibv_dereg_mr(ep->ring_mr);
            if (ep->pidfd >= 0)
                close(ep->pidfd);
            weft_verbs_ep_drop_retired(ep);
            while (ep->cts_head) {
                struct verbs_cts *c = ep->cts_head;
                ep->cts_head = c->next;
                free(c);
            }
            free(ep->slot_free);
            free(ep->data_slots);
            free(ep);
        }
        free(tp->peers);
    }
    weft_verbs_mr_fini(tp);
    for (uint32_t r = 0; r < VERBS_MAX_QPS; r++) {
        struct verbs_rail *rail = &tp->rails[r];
        if (rail->sink_mr)
            ibv_dereg_mr(rail->sink_mr);
        free(rail->sink);
        if (rail->own)
            close_device(rail->ctx, rail->pd, rail->cq);
    }
    if (tp->staging_mr)
        ibv_dereg_mr(tp->staging_mr);
    free(tp->rings);
    free(tp->staging);
    close_device(tp->ctx, tp->pd, tp->cq);
    free(tp);
}

static void verbs_fini(struct weft_tp *tp)
{
    if (tp->qps > 1)
        WEFT_INFO(NET, "verbs: rank %d moved %llu of its %llu bytes of rendezvous data over data "
                  "queue pairs (%u per peer)", tp->rank, (unsigned long long)tp->striped_bytes,
                  (unsigned long long)tp->rndv_bytes, tp->qps);
    if (!tp->aborted)
        weft_verbs_quiesce(tp, false, WEFT_CULPRIT_NONE);
    tp_free(tp);
}

const struct weft_transport_ops weft_transport_verbs = {
    .size = sizeof(struct weft_transport_ops),
    .version = WEFT_TRANSPORT_OPS_VERSION,
    .name = "verbs",
    .probe = verbs_probe,
    .init = verbs_init,
    .address = verbs_address,
    .connect = verbs_connect,
    .connected = NULL,
    .isend = weft_verbs_isend,
    .irecv = weft_verbs_irecv,
    .progress = weft_verbs_progress,
    .abort = verbs_abort,
    .culprit = verbs_culprit,
    .reg = weft_verbs_reg,
    .dereg = weft_verbs_dereg,
    .fini = verbs_fini,
};
#endif /* WEFT_HAVE_VERBS */
