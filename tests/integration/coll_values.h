/*
 * coll_values.h - the inputs and the reference of the collective checks (coll_check,
 * tests/gpu/coll_gpu_check): every rank computes any rank's input, so every rank checks its
 * own result without asking the others.
 */
#ifndef WEFT_TESTS_COLL_VALUES_H
#define WEFT_TESTS_COLL_VALUES_H

#include <math.h>
#include <stddef.h>

#include "weft.h"

static inline int coll_is_float(weft_dtype_t t)
{
    return t >= WEFT_FLOAT16;
}

static inline int coll_is_signed(weft_dtype_t t)
{
    return t == WEFT_INT8 || t == WEFT_INT32 || t == WEFT_INT64;
}

/* Rank r's input at index i. Small values keep integer results free of wrap-around and float
 * inputs exact in every format; floats use quarters so that sums round in the narrow formats
 * (tolerance checked). `salt` shifts the values, so that a stale buffer from the case before
 * never passes. */
static inline double coll_input(weft_dtype_t t, weft_op_t op, int r, size_t i, unsigned salt)
{
    if (op == WEFT_PROD) {
        double v = (i + (size_t)r + salt) % 5 == 0 ? 2 : 1;
        return coll_is_signed(t) || coll_is_float(t) ? ((i + (size_t)r) % 3 == 0 ? -v : v) : v;
    }
    long v = (long)((i * 7 + (size_t)r * 13 + salt) % 11);
    if (coll_is_float(t))
        return (double)v * 0.25 - 1.25 + r;
    return coll_is_signed(t) ? (double)(v - 5) : (double)v;
}

/* The float64 reference of op over the inputs of nranks ranks at index i. */
static inline double coll_reference(weft_dtype_t t, weft_op_t op, int nranks, size_t i,
                                    unsigned salt)
{
    double acc = coll_input(t, op, 0, i, salt);
    for (int r = 1; r < nranks; r++) {
        double v = coll_input(t, op, r, i, salt);
        switch (op) {
        case WEFT_PROD: acc *= v; break;
        case WEFT_MIN: acc = v < acc ? v : acc; break;
        case WEFT_MAX: acc = v > acc ? v : acc; break;
        default: acc += v; break;
        }
    }
    if (op == WEFT_AVG)
        acc = coll_is_float(t) ? acc / nranks : trunc(acc / nranks);
    return acc;
}

/* Integers exactly; floats within the rounding of nranks steps in their format. */
static inline int coll_same(weft_dtype_t t, int nranks, double got, double want)
{
    if (!coll_is_float(t))
        return got == want;
    double eps = t == WEFT_FLOAT16    ? 1.0 / 1024
                 : t == WEFT_BFLOAT16 ? 1.0 / 128
                 : t == WEFT_FLOAT32  ? 1e-6
                                      : 1e-13;
    return fabs(got - want) <= eps * nranks * fmax(1.0, fabs(want));
}

#endif /* WEFT_TESTS_COLL_VALUES_H */
