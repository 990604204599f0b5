/*
 * kvs.h - the key-value exchange a process manager offers (PMIx, PMI-2, PMI-1): each rank
 * puts values, a fence makes them visible, any rank gets any rank's values. Used once per
 * job to agree on the bootstrap's unique id; slow and small by design.
 */
#ifndef WEFT_LAUNCHER_KVS_H
#define WEFT_LAUNCHER_KVS_H

#include <stddef.h>

#include "weft.h"

struct weft_kvs;

/* Which protocol the environment offers, or NULL: "PMIx" (PMIX_RANK and libpmix built in),
 * "PMI-2" or "PMI-1" (PMI_FD; the version is negotiated). */
const char *weft_kvs_available(void);
/* Connects to the process manager; fills rank and size as it reports them. */
weft_result_t weft_kvs_open(struct weft_kvs **kvs, int *rank, int *nranks);
const char *weft_kvs_protocol(const struct weft_kvs *kvs);
/* Values are bytes of at most 512; they are encoded as the protocol needs (hex for PMI). */
weft_result_t weft_kvs_put(struct weft_kvs *kvs, const char *key, const void *value, size_t len);
/* Collective over every rank: commits puts and waits until all ranks have. */
weft_result_t weft_kvs_fence(struct weft_kvs *kvs);
/* `len` must equal the length that `rank` put. */
weft_result_t weft_kvs_get(struct weft_kvs *kvs, int rank, const char *key, void *value,
                           size_t len);
/* Finalizes the protocol (PMI's finalize) and frees kvs. */
void weft_kvs_close(struct weft_kvs *kvs);

#endif /* WEFT_LAUNCHER_KVS_H */
