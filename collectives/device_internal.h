/*
 * device_internal.h - what the device collective's files share: the per-communicator state,
 * the status barrier, and the two ways (device_ipc.c, device_staged.c).
 */
#ifndef WEFT_COLLECTIVES_DEVICE_INTERNAL_H
#define WEFT_COLLECTIVES_DEVICE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "collectives/device.h"
#include "gpu/ipc.h"

/* What each rank tells the others before any data moves on the IPC way. */
struct weft_dev_record {
    int32_t ok;     /* every buffer it uses exported */
    int32_t device; /* the GPU it works on */
    struct weft_ipc_buf send, recv;
    char why[160]; /* when !ok: the reason, for every rank's log */
};

struct weft_dev_coll {
    struct weft_ipc *ipc; /* NULL: its creation failed (setup_error says why) */
    char setup_error[160];
    uint32_t logged; /* bit 2 * kind + way: that way was logged for that kind */
    struct weft_dev_record *records; /* nranks + 1: every rank's, then this rank's */
    int32_t *status;                 /* nranks + 1, the same way */
    void **peer_send, **peer_recv;   /* this call's local addresses of every rank's buffers */
    const char **inputs;             /* nranks: a reduction's inputs, in order */
    /* The last call that went through CUDA IPC: when the next one has the same records, kind
     * and root on every rank, its mappings are still those (the cache evicts only on a new
     * import), so the map check is skipped. */
    struct weft_dev_record *last; /* nranks */
    bool last_valid;
    enum weft_coll_kind last_kind;
    int last_root;
};

/* Every rank's `mine` (a barrier too): *bad is the first rank whose is not WEFT_OK, or -1. */
weft_result_t weft_dev_status(struct weft_coll_ctx *ctx, struct weft_dev_coll *d,
                              weft_result_t mine, int *bad);
/* Every rank's `mine`, which doubles as a barrier: WEFT_OK when every rank's `mine` was;
 * else this rank's own failure, or WEFT_ERR_REMOTE naming the first rank that failed `step`
 * of `call`. */
weft_result_t weft_dev_all_passed(struct weft_coll_ctx *ctx, struct weft_dev_coll *d,
                                  weft_result_t mine, const char *call, const char *step);

/* The IPC way: decides with the peers (*use_ipc equal on every rank; why says why not), then,
 * when it may, runs op. */
weft_result_t weft_dev_ipc_decide(struct weft_coll_ctx *ctx, struct weft_dev_coll *d,
                                  const struct weft_coll_op *op, bool *use_ipc, char *why,
                                  size_t len);
weft_result_t weft_dev_ipc_run(struct weft_coll_ctx *ctx, struct weft_dev_coll *d,
                               const struct weft_coll_op *op, double timeout_s);
/* The staged way, in weft_dev_coll_chunks(op) chunks; it needs this much pinned scratch for
 * any call whose elements of every block fit a chunk (bigger ones grow it). */
size_t weft_dev_staged_scratch_bytes(void);
/* The staged way, in weft_dev_coll_chunks(op) chunks. */
weft_result_t weft_dev_staged_run(struct weft_coll_ctx *ctx, struct weft_dev_coll *d,
                                  const struct weft_coll_op *op, double timeout_s);

#endif /* WEFT_COLLECTIVES_DEVICE_INTERNAL_H */
