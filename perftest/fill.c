/*
 * fill.c - writes the rank- and index-dependent test patterns in any dtype and counts the
 * elements of an output that differ from the exactly known expected result.
 */
#include "perftest/fill.h"

#include "weft_tools.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static long clamp_long(long v, long lo, long hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

long perf_value(int op, int rank, int nranks, size_t index)
{
    size_t r = (size_t)rank, n = (size_t)nranks;
    switch (op) {
    case WEFT_SUM: {
        /* nranks * max <= 127 keeps every partial sum exact in int8 and bfloat16. */
        size_t m = (size_t)clamp_long(127 / nranks, 1, 7) + 1;
        return (long)((r * 3 + index * 5 + 1) % m);
    }
    case WEFT_AVG: {
        /* One rank per element adds nranks, so the sum is a multiple of nranks and the
         * average is exact: no integer truncation or float rounding to argue about. */
        size_t m = (size_t)clamp_long(127 / nranks - 1, 0, 7) + 1;
        return (long)((index * 5 + 1) % m + ((r + index) % n == 0 ? n : 0));
    }
    case WEFT_PROD: {
        /* Exactly t ranks contribute a 2, so the product is 2^t <= 64 (fits int8). */
        size_t t = index % ((size_t)clamp_long(nranks, 1, 6) + 1);
        return (r + index) % n < t ? 2 : 1;
    }
    case WEFT_MIN:
    case WEFT_MAX:
        return (long)((r * 7 + index * 3 + 1) % 101);
    default: /* PERF_COPY: distinct per rank so a block from the wrong peer shows up */
        return (long)((r * 37 + index) % 113);
    }
}

/* Patterns are small integers: exact in every dtype, float16 and bfloat16 included. */
void perf_fill(weft_dtype_t dtype, void *buf, size_t count, int op, int rank, int nranks,
               size_t first)
{
    for (size_t j = 0; j < count; j++)
        weft_dtype_set(dtype, buf, j, (double)perf_value(op, rank, nranks, first + j));
}

void perf_poison(weft_dtype_t dtype, void *buf, size_t count)
{
    /* All ones: -1 or the maximum for integers (patterns are 0..127), NaN for floats. */
    memset(buf, 0xff, count * weft_dtype_size(dtype));
}

size_t perf_wrong_copy(weft_dtype_t dtype, const void *buf, size_t count, int src, int nranks,
                       size_t first)
{
    size_t wrong = 0;
    for (size_t j = 0; j < count; j++) {
        if (weft_dtype_get(dtype, buf, j) != (double)perf_value(PERF_COPY, src, nranks, first + j))
            wrong++;
    }
    return wrong;
}

static long expected(weft_op_t op, int nranks, size_t index)
{
    long acc = perf_value(op, 0, nranks, index);
    for (int r = 1; r < nranks; r++) {
        long v = perf_value(op, r, nranks, index);
        switch (op) {
        case WEFT_PROD: acc *= v; break;
        case WEFT_MIN: acc = v < acc ? v : acc; break;
        case WEFT_MAX: acc = v > acc ? v : acc; break;
        default: acc += v; break; /* SUM, AVG */
        }
    }
    return op == WEFT_AVG ? acc / nranks : acc;
}

size_t perf_wrong_reduced(weft_dtype_t dtype, const void *buf, size_t count, weft_op_t op,
                          int nranks, size_t first)
{
    /* The average divides by nranks, which a library may do as a multiply by 1/nranks: allow
     * the last bit of float32/float64 to differ. Everything else must match exactly. */
    bool loose = op == WEFT_AVG && (dtype == WEFT_FLOAT32 || dtype == WEFT_FLOAT64);
    size_t wrong = 0;
    for (size_t j = 0; j < count; j++) {
        double got = weft_dtype_get(dtype, buf, j);
        double want = (double)expected(op, nranks, first + j);
        bool ok = loose ? fabs(got - want) <= 1e-6 * fabs(want) : got == want;
        if (!ok)
            wrong++;
    }
    return wrong;
}
