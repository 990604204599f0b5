/*
 * kvs_pmi.h - the backends behind kvs.h: PMIx through libpmix (kvs_pmix.c) and the PMI-1 and
 * PMI-2 wire protocols on the inherited PMI_FD socket (kvs_pmi.c). kvs.c picks one, encodes
 * values for the wire protocols and splits them into keys the server accepts.
 */
#ifndef WEFT_LAUNCHER_KVS_PMI_H
#define WEFT_LAUNCHER_KVS_PMI_H

#include <stdbool.h>
#include <stddef.h>

#include "weft.h"

#define WEFT_KVS_VALUE_MAX 512 /* bytes of one value, before encoding (kvs.h) */
#define WEFT_KVS_NAME_MAX 256  /* PMI kvsname, PMI-2 jobid or PMIx namespace, with its NUL */
#define WEFT_KVS_WIRE_MAX 8192 /* longest PMI message we accept from a server */

enum weft_kvs_kind { WEFT_KVS_PMIX, WEFT_KVS_PMI1, WEFT_KVS_PMI2 };

struct weft_kvs {
    enum weft_kvs_kind kind;
    int rank;
    int nranks;
    /* PMI wire protocols */
    int fd;            /* PMI_FD */
    size_t keylen_max; /* longest key the server takes, with its NUL */
    size_t vallen_max; /* longest value string the server takes, with its NUL */
    char name[WEFT_KVS_NAME_MAX]; /* PMI-1 kvsname, PMI-2 jobid, PMIx namespace */
    char rbuf[WEFT_KVS_WIRE_MAX]; /* bytes received and not yet parsed */
    size_t rlen;
    bool failed; /* a request failed: the conversation is out of step, skip finalize */
};

/* The PMI version PMI_FD speaks: 2 when PMI_JOBID is set or SLURM_MPI_TYPE says pmi2 (srun
 * --mpi=pmi2), else 1 (MPICH hydra). */
int weft_kvs_pmi_version(void);

/* PMI-1 or PMI-2 over PMI_FD (kvs->kind says which). Values are strings without spaces, ';'
 * or '=' (kvs.c sends hex); `key` is the full wire key. */
weft_result_t weft_kvs_pmi_open(struct weft_kvs *kvs);  /* on failure, close it still */
weft_result_t weft_kvs_pmi_put(struct weft_kvs *kvs, const char *key, const char *value);
weft_result_t weft_kvs_pmi_fence(struct weft_kvs *kvs);
/* Fails with WEFT_ERR_REMOTE when the key is not there, or its value does not fit `cap`. */
weft_result_t weft_kvs_pmi_get(struct weft_kvs *kvs, int src, const char *key, char *value,
                               size_t cap);
/* Sends finalize unless a request failed (never raises an error) and closes PMI_FD. */
void weft_kvs_pmi_close(struct weft_kvs *kvs);

/* Whether libpmix was found at build time (-DWEFT_HAVE_PMIX). */
bool weft_kvs_pmix_built(void);
weft_result_t weft_kvs_pmix_open(struct weft_kvs *kvs);
weft_result_t weft_kvs_pmix_put(struct weft_kvs *kvs, const char *key, const void *value,
                                size_t len);
weft_result_t weft_kvs_pmix_fence(struct weft_kvs *kvs);
weft_result_t weft_kvs_pmix_get(struct weft_kvs *kvs, int src, const char *key, void *value,
                                size_t len);
void weft_kvs_pmix_close(struct weft_kvs *kvs);

#endif /* WEFT_LAUNCHER_KVS_PMI_H */
