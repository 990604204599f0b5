/*
 * kvs_pmix.c - the key-value exchange through libpmix (srun --mpi=pmix, Open MPI's mpirun):
 * Put/Commit, a collecting Fence, Get. Without libpmix at build time it is a stub that says so.
 */
#include "launcher/kvs_pmi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

#ifndef WEFT_HAVE_PMIX

bool weft_kvs_pmix_built(void)
{
    return false;
}

static weft_result_t not_built(void)
{
    return WEFT_ERROR(WEFT_ERR_UNSUPPORTED,
                      "PMIx support was not built (libpmix-dev was not found when Weft was "
                      "compiled); rebuild with libpmix-dev installed");
}

weft_result_t weft_kvs_pmix_open(struct weft_kvs *kvs)
{
    (void)kvs;
    return not_built();
}

weft_result_t weft_kvs_pmix_put(struct weft_kvs *kvs, const char *key, const void *value,
                                size_t len)
{
    (void)kvs, (void)key, (void)value, (void)len;
    return not_built();
}

weft_result_t weft_kvs_pmix_fence(struct weft_kvs *kvs)
{
    (void)kvs;
    return not_built();
}

weft_result_t weft_kvs_pmix_get(struct weft_kvs *kvs, int src, const char *key, void *value,
                                size_t len)
{
    (void)kvs, (void)src, (void)key, (void)value, (void)len;
    return not_built();
}

void weft_kvs_pmix_close(struct weft_kvs *kvs)
{
    (void)kvs;
}

#else /* WEFT_HAVE_PMIX */

#include <math.h>
#include <pmix.h>
#include <time.h>

#include "core/config.h"
#include "core/log.h"

/* Our keys live beside the MPI library's in the same job: prefix them. */
#define KEY_PREFIX "weft."

bool weft_kvs_pmix_built(void)
{
    return true;
}

static weft_result_t pmix_failed(pmix_status_t rc, const char *call, const char *what)
{
    weft_result_t code = rc == PMIX_ERR_TIMEOUT ? WEFT_ERR_TIMEOUT : WEFT_ERR_REMOTE;

    return WEFT_ERROR(code, "PMIx: %s failed %s: %s (PMIx status %d)%s", call, what,
                      PMIx_Error_string(rc), (int)rc,
                      rc == PMIX_ERR_TIMEOUT ? " within WEFT_TIMEOUT" : "");
}

/* PMIX_TIMEOUT takes whole seconds; 0 would mean no limit. */
static int timeout_s(void)
{
    double t = ceil(weft_config_double(WEFT_CFG_TIMEOUT));

    if (t < 1)
        return 1;
    return t > 1e6 ? 1000000 : (int)t;
}

static weft_result_t full_key(const char *key, char out[PMIX_MAX_KEYLEN + 1])
{
    int n = snprintf(out, PMIX_MAX_KEYLEN + 1, "%s%s", KEY_PREFIX, key);

    if (n < 0 || n > PMIX_MAX_KEYLEN)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "PMIx: key %s is longer than %d characters",
                          key, PMIX_MAX_KEYLEN - (int)strlen(KEY_PREFIX));
    return WEFT_OK;
}

weft_result_t weft_kvs_pmix_open(struct weft_kvs *kvs)
{
    pmix_proc_t me, job;
    pmix_value_t *val = NULL;
    pmix_status_t rc;
    const char *ns = getenv("PMIX_NAMESPACE");

    rc = PMIx_Init(&me, NULL, 0);
    if (rc != PMIX_SUCCESS)
        return WEFT_ERROR(WEFT_ERR_SYSTEM,
                          "PMIx: PMIx_Init failed: %s (PMIx status %d); PMIX_RANK=%s "
                          "PMIX_NAMESPACE=%s: is the PMIx server of srun --mpi=pmix or mpirun "
                          "still running?",
                          PMIx_Error_string(rc), (int)rc, getenv("PMIX_RANK"),
                          ns != NULL ? ns : "(unset)");
    PMIX_PROC_LOAD(&job, me.nspace, PMIX_RANK_WILDCARD);
    rc = PMIx_Get(&job, PMIX_JOB_SIZE, NULL, 0, &val);
    if (rc != PMIX_SUCCESS) {
        weft_result_t res = pmix_failed(rc, "PMIx_Get(PMIX_JOB_SIZE)", "for the job size");
        PMIx_Finalize(NULL, 0);
        return res;
    }
    uint32_t size = 0;
    if (val->type == PMIX_UINT32)
        size = val->data.uint32;
    else if (val->type == PMIX_INT)
        size = (uint32_t)val->data.integer;
    PMIX_VALUE_RELEASE(val);
    if (size < 1 || size > INT32_MAX || me.rank >= size) {
        PMIx_Finalize(NULL, 0);
        return WEFT_ERROR(WEFT_ERR_REMOTE, "PMIx: rank %u with job size %u does not make sense",
                          (unsigned)me.rank, (unsigned)size);
    }
    kvs->rank = (int)me.rank;
    kvs->nranks = (int)size;
    snprintf(kvs->name, sizeof(kvs->name), "%s", me.nspace);
    WEFT_INFO(BOOT, "PMIx %s: namespace %s, rank %d of %d", PMIx_Get_version(), kvs->name,
              kvs->rank, kvs->nranks);
    return WEFT_OK;
}

weft_result_t weft_kvs_pmix_put(struct weft_kvs *kvs, const char *key, const void *value,
                                size_t len)
{
    char full[PMIX_MAX_KEYLEN + 1];
    pmix_value_t val;
    pmix_status_t rc;

    (void)kvs;
    WEFT_CHECK(full_key(key, full));
    PMIX_VALUE_CONSTRUCT(&val);
    val.type = PMIX_BYTE_OBJECT;
    /* PMIx_Put copies the bytes; the cast only drops const for the struct's field. */
    val.data.bo.bytes = (char *)(uintptr_t)value;
    val.data.bo.size = len;
    rc = PMIx_Put(PMIX_GLOBAL, full, &val);
    if (rc != PMIX_SUCCESS)
        return pmix_failed(rc, "PMIx_Put", full);
    return WEFT_OK;
}

/*
 * A non-blocking PMIx call waited on with our own deadline: a server that ignores
 * PMIX_TIMEOUT (Slurm 22.05's PMIx plugin left a fence blocked while a rank was missing)
 * must not hang the rank. The state lives on the heap with two references, the waiter's and
 * the callback's, so a callback that fires after the waiter gave up finds it still there.
 */
struct pending {
    int refs;
    int done;
    pmix_status_t status;
    pmix_info_t info[2];
    size_t ninfo;
    size_t len;          /* PMIx_Get: the expected value length */
    size_t got_len;      /* ... and what arrived */
    int got_type;
    unsigned char value[]; /* PMIx_Get: a copy of the value */
};

static struct pending *pending_new(size_t len)
{
    struct pending *p = calloc(1, sizeof(*p) + len);
    if (p) {
        p->refs = 2;
        p->len = len;
    }
    return p;
}

static void pending_release(struct pending *p)
{
    if (__atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (size_t i = 0; i < p->ninfo; i++)
        PMIX_INFO_DESTRUCT(&p->info[i]);
    free(p);
}

static void op_done(pmix_status_t status, void *cbdata)
{
    struct pending *p = cbdata;
    p->status = status;
    __atomic_store_n(&p->done, 1, __ATOMIC_RELEASE);
    pending_release(p);
}

/* PMIx releases kv when this returns: copy what we need. */
static void get_done(pmix_status_t status, pmix_value_t *kv, void *cbdata)
{
    struct pending *p = cbdata;
    p->status = status;
    if (status == PMIX_SUCCESS && kv) {
        p->got_type = kv->type;
        if (kv->type == PMIX_BYTE_OBJECT) {
            p->got_len = kv->data.bo.size;
            if (p->got_len == p->len)
                memcpy(p->value, kv->data.bo.bytes, p->len);
        }
    }
    __atomic_store_n(&p->done, 1, __ATOMIC_RELEASE);
    pending_release(p);
}

/* Waits for the callback until WEFT_TIMEOUT. On WEFT_OK the caller still holds its
 * reference; on failure it has been dropped. */
static weft_result_t pending_wait(struct pending *p, const char *call, const char *what)
{
    const double limit = weft_config_double(WEFT_CFG_TIMEOUT);
    struct timespec start, now, nap = {0, 1000000};
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (!__atomic_load_n(&p->done, __ATOMIC_ACQUIRE)) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        double waited = (double)(now.tv_sec - start.tv_sec) +
                        (double)(now.tv_nsec - start.tv_nsec) * 1e-9;
        if (waited > limit) {
            pending_release(p);
            return WEFT_ERROR(WEFT_ERR_TIMEOUT,
                              "PMIx: %s %s did not complete within WEFT_TIMEOUT=%.0f s: a rank "
                              "never reached it, or the PMIx server is stuck",
                              call, what, limit);
        }
        nanosleep(&nap, NULL);
    }
    if (p->status != PMIX_SUCCESS) {
        weft_result_t r = pmix_failed(p->status, call, what);
        pending_release(p);
        return r;
    }
    return WEFT_OK;
}

weft_result_t weft_kvs_pmix_fence(struct weft_kvs *kvs)
{
    bool collect = true;
    int secs = timeout_s();
    pmix_status_t rc;

    (void)kvs;
    rc = PMIx_Commit();
    if (rc != PMIX_SUCCESS)
        return pmix_failed(rc, "PMIx_Commit", "of this rank's values");
    struct pending *p = pending_new(0);
    if (!p)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "PMIx: out of memory for the fence");
    /* Collect the data at the fence, so the gets that follow are local reads. */
    PMIX_INFO_LOAD(&p->info[0], PMIX_COLLECT_DATA, &collect, PMIX_BOOL);
    PMIX_INFO_LOAD(&p->info[1], PMIX_TIMEOUT, &secs, PMIX_INT);
    p->ninfo = 2;
    rc = PMIx_Fence_nb(NULL, 0, p->info, p->ninfo, op_done, p);
    if (rc != PMIX_SUCCESS) {
        p->refs = 1; /* the callback will never run */
        pending_release(p);
        return pmix_failed(rc, "PMIx_Fence_nb", "over every rank of the job");
    }
    WEFT_CHECK(pending_wait(p, "PMIx_Fence", "over every rank of the job"));
    pending_release(p);
    return WEFT_OK;
}

weft_result_t weft_kvs_pmix_get(struct weft_kvs *kvs, int src, const char *key, void *value,
                                size_t len)
{
    char full[PMIX_MAX_KEYLEN + 1], what[PMIX_MAX_KEYLEN + 32];
    pmix_proc_t proc;
    int secs = timeout_s();
    pmix_status_t rc;
    weft_result_t res = WEFT_OK;

    WEFT_CHECK(full_key(key, full));
    snprintf(what, sizeof(what), "for key %s of rank %d", full, src);
    struct pending *p = pending_new(len);
    if (!p)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "PMIx: out of memory for a get");
    PMIX_PROC_LOAD(&proc, kvs->name, (pmix_rank_t)src);
    PMIX_INFO_LOAD(&p->info[0], PMIX_TIMEOUT, &secs, PMIX_INT);
    p->ninfo = 1;
    rc = PMIx_Get_nb(&proc, full, p->info, p->ninfo, get_done, p);
    if (rc != PMIX_SUCCESS) {
        p->refs = 1;
        pending_release(p);
        return pmix_failed(rc, "PMIx_Get_nb", what);
    }
    WEFT_CHECK(pending_wait(p, "PMIx_Get", what));
    if (p->got_type != PMIX_BYTE_OBJECT || p->got_len != len)
        res = WEFT_ERROR(WEFT_ERR_REMOTE,
                         "PMIx: key %s of rank %d holds %zu bytes of PMIx type %d, expected "
                         "%zu bytes",
                         full, src, p->got_len, p->got_type, len);
    else
        memcpy(value, p->value, len);
    pending_release(p);
    return res;
}

void weft_kvs_pmix_close(struct weft_kvs *kvs)
{
    pmix_status_t rc = PMIx_Finalize(NULL, 0);

    (void)kvs;
    if (rc != PMIX_SUCCESS)
        WEFT_WARN(BOOT, "PMIx_Finalize failed (ignored): %s", PMIx_Error_string(rc));
}

#endif /* WEFT_HAVE_PMIX */
