/*
 * device_allreduce.h - allreduce of device buffers among ranks of one host, on the GPUs
 * through CUDA IPC, run by a communicator's stream worker once the user's stream reached the
 * call. Ranks decide together: when any of them cannot share its buffers, all of them stage
 * through pinned host memory and run the host allreduce instead.
 */
#ifndef WEFT_COLLECTIVES_DEVICE_ALLREDUCE_H
#define WEFT_COLLECTIVES_DEVICE_ALLREDUCE_H

#include "collectives/collectives.h"
#include "weft.h"

/* Per communicator; created by the first call (on the worker thread, whose current device is
 * the communicator's), freed by weft_dev_allreduce_destroy. */
struct weft_dev_allreduce;

/* Runs `op` (an allreduce; count > 0; every rank of ctx on one host, every rank calling it for
 * the same operation) on *state, creating it first when NULL. Blocking; each wait within
 * timeout_s. A failure after data moved fails every rank (WEFT_ERR_REMOTE on the others). */
weft_result_t weft_dev_allreduce(struct weft_coll_ctx *ctx, struct weft_dev_allreduce **state,
                                 const struct weft_coll_op *op, double timeout_s);
/* Unmaps the peers' buffers and frees; NULL is ignored. After the worker stopped. */
void weft_dev_allreduce_destroy(struct weft_dev_allreduce *state);

#endif /* WEFT_COLLECTIVES_DEVICE_ALLREDUCE_H */
