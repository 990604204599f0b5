/*
 * test_ipc_cache.c - the per-peer cache of opened CUDA IPC handles, driven by a fake opener
 * that records every open and close: hits, misses, least-recently-used eviction, failed opens,
 * everything closed on destroy, and the same handle bytes from two peers kept apart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "gpu/ipc.h"

/* The fake maps handle h of peer p at 0x1000 * (p + 1) + 0x10 * h.bytes[0] + its open count,
 * so that a reopened handle gets a different address. */
struct fake {
    int opens, closes;
    int fail_next; /* the next open fails */
    struct {
        int peer;
        uintptr_t base;
    } closed[64];
};

static weft_result_t fake_open(void *ctx, int peer, const struct weft_ipc_handle *h, void **base)
{
    struct fake *f = ctx;
    if (f->fail_next) {
        f->fail_next = 0;
        return WEFT_ERROR(WEFT_ERR_UNSUPPORTED, "fake open of peer %d refused", peer);
    }
    f->opens++;
    *base = (void *)(uintptr_t)(0x1000u * (unsigned)(peer + 1) + 0x10u * h->bytes[0] +
                                (unsigned)f->opens * 0x100000u);
    return WEFT_OK;
}

static void fake_close(void *ctx, int peer, void *base)
{
    struct fake *f = ctx;
    if (f->closes < 64) {
        f->closed[f->closes].peer = peer;
        f->closed[f->closes].base = (uintptr_t)base;
    }
    f->closes++;
}

static struct weft_ipc_handle handle(unsigned char tag)
{
    struct weft_ipc_handle h;
    memset(&h, 0xa5, sizeof(h));
    h.bytes[0] = tag;
    h.bytes[WEFT_IPC_HANDLE_BYTES - 1] = (unsigned char)(tag ^ 0x5a); /* whole handle compared */
    return h;
}

static void *get(struct weft_ipc_cache *c, int peer, unsigned char tag)
{
    const struct weft_ipc_handle h = handle(tag);
    void *base = NULL;
    assert_int_equal(weft_ipc_cache_get(c, peer, &h, &base), WEFT_OK);
    assert_non_null(base);
    return base;
}

static struct weft_ipc_cache *make(struct fake *f, int npeers, size_t per_peer)
{
    memset(f, 0, sizeof(*f));
    const struct weft_ipc_opener op = {f, fake_open, fake_close};
    struct weft_ipc_cache *c = NULL;
    assert_int_equal(weft_ipc_cache_create(npeers, per_peer, &op, &c), WEFT_OK);
    return c;
}

static void test_hit_and_miss(void **state)
{
    (void)state;
    struct fake f;
    struct weft_ipc_cache *c = make(&f, 3, 4);
    void *a = get(c, 1, 7);
    assert_int_equal(f.opens, 1);
    assert_ptr_equal(get(c, 1, 7), a); /* hit: no second open */
    assert_int_equal(f.opens, 1);
    void *b = get(c, 1, 8);
    assert_int_equal(f.opens, 2);
    assert_ptr_not_equal(a, b);
    /* Differs only in the last byte: another allocation. */
    struct weft_ipc_handle h = handle(7);
    h.bytes[WEFT_IPC_HANDLE_BYTES - 1] ^= 1;
    void *other = NULL;
    assert_int_equal(weft_ipc_cache_get(c, 1, &h, &other), WEFT_OK);
    assert_int_equal(f.opens, 3);
    assert_int_equal(weft_ipc_cache_count(c, 1), 3);
    assert_int_equal(weft_ipc_cache_count(c, 0), 0);
    assert_int_equal(f.closes, 0);
    weft_ipc_cache_destroy(c);
    assert_int_equal(f.closes, 3);
}

static void test_lru_eviction(void **state)
{
    (void)state;
    struct fake f;
    struct weft_ipc_cache *c = make(&f, 2, 3);
    void *a = get(c, 0, 1), *b = get(c, 0, 2), *cc = get(c, 0, 3);
    (void)cc;
    assert_ptr_equal(get(c, 0, 1), a); /* 1 is now the most recent: 2 is the oldest */
    get(c, 0, 4);
    assert_int_equal(f.closes, 1);
    assert_int_equal(f.closed[0].peer, 0);
    assert_int_equal(f.closed[0].base, (uintptr_t)b);
    assert_int_equal(weft_ipc_cache_count(c, 0), 3);
    /* 2 again: a miss that reopens it (new address) and evicts 3, now the oldest. */
    const int opens = f.opens;
    void *b2 = get(c, 0, 2);
    assert_int_equal(f.opens, opens + 1);
    assert_ptr_not_equal(b2, b);
    assert_int_equal(f.closes, 2);
    assert_int_equal(f.closed[1].base, (uintptr_t)cc);
    /* Peer 1's mappings are its own: filling it evicts nothing of peer 0. */
    get(c, 1, 1);
    get(c, 1, 2);
    get(c, 1, 3);
    assert_int_equal(f.closes, 2);
    assert_ptr_equal(get(c, 0, 1), a);
    weft_ipc_cache_destroy(c);
    assert_int_equal(f.closes, 2 + 3 + 3);
}

static void test_minimum_two(void **state)
{
    (void)state;
    struct fake f;
    struct weft_ipc_cache *c = make(&f, 1, 1); /* an operation maps a send and a recv */
    void *a = get(c, 0, 1), *b = get(c, 0, 2);
    assert_int_equal(f.closes, 0);
    assert_ptr_equal(get(c, 0, 1), a);
    assert_ptr_equal(get(c, 0, 2), b);
    get(c, 0, 3);
    assert_int_equal(f.closes, 1);
    assert_int_equal(f.closed[0].base, (uintptr_t)a);
    weft_ipc_cache_destroy(c);
    assert_int_equal(f.closes, 3);
}

static void test_failed_open(void **state)
{
    (void)state;
    struct fake f;
    struct weft_ipc_cache *c = make(&f, 2, 2);
    void *a = get(c, 1, 1), *b = get(c, 1, 2);
    f.fail_next = 1;
    const struct weft_ipc_handle h = handle(3);
    void *out = (void *)0x1;
    weft_error_clear();
    assert_int_equal(weft_ipc_cache_get(c, 1, &h, &out), WEFT_ERR_UNSUPPORTED);
    assert_ptr_equal(out, (void *)0x1); /* no output on failure */
    assert_non_null(strstr(weft_last_error(), "refused"));
    assert_int_equal(f.closes, 0); /* nothing evicted for an open that failed */
    assert_ptr_equal(get(c, 1, 1), a);
    assert_ptr_equal(get(c, 1, 2), b);
    assert_int_equal(weft_ipc_cache_get(c, 2, &h, &out), WEFT_ERR_INVALID_ARG);
    assert_int_equal(weft_ipc_cache_get(c, -1, &h, &out), WEFT_ERR_INVALID_ARG);
    weft_ipc_cache_destroy(c);
    assert_int_equal(f.closes, 2);
}

static void test_same_handle_two_peers(void **state)
{
    (void)state;
    struct fake f;
    struct weft_ipc_cache *c = make(&f, 3, 2);
    void *p0 = get(c, 0, 9), *p2 = get(c, 2, 9);
    assert_int_equal(f.opens, 2); /* one mapping per peer, not shared */
    assert_ptr_not_equal(p0, p2);
    assert_ptr_equal(get(c, 0, 9), p0);
    assert_ptr_equal(get(c, 2, 9), p2);
    assert_int_equal(f.opens, 2);
    weft_ipc_cache_destroy(c);
    assert_int_equal(f.closes, 2);
    /* each closed with its own peer */
    const int first0 = f.closed[0].peer == 0;
    assert_int_equal(f.closed[first0 ? 0 : 1].base, (uintptr_t)p0);
    assert_int_equal(f.closed[first0 ? 1 : 0].base, (uintptr_t)p2);
    assert_int_equal(f.closed[first0 ? 1 : 0].peer, 2);
}

static void test_bad_args(void **state)
{
    (void)state;
    struct fake f;
    memset(&f, 0, sizeof(f));
    const struct weft_ipc_opener op = {&f, fake_open, fake_close};
    const struct weft_ipc_opener no_close = {&f, fake_open, NULL};
    struct weft_ipc_cache *c = NULL;
    assert_int_equal(weft_ipc_cache_create(0, 4, &op, &c), WEFT_ERR_INVALID_ARG);
    assert_int_equal(weft_ipc_cache_create(2, 4, &no_close, &c), WEFT_ERR_INVALID_ARG);
    assert_null(c);
    weft_ipc_cache_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_and_miss),         cmocka_unit_test(test_lru_eviction),
        cmocka_unit_test(test_minimum_two),          cmocka_unit_test(test_failed_open),
        cmocka_unit_test(test_same_handle_two_peers), cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
