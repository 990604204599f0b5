/*
 * verbs_memhook.c - memory release events for the verbs registration cache, from libucm
 * (UCX), whose mmap hooks patch munmap, mremap, madvise, brk and shmdt in libc itself.
 *
 * The callback runs inside the caller's munmap, in any thread, and must not allocate: it
 * appends the range to a fixed array under a spinlock (or marks an overflow), and the cache
 * drains the array before each lookup. Nobody waits on that lock while doing anything that
 * could unmap memory, so the callback cannot deadlock against the drain.
 */
#include "transport/verbs_memhook.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/error.h"

#define MEMHOOK_RANGES 256

struct weft_memhook {
    atomic_flag lock;
    unsigned n;
    bool overflow;
    uintptr_t start[MEMHOOK_RANGES], end[MEMHOOK_RANGES];
};

static void lock(struct weft_memhook *h)
{
    while (atomic_flag_test_and_set_explicit(&h->lock, memory_order_acquire))
        ;
}

static void unlock(struct weft_memhook *h)
{
    atomic_flag_clear_explicit(&h->lock, memory_order_release);
}

static void record(struct weft_memhook *h, uintptr_t start, size_t len)
{
    if (len == 0)
        return;
    lock(h);
    if (h->n < MEMHOOK_RANGES) {
        h->start[h->n] = start;
        h->end[h->n] = start + len;
        h->n++;
    } else {
        h->overflow = true;
    }
    unlock(h);
}

void weft_memhook_drain(struct weft_memhook *h,
                        void (*released)(void *arg, uintptr_t start, uintptr_t end), void *arg)
{
    uintptr_t start[MEMHOOK_RANGES], end[MEMHOOK_RANGES];
    lock(h);
    const unsigned n = h->n;
    const bool overflow = h->overflow;
    memcpy(start, h->start, n * sizeof(start[0]));
    memcpy(end, h->end, n * sizeof(end[0]));
    h->n = 0;
    h->overflow = false;
    unlock(h);
    /* outside the lock: what the caller does may unmap memory, which calls record() */
    if (overflow) {
        released(arg, 0, UINTPTR_MAX);
        return;
    }
    for (unsigned i = 0; i < n; i++)
        released(arg, start[i], end[i]);
}

/* Whether a range containing [start, start+len) is pending (the self-test). */
static bool pending(struct weft_memhook *h, uintptr_t start, size_t len)
{
    bool seen = false;
    lock(h);
    for (unsigned i = 0; i < h->n && !seen; i++)
        seen = h->start[i] <= start && start + len <= h->end[i];
    seen |= h->overflow;
    h->n = 0;
    h->overflow = false;
    unlock(h);
    return seen;
}

#ifdef WEFT_HAVE_UCX
#include <pthread.h>
#include <ucm/api/ucm.h>

static void on_event(ucm_event_type_t type, ucm_event_t *event, void *arg)
{
    if (type == UCM_EVENT_VM_UNMAPPED)
        record(arg, (uintptr_t)event->vm_unmapped.address, event->vm_unmapped.size);
}

/* UCM's malloc hooks would replace the application's allocator (and fight a sanitizer's);
 * its mmap hooks are enough where they patch libc's own functions (the self-test says). */
static void no_malloc_hooks(void)
{
    ucm_global_opts.enable_malloc_hooks = 0;
    ucm_global_opts.enable_malloc_reloc = 0;
}

weft_result_t weft_memhook_open(struct weft_memhook **out, char *why, size_t why_len)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, no_malloc_hooks);
    struct weft_memhook *h = calloc(1, sizeof(*h));
    if (!h)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "memory hook state");
    atomic_flag_clear(&h->lock);
    ucs_status_t st = ucm_set_event_handler(UCM_EVENT_VM_UNMAPPED, -1, on_event, h);
    if (st != UCS_OK) {
        snprintf(why, why_len, "libucm cannot install its memory hooks (%s; "
                 "UCX_MEM_MMAP_HOOK_MODE=%s)", ucs_status_string(st),
                 getenv("UCX_MEM_MMAP_HOOK_MODE") ? getenv("UCX_MEM_MMAP_HOOK_MODE") : "unset");
        free(h);
        return WEFT_ERR_UNSUPPORTED;
    }
    /* A direct munmap, and a free() of a block glibc maps on its own (above its largest
     * dynamic mmap threshold, 32 MiB, so that the free does not move the threshold). */
    const size_t page = 4096, big = (size_t)40 << 20;
    void *p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    bool mapped_seen = false, freed_seen = false;
    if (p != MAP_FAILED) {
        munmap(p, page);
        mapped_seen = pending(h, (uintptr_t)p, page);
    }
    char *q = malloc(big);
    if (q) {
        const uintptr_t at = (uintptr_t)q;
        free(q);
        freed_seen = pending(h, at, big);
    }
    if (!mapped_seen || !freed_seen) {
        snprintf(why, why_len, "libucm's memory events miss %s (an allocator or hook mode that "
                 "bypasses libc's munmap, e.g. a sanitizer's)",
                 !mapped_seen ? "munmap()" : "free() of a large block");
        weft_memhook_close(h);
        return WEFT_ERR_UNSUPPORTED;
    }
    *out = h;
    return WEFT_OK;
}

void weft_memhook_close(struct weft_memhook *h)
{
    if (!h)
        return;
    ucm_unset_event_handler(UCM_EVENT_VM_UNMAPPED, on_event, h);
    free(h);
}
#else
weft_result_t weft_memhook_open(struct weft_memhook **out, char *why, size_t why_len)
{
    (void)out;
    (void)pending;
    (void)record;
    snprintf(why, why_len, "built without UCX, whose libucm provides the memory hooks");
    return WEFT_ERR_UNSUPPORTED;
}

void weft_memhook_close(struct weft_memhook *h)
{
    free(h);
}
#endif
