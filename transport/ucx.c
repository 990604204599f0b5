/*
 * ucx.c - the UCX transport's operations table: one UCP context and worker per communicator,
 * worker addresses through the bootstrap, one endpoint per peer with peer-failure handling.
 */
#ifdef WEFT_HAVE_UCX

#include <arpa/inet.h>
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "transport/ucx_internal.h"

/* The fixed part of the address blob, in network byte order; the worker address follows. */
struct ucx_blob {
    uint32_t magic;
    uint32_t version;
    uint32_t rank;
    uint32_t inline_max;
    uint32_t addr_len;
    char host[WEFT_UCX_HOST_BYTES];
};

/* UCX settings Weft changes unless the user set them: shared-memory transports report peer
 * failure only with MM_ERROR_HANDLING (UCX's default is off, and endpoints that ask for error
 * handling would then skip them), and the keepalive that notices a dead peer on them runs
 * every 20 s by default, longer than a collective should hang on a dead rank. */
static const struct {
    const char *name, *value, *why;
    bool shm_only; /* UCX warns about a setting no transport of UCX_TLS reads */
} ucx_defaults[] = {
    {"MM_ERROR_HANDLING", "y", "so that shared-memory transports report a dead peer", true},
    {"KEEPALIVE_INTERVAL", "1s", "so that a dead peer on shared memory is noticed in seconds",
     false},
};

/* Whether UCX_TLS may enable one of UCX's shared-memory transports (posix, sysv). */
static bool shm_wanted(void)
{
    static const char *const names[] = {"posix", "sysv", "mm", "shm", "sm", "all"};
    const char *tls = getenv("UCX_TLS");
    if (!tls || !tls[0] || tls[0] == '^')
        return true;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const size_t n = strlen(names[i]);
        for (const char *p = strstr(tls, names[i]); p; p = strstr(p + 1, names[i]))
            if ((p == tls || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
                return true;
    }
    return false;
}


static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && v[0] ? v : dflt;
}

static bool ucx_probe(char *why, size_t why_len)
{
    unsigned major, minor, release;
    ucp_get_version(&major, &minor, &release);
    if (major != UCP_API_MAJOR || minor < UCP_API_MINOR) {
        snprintf(why, why_len, "UCX library %u.%u.%u is older than UCX %d.%d this Weft was "
                 "built with", major, minor, release, UCP_API_MAJOR, UCP_API_MINOR);
        return false;
    }
    return true;
}

static void ucx_fini(struct weft_tp *tp);

/* Reads UCX's configuration (its UCX_* variables) and applies Weft's defaults where the user
 * set nothing; logs what applies. */
static weft_result_t read_config(struct weft_tp *tp, ucp_config_t **cfg)
{
    ucs_status_t st = ucp_config_read(NULL, NULL, cfg);
    if (st != UCS_OK)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "rank %d: UCX cannot read its configuration: "
                          "ucp_config_read: %s (is a UCX_* variable malformed? ucx_info -c "
                          "lists them)", tp->rank, ucs_status_string(st));
    for (size_t i = 0; i < sizeof(ucx_defaults) / sizeof(ucx_defaults[0]); i++) {
        char var[64];
        snprintf(var, sizeof(var), "UCX_%s", ucx_defaults[i].name);
        if (getenv(var) || (ucx_defaults[i].shm_only && !shm_wanted()))
            continue;
        st = ucp_config_modify(*cfg, ucx_defaults[i].name, ucx_defaults[i].value);
        if (st != UCS_OK) {
            WEFT_INFO(NET, "rank %d: cannot set %s=%s: ucp_config_modify: %s", tp->rank, var,
                      ucx_defaults[i].value, ucs_status_string(st));
            continue;
        }
        const size_t o = strlen(tp->defaults);
        snprintf(tp->defaults + o, sizeof(tp->defaults) - o, " %s=%s", var,
                 ucx_defaults[i].value);
        WEFT_TRACE(NET, "rank %d: %s unset: using %s %s", tp->rank, var, ucx_defaults[i].value,
                   ucx_defaults[i].why);
    }
    return WEFT_OK;
}

static weft_result_t start_worker(struct weft_tp *tp, const struct weft_transport_params *params)
{
    ucp_config_t *cfg;
    WEFT_CHECK(read_config(tp, &cfg));
    ucp_params_t p = {
        .field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_TAG_SENDER_MASK |
                      UCP_PARAM_FIELD_MT_WORKERS_SHARED | UCP_PARAM_FIELD_ESTIMATED_NUM_EPS |
                      UCP_PARAM_FIELD_ESTIMATED_NUM_PPN | UCP_PARAM_FIELD_NAME,
        .features = UCP_FEATURE_TAG,
        .tag_sender_mask = (ucp_tag_t)(WEFT_UCX_MAX_RANKS - 1) << WEFT_UCX_RANK_SHIFT,
        .mt_workers_shared = 0,
        .estimated_num_eps = (size_t)params->nranks,
        .estimated_num_ppn = (size_t)(params->local_nranks > 0 ? params->local_nranks : 1),
        .name = "weft",
    };
    ucs_status_t st = ucp_init(&p, cfg, &tp->ctx);
    ucp_config_release(cfg);
    if (st != UCS_OK) {
        tp->ctx = NULL;
        return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "rank %d on %s: UCX cannot start: ucp_init: %s "
                          "(UCX_TLS=%s, UCX_NET_DEVICES=%s; ucx_info -d lists the transports "
                          "and devices UCX finds)", tp->rank, weft_log_hostname(),
                          ucs_status_string(st), tp->tls, tp->devices);
    }
    ucp_worker_params_t wp = {
        .field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
        .thread_mode = UCS_THREAD_MODE_SINGLE,
    };
    st = ucp_worker_create(tp->ctx, &wp, &tp->worker);
    if (st != UCS_OK) {
        tp->worker = NULL;
        return WEFT_ERROR(WEFT_ERR_SYSTEM, "rank %d on %s: cannot create a UCX worker: "
                          "ucp_worker_create: %s (UCX_TLS=%s)", tp->rank, weft_log_hostname(),
                          ucs_status_string(st), tp->tls);
    }
    ucp_worker_attr_t wa = {.field_mask = UCP_WORKER_ATTR_FIELD_ADDRESS};
    st = ucp_worker_query(tp->worker, &wa);
    if (st != UCS_OK)
        return WEFT_ERROR(WEFT_ERR_SYSTEM, "rank %d: cannot read the UCX worker's address: "
                          "ucp_worker_query: %s", tp->rank, ucs_status_string(st));
    tp->addr = wa.address;
    tp->addr_len = wa.address_length;
    return WEFT_OK;
}

static weft_result_t ucx_init(const struct weft_transport_params *params, struct weft_tp **out)
{
    weft_result_t r;
    if (params->nranks < 1 || params->rank < 0 || params->rank >= params->nranks)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "ucx: rank %d of %d ranks", params->rank,
                          params->nranks);
    if (params->nranks > WEFT_UCX_MAX_RANKS)
        return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "ucx: %d ranks; the UCX transport's tags have "
                          "room for %d", params->nranks, WEFT_UCX_MAX_RANKS);
    const size_t inline_max = weft_config_size(WEFT_CFG_UCX_INLINE);
    if (inline_max > ((size_t)1 << 20))
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "WEFT_UCX_INLINE=%zu: at most 1M", inline_max);
    struct weft_tp *tp = calloc(1, sizeof(*tp));
    if (!tp)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: cannot allocate the UCX transport",
                          params->rank);
    tp->rank = params->rank;
    tp->nranks = params->nranks;
    tp->culprit = WEFT_CULPRIT_NONE;
    tp->timeout_s = params->timeout_s;
    tp->inline_max = inline_max;
    snprintf(tp->tls, sizeof(tp->tls), "%s", env_or("UCX_TLS", "(unset: all)"));
    snprintf(tp->devices, sizeof(tp->devices), "%s", env_or("UCX_NET_DEVICES", "(unset: all)"));
    tp->peers = calloc((size_t)tp->nranks, sizeof(*tp->peers));
    tp->marked = calloc((size_t)tp->nranks, sizeof(*tp->marked));
    if (!tp->peers || !tp->marked) {
        r = WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: cannot allocate UCX state for %d ranks",
                       tp->rank, tp->nranks);
        goto fail;
    }
    for (int p = 0; p < tp->nranks; p++) {
        tp->peers[p].tp = tp;
        tp->peers[p].rank = p;
        snprintf(tp->peers[p].host, sizeof(tp->peers[p].host), "(unknown)");
    }
    WEFT_CHECK_GOTO(start_worker(tp, params), r, fail);
    ucp_context_attr_t ca = {.field_mask = UCP_ATTR_FIELD_MEMORY_TYPES};
    const bool cuda = ucp_context_query(tp->ctx, &ca) == UCS_OK &&
                      (ca.memory_types & UCS_BIT(UCS_MEMORY_TYPE_CUDA));
    WEFT_INFO(NET, "rank %d: UCX %s, UCX_TLS=%s, UCX_NET_DEVICES=%s (Weft's defaults:%s), "
              "worker address %zu bytes, messages below %zu bytes inline, device memory: %s",
              tp->rank, ucp_get_version_string(), tp->tls, tp->devices,
              tp->defaults[0] ? tp->defaults : " none", tp->addr_len, tp->inline_max,
              cuda ? "CUDA" : "none (host memory only)");
    *out = tp;
    return WEFT_OK;

fail:
    ucx_fini(tp);
    return r;
}

static weft_result_t ucx_address(struct weft_tp *tp, void *blob, size_t *len)
{
    const size_t need = sizeof(struct ucx_blob) + tp->addr_len;
    if (*len < need)
        return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "rank %d: the UCX worker address needs %zu "
                          "bytes, the bootstrap carries %zu: limit UCX_TLS or UCX_NET_DEVICES "
                          "to fewer transports or devices", tp->rank, need, *len);
    struct ucx_blob b = {
        .magic = htonl(WEFT_UCX_BLOB_MAGIC),
        .version = htonl(WEFT_UCX_BLOB_VERSION),
        .rank = htonl((uint32_t)tp->rank),
        .inline_max = htonl((uint32_t)tp->inline_max),
        .addr_len = htonl((uint32_t)tp->addr_len),
    };
    snprintf(b.host, sizeof(b.host), "%s", weft_log_hostname());
    memcpy(blob, &b, sizeof(b));
    memcpy((uint8_t *)blob + sizeof(b), tp->addr, tp->addr_len);
    *len = need;
    return WEFT_OK;
}

static void ep_error(void *arg, ucp_ep_h uep, ucs_status_t status)
{
    struct weft_ep *ep = arg;
    (void)uep;
    if (!ep->err_pending) {
        ep->err_pending = true;
        ep->err_status = status;
        ep->err_call = "UCX endpoint error";
    }
    weft_ucx_mark(ep);
}

void weft_ucx_ep_close(struct weft_ep *ep, bool force)
{
    if (!ep->ep)
        return;
    ucp_request_param_t p = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
        .flags = force ? UCP_EP_CLOSE_FLAG_FORCE : 0,
    };
    ucs_status_ptr_t s = ucp_ep_close_nbx(ep->ep, &p);
    ep->ep = NULL;
    if (UCS_PTR_IS_ERR(s))
        WEFT_TRACE(NET, "rank %d: closing the UCX endpoint to rank %d: ucp_ep_close_nbx: %s",
                   ep->tp->rank, ep->rank, ucs_status_string(UCS_PTR_STATUS(s)));
    else if (s)
        ep->close_req = s;
}

static weft_result_t peer_set_addr(struct weft_tp *tp, struct weft_ep *ep, const void *blob,
                                   size_t len)
{
    struct ucx_blob b;
    if (len < sizeof(b))
        return WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d: UCX address of rank %d has %zu bytes, "
                          "expected at least %zu (mixed Weft versions?)", tp->rank, ep->rank, len,
                          sizeof(b));
    memcpy(&b, blob, sizeof(b));
    b.host[sizeof(b.host) - 1] = '\0';
    if (ntohl(b.magic) != WEFT_UCX_BLOB_MAGIC || ntohl(b.version) != WEFT_UCX_BLOB_VERSION ||
        ntohl(b.rank) != (uint32_t)ep->rank || sizeof(b) + ntohl(b.addr_len) != len)
        return WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d: malformed UCX address from rank %d (mixed "
                          "Weft versions?)", tp->rank, ep->rank);
    snprintf(ep->host, sizeof(ep->host), "%s", b.host);
    if (ntohl(b.inline_max) != tp->inline_max)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "rank %d uses WEFT_UCX_INLINE=%zu but rank %d on "
                          "%s uses %u: set the same value on every rank", tp->rank,
                          tp->inline_max, ep->rank, ep->host, ntohl(b.inline_max));
    ucp_ep_params_t p = {
        .field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                      UCP_EP_PARAM_FIELD_ERR_HANDLER,
        .address = (const ucp_address_t *)((const uint8_t *)blob + sizeof(b)),
        .err_mode = UCP_ERR_HANDLING_MODE_PEER,
        .err_handler = {.cb = ep_error, .arg = ep},
    };
    ucs_status_t st = ucp_ep_create(tp->worker, &p, &ep->ep);
    if (st != UCS_OK) {
        ep->ep = NULL;
        return WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d on %s cannot reach rank %d on %s through "
                          "UCX: ucp_ep_create: %s (UCX_TLS=%s, UCX_NET_DEVICES=%s here; the "
                          "ranks need a transport in common)", tp->rank, weft_log_hostname(),
                          ep->rank, ep->host, ucs_status_string(st), tp->tls, tp->devices);
    }
    ep->have_addr = true;
    return weft_ucx_ctrl_start(ep);
}

/* The transports and devices of the endpoint's lanes and its tagged-send protocols by size,
 * as ucp_ep_print_info lists them ("sysv/memory; tag_send: 0..<egr/short>..93..<egr/bcopy>
 * ..8256..<rndv>..(inf)"); empty when they cannot be read. */
static void ep_lanes(ucp_ep_h uep, char *out, size_t len)
{
    char *text = NULL;
    size_t tlen = 0;
    out[0] = '\0';
    FILE *f = open_memstream(&text, &tlen);
    if (!f)
        return;
    ucp_ep_print_info(uep, f);
    fclose(f);
    size_t o = 0;
    const char *protos = NULL;
    for (char *line = strtok(text, "\n"); line && o < len; line = strtok(NULL, "\n")) {
        char *tag_send = strstr(line, " tag_send:");
        if (tag_send)
            protos = tag_send + 1;
        char *lane = strstr(line, "lane[");
        char *tl = lane ? strchr(lane, ':') : NULL;
        if (!tl)
            continue;
        char name[64];
        if (sscanf(tl + 1, " %*d:%63[^ .]", name) != 1 && sscanf(tl + 1, " %63[^ .]", name) != 1)
            continue;
        if (!strstr(out, name))
            o += (size_t)snprintf(out + o, len - o, "%s%s", o ? " " : "", name);
    }
    if (protos && o < len)
        snprintf(out + o, len - o, "; %s", protos);
    free(text);
}

static weft_result_t ucx_connect(struct weft_tp *tp, int rank, const void *blob, size_t len,
                                 struct weft_ep **out)
{
    if (tp->aborted)
        return WEFT_ERROR(WEFT_ERR_ABORTED, "rank %d: UCX transport aborted", tp->rank);
    if (rank < 0 || rank >= tp->nranks || rank == tp->rank)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "rank %d: cannot connect to rank %d over UCX "
                          "(%d ranks)", tp->rank, rank, tp->nranks);
    struct weft_ep *ep = &tp->peers[rank];
    if (!ep->have_addr)
        WEFT_CHECK(peer_set_addr(tp, ep, blob, len));
    bool progressed = false;
    WEFT_CHECK(weft_ucx_progress(tp, &progressed));
    if (ep->failed != WEFT_OK)
        return weft_ucx_peer_raise(ep);
    if (!ep->hello_rcvd || !ep->hello_sent)
        return WEFT_ERR_IN_PROGRESS;
    if (!ep->logged) {
        char lanes[384];
        ep->logged = true;
        ep_lanes(ep->ep, lanes, sizeof(lanes));
        WEFT_INFO(NET, "rank %d: connected to rank %d on %s over UCX (%s)", tp->rank, rank,
                  ep->host, lanes[0] ? lanes : "lanes unknown");
    }
    *out = ep;
    return WEFT_OK;
}

static weft_result_t ucx_isend(struct weft_ep *ep, const void *buf, size_t len, uint64_t tag,
                               struct weft_request *req)
{
    return weft_ucx_isend(ep, buf, len, tag, req);
}

static weft_result_t ucx_irecv(struct weft_ep *ep, void *buf, size_t len, uint64_t tag,
                               struct weft_request *req)
{
    return weft_ucx_irecv(ep, buf, len, tag, req);
}

static weft_result_t ucx_progress(struct weft_tp *tp, bool *progressed)
{
    return weft_ucx_progress(tp, progressed);
}

/* Progresses until `busy` says nothing is left or `limit_s` passed; false on the latter. */
static bool progress_until(struct weft_tp *tp, bool (*busy)(struct weft_tp *), double limit_s)
{
    const double deadline = weft_now_s() + limit_s;
    while (busy(tp)) {
        bool progressed = false;
        (void)weft_ucx_progress(tp, &progressed);
        if (weft_now_s() > deadline)
            return false;
    }
    return true;
}

static bool aborts_in_flight(struct weft_tp *tp)
{
    for (int p = 0; p < tp->nranks; p++)
        if (tp->peers[p].abort_send)
            return true;
    return false;
}

static void ucx_abort(struct weft_tp *tp, int culprit)
{
    if (!tp || tp->aborted)
        return;
    tp->aborted = true;
    tp->abort_word = htole32((uint32_t)(culprit + 1)); /* 0: none */
    for (int p = 0; p < tp->nranks; p++) {
        struct weft_ep *ep = &tp->peers[p];
        if (ep->ep && ep->failed == WEFT_OK)
            (void)weft_ucx_ctrl_send(ep, WEFT_UCX_ABORT);
        weft_ucx_peer_flush(ep, WEFT_ERR_ABORTED);
        if (ep->failed == WEFT_OK)
            ep->failed = WEFT_ERR_ABORTED;
    }
    /* Let the notices leave (bounded), then drop the endpoints: a peer whose transport
     * reports the close (tcp) hears of it even if a notice stayed behind. */
    const double limit = tp->timeout_s < 1.0 ? tp->timeout_s : 1.0;
    if (!progress_until(tp, aborts_in_flight, limit))
        WEFT_INFO(NET, "rank %d: UCX abort notices still in flight after %.1f s", tp->rank,
                  limit);
    for (int p = 0; p < tp->nranks; p++)
        weft_ucx_ep_close(&tp->peers[p], true);
}

static int ucx_culprit(const struct weft_tp *tp)
{
    return tp ? tp->culprit : WEFT_CULPRIT_NONE;
}

static bool closing_busy(struct weft_tp *tp)
{
    for (int p = 0; p < tp->nranks; p++) {
        struct weft_ep *ep = &tp->peers[p];
        if (ep->close_req && ucp_request_check_status(ep->close_req) != UCS_INPROGRESS) {
            ucp_request_free(ep->close_req);
            ep->close_req = NULL;
        }
        if (ep->close_req || ep->hello_send || ep->abort_send)
            return true;
    }
    for (const struct weft_ucx_op *op = tp->all_ops; op; op = op->all_next)
        if (op->pending)
            return true;
    return false;
}

static void ucx_fini(struct weft_tp *tp)
{
    if (!tp)
        return;
    tp->closing = true;
    if (tp->worker) {
        for (int p = 0; tp->peers && p < tp->nranks; p++) {
            struct weft_ep *ep = &tp->peers[p];
            if (ep->hello_recv)
                ucp_request_cancel(tp->worker, ep->hello_recv);
            if (ep->abort_recv)
                ucp_request_cancel(tp->worker, ep->abort_recv);
            weft_ucx_peer_flush(ep, WEFT_ERR_ABORTED);
            weft_ucx_ep_close(ep, tp->aborted || ep->failed != WEFT_OK);
        }
        const double limit = tp->timeout_s < 10.0 ? tp->timeout_s : 10.0;
        if (!progress_until(tp, closing_busy, limit))
            WEFT_INFO(NET, "rank %d: UCX endpoints still closing after %.0f s; destroying the "
                      "worker anyway", tp->rank, limit);
        if (tp->addr)
            ucp_worker_release_address(tp->worker, tp->addr);
        ucp_worker_destroy(tp->worker);
    }
    if (tp->ctx)
        ucp_cleanup(tp->ctx);
    weft_ucx_ops_free(tp);
    free(tp->marked);
    free(tp->peers);
    free(tp);
}

const struct weft_transport_ops weft_transport_ucx = {
    .size = sizeof(struct weft_transport_ops),
    .version = WEFT_TRANSPORT_OPS_VERSION,
    .name = "ucx",
    .explicit_only = true, /* picked only by WEFT_TRANSPORT=ucx */
    .probe = ucx_probe,
    .init = ucx_init,
    .address = ucx_address,
    .connect = ucx_connect,
    .connected = NULL,
    .isend = ucx_isend,
    .irecv = ucx_irecv,
    .progress = ucx_progress,
    .abort = ucx_abort,
    .culprit = ucx_culprit,
    .reg = NULL,
    .dereg = NULL,
    .fini = ucx_fini,
};

#else
/* Built without UCX: transport/net.c lists no ucx transport. */
typedef int weft_ucx_not_built_t;
#endif /* WEFT_HAVE_UCX */
