/*
 * fill.h - test data whose reductions are exact in every dtype: small integers that depend on
 * the rank and the element index, chosen per op so that no sum, product or average can round
 * or overflow (int8 and bfloat16 included) at the rank counts weft-perf runs at.
 */
#ifndef WEFT_PERFTEST_FILL_H
#define WEFT_PERFTEST_FILL_H

#include <stddef.h>

#include "weft.h"

/* Pattern for data that is only moved, not reduced. */
#define PERF_COPY (-1)

/* Element `index` of rank `rank`'s input for `op` (a weft_op_t or PERF_COPY). */
long perf_value(int op, int rank, int nranks, size_t index);

/* buf[j] = perf_value(op, rank, nranks, first + j) for j < count. */
void perf_fill(weft_dtype_t dtype, void *buf, size_t count, int op, int rank, int nranks,
               size_t first);
/* Makes `count` elements hold a value no pattern produces (NaN for floats, -1 / max for
 * integers), so an output that is never written counts as wrong. */
void perf_poison(weft_dtype_t dtype, void *buf, size_t count);

/* Elements j < count where buf[j] differs from rank `src`'s perf_value(PERF_COPY, .., first+j). */
size_t perf_wrong_copy(weft_dtype_t dtype, const void *buf, size_t count, int src, int nranks,
                       size_t first);
/* Elements j < count where buf[j] differs from `op` over every rank's perf_value(op, ..,
 * first + j). */
size_t perf_wrong_reduced(weft_dtype_t dtype, const void *buf, size_t count, weft_op_t op,
                          int nranks, size_t first);

#endif /* WEFT_PERFTEST_FILL_H */
