/*
 * verbs_mr.c - memory registration for the verbs transport, and its cache.
 *
 * Every registration goes through register_range(), which picks the method by the kind of
 * memory: host (and managed) memory takes ibv_reg_mr; device memory takes dma-buf first
 * (ibv_reg_dmabuf_mr on a descriptor the GPU layer exports), then ibv_reg_mr on the device
 * address (works when nvidia-peermem is loaded), else WEFT_ERR_UNSUPPORTED so that the layer
 * above stages through host memory. The cache holds the buffers registered once (the user's
 * weft_mem_register, Weft's own scratch) and, with WEFT_IB_REG_CACHE, registrations made on
 * the fly for rendezvous, least recently used first out. A registration pins the pages its
 * range had when it was made: once the application gives the range back to the kernel
 * (free() of a large block, munmap, madvise), a new allocation there gets other pages and
 * the cached registration would point at the old ones. So the cache is on (auto) only where
 * verbs_memhook.c reports every such release; each lookup first drops the registrations the
 * released ranges overlap. Device memory (cudaFree is no munmap) is cached only when forced.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <strings.h>

#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "gpu/gpu.h"
#include "transport/verbs_memhook.h"

#ifdef WEFT_HAVE_VERBS
#include "transport/verbs_internal.h"

#define MR_ACCESS (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ)

/* How device memory got registered (or did not), each logged once per transport context. */
enum dev_method { DEV_DMABUF, DEV_PEERMEM, DEV_NONE };

static void log_method(struct weft_tp *tp, enum dev_method method, const char *dmabuf_why)
{
    static const char *const what[] = {
        [DEV_DMABUF] = "dma-buf (ibv_reg_dmabuf_mr)",
        [DEV_PEERMEM] = "nvidia-peermem (ibv_reg_mr on the device address)",
        [DEV_NONE] = "none: not registrable, the caller stages through host memory",
    };
    if (tp->dev_reg_logged & (1u << method))
        return;
    tp->dev_reg_logged |= 1u << method;
    if (method == DEV_DMABUF)
        WEFT_INFO(NET, "verbs: rank %d: device memory registration on %s port %d: %s", tp->rank,
                  tp->port.dev, tp->port.port, what[method]);
    else
        WEFT_INFO(NET, "verbs: rank %d: device memory registration on %s port %d: %s (dma-buf: %s)",
                  tp->rank, tp->port.dev, tp->port.port, what[method], dmabuf_why);
}

/* The thread's error message without its "host:pid rank N: " prefix, to quote inside
 * another message. */
static const char *error_cause(void)
{
    const char *msg = weft_error_message(), *p = strstr(msg, " rank ");
    p = p ? strstr(p, ": ") : NULL;
    return p ? p + 2 : msg;
}

/* dma-buf: the GPU driver exports the pages and the HCA driver imports them, no other kernel
 * module needed. NULL with the reason in `why` when it does not apply. (ibv_reg_dmabuf_mr is
 * in rdma-core 34; the transport already needs 35 for ibv_is_fork_initialized.) */
static struct ibv_mr *reg_dmabuf(struct ibv_pd *pd, void *buf, size_t len, char *why,
                                 size_t why_len)
{
    int fd;
    uint64_t offset;
    if (weft_gpu_dmabuf_export(buf, len, &fd, &offset) != WEFT_OK) {
        snprintf(why, why_len, "%s", error_cause());
        return NULL;
    }
    struct ibv_mr *mr = ibv_reg_dmabuf_mr(pd, offset, len, (uintptr_t)buf, fd, MR_ACCESS);
    const int err = errno;
    close(fd); /* the registration holds its own reference to the dma-buf */
    if (!mr) {
        char buf_err[128];
        snprintf(why, why_len, "ibv_reg_dmabuf_mr failed: %s (errno %d)",
                 strerror_r(err, buf_err, sizeof(buf_err)), err);
    }
    return mr;
}

/* Device memory: dma-buf, else ibv_reg_mr on the device address, which the kernel can pin
 * only through nvidia-peermem, else not registrable. */
static weft_result_t reg_device(struct weft_tp *tp, const struct verbs_rail *rail, void *buf,
                                size_t len, struct ibv_mr **out)
{
    char dmabuf_why[512];
    struct ibv_mr *mr = reg_dmabuf(rail->pd, buf, len, dmabuf_why, sizeof(dmabuf_why));
    if (mr) {
        log_method(tp, DEV_DMABUF, NULL);
        *out = mr;
        return WEFT_OK;
    }
    mr = ibv_reg_mr(rail->pd, buf, len, MR_ACCESS);
    if (mr) {
        log_method(tp, DEV_PEERMEM, dmabuf_why);
        *out = mr;
        return WEFT_OK;
    }
    const int err = errno;
    log_method(tp, DEV_NONE, dmabuf_why);
    return WEFT_ERROR_ERR(WEFT_ERR_UNSUPPORTED, err, "ibv_reg_mr",
                          "rank %d: device memory [%p, +%zu) is not registrable on %s port %d "
                          "(stage it through host memory): dma-buf: %s; nvidia-peermem%s",
                          tp->rank, buf, len, rail->port.dev, rail->port.port, dmabuf_why,
                          err == EFAULT || err == EINVAL ? " (module not loaded?)" : "");
}

/* Host (and managed) memory: the kernel pins its pages. */
static weft_result_t reg_host(struct weft_tp *tp, const struct verbs_rail *rail, void *buf,
                              size_t len, struct ibv_mr **out)
{
    struct ibv_mr *mr = ibv_reg_mr(rail->pd, buf, len, MR_ACCESS);
    if (!mr) {
        const int err = errno;
        return WEFT_ERROR_ERR(WEFT_ERR_SYSTEM, err, "ibv_reg_mr",
                              "rank %d: registering %zu bytes at %p on %s port %d%s", tp->rank, len,
                              buf, rail->port.dev, rail->port.port,
                              err == ENOMEM ? " (raise the locked-memory limit: ulimit -l)" : "");
    }
    *out = mr;
    return WEFT_OK;
}

/* Deregisters every protection domain's registration of `m`. */
static void dereg_all(struct verbs_mr *m)
{
    for (uint32_t r = 0; r < VERBS_MAX_QPS; r++) {
        bool seen = false;
        for (uint32_t q = 0; q < r; q++)
            seen |= m->rail_mr[q] == m->rail_mr[r];
        if (m->rail_mr[r] && !seen)
            ibv_dereg_mr(m->rail_mr[r]);
    }
}

static weft_result_t register_range(struct weft_tp *tp, void *buf, size_t len,
                                    struct verbs_mr **out)
{
    struct verbs_mr *m = calloc(1, sizeof(*m));
    if (!m)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: registration record", tp->rank);
    const size_t reg_len = len ? len : 1;
    const bool device = weft_gpu_pointer_kind(buf) == WEFT_GPU_MEM_DEVICE;
    /* once per protection domain: rails on one device share theirs */
    for (uint32_t r = 0; r < tp->nrails; r++) {
        const struct verbs_rail *rail = &tp->rails[r];
        for (uint32_t q = 0; q < r && !m->rail_mr[r]; q++)
            if (tp->rails[q].pd == rail->pd)
                m->rail_mr[r] = m->rail_mr[q];
        if (m->rail_mr[r])
            continue;
        const weft_result_t res = device ? reg_device(tp, rail, buf, reg_len, &m->rail_mr[r])
                                         : reg_host(tp, rail, buf, reg_len, &m->rail_mr[r]);
        if (res != WEFT_OK) {
            dereg_all(m);
            free(m);
            return res;
        }
    }
    m->mr = m->rail_mr[0];
    m->start = (uintptr_t)buf;
    m->len = len;
    m->all_next = tp->all_mrs;
    if (tp->all_mrs)
        tp->all_mrs->all_prev = m;
    tp->all_mrs = m;
    *out = m;
    return WEFT_OK;
}

static void unregister(struct weft_tp *tp, struct verbs_mr *m)
{
    if (m->all_prev)
        m->all_prev->all_next = m->all_next;
    else
        tp->all_mrs = m->all_next;
    if (m->all_next)
        m->all_next->all_prev = m->all_prev;
    dereg_all(m);
    free(m);
}

/* Takes `m` out of the cache list. */
static void unlink_mr(struct weft_tp *tp, struct verbs_mr *m)
{
    for (struct verbs_mr **pp = &tp->mrs; *pp; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            m->next = NULL;
            m->cached = false;
            if (!m->user)
                tp->reg_cache_count--;
            return;
        }
}

/* Drops least recently used on-the-fly registrations nobody uses beyond the cache limit. */
static void trim_cache(struct weft_tp *tp)
{
    while (tp->reg_cache_count > tp->reg_cache_max) {
        struct verbs_mr *victim = NULL;
        for (struct verbs_mr *m = tp->mrs; m; m = m->next)
            if (!m->user && m->refs == 0)
                victim = m; /* the last such one is the least recently used */
        if (!victim)
            return;
        unlink_mr(tp, victim);
        unregister(tp, victim);
    }
}

/* Drops on-the-fly registrations that overlap [start, end), which the process released: one
 * in use stays with its request (the application freed a buffer in flight) and goes when
 * that ends. Registrations made once (user, scratch) are their owners' to drop. */
static void released(void *arg, uintptr_t start, uintptr_t end)
{
    struct weft_tp *tp = arg;
    struct verbs_mr **pp = &tp->mrs;
    while (*pp) {
        struct verbs_mr *m = *pp;
        if (m->user || m->start >= end || m->start + (m->len ? m->len : 1) <= start) {
            pp = &m->next;
            continue;
        }
        *pp = m->next;
        m->next = NULL;
        m->cached = false;
        tp->reg_cache_count--;
        if (m->refs == 0)
            unregister(tp, m);
    }
}

weft_result_t weft_verbs_mr_init(struct weft_tp *tp)
{
    const char *mode = weft_config_str(WEFT_CFG_IB_REG_CACHE);
    const bool forced = !strcmp(mode, "1") || !strcasecmp(mode, "on");
    if (!strcmp(mode, "0") || !strcasecmp(mode, "off"))
        return WEFT_OK;
    if (!forced && strcasecmp(mode, "auto") && mode[0])
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "WEFT_IB_REG_CACHE=%s: expected auto, 0 or 1",
                          mode);
    char why[256];
    if (weft_memhook_open(&tp->memhook, why, sizeof(why)) == WEFT_OK) {
        tp->reg_cache = true;
        tp->reg_cache_device = forced;
        WEFT_INFO(NET, "verbs: rank %d: registration cache on, up to %zu registrations of %s "
                       "memory; memory the application releases leaves it (libucm events)",
                  tp->rank, tp->reg_cache_max, forced ? "host and device" : "host");
    } else if (forced) {
        tp->reg_cache = tp->reg_cache_device = true;
        WEFT_WARN(NET, "verbs: rank %d: WEFT_IB_REG_CACHE=1 without memory events (%s): "
                       "memory the application frees and reuses while cached gets a stale "
                       "registration",
                  tp->rank, why);
    } else {
        WEFT_INFO(NET, "verbs: rank %d: registration cache off (%s): buffers are registered "
                       "per transfer, Weft's own buffers once",
                  tp->rank, why);
    }
    return WEFT_OK;
}

weft_result_t weft_verbs_mr_get(struct weft_tp *tp, void *buf, size_t len, struct verbs_mr **out)
{
    const uintptr_t start = (uintptr_t)buf;
    if (tp->memhook)
        weft_memhook_drain(tp->memhook, released, tp);
    for (struct verbs_mr **pp = &tp->mrs; *pp; pp = &(*pp)->next) {
        struct verbs_mr *m = *pp;
        if (start >= m->start && start + len <= m->start + m->len) {
            *pp = m->next; /* move to front */
            m->next = tp->mrs;
            tp->mrs = m;
            m->refs++;
            *out = m;
            return WEFT_OK;
        }
    }
    struct verbs_mr *m;
    WEFT_CHECK(register_range(tp, buf, len, &m));
    m->refs = 1;
    if (tp->reg_cache &&
        (tp->reg_cache_device || weft_gpu_pointer_kind(buf) != WEFT_GPU_MEM_DEVICE)) {
        m->cached = true;
        m->next = tp->mrs;
        tp->mrs = m;
        tp->reg_cache_count++;
        trim_cache(tp);
    }
    *out = m;
    return WEFT_OK;
}

void weft_verbs_mr_put(struct weft_tp *tp, struct verbs_mr *m)
{
    if (!m)
        return;
    if (--m->refs > 0)
        return;
    if (m->cached)
        trim_cache(tp);
    else
        unregister(tp, m);
}

weft_result_t weft_verbs_reg(struct weft_tp *tp, void *buf, size_t len, void **handle)
{
    struct verbs_mr *m;
    WEFT_CHECK(register_range(tp, buf, len, &m));
    m->user = true;
    m->cached = true;
    m->refs = 1;
    m->next = tp->mrs;
    tp->mrs = m;
    *handle = m;
    WEFT_TRACE(NET, "verbs: registered %zu bytes at %p (lkey %#x)", len, buf, m->mr->lkey);
    return WEFT_OK;
}

weft_result_t weft_verbs_dereg(struct weft_tp *tp, void *handle)
{
    struct verbs_mr *m = handle;
    unlink_mr(tp, m);
    m->user = false;
    weft_verbs_mr_put(tp, m); /* requests still using it keep it until they finish */
    return WEFT_OK;
}

void weft_verbs_mr_fini(struct weft_tp *tp)
{
    weft_memhook_close(tp->memhook);
    tp->memhook = NULL;
    tp->mrs = NULL;
    while (tp->all_mrs)
        unregister(tp, tp->all_mrs);
}
#endif /* WEFT_HAVE_VERBS */
