/*
 * fill.c - writes the rank- and index-dependent test patterns in any dtype and counts the
 * elements of an output that differ from the exactly known expected result.
 */
#include "perftest/fill.h"

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

/* Patterns are small non-negative integers, exact in binary16 up to 2048. */
static uint16_t half_from_long(long v)
{
    if (v <= 0)
        return 0;
    unsigned long u = (unsigned long)v;
    int e = 63 - __builtin_clzl(u);
    unsigned long mant = e <= 10 ? u << (10 - e) : u >> (e - 10);
    return (uint16_t)(((unsigned)(e + 15) << 10) | (mant & 0x3ffu));
}

static double half_to_double(uint16_t h)
{
    int exp = (h >> 10) & 0x1f;
    int mant = h & 0x3ff;
    double v;
    if (exp == 0)
        v = ldexp(mant, -24);
    else if (exp == 31)
        v = mant != 0 ? NAN : INFINITY;
    else
        v = ldexp(mant + 1024, exp - 25);
    return (h & 0x8000) ? -v : v;
}

/* Small integers are exact in bfloat16, so truncating the binary32 bits loses nothing. */
static uint16_t bf16_from_long(long v)
{
    float f = (float)v;
    uint32_t bits;
    memcpy(&bits, &f, sizeof(bits));
    return (uint16_t)(bits >> 16);
}

static double bf16_to_double(uint16_t b)
{
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

#define FILL_AS(type, conv)                                                    \
    do {                                                                       \
        type *p_ = buf;                                                        \
        for (size_t j_ = 0; j_ < count; j_++)                                  \
            p_[j_] = (type)conv(perf_value(op, rank, nranks, first + j_));     \
    } while (0)
#define AS_IS(v) (v)

void perf_fill(weft_dtype_t dtype, void *buf, size_t count, int op, int rank, int nranks,
               size_t first)
{
    switch (dtype) {
    case WEFT_INT8: FILL_AS(int8_t, AS_IS); break;
    case WEFT_UINT8: FILL_AS(uint8_t, AS_IS); break;
    case WEFT_INT32: FILL_AS(int32_t, AS_IS); break;
    case WEFT_UINT32: FILL_AS(uint32_t, AS_IS); break;
    case WEFT_INT64: FILL_AS(int64_t, AS_IS); break;
    case WEFT_UINT64: FILL_AS(uint64_t, AS_IS); break;
    case WEFT_FLOAT16: FILL_AS(uint16_t, half_from_long); break;
    case WEFT_BFLOAT16: FILL_AS(uint16_t, bf16_from_long); break;
    case WEFT_FLOAT32: FILL_AS(float, AS_IS); break;
    case WEFT_FLOAT64: FILL_AS(double, AS_IS); break;
    default: break;
    }
}

void perf_poison(weft_dtype_t dtype, void *buf, size_t count)
{
    /* All ones: -1 or the maximum for integers (patterns are 0..127), NaN for floats. */
    memset(buf, 0xff, count * weft_dtype_size(dtype));
}

static double load(weft_dtype_t dtype, const void *buf, size_t j)
{
    switch (dtype) {
    case WEFT_INT8: return ((const int8_t *)buf)[j];
    case WEFT_UINT8: return ((const uint8_t *)buf)[j];
    case WEFT_INT32: return ((const int32_t *)buf)[j];
    case WEFT_UINT32: return ((const uint32_t *)buf)[j];
    case WEFT_INT64: return (double)((const int64_t *)buf)[j];
    case WEFT_UINT64: return (double)((const uint64_t *)buf)[j];
    case WEFT_FLOAT16: return half_to_double(((const uint16_t *)buf)[j]);
    case WEFT_BFLOAT16: return bf16_to_double(((const uint16_t *)buf)[j]);
    case WEFT_FLOAT32: return ((const float *)buf)[j];
    case WEFT_FLOAT64: return ((const double *)buf)[j];
    default: return NAN;
    }
}

size_t perf_wrong_copy(weft_dtype_t dtype, const void *buf, size_t count, int src, int nranks,
                       size_t first)
{
    size_t wrong = 0;
    for (size_t j = 0; j < count; j++) {
        if (load(dtype, buf, j) != (double)perf_value(PERF_COPY, src, nranks, first + j))
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
        double got = load(dtype, buf, j);
        double want = (double)expected(op, nranks, first + j);
        bool ok = loose ? fabs(got - want) <= 1e-6 * fabs(want) : got == want;
        if (!ok)
            wrong++;
    }
    return wrong;
}
