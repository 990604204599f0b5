/*
 * dtype.h - element access in any dtype through double, for checks and test patterns (not
 * for hot paths: the kernels in reduce.h work on whole arrays).
 */
#ifndef WEFT_CORE_DTYPE_H
#define WEFT_CORE_DTYPE_H

#include <stddef.h>

#include "weft.h"

/* Element i of buf as a double (64-bit integers beyond 2^53 round). NaN for a bad dtype. */
double weft_dtype_load(weft_dtype_t dtype, const void *buf, size_t i);
/* Stores v as element i: integers convert as C casts do, float16/bfloat16 round to nearest
 * even. A bad dtype stores nothing. */
void weft_dtype_store(weft_dtype_t dtype, void *buf, size_t i, double v);

#endif /* WEFT_CORE_DTYPE_H */
