/*
 * dtype.c - element sizes and printable names of the public datatypes and reduction ops.
 * Invalid values give size 0 and the name "invalid" rather than failing.
 */
#include "weft.h"

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
