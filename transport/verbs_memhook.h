/*
 * verbs_memhook.h - tells the verbs registration cache which address ranges the process gave
 * back to the kernel (munmap, and free/madvise/brk through them), so that a cached
 * registration of freed and reused memory is dropped instead of handed out stale.
 */
#ifndef WEFT_VERBS_MEMHOOK_H
#define WEFT_VERBS_MEMHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft.h"

struct weft_memhook;

/* Starts watching (UCX's libucm memory events, mmap hooks only, not its malloc hooks) and
 * checks that they work here: a free() of a large malloc() and a munmap() must both be
 * seen. WEFT_ERR_UNSUPPORTED with the reason in `why` when they are not (built without UCX,
 * UCX_MEM_MMAP_HOOK_MODE=none, an allocator that unmaps behind libc, e.g. a sanitizer's):
 * the cache must then stay off. */
weft_result_t weft_memhook_open(struct weft_memhook **out, char *why, size_t why_len);
void weft_memhook_close(struct weft_memhook *h);

/* Calls released(arg, start, end) for each range [start, end) given back since the last
 * drain, in no particular order; (0, UINTPTR_MAX) once when too many piled up to keep. */
void weft_memhook_drain(struct weft_memhook *h,
                        void (*released)(void *arg, uintptr_t start, uintptr_t end), void *arg);

#endif /* WEFT_VERBS_MEMHOOK_H */
