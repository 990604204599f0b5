/*
 * reduce.h - host reduction kernels for every dtype x op. float16 and bfloat16 are computed
 * in float and rounded to nearest-even on store. Loops are written so gcc/clang vectorise.
 */
#ifndef WEFT_CORE_REDUCE_H
#define WEFT_CORE_REDUCE_H

#include <stddef.h>
#include <stdint.h>

#include "weft.h"

/* dst[i] = a[i] op b[i] for i < count. dst may alias a or b exactly (not partially).
 * (Named _local because weft_reduce is the public collective in weft.h.)
 * WEFT_AVG reduces as WEFT_SUM; finish with weft_reduce_avg_finish. Operand order is kept
 * (a op b), so every rank that reduces the same operands gets the same bits. */
void weft_reduce_local(void *dst, const void *a, const void *b, size_t count, weft_dtype_t dtype,
                       weft_op_t op);
/* buf[i] /= nranks: the last step of WEFT_AVG (integers truncate toward zero). The sum before
 * it wraps in the element type; the collectives avoid that for 8-bit types (above). */
void weft_reduce_avg_finish(void *buf, size_t count, weft_dtype_t dtype, int nranks);

/* int8/uint8 AVG in a wider type (dtype is WEFT_INT8 or WEFT_UINT8): dst[i] = src[i] as
 * int32; then dst[i] = sum[i] / nranks, truncated toward zero, which always fits. */
void weft_reduce_widen_i32(int32_t *dst, const void *src, weft_dtype_t dtype, size_t count);
void weft_reduce_avg_narrow_i32(void *dst, weft_dtype_t dtype, const int32_t *sum, size_t count,
                                int nranks);

/* float16 / bfloat16 conversions, round to nearest even, NaN preserved. */
float weft_half_to_float(uint16_t h);
uint16_t weft_float_to_half(float f);
float weft_bf16_to_float(uint16_t b);
uint16_t weft_float_to_bf16(float f);

#endif /* WEFT_CORE_REDUCE_H */
