/*
 * fake_net.c - an in-process weft_net for unit tests: ranks are threads of one process and
 * messages move through per-(src,dst) FIFOs, either copied eagerly or matched by rendezvous.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "transport/net.h"

/* A send waiting for its receive. Eager sends own a copy; rendezvous ones point at the
 * sender's request, which completes only once matched. */
struct fake_msg {
    struct fake_msg *next;
    const void *data;
    void *copy;
    size_t len;
    uint64_t tag;
    struct weft_request *sreq;
};

struct fake_pair {
    struct fake_msg *shead, *stail;
    struct weft_request_queue recvs;
    /* requests of this (src, dst) posted and not yet collected by a wait, and their peaks */
    int sends_out, recvs_out, max_sends_out, max_recvs_out;
};

struct fake_group {
    int n;
    int rendezvous;
    double timeout_s;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int broken_by; /* rank that aborted, or -1 */
    int refs;
    struct fake_pair *pairs; /* [src * n + dst] */
    struct weft_net *nets;
    int sample_heap;  /* fake_net_stats: sample the heap at every post */
    size_t heap_peak; /* bytes in use, the most seen at a post */
};

struct weft_net {
    struct fake_group *g;
    int rank;
    weft_result_t status;
};

/* Test-only constructor: nranks nets sharing one group. */
weft_result_t fake_net_create_group(int nranks, int rendezvous, double timeout_s,
                                    struct weft_net **nets);

/* Test-only statistics since the last reset (over every pair): the most sends and receives of
 * one (src, dst) pair posted and not yet collected by a wait, and, when sample_heap was set,
 * the most heap bytes in use seen at a post. */
void fake_net_stats_reset(struct weft_net *any, int sample_heap);
void fake_net_stats(struct weft_net *any, int *max_sends, int *max_recvs, size_t *heap_peak);

/* Details of a failed match, kept in the receive for the message raised by wait. */
enum { FAKE_DETAIL_TAG, FAKE_DETAIL_LEN };

weft_result_t fake_net_create_group(int nranks, int rendezvous, double timeout_s,
                                    struct weft_net **nets)
{
    struct fake_group *g = calloc(1, sizeof(*g));
    if (!g)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "fake net: no memory");
    g->pairs = calloc((size_t)nranks * (size_t)nranks, sizeof(*g->pairs));
    g->nets = calloc((size_t)nranks, sizeof(*g->nets));
    if (!g->pairs || !g->nets) {
        free(g->pairs);
        free(g->nets);
        free(g);
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "fake net: no memory");
    }
    g->n = nranks;
    g->rendezvous = rendezvous;
    g->timeout_s = timeout_s;
    g->broken_by = -1;
    g->refs = nranks;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    for (int r = 0; r < nranks; r++) {
        g->nets[r].g = g;
        g->nets[r].rank = r;
        nets[r] = &g->nets[r];
    }
    return WEFT_OK;
}

weft_result_t weft_net_create(const struct weft_net_params *params, const struct weft_oob *oob,
                              struct weft_net **net)
{
    (void)params;
    (void)oob;
    (void)net;
    return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "fake net: use fake_net_create_group");
}

/* Drops every queued message and receive; called with the lock held. */
static void clear_queues(struct fake_group *g)
{
    for (int i = 0; i < g->n * g->n; i++) {
        struct fake_pair *p = &g->pairs[i];
        while (p->shead) {
            struct fake_msg *m = p->shead;
            p->shead = m->next;
            free(m->copy);
            free(m);
        }
        p->stail = NULL;
        p->recvs = (struct weft_request_queue){ NULL, NULL };
    }
}

void weft_net_destroy(struct weft_net *net)
{
    if (!net)
        return;
    struct fake_group *g = net->g;
    pthread_mutex_lock(&g->mu);
    int left = --g->refs;
    pthread_mutex_unlock(&g->mu);
    if (left)
        return;
    clear_queues(g);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g->pairs);
    free(g->nets);
    free(g);
}

/* Matches heads of one (src, dst) queue pair; called with the lock held. */
static void match(struct fake_group *g, struct fake_pair *p)
{
    while (p->shead && !weft_request_queue_empty(&p->recvs)) {
        struct fake_msg *m = p->shead;
        struct weft_request *rq = weft_request_queue_pop(&p->recvs);
        p->shead = m->next;
        if (!p->shead)
            p->stail = NULL;
        weft_result_t st = WEFT_OK;
        if (m->tag != rq->tag) {
            st = WEFT_ERR_REMOTE;
            rq->priv[0] = FAKE_DETAIL_TAG;
            rq->priv[1] = m->tag;
        } else if (m->len != rq->len) {
            st = WEFT_ERR_INVALID_ARG;
            rq->priv[0] = FAKE_DETAIL_LEN;
            rq->priv[1] = m->len;
        } else if (m->len) {
            memcpy(rq->buf, m->data, m->len);
        }
        weft_request_complete(rq, st);
        if (m->sreq)
            weft_request_complete(m->sreq, WEFT_OK);
        free(m->copy);
        free(m);
    }
    pthread_cond_broadcast(&g->cv);
}

/* priv[5] marks a request counted in its pair's *_out until a wait collects it. */
enum { FAKE_COUNTED = 5 };

/* Called with the lock held. */
static void count_post(struct fake_group *g, struct fake_pair *p, struct weft_request *req)
{
    req->priv[FAKE_COUNTED] = 1;
    if (req->is_send && ++p->sends_out > p->max_sends_out)
        p->max_sends_out = p->sends_out;
    if (!req->is_send && ++p->recvs_out > p->max_recvs_out)
        p->max_recvs_out = p->recvs_out;
    if (g->sample_heap) {
        struct mallinfo2 mi = mallinfo2();
        if (mi.uordblks + mi.hblkhd > g->heap_peak)
            g->heap_peak = mi.uordblks + mi.hblkhd;
    }
}

/* A wait collected req; called with the lock held. */
static void count_collect(struct fake_group *g, struct weft_net *net, struct weft_request *req)
{
    if (!req->priv[FAKE_COUNTED])
        return;
    req->priv[FAKE_COUNTED] = 0;
    struct fake_pair *p = req->is_send ? &g->pairs[net->rank * g->n + req->peer]
                                       : &g->pairs[req->peer * g->n + net->rank];
    if (req->is_send)
        p->sends_out--;
    else
        p->recvs_out--;
}

void fake_net_stats_reset(struct weft_net *any, int sample_heap)
{
    struct fake_group *g = any->g;
    pthread_mutex_lock(&g->mu);
    for (int i = 0; i < g->n * g->n; i++) {
        g->pairs[i].max_sends_out = g->pairs[i].sends_out;
        g->pairs[i].max_recvs_out = g->pairs[i].recvs_out;
    }
    g->sample_heap = sample_heap;
    g->heap_peak = 0;
    pthread_mutex_unlock(&g->mu);
}

void fake_net_stats(struct weft_net *any, int *max_sends, int *max_recvs, size_t *heap_peak)
{
    struct fake_group *g = any->g;
    pthread_mutex_lock(&g->mu);
    *max_sends = *max_recvs = 0;
    for (int i = 0; i < g->n * g->n; i++) {
        if (g->pairs[i].max_sends_out > *max_sends)
            *max_sends = g->pairs[i].max_sends_out;
        if (g->pairs[i].max_recvs_out > *max_recvs)
            *max_recvs = g->pairs[i].max_recvs_out;
    }
    *heap_peak = g->heap_peak;
    pthread_mutex_unlock(&g->mu);
}

static weft_result_t broken_error(const struct weft_net *net)
{
    if (net->status != WEFT_OK)
        return WEFT_ERROR(net->status, "rank %d: fake net already failed", net->rank);
    return WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d: rank %d aborted the fake net", net->rank,
                      net->g->broken_by);
}

static weft_result_t check_peer(const struct weft_net *net, int peer)
{
    if (peer < 0 || peer >= net->g->n)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "rank %d: fake net: no peer %d", net->rank, peer);
    return WEFT_OK;
}

weft_result_t weft_net_isend(struct weft_net *net, int peer, const void *buf, size_t len,
                             uint64_t tag, struct weft_request *req)
{
    struct fake_group *g = net->g;
    WEFT_CHECK(check_peer(net, peer));
    struct fake_msg *m = calloc(1, sizeof(*m));
    if (!m)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: fake net: no memory", net->rank);
    weft_request_init(req, (void *)buf, len, tag, peer, 1);
    m->len = len;
    m->tag = tag;
    if (g->rendezvous) {
        m->data = buf;
        m->sreq = req;
    } else {
        m->copy = malloc(len ? len : 1);
        if (!m->copy) {
            free(m);
            return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: fake net: no memory", net->rank);
        }
        if (len)
            memcpy(m->copy, buf, len);
        m->data = m->copy;
    }
    pthread_mutex_lock(&g->mu);
    if (g->broken_by >= 0) {
        pthread_mutex_unlock(&g->mu);
        free(m->copy);
        free(m);
        return broken_error(net);
    }
    struct fake_pair *p = &g->pairs[net->rank * g->n + peer];
    if (p->stail)
        p->stail->next = m;
    else
        p->shead = m;
    p->stail = m;
    count_post(g, p, req);
    if (!g->rendezvous)
        weft_request_complete(req, WEFT_OK);
    match(g, p);
    pthread_mutex_unlock(&g->mu);
    return WEFT_OK;
}

weft_result_t weft_net_irecv(struct weft_net *net, int peer, void *buf, size_t len, uint64_t tag,
                             struct weft_request *req)
{
    struct fake_group *g = net->g;
    WEFT_CHECK(check_peer(net, peer));
    weft_request_init(req, buf, len, tag, peer, 0);
    pthread_mutex_lock(&g->mu);
    if (g->broken_by >= 0) {
        pthread_mutex_unlock(&g->mu);
        return broken_error(net);
    }
    struct fake_pair *p = &g->pairs[peer * g->n + net->rank];
    weft_request_queue_push(&p->recvs, req);
    count_post(g, p, req);
    match(g, p);
    pthread_mutex_unlock(&g->mu);
    return WEFT_OK;
}

/* Breaks the group; called with the lock held. */
static void break_group(struct weft_net *net, weft_result_t why)
{
    struct fake_group *g = net->g;
    if (net->status == WEFT_OK)
        net->status = why;
    if (g->broken_by < 0) {
        g->broken_by = net->rank;
        clear_queues(g);
    }
    pthread_cond_broadcast(&g->cv);
}

static weft_result_t request_error(const struct weft_net *net, const struct weft_request *req)
{
    if (req->priv[0] == FAKE_DETAIL_TAG)
        return WEFT_ERROR(req->status,
                          "rank %d: receive from rank %d: tag %#llx does not match the send's "
                          "tag %#llx (ranks called operations in different orders)",
                          net->rank, req->peer, (unsigned long long)req->tag,
                          (unsigned long long)req->priv[1]);
    return WEFT_ERROR(req->status,
                      "rank %d: receive from rank %d of %zu bytes meets a send of %llu bytes",
                      net->rank, req->peer, req->len, (unsigned long long)req->priv[1]);
}

weft_result_t weft_net_wait(struct weft_net *net, struct weft_request *const *reqs, size_t n)
{
    struct fake_group *g = net->g;
    struct timespec deadline;
    weft_result_t r = WEFT_OK;

    clock_gettime(CLOCK_REALTIME, &deadline);
    double whole = (double)(long)g->timeout_s;
    deadline.tv_sec += (time_t)whole;
    deadline.tv_nsec += (long)((g->timeout_s - whole) * 1e9);
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&g->mu);
    for (;;) {
        size_t pending = 0;
        const struct weft_request *failed = NULL;
        for (size_t i = 0; i < n; i++) {
            if (!reqs[i])
                continue;
            if (!__atomic_load_n(&reqs[i]->done, __ATOMIC_ACQUIRE))
                pending++;
            else if (reqs[i]->status != WEFT_OK && !failed)
                failed = reqs[i];
        }
        if (failed) {
            r = request_error(net, failed);
            break_group(net, r);
            break;
        }
        if (!pending) {
            for (size_t i = 0; i < n; i++)
                if (reqs[i])
                    count_collect(g, net, reqs[i]);
            break;
        }
        if (g->broken_by >= 0) {
            r = broken_error(net);
            if (net->status == WEFT_OK)
                net->status = WEFT_ERR_REMOTE;
            break;
        }
        if (pthread_cond_timedwait(&g->cv, &g->mu, &deadline)) {
            r = WEFT_ERROR(WEFT_ERR_TIMEOUT,
                           "rank %d: fake net: %zu requests still pending after %.1f s",
                           net->rank, pending, g->timeout_s);
            break_group(net, r);
            break;
        }
    }
    pthread_mutex_unlock(&g->mu);
    return r;
}

weft_result_t weft_net_wait_one(struct weft_net *net, struct weft_request *req)
{
    struct weft_request *const list[1] = {req};
    return weft_net_wait(net, list, 1);
}

weft_result_t weft_net_progress(struct weft_net *net)
{
    return weft_net_status(net);
}

void weft_net_abort(struct weft_net *net)
{
    pthread_mutex_lock(&net->g->mu);
    break_group(net, WEFT_ERR_ABORTED);
    pthread_mutex_unlock(&net->g->mu);
}

/* The fake's waits are serialised by its lock: an abort request is the abort itself. */
void weft_net_request_abort(struct weft_net *net)
{
    weft_net_abort(net);
}

/* The in-process net moves memory with memcpy: nothing to register. */
weft_result_t weft_net_reg(struct weft_net *net, void *buf, size_t len, void **handle)
{
    (void)net;
    (void)buf;
    (void)len;
    static int token;
    *handle = &token;
    return WEFT_OK;
}

void weft_net_dereg(struct weft_net *net, void *handle)
{
    (void)net;
    (void)handle;
}

weft_result_t weft_net_status(const struct weft_net *net)
{
    struct fake_group *g = net->g;
    pthread_mutex_lock(&g->mu);
    weft_result_t r = net->status;
    if (r == WEFT_OK && g->broken_by >= 0)
        r = WEFT_ERR_REMOTE;
    pthread_mutex_unlock(&g->mu);
    return r;
}

int weft_net_rank(const struct weft_net *net)
{
    return net->rank;
}

int weft_net_nranks(const struct weft_net *net)
{
    return net->g->n;
}

const char *weft_net_peer_transport(const struct weft_net *net, int peer)
{
    return peer == net->rank ? "self" : "fake";
}

int weft_net_peer_host(const struct weft_net *net, int peer)
{
    (void)net;
    (void)peer;
    return 0;
}

int weft_net_nhosts(const struct weft_net *net)
{
    (void)net;
    return 1;
}
