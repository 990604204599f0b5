/*
 * test_verbs_regcache.c - the verbs registration cache (transport/verbs_mr.c) and the memory
 * events that keep it correct (verbs_memhook.c), over a fake ibv_reg_mr/ibv_dereg_mr (linked
 * with --wrap) that records every registration: hits, least-recently-used eviction, and
 * above all free() or munmap() then a new allocation at the same address, which must get a
 * registration of its own instead of the stale one. With several rails (WEFT_IB_RAILS), one
 * registration per protection domain, shared by rails on one device.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "transport/verbs_memhook.h"

#ifdef WEFT_HAVE_VERBS
#include "transport/verbs_internal.h"

/* ---- the fake registration backend -------------------------------------------------------- */

static int regs, deregs, live;

struct ibv_mr *__wrap_ibv_reg_mr(struct ibv_pd *pd, void *addr, size_t length, int access);
int __wrap_ibv_dereg_mr(struct ibv_mr *mr);

struct ibv_mr *__wrap_ibv_reg_mr(struct ibv_pd *pd, void *addr, size_t length, int access)
{
    (void)pd;
    (void)access;
    struct ibv_mr *mr = calloc(1, sizeof(*mr));
    mr->addr = addr;
    mr->length = length;
    mr->lkey = mr->rkey = (uint32_t)++regs;
    live++;
    return mr;
}

int __wrap_ibv_dereg_mr(struct ibv_mr *mr)
{
    deregs++;
    live--;
    free(mr);
    return 0;
}

/* A transport context with only what verbs_mr.c reads, the cache on; with memory events
 * when `events` (skips the test when they do not work here). */
static struct weft_tp *make_tp(size_t max, int events)
{
    struct weft_tp *tp = calloc(1, sizeof(*tp));
    tp->nrails = 1; /* one port; the fake needs no protection domain */
    tp->reg_cache = true;
    tp->reg_cache_max = max;
    regs = deregs = live = 0;
    if (events) {
        char why[256];
        if (weft_memhook_open(&tp->memhook, why, sizeof(why)) != WEFT_OK) {
            printf("# skip - memory events: %s\n", why);
            free(tp);
            return NULL;
        }
    }
    return tp;
}

static void drop_tp(struct weft_tp *tp)
{
    weft_verbs_mr_fini(tp);
    assert_int_equal(live, 0); /* fini deregistered everything */
    free(tp);
}

/* get + put: the lkey of the registration that served [buf, buf+len) */
static uint32_t use(struct weft_tp *tp, void *buf, size_t len)
{
    struct verbs_mr *m;
    assert_int_equal(weft_verbs_mr_get(tp, buf, len, &m), WEFT_OK);
    assert_true((uintptr_t)buf >= m->start && (uintptr_t)buf + len <= m->start + m->len);
    const uint32_t key = m->mr->lkey;
    weft_verbs_mr_put(tp, m);
    return key;
}

static void test_hits_and_lru(void **state)
{
    (void)state;
    struct weft_tp *tp = make_tp(2, 0);
    static char a[8192], b[8192], c[8192];
    const uint32_t ka = use(tp, a, sizeof(a));
    assert_int_equal(use(tp, a, sizeof(a)), ka); /* hit */
    assert_int_equal(use(tp, a + 100, 1000), ka); /* inside it: hit */
    assert_int_equal(regs, 1);
    use(tp, b, sizeof(b));
    use(tp, a, sizeof(a)); /* a is now the most recently used */
    use(tp, c, sizeof(c)); /* beyond 2: b, the least recently used, goes */
    assert_int_equal(regs, 3);
    assert_int_equal(deregs, 1);
    assert_int_equal(use(tp, a, sizeof(a)), ka);
    assert_int_equal(regs, 3);
    use(tp, b, sizeof(b)); /* registered again */
    assert_int_equal(regs, 4);
    drop_tp(tp);
}

/* Three rails: two on one device (one protection domain), one on another. A buffer gets one
 * registration per protection domain, each rail the key of its own, and a cache hit serves
 * every rail; dropping it deregisters each once. */
static void test_rails(void **state)
{
    (void)state;
    struct weft_tp *tp = make_tp(2, 0);
    struct ibv_pd *pd_a = (struct ibv_pd *)(uintptr_t)0x1000, *pd_b = (struct ibv_pd *)(uintptr_t)0x2000;
    tp->nrails = 3;
    tp->rails[0].pd = pd_a;
    tp->rails[1].pd = pd_b;
    tp->rails[2].pd = pd_a;
    static char a[8192], b[8192], c[8192];
    struct verbs_mr *m;
    assert_int_equal(weft_verbs_mr_get(tp, a, sizeof(a), &m), WEFT_OK);
    assert_int_equal(regs, 2);
    assert_ptr_equal(m->mr, m->rail_mr[0]);
    assert_ptr_equal(m->rail_mr[2], m->rail_mr[0]);
    assert_ptr_not_equal(m->rail_mr[1], m->rail_mr[0]);
    assert_true(m->rail_mr[1]->rkey != m->rail_mr[0]->rkey);
    weft_verbs_mr_put(tp, m);
    assert_int_equal(use(tp, a, sizeof(a)), m->rail_mr[0]->lkey); /* hit: nothing new */
    assert_int_equal(regs, 2);
    use(tp, b, sizeof(b));
    use(tp, c, sizeof(c)); /* beyond 2: a goes, both of its registrations */
    assert_int_equal(regs, 6);
    assert_int_equal(deregs, 2);
    drop_tp(tp);
    assert_int_equal(deregs, 6);
}

/* free() of a block glibc mapped on its own, then malloc() of the same size: usually the same
 * address, new pages. The cache must register again and drop the stale registration. */
static void test_free_then_reuse(void **state)
{
    (void)state;
    struct weft_tp *tp = make_tp(8, 1);
    if (!tp)
        skip();
    const size_t big = (size_t)48 << 20; /* above glibc's largest mmap threshold */
    int same_address = 0;
    for (int round = 0; round < 3; round++) {
        char *p = malloc(big);
        assert_non_null(p);
        memset(p, round + 1, 4096);
        const uint32_t k1 = use(tp, p, big);
        const int before = regs;
        assert_int_equal(use(tp, p, big), k1); /* still mapped: a hit */
        assert_int_equal(regs, before);
        const uintptr_t old = (uintptr_t)p;
        free(p);
        char *q = malloc(big);
        assert_non_null(q);
        same_address += (uintptr_t)q == old;
        const uint32_t k2 = use(tp, q, big);
        assert_int_not_equal(k2, k1);       /* never the stale registration */
        assert_int_equal(regs, before + 1); /* a new one */
        free(q);
    }
    printf("# free/malloc reused the address in %d of 3 rounds\n", same_address);
    /* the released ranges' registrations were dropped, not kept until fini */
    assert_true(deregs >= 3);
    drop_tp(tp);
}

/* munmap of part of a cached range, and madvise(MADV_DONTNEED), which gives the pages back
 * too: both drop the registration. A smaller new mapping at the same address is registered
 * with its own size. */
static void test_munmap_and_madvise(void **state)
{
    (void)state;
    struct weft_tp *tp = make_tp(8, 1);
    if (!tp)
        skip();
    const size_t len = 16 * 4096;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    const uint32_t k1 = use(tp, p, len);
    assert_int_equal(use(tp, p, len), k1);
    assert_int_equal(madvise(p + 4096, 4096, MADV_DONTNEED), 0);
    const uint32_t k2 = use(tp, p, len);
    assert_int_not_equal(k2, k1);
    assert_int_equal(regs, 2);
    assert_int_equal(deregs, 1);
    assert_int_equal(munmap(p, len), 0);
    char *q = mmap(p, len / 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(q != MAP_FAILED);
    const uint32_t k3 = use(tp, q, len / 2);
    assert_int_not_equal(k3, k2);
    assert_int_equal(regs, 3);
    munmap(q, len / 2);
    drop_tp(tp);
}

/* A registration in use when its memory goes stays with its request, then goes. */
static void test_released_while_in_use(void **state)
{
    (void)state;
    struct weft_tp *tp = make_tp(8, 1);
    if (!tp)
        skip();
    const size_t len = 4 * 4096;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    struct verbs_mr *m;
    assert_int_equal(weft_verbs_mr_get(tp, p, len, &m), WEFT_OK);
    munmap(p, len);
    static char other[64];
    use(tp, other, sizeof(other)); /* a lookup drains the events */
    assert_int_equal(deregs, 0);   /* still referenced */
    assert_false(m->cached);
    weft_verbs_mr_put(tp, m);
    assert_int_equal(deregs, 1);
    drop_tp(tp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hits_and_lru),
        cmocka_unit_test(test_rails),
        cmocka_unit_test(test_free_then_reuse),
        cmocka_unit_test(test_munmap_and_madvise),
        cmocka_unit_test(test_released_while_in_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
#else
int main(void)
{
    printf("skip: built without libibverbs: no verbs registration cache to test\n");
    return 77;
}
#endif
