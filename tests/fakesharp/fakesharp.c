/*
 * fakesharp.c - a test double of libsharp_coll (built as libsharp_coll.so) that aggregates
 * over shared memory the way a SHARP switch would, so that Weft's offload path runs in CI.
 *
 * A group is one POSIX shm segment named by its first rank and broadcast through the caller's
 * out-of-band functions. Each operation, every rank posts its contribution in its own slot;
 * the last to arrive checks that the posts agree, reduces the slots in rank order into the
 * result, and bumps the generation that the others spin on; all copy the result out. Buffers
 * must lie inside a registration made with sharp_coll_reg_mr, as on a real HCA.
 *
 * Settings (environment):
 *   FAKESHARP_STATS=FILE      at sharp_coll_comm_destroy, each rank appends
 *                             "fakesharp rank R size N allreduce A bytes B barrier C reg M"
 *   FAKESHARP_REFUSE=STEP     init, reg or comm: that call fails (SHARP_COLL_ENOT_SUPP),
 *                             after its out-of-band exchange...
 *   FAKESHARP_REFUSE_RANK=R   ...on rank R only (default: every rank)
 * It supports the dtypes and ops of a switch of the first generations (caps below); others
 * fail with SHARP_COLL_ENOT_SUPP, so a caller that ignores the capabilities fails.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "collectives/sharp_api.h"

#define EXPORT __attribute__((visibility("default")))

#define FS_SLOT ((size_t)4 << 20) /* the largest contribution, in bytes */
#define FS_MAX_RANKS 64
#define FS_NAME 64
#define FS_MR_MAGIC 0x66616b65736d72ull
#define FS_DTYPES                                                                            \
    ((1u << SHARP_DTYPE_UNSIGNED) | (1u << SHARP_DTYPE_INT) |                                \
     (1u << SHARP_DTYPE_UNSIGNED_LONG) | (1u << SHARP_DTYPE_LONG) |                          \
     (1u << SHARP_DTYPE_FLOAT) | (1u << SHARP_DTYPE_DOUBLE) | (1u << SHARP_DTYPE_FLOAT_SHORT) | \
     (1u << SHARP_DTYPE_BFLOAT16))
#define FS_OPS ((1u << SHARP_OP_MAX) | (1u << SHARP_OP_MIN) | (1u << SHARP_OP_SUM))

enum { KIND_BARRIER = 1, KIND_ALLREDUCE };

struct fs_post {
    uint64_t length; /* elements */
    int32_t kind, dtype, op, pad;
};

struct fs_hdr {
    _Atomic uint32_t arrived;
    _Atomic uint32_t gen;
    int32_t status; /* of the operation that bumped gen */
    uint32_t size;
    struct fs_post post[FS_MAX_RANKS];
};

#define FS_HDR_BYTES ((sizeof(struct fs_hdr) + 4095) & ~(size_t)4095)

struct sharp_coll_context {
    int rank, size;
    struct sharp_coll_out_of_band_colls oob;
    int timeout_ms;
    unsigned long long regs;
};

struct sharp_coll_comm {
    struct sharp_coll_context *ctx;
    int rank, size;
    struct fs_hdr *hdr;
    size_t seg_len;
    unsigned long long allreduces, bytes, barriers;
};

struct fs_mr {
    uint64_t magic;
    char *buf;
    size_t size;
};

EXPORT const struct sharp_coll_config sharp_coll_default_config = {
    .ib_dev_list = "fake_0:1", .user_progress_num_polls = 128, .coll_timeout = -1};

static bool refused(const char *step, int rank)
{
    const char *what = getenv("FAKESHARP_REFUSE"), *who = getenv("FAKESHARP_REFUSE_RANK");
    return what && !strcmp(what, step) && (!who || !*who || atoi(who) == rank);
}

EXPORT const char *sharp_coll_strerror(int error)
{
    switch (error) {
    case SHARP_COLL_SUCCESS: return "Success";
    case SHARP_COLL_ENOT_SUPP: return "Operation not supported (fake SHARP)";
    case SHARP_COLL_ENOMEM: return "No memory (fake SHARP)";
    case SHARP_COLL_EINVAL: return "Invalid value (fake SHARP)";
    case SHARP_COLL_EOOB: return "Out-of-band collective error (fake SHARP)";
    default: return "Error (fake SHARP)";
    }
}

EXPORT int sharp_coll_init(struct sharp_coll_init_spec *spec, struct sharp_coll_context **out)
{
    if (!spec || !out || spec->world_size < 1 || spec->world_size > FS_MAX_RANKS ||
        spec->world_rank < 0 || spec->world_rank >= spec->world_size || !spec->oob_colls.bcast ||
        !spec->oob_colls.barrier || !spec->oob_colls.gather)
        return SHARP_COLL_EINVAL;
    /* The out-of-band functions must work: rank 0 gathers every rank's number and
     * broadcasts whether they are 0..n-1 in order. */
    int me = spec->world_rank, all[FS_MAX_RANKS], ok = 1;
    if (spec->oob_colls.gather(spec->oob_ctx, 0, &me, all, sizeof(int)) != 0)
        return SHARP_COLL_EOOB;
    if (spec->world_rank == 0)
        for (int q = 0; q < spec->world_size; q++)
            ok &= all[q] == q;
    if (spec->oob_colls.bcast(spec->oob_ctx, &ok, sizeof(ok), 0) != 0)
        return SHARP_COLL_EOOB;
    if (!ok)
        return SHARP_COLL_EOOB;
    /* A refusal comes after the out-of-band exchange, as from a real library, whose
     * collective steps every rank goes through before one of them learns it has no tree. */
    if (refused("init", spec->world_rank))
        return SHARP_COLL_ENOT_SUPP;
    struct sharp_coll_context *c = calloc(1, sizeof(*c));
    if (!c)
        return SHARP_COLL_ENOMEM;
    c->rank = spec->world_rank;
    c->size = spec->world_size;
    c->oob = spec->oob_colls;
    c->timeout_ms = spec->config.coll_timeout;
    *out = c;
    return SHARP_COLL_SUCCESS;
}

EXPORT int sharp_coll_finalize(struct sharp_coll_context *c)
{
    free(c);
    return SHARP_COLL_SUCCESS;
}

EXPORT int sharp_coll_caps_query(struct sharp_coll_context *c, struct sharp_coll_caps *caps)
{
    (void)c;
    memset(caps, 0, sizeof(*caps));
    caps->sharp_pkt_version = 1;
    caps->support_mask.dtypes = FS_DTYPES;
    caps->support_mask.reduce_ops = FS_OPS;
    return SHARP_COLL_SUCCESS;
}

EXPORT int sharp_coll_reg_mr(struct sharp_coll_context *c, void *buf, size_t size, void **mr)
{
    if (!c || !buf || !mr)
        return SHARP_COLL_EINVAL;
    if (refused("reg", c->rank))
        return SHARP_COLL_ENOT_SUPP;
    struct fs_mr *m = malloc(sizeof(*m));
    if (!m)
        return SHARP_COLL_ENOMEM;
    *m = (struct fs_mr){FS_MR_MAGIC, buf, size};
    c->regs++;
    *mr = m;
    return SHARP_COLL_SUCCESS;
}

EXPORT int sharp_coll_dereg_mr(struct sharp_coll_context *c, void *mr)
{
    struct fs_mr *m = mr;
    if (!c || !m || m->magic != FS_MR_MAGIC)
        return SHARP_COLL_EINVAL;
    m->magic = 0;
    free(m);
    return SHARP_COLL_SUCCESS;
}

EXPORT int sharp_coll_comm_init(struct sharp_coll_context *c,
                                struct sharp_coll_comm_init_spec *spec,
                                struct sharp_coll_comm **out)
{
    static unsigned counter;
    if (!c || !spec || !out || spec->size != c->size || spec->rank < 0 ||
        spec->rank >= spec->size)
        return SHARP_COLL_EINVAL;
    struct sharp_coll_comm *g = calloc(1, sizeof(*g));
    if (!g)
        return SHARP_COLL_ENOMEM;
    g->ctx = c;
    g->rank = spec->rank;
    g->size = spec->size;
    g->seg_len = FS_HDR_BYTES + (size_t)(g->size + 1) * FS_SLOT;
    char name[FS_NAME] = "";
    int fd = -1, rc = SHARP_COLL_SUCCESS;
    if (g->rank == 0) {
        snprintf(name, sizeof(name), "/weft-fakesharp-%d-%u", (int)getpid(), counter++);
        fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd < 0 || ftruncate(fd, (off_t)g->seg_len) != 0)
            name[0] = '\0'; /* tells the others */
    }
    if (c->oob.bcast(spec->oob_ctx, name, sizeof(name), 0) != 0) {
        rc = SHARP_COLL_EOOB;
        goto fail;
    }
    if (!name[0]) {
        rc = SHARP_COLL_ERROR;
        goto fail;
    }
    if (g->rank != 0)
        fd = shm_open(name, O_RDWR, 0);
    void *p = fd >= 0 ? mmap(NULL, g->seg_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                      : MAP_FAILED;
    int mapped = p != MAP_FAILED;
    if (mapped) {
        g->hdr = p;
        if (g->rank == 0)
            g->hdr->size = (uint32_t)g->size;
    }
    /* Everyone has it open (or failed to): the name can go, so nothing outlives the job. */
    if (c->oob.barrier(spec->oob_ctx) != 0)
        rc = SHARP_COLL_EOOB;
    if (g->rank == 0)
        shm_unlink(name);
    if (fd >= 0)
        close(fd);
    fd = -1;
    if (!mapped && rc == SHARP_COLL_SUCCESS)
        rc = SHARP_COLL_ERROR;
    if (rc == SHARP_COLL_SUCCESS && refused("comm", spec->rank))
        rc = SHARP_COLL_ENOT_SUPP; /* after the collective part, see sharp_coll_init */
    if (rc != SHARP_COLL_SUCCESS)
        goto fail;
    *out = g;
    return SHARP_COLL_SUCCESS;
fail:
    if (fd >= 0)
        close(fd);
    if (g->rank == 0 && name[0])
        shm_unlink(name);
    if (g->hdr)
        munmap(g->hdr, g->seg_len);
    free(g);
    return rc;
}

EXPORT int sharp_coll_comm_destroy(struct sharp_coll_comm *g)
{
    if (!g)
        return SHARP_COLL_EINVAL;
    const char *path = getenv("FAKESHARP_STATS");
    if (path && *path) {
        char line[256];
        int len = snprintf(line, sizeof(line),
                           "fakesharp rank %d size %d allreduce %llu bytes %llu barrier %llu "
                           "reg %llu\n",
                           g->rank, g->size, g->allreduces, g->bytes, g->barriers, g->ctx->regs);
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            ssize_t w = write(fd, line, (size_t)len); /* one write: lines do not interleave */
            (void)w;
            close(fd);
        }
    }
    munmap(g->hdr, g->seg_len);
    free(g);
    return SHARP_COLL_SUCCESS;
}

/* ---- the switch ------------------------------------------------------------------------- */

static size_t dtype_size(int dtype)
{
    switch (dtype) {
    case SHARP_DTYPE_UNSIGNED:
    case SHARP_DTYPE_INT:
    case SHARP_DTYPE_FLOAT: return 4;
    case SHARP_DTYPE_UNSIGNED_LONG:
    case SHARP_DTYPE_LONG:
    case SHARP_DTYPE_DOUBLE: return 8;
    case SHARP_DTYPE_UNSIGNED_SHORT:
    case SHARP_DTYPE_SHORT:
    case SHARP_DTYPE_FLOAT_SHORT:
    case SHARP_DTYPE_BFLOAT16: return 2;
    case SHARP_DTYPE_UINT8:
    case SHARP_DTYPE_INT8: return 1;
    default: return 0;
    }
}

static float half_to_float(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 1023;
    float f;
    if (exp == 0) {
        f = (float)man / 16777216.0f; /* subnormal: man * 2^-24 */
        return sign ? -f : f;
    }
    uint32_t bits = sign | (exp == 31 ? 0x7f800000u | man << 13 : (exp + 112) << 23 | man << 13);
    memcpy(&f, &bits, sizeof(f));
    return f;
}

static uint16_t float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof(x));
    const uint16_t sign = (uint16_t)(x >> 16 & 0x8000);
    const uint32_t abs = x & 0x7fffffffu;
    if (abs >= 0x7f800000u) /* inf, nan */
        return sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0);
    if (abs >= 0x477ff000u) /* rounds to beyond 65504 */
        return sign | 0x7c00;
    if (abs < 0x38800000u) { /* half subnormal or zero: scale by 2^24, round to even */
        float a;
        memcpy(&a, &abs, sizeof(a));
        float v = a * 16777216.0f;
        uint32_t n = (uint32_t)v;
        float rem = v - (float)n;
        if (rem > 0.5f || (rem == 0.5f && (n & 1)))
            n++;
        return sign | (uint16_t)n;
    }
    uint32_t m = abs - (112u << 23); /* rebias */
    uint32_t r = m + 0xfff + (m >> 13 & 1);
    return sign | (uint16_t)(r >> 13);
}

static float bf16_to_float(uint16_t b)
{
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

static uint16_t float_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof(x));
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)(x >> 16 | 0x40);
    return (uint16_t)((x + 0x7fff + (x >> 16 & 1)) >> 16);
}

#define APPLY(a, b, op) ((op) == SHARP_OP_SUM ? (a) + (b) : (op) == SHARP_OP_MIN ? ((b) < (a) ? (b) : (a)) : ((b) > (a) ? (b) : (a)))

#define REDUCE_AS(T)                                                                         \
    do {                                                                                     \
        T *d = dst;                                                                          \
        const T *s = src;                                                                    \
        for (size_t i = 0; i < n; i++)                                                       \
            d[i] = (T)APPLY(d[i], s[i], op);                                                 \
    } while (0)

/* dst = dst (op) src, n elements; 16-bit floats through float, rounded to nearest even. */
static void reduce(void *dst, const void *src, size_t n, int dtype, int op)
{
    switch (dtype) {
    case SHARP_DTYPE_UNSIGNED: REDUCE_AS(uint32_t); break;
    case SHARP_DTYPE_INT: REDUCE_AS(int32_t); break;
    case SHARP_DTYPE_UNSIGNED_LONG: REDUCE_AS(uint64_t); break;
    case SHARP_DTYPE_LONG: REDUCE_AS(int64_t); break;
    case SHARP_DTYPE_FLOAT: REDUCE_AS(float); break;
    case SHARP_DTYPE_DOUBLE: REDUCE_AS(double); break;
    case SHARP_DTYPE_FLOAT_SHORT:
    case SHARP_DTYPE_BFLOAT16: {
        uint16_t *d = dst;
        const uint16_t *s = src;
        const int half = dtype == SHARP_DTYPE_FLOAT_SHORT;
        for (size_t i = 0; i < n; i++) {
            const float a = half ? half_to_float(d[i]) : bf16_to_float(d[i]);
            const float b = half ? half_to_float(s[i]) : bf16_to_float(s[i]);
            const float r = APPLY(a, b, op);
            d[i] = half ? float_to_half(r) : float_to_bf16(r);
        }
        break;
    }
    default: break;
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static char *slot(struct sharp_coll_comm *g, int q)
{
    return (char *)g->hdr + FS_HDR_BYTES + (size_t)q * FS_SLOT;
}

/* The last arrival: checks that every rank posted the same operation, then reduces. */
static int aggregate(struct sharp_coll_comm *g)
{
    const struct fs_post *p0 = &g->hdr->post[0];
    for (int q = 1; q < g->size; q++) {
        const struct fs_post *p = &g->hdr->post[q];
        if (p->kind != p0->kind || p->length != p0->length || p->dtype != p0->dtype ||
            p->op != p0->op)
            return SHARP_COLL_EINVAL;
    }
    if (p0->kind == KIND_ALLREDUCE) {
        char *result = slot(g, g->size);
        memcpy(result, slot(g, 0), p0->length * dtype_size(p0->dtype));
        for (int q = 1; q < g->size; q++)
            reduce(result, slot(g, q), p0->length, p0->dtype, p0->op);
    }
    return SHARP_COLL_SUCCESS;
}

/* One operation through the switch: post (contribution already in this rank's slot), wait
 * for the last arrival, return its verdict. */
static int through_switch(struct sharp_coll_comm *g, const struct fs_post *post)
{
    struct fs_hdr *h = g->hdr;
    const uint32_t gen = atomic_load_explicit(&h->gen, memory_order_acquire);
    h->post[g->rank] = *post;
    if (atomic_fetch_add_explicit(&h->arrived, 1, memory_order_acq_rel) ==
        (uint32_t)g->size - 1) {
        h->status = aggregate(g);
        atomic_store_explicit(&h->arrived, 0, memory_order_relaxed);
        atomic_store_explicit(&h->gen, gen + 1, memory_order_release);
        return h->status;
    }
    const int ms = g->ctx->timeout_ms;
    const double deadline = now_s() + (ms > 0 ? ms / 1000.0 : 600.0);
    for (unsigned spins = 0; atomic_load_explicit(&h->gen, memory_order_acquire) == gen;
         spins++) {
        if (spins > 1000)
            sched_yield();
        if ((spins & 1023) == 0 && now_s() > deadline)
            return SHARP_COLL_ERROR;
    }
    return h->status;
}

/* The buffer of a descriptor, when it is a contiguous host buffer of `bytes` inside its
 * registration; NULL otherwise. */
static char *checked_buffer(const struct sharp_coll_data_desc *d, size_t bytes)
{
    const struct fs_mr *m = d->buffer.mem_handle;
    if (d->type != SHARP_DATA_BUFFER || d->mem_type != SHARP_MEM_TYPE_HOST || !m ||
        m->magic != FS_MR_MAGIC || d->buffer.length != bytes)
        return NULL;
    char *p = d->buffer.ptr;
    if (p < m->buf || p + bytes > m->buf + m->size)
        return NULL;
    return p;
}

EXPORT int sharp_coll_do_allreduce(struct sharp_coll_comm *g, struct sharp_coll_reduce_spec *spec)
{
    if (!g || !spec)
        return SHARP_COLL_EINVAL;
    if ((unsigned)spec->dtype >= 32 || !(FS_DTYPES >> spec->dtype & 1) ||
        (unsigned)spec->op >= 32 || !(FS_OPS >> spec->op & 1))
        return SHARP_COLL_ENOT_SUPP;
    const size_t bytes = spec->length * dtype_size(spec->dtype);
    if (bytes > FS_SLOT)
        return SHARP_COLL_ENOT_SUPP;
    const char *src = checked_buffer(&spec->sbuf_desc, bytes);
    char *dst = checked_buffer(&spec->rbuf_desc, bytes);
    if (!src || !dst)
        return SHARP_COLL_EINVAL;
    memcpy(slot(g, g->rank), src, bytes);
    const struct fs_post post = {spec->length, KIND_ALLREDUCE, spec->dtype, spec->op, 0};
    const int rc = through_switch(g, &post);
    if (rc != SHARP_COLL_SUCCESS)
        return rc;
    memcpy(dst, slot(g, g->size), bytes);
    g->allreduces++;
    g->bytes += bytes;
    return SHARP_COLL_SUCCESS;
}

EXPORT int sharp_coll_do_barrier(struct sharp_coll_comm *g)
{
    if (!g)
        return SHARP_COLL_EINVAL;
    const struct fs_post post = {0, KIND_BARRIER, 0, 0, 0};
    const int rc = through_switch(g, &post);
    if (rc == SHARP_COLL_SUCCESS)
        g->barriers++;
    return rc;
}
