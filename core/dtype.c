/*
 * dtype.c - element sizes and printable names of the public datatypes and reduction ops.
 * Invalid values give size 0 and the name "invalid" rather than failing.
 */
#include "dtype.h"

#include <math.h>
#include <stdint.h>

#include "reduce.h"

static const size_t dtype_sizes[WEFT_NUM_DTYPES] = {
    [WEFT_INT8] = 1,    [WEFT_UINT8] = 1,    [WEFT_INT32] = 4,    [WEFT_UINT32] = 4,
    [WEFT_INT64] = 8,   [WEFT_UINT64] = 8,   [WEFT_FLOAT16] = 2,  [WEFT_BFLOAT16] = 2,
    [WEFT_FLOAT32] = 4, [WEFT_FLOAT64] = 8,
};

static const char *const dtype_names[WEFT_NUM_DTYPES] = {
    [WEFT_INT8] = "int8",         [WEFT_UINT8] = "uint8",     [WEFT_INT32] = "int32",
    [WEFT_UINT32] = "uint32",     [WEFT_INT64] = "int64",     [WEFT_UINT64] = "uint64",
    [WEFT_FLOAT16] = "float16",   [WEFT_BFLOAT16] = "bfloat16", [WEFT_FLOAT32] = "float32",
    [WEFT_FLOAT64] = "float64",
};

static const char *const op_names[WEFT_NUM_OPS] = {
    [WEFT_SUM] = "sum", [WEFT_PROD] = "prod", [WEFT_MIN] = "min",
    [WEFT_MAX] = "max", [WEFT_AVG] = "avg",
};

/* Enums may carry any int (a cast, a corrupted message): compare as unsigned so negative
 * values are out of range too. */
size_t weft_dtype_size(weft_dtype_t dtype)
{
    if ((unsigned)dtype >= WEFT_NUM_DTYPES)
        return 0;
    return dtype_sizes[dtype];
}

const char *weft_dtype_name(weft_dtype_t dtype)
{
    if ((unsigned)dtype >= WEFT_NUM_DTYPES)
        return "invalid";
    return dtype_names[dtype];
}

const char *weft_op_name(weft_op_t op)
{
    if ((unsigned)op >= WEFT_NUM_OPS)
        return "invalid";
    return op_names[op];
}

double weft_dtype_load(weft_dtype_t dtype, const void *buf, size_t i)
{
    switch (dtype) {
    case WEFT_INT8: return ((const int8_t *)buf)[i];
    case WEFT_UINT8: return ((const uint8_t *)buf)[i];
    case WEFT_INT32: return ((const int32_t *)buf)[i];
    case WEFT_UINT32: return ((const uint32_t *)buf)[i];
    case WEFT_INT64: return (double)((const int64_t *)buf)[i];
    case WEFT_UINT64: return (double)((const uint64_t *)buf)[i];
    case WEFT_FLOAT16: return weft_half_to_float(((const uint16_t *)buf)[i]);
    case WEFT_BFLOAT16: return weft_bf16_to_float(((const uint16_t *)buf)[i]);
    case WEFT_FLOAT32: return ((const float *)buf)[i];
    case WEFT_FLOAT64: return ((const double *)buf)[i];
    default: return NAN;
    }
}

void weft_dtype_store(weft_dtype_t dtype, void *buf, size_t i, double v)
{
    switch (dtype) {
    case WEFT_INT8: ((int8_t *)buf)[i] = (int8_t)v; break;
    case WEFT_UINT8: ((uint8_t *)buf)[i] = (uint8_t)v; break;
    case WEFT_INT32: ((int32_t *)buf)[i] = (int32_t)v; break;
    case WEFT_UINT32: ((uint32_t *)buf)[i] = (uint32_t)v; break;
    case WEFT_INT64: ((int64_t *)buf)[i] = (int64_t)v; break;
    case WEFT_UINT64: ((uint64_t *)buf)[i] = (uint64_t)v; break;
    case WEFT_FLOAT16: ((uint16_t *)buf)[i] = weft_float_to_half((float)v); break;
    case WEFT_BFLOAT16: ((uint16_t *)buf)[i] = weft_float_to_bf16((float)v); break;
    case WEFT_FLOAT32: ((float *)buf)[i] = (float)v; break;
    case WEFT_FLOAT64: ((double *)buf)[i] = v; break;
    default: break;
    }
}
