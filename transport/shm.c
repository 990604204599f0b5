/*
 * shm.c - the shared-memory transport for ranks on one host: per-pair SPSC rings in the
 * receiver's segment, and single-copy cross-memory attach (process_vm_readv) for large messages.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "transport/shm_queue.h"
#include "transport/transport.h"

#define SHM_SEG_MAGIC 0x5745465453484d31ULL /* "WEFTSHM1" */
#define SHM_BLOB_MAGIC 0x57534842u
#define SHM_VERSION 1
#define SHM_NAME_MAX 96
#define SHM_SEG_HDR_BYTES 4096
#define SHM_KEY_TAG_BYTES 32
/* Rendezvous reads are cut into pieces so one progress call never stalls on a huge copy. */
#define SHM_CMA_PIECE ((size_t)4 << 20)
#define SHM_DEATH_CHECK_NS 2000000LL

#ifndef PR_SET_PTRACER
#define PR_SET_PTRACER 0x59616d61
#endif
#ifndef PR_SET_PTRACER_ANY
#define PR_SET_PTRACER_ANY ((unsigned long)-1)
#endif

/* Start of every segment; written once by the owner before its address is published. */
struct shm_seg_hdr {
    uint64_t magic;
    uint32_t version;
    uint32_t nqueues;
    uint64_t nslots;
    uint64_t slot_size;
    uint64_t queue_bytes;
    int32_t pid;
    int32_t local_rank;
    uint8_t key_tag[SHM_KEY_TAG_BYTES]; /* keyed hash of the name: proves the same job */
};

struct shm_blob {
    uint32_t magic;
    uint32_t version;
    int32_t pid;
    int32_t local_rank;
    uint64_t nslots;
    uint64_t slot_size;
    char name[SHM_NAME_MAX];
};

/* Sender-side request states (priv[0]). */
enum { TX_HEADER = 0, TX_BODY, TX_RNDV_WAIT };
/* Receiver-side state of the message at the ring's tail. */
enum { RX_IDLE = 0, RX_BODY, RX_DISCARD, RX_RNDV };

struct req_list {
    struct weft_request *head, *tail;
};

struct weft_ep {
    struct weft_tp *tp;
    int peer;       /* rank in the communicator */
    int peer_local; /* rank among this host's ranks */
    pid_t pid;
    int pidfd; /* -1: fall back to kill(pid, 0) */
    void *peer_seg;
    size_t peer_seg_len;
    struct weft_shm_ring tx; /* my queue in the peer's segment */
    struct weft_shm_ring rx; /* the peer's queue in my segment */
    /* sender */
    struct req_list sendq; /* not yet wholly in the ring */
    struct req_list rndvq; /* rendezvous announced, waiting for the peer's read */
    uint64_t rndv_posted;
    bool tx_cma; /* rendezvous allowed towards this peer */
    /* receiver */
    struct req_list recvq;
    int rx_state;
    size_t discard_left;
    uint64_t rx_addr;
    /* failure */
    bool exited;     /* the peer process is gone: buffered messages still deliver */
    bool peer_abort; /* the peer aborted: nothing delivers */
};

struct weft_tp {
    int rank, nranks, local_rank, local_nranks;
    char seg_name[SHM_NAME_MAX];
    void *seg;
    size_t seg_len;
    bool unlinked;
    uint64_t nslots;
    size_t slot_size, queue_bytes;
    bool cma;
    size_t cma_threshold;
    uint8_t key[WEFT_TRANSPORT_KEY_BYTES];
    struct weft_ep **eps; /* by local rank */
    long long next_check_ns;
    bool aborted;
    bool cma_refusal_logged;
};

/* ---- helpers ---------------------------------------------------------------------------- */

static const char *host(void)
{
    return weft_log_hostname();
}

static long long coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void list_push(struct req_list *l, struct weft_request *r)
{
    r->next = NULL;
    if (l->tail)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
}

static struct weft_request *list_pop(struct req_list *l)
{
    struct weft_request *r = l->head;
    if (r) {
        l->head = r->next;
        if (!l->head)
            l->tail = NULL;
        r->next = NULL;
    }
    return r;
}

static void list_push_front(struct req_list *l, struct weft_request *r)
{
    r->next = l->head;
    l->head = r;
    if (!l->tail)
        l->tail = r;
}

/* Completes every request of `l` with `status` and forgets them. */
static void list_fail(struct req_list *l, weft_result_t status)
{
    struct weft_request *r;
    while ((r = list_pop(l)) != NULL)
        weft_request_complete(r, status);
}

static void key_tag(const uint8_t key[WEFT_TRANSPORT_KEY_BYTES], const char *name,
                    uint8_t out[SHM_KEY_TAG_BYTES])
{
    crypto_generichash(out, SHM_KEY_TAG_BYTES, (const unsigned char *)name, strlen(name), key,
                       WEFT_TRANSPORT_KEY_BYTES);
}

static struct weft_shm_queue *seg_queue(void *seg, size_t queue_bytes, int index)
{
    return (struct weft_shm_queue *)((uint8_t *)seg + SHM_SEG_HDR_BYTES +
                                     (size_t)index * queue_bytes);
}

/* ---- setup ------------------------------------------------------------------------------ */

static bool shm_probe(char *why, size_t why_len)
{
    char name[64];
    snprintf(name, sizeof(name), "/weft-%d-probe", (int)getpid());
    int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0 && errno == EEXIST) {
        shm_unlink(name);
        fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
    }
    if (fd < 0) {
        if (why && why_len)
            snprintf(why, why_len, "shm_open(%s) failed: %s", name, strerror(errno));
        return false;
    }
    close(fd);
    shm_unlink(name);
    return true;
}

static weft_result_t create_segment(struct weft_tp *tp)
{
    int fd = shm_open(tp->seg_name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0 && errno == EEXIST) {
        /* A leftover of an earlier process that had our pid and job tag. */
        shm_unlink(tp->seg_name);
        fd = shm_open(tp->seg_name, O_CREAT | O_EXCL | O_RDWR, 0600);
    }
    if (fd < 0)
        return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "shm_open",
                                "rank %d on host %s: cannot create shared segment %s", tp->rank,
                                host(), tp->seg_name);
    weft_result_t res = WEFT_OK;
    if (ftruncate(fd, (off_t)tp->seg_len) != 0) {
        res = WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "ftruncate",
                               "rank %d on host %s: cannot size shared segment %s to %zu bytes "
                               "(is /dev/shm large enough?)",
                               tp->rank, host(), tp->seg_name, tp->seg_len);
        goto fail_unlink;
    }
    void *seg = mmap(NULL, tp->seg_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (seg == MAP_FAILED) {
        res = WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "mmap",
                               "rank %d on host %s: cannot map shared segment %s (%zu bytes)",
                               tp->rank, host(), tp->seg_name, tp->seg_len);
        goto fail_unlink;
    }
    close(fd);
    struct shm_seg_hdr *hdr = seg;
    hdr->version = SHM_VERSION;
    hdr->nqueues = (uint32_t)tp->local_nranks;
    hdr->nslots = tp->nslots;
    hdr->slot_size = tp->slot_size;
    hdr->queue_bytes = tp->queue_bytes;
    hdr->pid = (int32_t)getpid();
    hdr->local_rank = tp->local_rank;
    key_tag(tp->key, tp->seg_name, hdr->key_tag);
    __atomic_store_n(&hdr->magic, SHM_SEG_MAGIC, __ATOMIC_RELEASE);
    tp->seg = seg;
    return WEFT_OK;

fail_unlink:
    close(fd);
    shm_unlink(tp->seg_name);
    return res;
}

static weft_result_t shm_init(const struct weft_transport_params *params, struct weft_tp **out)
{
    if (!params || !out || params->local_rank < 0 || params->local_nranks < 1 ||
        params->local_rank >= params->local_nranks || !params->job_tag)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "shm: bad transport parameters (local rank %d "
                          "of %d)", params ? params->local_rank : -1,
                          params ? params->local_nranks : -1);
    int64_t nslots = weft_config_int(WEFT_CFG_SHM_SLOTS);
    size_t slot_size = weft_config_size(WEFT_CFG_SHM_SLOT_SIZE);
    if (nslots < 2 || nslots > 65536)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "WEFT_SHM_SLOTS=%lld must be in 2..65536",
                          (long long)nslots);
    if (slot_size < 2 * WEFT_SHM_MSG_HDR_BYTES || slot_size > ((size_t)1 << 30) ||
        slot_size % WEFT_SHM_CACHELINE != 0)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "WEFT_SHM_SLOT_SIZE=%zu must be a multiple of %d in %d..1G", slot_size,
                          WEFT_SHM_CACHELINE, 2 * WEFT_SHM_MSG_HDR_BYTES);

    struct weft_tp *tp = calloc(1, sizeof(*tp));
    if (!tp)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: shm context", params->rank);
    weft_result_t res = WEFT_OK;
    tp->rank = params->rank;
    tp->nranks = params->nranks;
    tp->local_rank = params->local_rank;
    tp->local_nranks = params->local_nranks;
    tp->nslots = (uint64_t)nslots;
    tp->slot_size = slot_size;
    tp->queue_bytes = weft_shm_queue_bytes(tp->nslots, slot_size);
    tp->seg_len = SHM_SEG_HDR_BYTES + (size_t)params->local_nranks * tp->queue_bytes;
    tp->cma = weft_config_bool(WEFT_CFG_SHM_CMA);
    tp->cma_threshold = weft_config_size(WEFT_CFG_SHM_CMA_THRESHOLD);
    if (tp->cma_threshold == 0)
        tp->cma_threshold = 1;
    memcpy(tp->key, params->key, sizeof(tp->key));
    int n = snprintf(tp->seg_name, sizeof(tp->seg_name), "/weft-%d-%s", (int)getpid(),
                     params->job_tag);
    if (n < 0 || (size_t)n >= sizeof(tp->seg_name) || strchr(tp->seg_name + 1, '/')) {
        res = WEFT_ERROR(WEFT_ERR_INVALID_ARG, "rank %d: job tag \"%s\" does not fit a segment "
                         "name", params->rank, params->job_tag);
        goto fail_tp;
    }
    tp->eps = calloc((size_t)params->local_nranks, sizeof(*tp->eps));
    if (!tp->eps) {
        res = WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: shm endpoint table", params->rank);
        goto fail_tp;
    }
    if (sodium_init() < 0) {
        res = WEFT_ERROR(WEFT_ERR_SYSTEM, "rank %d: sodium_init failed", params->rank);
        goto fail_eps;
    }
    WEFT_CHECK_GOTO(create_segment(tp), res, fail_eps);
    /* Yama (ptrace_scope=1) lets only ancestors read our memory unless we allow it; the
     * segment key check already proved the readers belong to this job's host ranks. */
    if (tp->cma)
        (void)prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
    WEFT_INFO(NET, "shm: rank %d (local %d of %d) segment %s, %zu bytes, %llu slots of %zu "
              "bytes per queue, CMA %s (threshold %zu)", tp->rank, tp->local_rank,
              tp->local_nranks, tp->seg_name, tp->seg_len, (unsigned long long)tp->nslots,
              tp->slot_size, tp->cma ? "on" : "off", tp->cma_threshold);
    *out = tp;
    return WEFT_OK;

fail_eps:
    free(tp->eps);
fail_tp:
    free(tp);
    return res;
}

static weft_result_t shm_address(struct weft_tp *tp, void *blob, size_t *len)
{
    if (!tp || !blob || !len || *len < sizeof(struct shm_blob))
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "shm: address buffer of %zu bytes, need %zu",
                          len ? *len : 0, sizeof(struct shm_blob));
    struct shm_blob b;
    memset(&b, 0, sizeof(b));
    b.magic = SHM_BLOB_MAGIC;
    b.version = SHM_VERSION;
    b.pid = (int32_t)getpid();
    b.local_rank = tp->local_rank;
    b.nslots = tp->nslots;
    b.slot_size = tp->slot_size;
    memcpy(b.name, tp->seg_name, sizeof(b.name));
    memcpy(blob, &b, sizeof(b));
    *len = sizeof(b);
    return WEFT_OK;
}

/* Maps the peer's segment after checking it is the one its blob announced. */
static weft_result_t map_peer(struct weft_tp *tp, int peer, const struct shm_blob *b,
                              void **seg_out)
{
    int fd = shm_open(b->name, O_RDWR, 0);
    if (fd < 0)
        return WEFT_ERROR_ERRNO(WEFT_ERR_REMOTE, "shm_open",
                                "rank %d on host %s: cannot open shared segment %s of rank %d "
                                "(pid %d)", tp->rank, host(), b->name, peer, (int)b->pid);
    weft_result_t res = WEFT_OK;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        res = WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "fstat", "rank %d on host %s: segment %s of "
                               "rank %d", tp->rank, host(), b->name, peer);
        goto out_close;
    }
    if ((size_t)st.st_size != tp->seg_len) {
        res = WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d on host %s: segment %s of rank %d has %lld "
                         "bytes, expected %zu", tp->rank, host(), b->name, peer,
                         (long long)st.st_size, tp->seg_len);
        goto out_close;
    }
    void *seg = mmap(NULL, tp->seg_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (seg == MAP_FAILED) {
        res = WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "mmap", "rank %d on host %s: cannot map "
                               "segment %s of rank %d", tp->rank, host(), b->name, peer);
        goto out_close;
    }
    const struct shm_seg_hdr *hdr = seg;
    uint8_t tag[SHM_KEY_TAG_BYTES];
    key_tag(tp->key, b->name, tag);
    if (__atomic_load_n(&hdr->magic, __ATOMIC_ACQUIRE) != SHM_SEG_MAGIC ||
        hdr->nqueues != (uint32_t)tp->local_nranks || hdr->pid != b->pid ||
        hdr->local_rank != b->local_rank || hdr->queue_bytes != tp->queue_bytes ||
        sodium_memcmp(tag, hdr->key_tag, sizeof(tag)) != 0) {
        res = WEFT_ERROR(WEFT_ERR_AUTH, "rank %d on host %s: segment %s does not belong to "
                         "rank %d of this job", tp->rank, host(), b->name, peer);
        munmap(seg, tp->seg_len);
        goto out_close;
    }
    *seg_out = seg;
out_close:
    close(fd);
    return res;
}

static weft_result_t shm_connect(struct weft_tp *tp, int peer, const void *blob, size_t len,
                                 struct weft_ep **out)
{
    struct shm_blob b;
    if (!tp || !blob || !out || len != sizeof(b))
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "shm: rank %d: address of rank %d has %zu "
                          "bytes, expected %zu", tp ? tp->rank : -1, peer, len, sizeof(b));
    memcpy(&b, blob, sizeof(b));
    b.name[sizeof(b.name) - 1] = '\0';
    if (b.magic != SHM_BLOB_MAGIC || b.version != SHM_VERSION || b.local_rank < 0 ||
        b.local_rank >= tp->local_nranks || b.pid <= 0)
        return WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d on host %s: malformed shm address from "
                          "rank %d", tp->rank, host(), peer);
    if (b.nslots != tp->nslots || b.slot_size != tp->slot_size)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "rank %d on host %s: rank %d uses %llu shm "
                          "slots of %llu bytes, this rank %llu of %zu: set WEFT_SHM_SLOTS and "
                          "WEFT_SHM_SLOT_SIZE alike on every rank", tp->rank, host(), peer,
                          (unsigned long long)b.nslots, (unsigned long long)b.slot_size,
                          (unsigned long long)tp->nslots, tp->slot_size);
    if (tp->eps[b.local_rank])
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "rank %d: rank %d (local %d) connected twice",
                          tp->rank, peer, b.local_rank);

    struct weft_ep *ep = calloc(1, sizeof(*ep));
    if (!ep)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: shm endpoint to rank %d", tp->rank,
                          peer);
    weft_result_t res = WEFT_OK;
    ep->tp = tp;
    ep->peer = peer;
    ep->peer_local = b.local_rank;
    ep->pid = b.pid;
    ep->peer_seg_len = tp->seg_len;
    WEFT_CHECK_GOTO(map_peer(tp, peer, &b, &ep->peer_seg), res, fail_ep);
    ep->pidfd = (int)syscall(SYS_pidfd_open, (pid_t)b.pid, 0);
    if (ep->pidfd < 0) {
        if (errno == ESRCH) {
            res = WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d on host %s: rank %d (pid %d) exited "
                             "before connecting", tp->rank, host(), peer, (int)b.pid);
            goto fail_map;
        }
        ep->pidfd = -1; /* old kernel: poll with kill(pid, 0) */
    }
    weft_shm_ring_attach(&ep->tx, seg_queue(ep->peer_seg, tp->queue_bytes, tp->local_rank),
                         tp->nslots, tp->slot_size, true);
    weft_shm_ring_attach(&ep->rx, seg_queue(tp->seg, tp->queue_bytes, b.local_rank),
                         tp->nslots, tp->slot_size, false);
    ep->tx_cma = tp->cma;
    tp->eps[b.local_rank] = ep;
    *out = ep;
    return WEFT_OK;

fail_map:
    munmap(ep->peer_seg, ep->peer_seg_len);
fail_ep:
    free(ep);
    return res;
}

static weft_result_t shm_connected(struct weft_tp *tp)
{
    if (tp && !tp->unlinked) {
        /* Every peer mapped it; from now on a crash leaves nothing behind in /dev/shm. */
        if (shm_unlink(tp->seg_name) != 0 && errno != ENOENT)
            return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "shm_unlink", "rank %d on host %s: "
                                    "segment %s", tp->rank, host(), tp->seg_name);
        tp->unlinked = true;
    }
    return WEFT_OK;
}

/* ---- failure ---------------------------------------------------------------------------- */

static bool ep_has_requests(const struct weft_ep *ep)
{
    return ep->sendq.head || ep->rndvq.head || ep->recvq.head;
}

/* Fails what can no longer complete. An exited peer's buffered messages were delivered by
 * the receive pass before this runs; an aborted peer delivers nothing. */
static void ep_fail_pending(struct weft_ep *ep)
{
    if (!ep_has_requests(ep))
        return;
    weft_result_t code;
    if (ep->peer_abort)
        code = WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d aborted (pid %d on host %s), seen by rank %d",
                          ep->peer, (int)ep->pid, host(), ep->tp->rank);
    else
        code = WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d (pid %d) on host %s exited, seen by rank %d",
                          ep->peer, (int)ep->pid, host(), ep->tp->rank);
    list_fail(&ep->sendq, code);
    list_fail(&ep->rndvq, code);
    list_fail(&ep->recvq, code);
    ep->rx_state = RX_IDLE;
}

static bool pid_gone(const struct weft_ep *ep)
{
    return kill(ep->pid, 0) != 0 && errno == ESRCH;
}

/* Polls every peer's pidfd at once, at most every few milliseconds. */
static void check_deaths(struct weft_tp *tp)
{
    long long now = coarse_ns();
    if (now < tp->next_check_ns)
        return;
    tp->next_check_ns = now + SHM_DEATH_CHECK_NS;
    struct pollfd fds[64];
    struct weft_ep *owners[64];
    int n = 0;
    for (int i = 0; i < tp->local_nranks; i++) {
        struct weft_ep *ep = tp->eps[i];
        if (!ep || ep->exited || ep->pid == getpid())
            continue;
        if (ep->pidfd < 0 || n == 64) {
            ep->exited = pid_gone(ep);
            continue;
        }
        fds[n].fd = ep->pidfd;
        fds[n].events = POLLIN;
        fds[n].revents = 0;
        owners[n++] = ep;
    }
    if (n > 0 && poll(fds, (nfds_t)n, 0) > 0) {
        for (int i = 0; i < n; i++)
            if (fds[i].revents & (POLLIN | POLLHUP | POLLERR))
                owners[i]->exited = true;
    }
}

/* ---- sender ----------------------------------------------------------------------------- */

static void tx_progress(struct weft_ep *ep, bool *progressed)
{
    struct weft_tp *tp = ep->tp;
    struct weft_shm_queue *q = ep->tx.q;

    if (ep->rndvq.head) {
        uint64_t done = atomic_load_explicit(&q->rndv_done, memory_order_acquire);
        while (ep->rndvq.head && ep->rndvq.head->priv[1] <= done) {
            weft_request_complete(list_pop(&ep->rndvq), WEFT_OK);
            *progressed = true;
        }
        if (ep->rndvq.head &&
            atomic_load_explicit(&q->cma, memory_order_acquire) == WEFT_SHM_CMA_REFUSED) {
            /* The peer cannot read us: it waits for this payload right behind the
             * announcement (nothing was queued after it), so stream it from the start. */
            struct weft_request *r = list_pop(&ep->rndvq);
            r->priv[0] = TX_BODY;
            r->offset = 0;
            list_push_front(&ep->sendq, r);
            ep->tx_cma = false;
        }
    }

    struct weft_request *r;
    while ((r = ep->sendq.head) != NULL) {
        /* Until the peer proved it can read us, nothing may follow an announcement: a
         * refusal must find the payload's stream next in the ring. */
        if (ep->rndvq.head &&
            atomic_load_explicit(&q->cma, memory_order_relaxed) != WEFT_SHM_CMA_OK)
            return;
        if (r->priv[0] == TX_HEADER) {
            uint8_t *slot = weft_shm_ring_acquire(&ep->tx);
            if (!slot)
                return;
            struct weft_shm_msg_hdr *h = (struct weft_shm_msg_hdr *)slot;
            h->tag = r->tag;
            h->len = r->len;
            h->reserved = 0;
            if (ep->tx_cma && r->len >= tp->cma_threshold &&
                atomic_load_explicit(&q->cma, memory_order_relaxed) != WEFT_SHM_CMA_REFUSED) {
                h->kind = WEFT_SHM_MSG_RNDV;
                h->addr = (uint64_t)(uintptr_t)r->buf;
                h->seq = ++ep->rndv_posted;
                r->priv[0] = TX_RNDV_WAIT;
                r->priv[1] = h->seq;
                weft_shm_ring_publish(&ep->tx);
                list_push(&ep->rndvq, list_pop(&ep->sendq));
                *progressed = true;
                continue;
            }
            h->kind = WEFT_SHM_MSG_EAGER;
            h->addr = 0;
            h->seq = 0;
            size_t n = r->len < tp->slot_size - WEFT_SHM_MSG_HDR_BYTES
                           ? r->len
                           : tp->slot_size - WEFT_SHM_MSG_HDR_BYTES;
            if (n)
                memcpy(slot + WEFT_SHM_MSG_HDR_BYTES, r->buf, n);
            weft_shm_ring_publish(&ep->tx);
            r->offset = n;
            r->priv[0] = TX_BODY;
            *progressed = true;
        }
        while (r->offset < r->len) {
            uint8_t *slot = weft_shm_ring_acquire(&ep->tx);
            if (!slot)
                return;
            size_t n = r->len - r->offset < tp->slot_size ? r->len - r->offset : tp->slot_size;
            memcpy(slot, (const uint8_t *)r->buf + r->offset, n);
            weft_shm_ring_publish(&ep->tx);
            r->offset += n;
            *progressed = true;
        }
        weft_request_complete(list_pop(&ep->sendq), WEFT_OK);
        *progressed = true;
    }
}

/* ---- receiver --------------------------------------------------------------------------- */

static void rndv_ack(struct weft_ep *ep)
{
    atomic_fetch_add_explicit(&ep->rx.q->rndv_done, 1, memory_order_release);
}

/* Checks the header at the ring's tail against the oldest posted receive and starts it. */
static void rx_start(struct weft_ep *ep, const uint8_t *slot, struct weft_request *r)
{
    struct weft_tp *tp = ep->tp;
    struct weft_shm_msg_hdr h;
    memcpy(&h, slot, sizeof(h));
    weft_result_t err = WEFT_OK;
    if (h.tag != r->tag)
        err = WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d on host %s got tag %llu from rank %d, "
                         "expected %llu: ranks called operations in different orders", tp->rank,
                         host(), (unsigned long long)h.tag, ep->peer,
                         (unsigned long long)r->tag);
    else if (h.len != r->len)
        err = WEFT_ERROR(WEFT_ERR_INVALID_ARG, "rank %d on host %s got %llu bytes from rank %d "
                         "(tag %llu) for a receive of %zu bytes", tp->rank, host(),
                         (unsigned long long)h.len, ep->peer, (unsigned long long)h.tag, r->len);
    size_t inline_max = tp->slot_size - WEFT_SHM_MSG_HDR_BYTES;
    if (err != WEFT_OK) {
        /* Drop the message so the pair stays in step for whatever comes next. */
        weft_request_complete(list_pop(&ep->recvq), err);
        if (h.kind == WEFT_SHM_MSG_RNDV) {
            rndv_ack(ep);
        } else if (h.len > inline_max) {
            ep->discard_left = h.len - inline_max;
            ep->rx_state = RX_DISCARD;
        }
        weft_shm_ring_release(&ep->rx);
        return;
    }
    if (h.kind == WEFT_SHM_MSG_RNDV) {
        ep->rx_addr = h.addr;
        r->offset = 0;
        ep->rx_state = RX_RNDV;
        weft_shm_ring_release(&ep->rx);
        return;
    }
    size_t n = h.len < inline_max ? h.len : inline_max;
    if (n)
        memcpy(r->buf, slot + WEFT_SHM_MSG_HDR_BYTES, n);
    weft_shm_ring_release(&ep->rx);
    r->offset = n;
    if (r->offset == r->len)
        weft_request_complete(list_pop(&ep->recvq), WEFT_OK);
    else
        ep->rx_state = RX_BODY;
}

/* One piece of a rendezvous read. Returns false when the ring must wait (streaming). */
static bool rx_rndv(struct weft_ep *ep, struct weft_request *r)
{
    struct weft_tp *tp = ep->tp;
    size_t n = r->len - r->offset < SHM_CMA_PIECE ? r->len - r->offset : SHM_CMA_PIECE;
    struct iovec local = { (uint8_t *)r->buf + r->offset, n };
    struct iovec remote = { (void *)(uintptr_t)(ep->rx_addr + r->offset), n };
    ssize_t got = process_vm_readv(ep->pid, &local, 1, &remote, 1, 0);
    if (got < 0) {
        int err = errno;
        uint32_t state = atomic_load_explicit(&ep->rx.q->cma, memory_order_relaxed);
        if ((err == EPERM || err == ENOSYS) && state == WEFT_SHM_CMA_UNKNOWN && r->offset == 0) {
            if (!tp->cma_refusal_logged) {
                WEFT_INFO(NET, "shm: rank %d on host %s cannot read rank %d (pid %d) with "
                          "process_vm_readv (%s); large messages from it are copied through "
                          "the queue", tp->rank, host(), ep->peer, (int)ep->pid, strerror(err));
                tp->cma_refusal_logged = true;
            }
            ep->rx_state = RX_BODY;
            atomic_store_explicit(&ep->rx.q->cma, WEFT_SHM_CMA_REFUSED, memory_order_release);
            return true;
        }
        if (err == ESRCH || pid_gone(ep)) {
            ep->exited = true;
            ep_fail_pending(ep);
            return false;
        }
        weft_result_t code = WEFT_ERROR_ERR(WEFT_ERR_SYSTEM, err, "process_vm_readv",
                                            "rank %d on host %s reading %zu bytes from rank %d "
                                            "(pid %d)", tp->rank, host(), n, ep->peer,
                                            (int)ep->pid);
        weft_request_complete(list_pop(&ep->recvq), code);
        /* The pair cannot stay in step: make the sender fail rather than wait. */
        atomic_store_explicit(&ep->rx.q->rx_aborted, 1, memory_order_release);
        ep->rx_state = RX_IDLE;
        return false;
    }
    r->offset += (size_t)got;
    if (r->offset < r->len)
        return false; /* the next piece on the next pass keeps progress responsive */
    if (atomic_load_explicit(&ep->rx.q->cma, memory_order_relaxed) == WEFT_SHM_CMA_UNKNOWN)
        atomic_store_explicit(&ep->rx.q->cma, WEFT_SHM_CMA_OK, memory_order_relaxed);
    rndv_ack(ep);
    ep->rx_state = RX_IDLE;
    weft_request_complete(list_pop(&ep->recvq), WEFT_OK);
    return true;
}

static void rx_progress(struct weft_ep *ep, bool *progressed)
{
    struct weft_tp *tp = ep->tp;
    for (;;) {
        struct weft_request *r = ep->recvq.head;
        if (ep->rx_state == RX_RNDV) {
            *progressed = true;
            if (!rx_rndv(ep, r))
                return;
            continue;
        }
        if (ep->rx_state == RX_IDLE && !r)
            return; /* unmatched messages wait in the ring: it is the unexpected queue */
        const uint8_t *slot = weft_shm_ring_peek(&ep->rx);
        if (!slot)
            return;
        *progressed = true;
        if (ep->rx_state == RX_IDLE) {
            rx_start(ep, slot, r);
        } else if (ep->rx_state == RX_DISCARD) {
            size_t n = ep->discard_left < tp->slot_size ? ep->discard_left : tp->slot_size;
            weft_shm_ring_release(&ep->rx);
            ep->discard_left -= n;
            if (ep->discard_left == 0)
                ep->rx_state = RX_IDLE;
        } else { /* RX_BODY */
            size_t n = r->len - r->offset < tp->slot_size ? r->len - r->offset : tp->slot_size;
            memcpy((uint8_t *)r->buf + r->offset, slot, n);
            weft_shm_ring_release(&ep->rx);
            r->offset += n;
            if (r->offset == r->len) {
                ep->rx_state = RX_IDLE;
                weft_request_complete(list_pop(&ep->recvq), WEFT_OK);
            }
        }
    }
}

/* ---- operations ------------------------------------------------------------------------- */

static bool peer_aborted(struct weft_ep *ep)
{
    return atomic_load_explicit(&ep->rx.q->tx_aborted, memory_order_relaxed) ||
           atomic_load_explicit(&ep->tx.q->rx_aborted, memory_order_relaxed);
}

static void ep_progress(struct weft_ep *ep, bool *progressed)
{
    if (!ep->peer_abort && peer_aborted(ep)) {
        atomic_thread_fence(memory_order_acquire);
        ep->peer_abort = true;
    }
    if (ep->peer_abort) {
        if (ep_has_requests(ep)) {
            ep_fail_pending(ep);
            *progressed = true;
        }
        return;
    }
    if (ep->sendq.head || ep->rndvq.head)
        tx_progress(ep, progressed);
    if (ep->recvq.head || ep->rx_state != RX_IDLE)
        rx_progress(ep, progressed);
    if (ep->exited && ep_has_requests(ep)) {
        /* Sends cannot finish; receives the ring could satisfy already did above. */
        ep_fail_pending(ep);
        *progressed = true;
    }
}

static weft_result_t shm_progress(struct weft_tp *tp, bool *progressed)
{
    bool any = false;
    if (tp && !tp->aborted) {
        check_deaths(tp);
        for (int i = 0; i < tp->local_nranks; i++)
            if (tp->eps[i])
                ep_progress(tp->eps[i], &any);
    }
    if (progressed)
        *progressed = any;
    return WEFT_OK;
}

static weft_result_t post_check(struct weft_ep *ep, const void *buf, size_t len,
                                struct weft_request *req, const char *what)
{
    if (!ep || !req || (!buf && len))
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "shm %s: NULL %s", what,
                          !ep ? "endpoint" : !req ? "request" : "buffer");
    if (ep->tp->aborted)
        return WEFT_ERROR(WEFT_ERR_ABORTED, "rank %d: shm %s to rank %d after abort",
                          ep->tp->rank, what, ep->peer);
    if (ep->peer_abort || peer_aborted(ep))
        return WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d aborted (pid %d on host %s), seen by rank "
                          "%d posting a %s", ep->peer, (int)ep->pid, host(), ep->tp->rank, what);
    return WEFT_OK;
}

static void req_fill(struct weft_request *req, const void *buf, size_t len, uint64_t tag,
                     int peer, int is_send)
{
    req->buf = (void *)buf;
    req->len = len;
    req->tag = tag;
    req->peer = peer;
    req->is_send = is_send;
    req->status = WEFT_OK;
    req->next = NULL;
    req->offset = 0;
    memset(req->priv, 0, sizeof(req->priv));
    req->done = 0;
}

static weft_result_t shm_isend(struct weft_ep *ep, const void *buf, size_t len, uint64_t tag,
                               struct weft_request *req)
{
    WEFT_CHECK(post_check(ep, buf, len, req, "send"));
    if (ep->exited)
        return WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d (pid %d) on host %s exited, seen by rank "
                          "%d posting a send", ep->peer, (int)ep->pid, host(), ep->tp->rank);
    req_fill(req, buf, len, tag, ep->peer, 1);
    list_push(&ep->sendq, req);
    bool progressed = false;
    tx_progress(ep, &progressed); /* small messages leave at once */
    return WEFT_OK;
}

static weft_result_t shm_irecv(struct weft_ep *ep, void *buf, size_t len, uint64_t tag,
                               struct weft_request *req)
{
    WEFT_CHECK(post_check(ep, buf, len, req, "receive"));
    req_fill(req, buf, len, tag, ep->peer, 0);
    list_push(&ep->recvq, req);
    return WEFT_OK;
}

static void shm_abort(struct weft_tp *tp)
{
    if (!tp || tp->aborted)
        return;
    tp->aborted = true;
    for (int i = 0; i < tp->local_nranks; i++) {
        struct weft_ep *ep = tp->eps[i];
        if (!ep)
            continue;
        list_fail(&ep->sendq, WEFT_ERR_ABORTED);
        list_fail(&ep->rndvq, WEFT_ERR_ABORTED);
        list_fail(&ep->recvq, WEFT_ERR_ABORTED);
        ep->rx_state = RX_IDLE;
        atomic_store_explicit(&ep->tx.q->tx_aborted, 1, memory_order_release);
        atomic_store_explicit(&ep->rx.q->rx_aborted, 1, memory_order_release);
    }
}

static void shm_fini(struct weft_tp *tp)
{
    if (!tp)
        return;
    for (int i = 0; i < tp->local_nranks; i++) {
        struct weft_ep *ep = tp->eps[i];
        if (!ep)
            continue;
        if (ep->pidfd >= 0)
            close(ep->pidfd);
        munmap(ep->peer_seg, ep->peer_seg_len);
        free(ep);
    }
    if (!tp->unlinked)
        shm_unlink(tp->seg_name);
    munmap(tp->seg, tp->seg_len);
    free(tp->eps);
    sodium_memzero(tp->key, sizeof(tp->key));
    free(tp);
}

const struct weft_transport_ops weft_transport_shm = {
    .size = sizeof(struct weft_transport_ops),
    .version = WEFT_TRANSPORT_OPS_VERSION,
    .name = "shm",
    .probe = shm_probe,
    .init = shm_init,
    .address = shm_address,
    .connect = shm_connect,
    .connected = shm_connected,
    .isend = shm_isend,
    .irecv = shm_irecv,
    .progress = shm_progress,
    .abort = shm_abort,
    .reg = NULL,
    .dereg = NULL,
    .fini = shm_fini,
};
