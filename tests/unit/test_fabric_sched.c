/*
 * test_fabric_sched.c - the fabric schedule: every pair exactly once, no node twice in a
 * round, n-1 rounds for even n and n (one bye each) for odd n.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "perftest/fabric_sched.h"

static void check_n(int n)
{
    int rounds = perf_fabric_rounds(n);
    assert_int_equal(rounds, n < 2 ? 0 : n % 2 == 0 ? n - 1 : n);
    int *met = calloc((size_t)(n * n), sizeof(int));
    int *byes = calloc((size_t)n, sizeof(int));
    int *pairs = calloc((size_t)n + 1, sizeof(int));
    assert_non_null(met);
    int total = 0;
    for (int r = 0; r < rounds; r++) {
        int *busy = calloc((size_t)n, sizeof(int));
        int k = perf_fabric_round(n, r, pairs);
        assert_int_equal(k, n / 2);
        for (int i = 0; i < k; i++) {
            int a = pairs[2 * i], b = pairs[2 * i + 1];
            assert_true(a >= 0 && a < b && b < n);
            assert_int_equal(busy[a]++, 0);
            assert_int_equal(busy[b]++, 0);
            met[a * n + b]++;
        }
        for (int i = 0; i < n; i++)
            byes[i] += busy[i] == 0;
        free(busy);
        total += k;
    }
    assert_int_equal(total, n * (n - 1) / 2);
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++)
            assert_int_equal(met[a * n + b], 1);
    for (int i = 0; i < n && n >= 2; i++)
        assert_int_equal(byes[i], n % 2); /* odd: each node rests exactly once */
    assert_int_equal(perf_fabric_round(n, rounds, pairs), 0);
    free(met);
    free(byes);
    free(pairs);
}

static void test_small(void **state)
{
    (void)state;
    for (int n = 0; n <= 9; n++)
        check_n(n);
}

static void test_large(void **state)
{
    (void)state;
    check_n(64);
    check_n(257);
}

static void test_four(void **state)
{
    (void)state;
    int pairs[4];
    assert_int_equal(perf_fabric_rounds(4), 3);
    /* round 0 of 4: slots 0 1 2 3 hold 0 1 2 3: 0-3 and 1-2 */
    assert_int_equal(perf_fabric_round(4, 0, pairs), 2);
    assert_int_equal(pairs[0], 0);
    assert_int_equal(pairs[1], 3);
    assert_int_equal(pairs[2], 1);
    assert_int_equal(pairs[3], 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small),
        cmocka_unit_test(test_large),
        cmocka_unit_test(test_four),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
