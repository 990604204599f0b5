/*
 * kernels.h - the launchers of the device kernels: gpu/reduce_kernels.cu and
 * gpu/ipc_kernels.cu, or, in the fake-CUDA build, tests/fakecuda/kernels.c. They only enqueue
 * on `stream` (a cudaStream_t), leaving a launch error for cudaGetLastError; gpu/kernels.c
 * checks the arguments before and reports after (weft_gpu_reduce_n, weft_gpu_avg_finish).
 */
#ifndef WEFT_GPU_KERNELS_H
#define WEFT_GPU_KERNELS_H

#include <stddef.h>

#include "weft.h"

/* Inputs of one launch at most; weft_gpu_reduce_n chains launches for more. */
#define WEFT_GPU_REDUCE_MAX_SRCS 8

/* dst = src[0] op ... op src[nsrc-1] over count > 0 elements; 1 <= nsrc <=
 * WEFT_GPU_REDUCE_MAX_SRCS, valid dtype and op, aligned non-NULL buffers. */
void weft_gpu_reduce_launch(void *dst, const void *const *src, int nsrc, size_t count,
                            weft_dtype_t dtype, weft_op_t op, void *stream);
/* buf /= nranks over count > 0 elements; valid dtype, nranks > 1. */
void weft_gpu_avg_launch(void *buf, size_t count, weft_dtype_t dtype, int nranks, void *stream);

#endif /* WEFT_GPU_KERNELS_H */
