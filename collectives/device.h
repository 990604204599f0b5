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

/* Per communicator: created by weft_dev_coll_create (or, failing that, by the first call),
 * freed by weft_dev_coll_destroy. */
struct weft_dev_coll;

/* Creates the state on the calling thread's current device: the IPC state (whose failure
 * is kept and reported by the calls that need it) and the pinned staging the staged way
 * needs at WEFT_GPU_CHUNK_SIZE. Call it before any stream waits for the worker (the first
 * stream call): CUDA's implicit synchronization rule lets a pinned allocation wait for work
 * enqueued before it, such as a stream waiting for the worker that allocates. */
weft_result_t weft_dev_coll_create(struct weft_coll_ctx *ctx, struct weft_dev_coll **out);
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
