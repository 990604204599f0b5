/*
 * exec.h - a communicator's worker thread and its FIFO of queued operations: each item waits
 * until its stream reaches it (ready), runs on the host (run), then lets its stream go
 * (release). Knows nothing of CUDA: items bring those steps as callbacks.
 */
#ifndef WEFT_CORE_EXEC_H
#define WEFT_CORE_EXEC_H

#include <stddef.h>

#include "weft.h"

struct weft_exec;
struct weft_exec_item;

struct weft_exec_item_ops {
    /* Polled by the worker while the item is first in line: WEFT_OK once it may run,
     * WEFT_ERR_IN_PROGRESS before, any other code (raised with WEFT_ERROR) if it never can. */
    weft_result_t (*ready)(struct weft_exec_item *item);
    /* The host operation; a failure fails every later item too. */
    weft_result_t (*run)(struct weft_exec_item *item);
    /* Lets the item's stream go past it. Called exactly once per item, in push order, with
     * the item's outcome: also for items that never ran (an earlier failure, a timeout of
     * ready, abort or stop). */
    void (*release)(struct weft_exec_item *item, weft_result_t result);
    /* Frees the item, right after release. */
    void (*free)(struct weft_exec_item *item);
};

/* Embedded at the start of each caller's item. */
struct weft_exec_item {
    const struct weft_exec_item_ops *ops;
    const char *name;            /* the call, for logs and errors ("weft_allreduce") */
    struct weft_exec_item *next; /* the executor's */
};

/* Starts the worker of `rank`'s communicator. An item whose ready() stays IN_PROGRESS for
 * WEFT_TIMEOUT seconds (read now from the config) is released with WEFT_ERR_TIMEOUT. */
weft_result_t weft_exec_start(struct weft_exec **out, int rank);
/* Queues an item; items run strictly in push order. Takes ownership: when the executor is
 * aborted or stopping, the item is released and freed here and WEFT_ERR_ABORTED returned. */
weft_result_t weft_exec_push(struct weft_exec *ex, struct weft_exec_item *item);
/* Waits until every pushed item has been released. Fails with WEFT_ERR_TIMEOUT when, for
 * timeout_s, no item ran, finished or started running; time inside run() does not count
 * (the host operation keeps its own deadline). */
weft_result_t weft_exec_drain(struct weft_exec *ex, double timeout_s);
/* The first failure of an item (WEFT_OK when none); `msg` (may be NULL) gets its message. */
weft_result_t weft_exec_error(struct weft_exec *ex, char *msg, size_t len);
/* Releases every item not yet running with WEFT_ERR_ABORTED, now, in order, from this
 * thread; refuses later pushes. The item running finishes (its run keeps its own deadline). */
void weft_exec_abort(struct weft_exec *ex);
/* Aborts what is still queued, waits for the running item, joins the worker and frees. */
void weft_exec_stop(struct weft_exec *ex);

#endif /* WEFT_CORE_EXEC_H */
