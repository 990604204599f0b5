/*
 * device.h - one collective on device buffers, run by a communicator's stream worker once the
 * user's stream reached the call (the stream waits for its end). Two ways:
 *   - CUDA IPC, every rank on one host: each rank maps the peers' buffers and the GPUs move
 *     and reduce the data; no byte crosses the host. The ranks decide together: when any of
 *     them cannot share its buffers, all of them take the second way.
 *   - staged: chunks of the buffers copied through pinned host memory on an internal stream,
 *     the host collective run on each chunk, so that the copies of one chunk overlap the wire
 *     time of the next (WEFT_GPU_CHUNK_SIZE).
 */
#ifndef WEFT_COLLECTIVES_DEVICE_H
#define WEFT_COLLECTIVES_DEVICE_H

#include <stdbool.h>

#include "collectives/collectives.h"
#include "weft.h"

/* Per communicator; created by the first call (on the worker thread, whose current device is
 * the communicator's), freed by weft_dev_coll_destroy. */
struct weft_dev_coll;

/* Runs `op` (allreduce, broadcast, reduce, allgather, reduce_scatter or alltoall; count > 0;
 * every rank calling it for the same operation with the same try_ipc) on *state, creating it
 * first when NULL. try_ipc: every rank is on one host and may try CUDA IPC. Blocking; each
 * wait within timeout_s. A failure after data moved fails every rank (WEFT_ERR_REMOTE on the
 * others). */
weft_result_t weft_dev_coll_run(struct weft_coll_ctx *ctx, struct weft_dev_coll **state,
                                const struct weft_coll_op *op, bool try_ipc, double timeout_s);
/* Chunks the staged way cuts op into at WEFT_GPU_CHUNK_SIZE (equal on every rank: it depends
 * on the call and the knob only); 1: the buffers fit in one chunk. */
size_t weft_dev_coll_chunks(const struct weft_coll_op *op, int nranks);
/* Unmaps the peers' buffers and frees; NULL is ignored. After the worker stopped. */
void weft_dev_coll_destroy(struct weft_dev_coll *state);

#endif /* WEFT_COLLECTIVES_DEVICE_H */
