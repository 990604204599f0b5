/*
 * verbs_mr.c - memory registration for the verbs transport, and its cache.
 *
 * Every registration goes through register_range(), the one place that will hand device
 * memory to ibv_reg_dmabuf_mr (the GPU layer supplies the dma-buf); host memory takes
 * ibv_reg_mr. The cache holds the buffers the user registered (weft_mem_register) and, with
 * WEFT_IB_REG_CACHE=1, registrations made on the fly for rendezvous, least recently used
 * first out. Without it an on-the-fly registration lives as long as its request: a cached
 * registration of memory the application freed and reused would point at stale pages.
 */
#include <errno.h>
#include <stdlib.h>

#include "core/error.h"
#include "core/log.h"

#ifdef WEFT_HAVE_VERBS
#include "transport/verbs_internal.h"

#define MR_ACCESS (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ)

static weft_result_t register_range(struct weft_tp *tp, void *buf, size_t len,
                                    struct verbs_mr **out)
{
    struct verbs_mr *m = calloc(1, sizeof(*m));
    if (!m)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: registration record", tp->rank);
    m->mr = ibv_reg_mr(tp->pd, buf, len ? len : 1, MR_ACCESS);
    if (!m->mr) {
        int err = errno;
        free(m);
        return WEFT_ERROR_ERR(WEFT_ERR_SYSTEM, err, "ibv_reg_mr",
                              "rank %d: registering %zu bytes at %p on %s port %d%s", tp->rank,
                              len, buf, tp->port.dev, tp->port.port,
                              err == ENOMEM ? " (raise the locked-memory limit: ulimit -l)" : "");
    }
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
    ibv_dereg_mr(m->mr);
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

weft_result_t weft_verbs_mr_get(struct weft_tp *tp, void *buf, size_t len, struct verbs_mr **out)
{
    const uintptr_t start = (uintptr_t)buf;
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
    if (tp->reg_cache) {
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
    tp->mrs = NULL;
    while (tp->all_mrs)
        unregister(tp, tp->all_mrs);
}
#endif /* WEFT_HAVE_VERBS */
