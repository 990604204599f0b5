/*
 * plan.c - weft_coll_plan: the algorithm, chunk and predicted time the collective layer
 * would choose for a call, for tools (weft-perf --verbose) and users tuning WEFT_ALGO.
 */
#include <stdio.h>
#include <string.h>

#include "core/comm.h"
#include "core/error.h"

static const struct {
    const char *name;
    enum weft_coll_kind kind;
} plan_kinds[] = {
    {"allreduce", WEFT_COLL_ALLREDUCE}, {"broadcast", WEFT_COLL_BROADCAST},
    {"reduce", WEFT_COLL_REDUCE},       {"allgather", WEFT_COLL_ALLGATHER},
    {"reduce_scatter", WEFT_COLL_REDUCE_SCATTER}, {"alltoall", WEFT_COLL_ALLTOALL},
    {"barrier", WEFT_COLL_BARRIER},
};

weft_result_t weft_coll_plan(weft_comm_t comm, const char *collective, size_t count,
                             weft_dtype_t dtype, weft_plan_t *plan)
{
    weft_error_clear();
    if (!comm || !collective || !plan)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "weft_coll_plan: comm, collective or plan is NULL");
    if (weft_dtype_size(dtype) == 0)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_coll_plan: invalid dtype %d", (int)dtype);
    for (size_t i = 0; i < sizeof(plan_kinds) / sizeof(plan_kinds[0]); i++) {
        if (strcmp(plan_kinds[i].name, collective))
            continue;
        const char *algo;
        size_t chunk;
        double t;
        WEFT_CHECK(weft_coll_plan_query(&comm->coll, plan_kinds[i].kind, count, dtype, &algo,
                                        &chunk, &t));
        snprintf(plan->algorithm, sizeof(plan->algorithm), "%s", algo);
        plan->chunk_size = chunk;
        plan->predicted_us = t * 1e6;
        return WEFT_OK;
    }
    return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                      "weft_coll_plan: '%s' is not a collective (allreduce, broadcast, reduce, "
                      "allgather, reduce_scatter, alltoall, barrier)",
                      collective);
}
