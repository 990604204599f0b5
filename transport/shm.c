/*
 * shm.c - the shared-memory transport for ranks on one host: segments, connecting, peer liveness
 * and the ops table. The data paths (rings and CMA rendezvous) are in shm_data.c.
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
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "transport/shm_internal.h"

#define SHM_SEG_MAGIC 0x5745465453484d31ULL /* "WEFTSHM1" */
#define SHM_BLOB_MAGIC 0x57534842u
#define SHM_VERSION 1
#define SHM_SEG_HDR_BYTES 4096
#define SHM_KEY_TAG_BYTES 32
#define SHM_DEATH_CHECK_NS 2000000LL
/* Progress calls between looks at the clock for the death check: clock reads were a tenth
 * of the samples of an 8-byte broadcast loop (perf; the time per call then moved within
 * noise). A spinning or yielding waiter makes this many calls in microseconds; one that naps
 * 1 ms between calls (the timeout's grace) sees a death up to 32 ms later. */
#define SHM_DEATH_CLOCK_EVERY 32

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
    char name[WEFT_SHM_NAME_MAX];
};

/* ---- helpers ---------------------------------------------------------------------------- */

static long long coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
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
                                weft_log_hostname(), tp->seg_name);
    weft_result_t res = WEFT_OK;
    if (ftruncate(fd, (off_t)tp->seg_len) != 0) {
        res = WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "ftruncate",
                               "rank %d on host %s: cannot size shared segment %s to %zu bytes "
                               "(is /dev/shm large enough?)",
                               tp->rank, weft_log_hostname(), tp->seg_name, tp->seg_len);
        goto fail_unlink;
    }
    void *seg = mmap(NULL, tp->seg_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (seg == MAP_FAILED) {
        res = WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "mmap",
                               "rank %d on host %s: cannot map shared segment %s (%zu bytes)",
                               tp->rank, weft_log_hostname(), tp->seg_name, tp->seg_len);
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
    if (slot_size < 2 * WEFT_SHM_CACHELINE || slot_size > ((size_t)1 << 30) ||
        slot_size % WEFT_SHM_CACHELINE != 0)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "WEFT_SHM_SLOT_SIZE=%zu must be a multiple of %d in %d..1G", slot_size,
                          WEFT_SHM_CACHELINE, 2 * WEFT_SHM_CACHELINE);

    struct weft_tp *tp = calloc(1, sizeof(*tp));
    if (!tp)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: shm context", params->rank);
    weft_result_t res = WEFT_OK;
    tp->rank = params->rank;
    tp->nranks = params->nranks;
    tp->local_rank = params->local_rank;
    tp->local_nranks = params->local_nranks;
    tp->culprit = WEFT_CULPRIT_NONE;
    tp->nslots = (uint64_t)nslots;
    tp->slot_size = slot_size;
    /* a span never takes more than half the ring, so the two sides' copies overlap */
    tp->span_slots = WEFT_SHM_SPAN_BYTES / slot_size;
    if (tp->span_slots > tp->nslots / 2)
        tp->span_slots = tp->nslots / 2;
    if (tp->span_slots == 0)
        tp->span_slots = 1;
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
                                "(pid %d)", tp->rank, weft_log_hostname(), b->name, peer,
                                (int)b->pid);
    weft_result_t res = WEFT_OK;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        res = WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "fstat", "rank %d on host %s: segment %s of "
                               "rank %d", tp->rank, weft_log_hostname(), b->name, peer);
        goto out_close;
    }
    if ((size_t)st.st_size != tp->seg_len) {
        res = WEFT_ERROR(WEFT_ERR_REMOTE, "rank %d on host %s: segment %s of rank %d has %lld "
                         "bytes, expected %zu", tp->rank, weft_log_hostname(), b->name, peer,
                         (long long)st.st_size, tp->seg_len);
        goto out_close;
    }
    void *seg = mmap(NULL, tp->seg_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (seg == MAP_FAILED) {
        res = WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "mmap", "rank %d on host %s: cannot map "
                               "segment %s of rank %d", tp->rank, weft_log_hostname(), b->name,
                               peer);
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
                         "rank %d of this job", tp->rank, weft_log_hostname(), b->name, peer);
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
                          "rank %d", tp->rank, weft_log_hostname(), peer);
    if (b.nslots != tp->nslots || b.slot_size != tp->slot_size)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "rank %d on host %s: rank %d uses %llu shm "
                          "slots of %llu bytes, this rank %llu of %zu: set WEFT_SHM_SLOTS and "
                          "WEFT_SHM_SLOT_SIZE alike on every rank", tp->rank,
                          weft_log_hostname(), peer, (unsigned long long)b.nslots,
                          (unsigned long long)b.slot_size, (unsigned long long)tp->nslots,
                          tp->slot_size);
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
                             "before connecting", tp->rank, weft_log_hostname(), peer, (int)b.pid);
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
                                    "segment %s", tp->rank, weft_log_hostname(), tp->seg_name);
        tp->unlinked = true;
    }
    return WEFT_OK;
}

/* ---- liveness --------------------------------------------------------------------------- */

bool weft_shm_pid_gone(const struct weft_ep *ep)
{
    return kill(ep->pid, 0) != 0 && errno == ESRCH;
}

/* Polls every peer's pidfd at once, at most every few milliseconds. */
static void check_deaths(struct weft_tp *tp)
{
    if (++tp->polls % SHM_DEATH_CLOCK_EVERY != 0)
        return;
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
            ep->exited = weft_shm_pid_gone(ep);
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

/* ---- operations ------------------------------------------------------------------------- */

static weft_result_t shm_progress(struct weft_tp *tp, bool *progressed)
{
    bool any = false;
    if (tp && !tp->aborted) {
        check_deaths(tp);
        for (int i = 0; i < tp->local_nranks; i++)
            if (tp->eps[i])
                weft_shm_ep_progress(tp->eps[i], &any);
    }
    if (progressed)
        *progressed = any;
    return WEFT_OK;
}

static void shm_abort(struct weft_tp *tp, int culprit)
{
    if (!tp || tp->aborted)
        return;
    tp->aborted = true;
    const uint32_t notice = WEFT_SHM_ABORT_NOTICE(culprit);
    for (int i = 0; i < tp->local_nranks; i++) {
        struct weft_ep *ep = tp->eps[i];
        if (!ep)
            continue;
        weft_shm_ep_flush(ep, WEFT_ERR_ABORTED);
        atomic_store_explicit(&ep->tx.q->tx_aborted, notice, memory_order_release);
        atomic_store_explicit(&ep->rx.q->rx_aborted, notice, memory_order_release);
    }
}

static int shm_culprit(const struct weft_tp *tp)
{
    return tp ? tp->culprit : WEFT_CULPRIT_NONE;
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
    .isend = weft_shm_isend,
    .irecv = weft_shm_irecv,
    .progress = shm_progress,
    .abort = shm_abort,
    .culprit = shm_culprit,
    .reg = NULL,
    .dereg = NULL,
    .fini = shm_fini,
};
