/*
 * test_verbs_wrid.c - the verbs work request ids: the per-peer send counter wraps within its
 * field and never reaches the rank bits; decoding recovers the rank and the full counter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "transport/verbs_wrid.h"

static const int ranks[] = {0, 1, 2, 255, 4097, WEFT_VERBS_WR_MAX_RANK};

/* Counters around the wrap of the 38-bit field, and far past it (2^63 work requests). */
static void test_send_wrap(void **state)
{
    (void)state;
    const uint64_t wrap = WEFT_VERBS_WR_COUNT_MASK + 1;
    const uint64_t counts[] = {1, 2, wrap - 2, wrap - 1, wrap, wrap + 1, 3 * wrap - 1,
                               3 * wrap, (1ull << 63) + 5};
    for (size_t r = 0; r < sizeof(ranks) / sizeof(ranks[0]); r++)
        for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
            const uint64_t n = counts[c];
            for (int qp = 0; qp < WEFT_VERBS_WR_MAX_QPS; qp++) {
                const uint64_t id = weft_verbs_wrid_send(ranks[r], qp, n);
                assert_false(weft_verbs_wrid_is_recv(id));
                assert_int_equal(weft_verbs_wrid_rank(id), ranks[r]);
                assert_int_equal(weft_verbs_wrid_qp(id), qp);
                /* decoded against the last completed counter, up to a send queue's depth
                 * behind */
                assert_true(weft_verbs_wrid_count(id, n - 1) == n);
                assert_true(weft_verbs_wrid_count(id, n - 1000) == n);
                assert_true(weft_verbs_wrid_count(id, n) == n); /* never behind `done` */
            }
        }
}

/* Consecutive ids across the wrap: same rank, counter keeps increasing. */
static void test_send_sequence(void **state)
{
    (void)state;
    const uint64_t start = WEFT_VERBS_WR_COUNT_MASK - 40;
    uint64_t done = start;
    for (uint64_t n = start + 1; n < start + 100; n++) {
        const uint64_t id = weft_verbs_wrid_send(7, 3, n);
        assert_true((id >> WEFT_VERBS_WR_RANK_SHIFT) == 7);
        assert_int_equal(weft_verbs_wrid_qp(id), 3);
        const uint64_t got = weft_verbs_wrid_count(id, done);
        assert_true(got == n);
        done = got;
    }
    assert_true(done > WEFT_VERBS_WR_COUNT_MASK);
}

static void test_recv(void **state)
{
    (void)state;
    for (size_t r = 0; r < sizeof(ranks) / sizeof(ranks[0]); r++) {
        const uint64_t id = weft_verbs_wrid_recv(ranks[r]);
        assert_true(weft_verbs_wrid_is_recv(id));
        assert_int_equal(weft_verbs_wrid_rank(id), ranks[r]);
    }
    /* a send's id never looks like a receive, whatever its counter */
    assert_false(weft_verbs_wrid_is_recv(weft_verbs_wrid_send(WEFT_VERBS_WR_MAX_RANK, WEFT_VERBS_WR_MAX_QPS - 1, UINT64_MAX)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_wrap),
        cmocka_unit_test(test_send_sequence),
        cmocka_unit_test(test_recv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
