/*
 * group.c - ncclGroupStart/ncclGroupEnd on Weft's groups, plus what NCCL adds to them:
 * communicator inits made inside a group run at the outermost end, all at once (one thread
 * each), so that one thread can create the communicators of several devices.
 */
#include <pthread.h>
#include <stdlib.h>

#include "internal.h"

static _Thread_local struct {
    int depth;
    ncclComm_t *inits;
    int n, cap;
} group;

int weft_nccl_group_depth(void)
{
    return group.depth;
}

ncclResult_t weft_nccl_group_defer_init(ncclComm_t comm)
{
    if (group.n == group.cap) {
        int cap = group.cap ? 2 * group.cap : 4;
        ncclComm_t *p = realloc(group.inits, (size_t)cap * sizeof(*p));
        if (!p)
            return weft_nccl_error(ncclSystemError, "ncclCommInitRank: rank %d: out of memory",
                                   comm->rank);
        group.inits = p;
        group.cap = cap;
    }
    group.inits[group.n++] = comm;
    return ncclSuccess;
}

static void *init_main(void *arg)
{
    (void)weft_nccl_init_now(arg);
    return NULL;
}

weft_result_t weft_nccl_init_parallel(ncclComm_t *comms, int n)
{
    if (n == 1)
        return weft_nccl_init_now(comms[0]);
    pthread_t *t = calloc((size_t)n, sizeof(*t));
    bool *started = calloc((size_t)n, sizeof(*started));
    weft_result_t r = WEFT_OK;
    for (int i = 0; i < n; i++) {
        if (t && started && pthread_create(&t[i], NULL, init_main, comms[i]) == 0) {
            started[i] = true;
            continue;
        }
        /* No thread: it cannot run beside the others, and they wait for it. Fail it; the
         * others time out (WEFT_TIMEOUT) and say so. */
        comms[i]->init_result = WEFT_ERR_NO_MEMORY;
        comms[i]->pending = false;
    }
    for (int i = 0; i < n; i++)
        if (started && started[i])
            pthread_join(t[i], NULL);
    for (int i = 0; i < n && r == WEFT_OK; i++)
        r = comms[i]->init_result;
    free(t);
    free(started);
    return r;
}

ncclResult_t ncclGroupStart(void)
{
    weft_result_t r = weft_group_start();
    if (r != WEFT_OK)
        return weft_nccl_from_weft(r);
    group.depth++;
    return ncclSuccess;
}

ncclResult_t ncclGroupEnd(void)
{
    if (group.depth == 0)
        return weft_nccl_error(ncclInvalidUsage, "ncclGroupEnd without ncclGroupStart");
    group.depth--;
    ncclResult_t res = weft_nccl_from_weft(weft_group_end());
    if (group.depth > 0 || group.n == 0)
        return res;
    /* The communicators' inits, after the group's operations (none can be on them). */
    weft_result_t r = weft_nccl_init_parallel(group.inits, group.n);
    if (res == ncclSuccess && r != WEFT_OK) {
        res = weft_nccl_from_weft(r);
        for (int i = 0; i < group.n; i++)
            if (group.inits[i]->init_result != WEFT_OK) {
                weft_nccl_error(res, "ncclGroupEnd: ncclCommInitRank of rank %d: %s",
                                group.inits[i]->rank, group.inits[i]->init_error);
                break;
            }
    }
    free(group.inits);
    group.inits = NULL;
    group.n = group.cap = 0;
    return res;
}
