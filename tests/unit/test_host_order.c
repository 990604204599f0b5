/*
 * test_host_order.c - the ring order by host (collectives/host_order.c): block, cyclic and
 * irregular placements give host-contiguous rings that cross hosts once per host, ranks in
 * order within a host; and WEFT_BIND's CPU list parser.
 */
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "collectives/host_order.h"
#include "core/topo.h"

static void check_order(const int *host_of, int n, const int *want, int want_crossings)
{
    int order[64];
    assert_int_equal(weft_host_order(host_of, n, order), want_crossings);
    assert_memory_equal(order, want, (size_t)n * sizeof(int));
}

static void test_block(void **state)
{
    (void)state;
    const int host_of[] = {0, 0, 1, 1, 2, 2};
    const int want[] = {0, 1, 2, 3, 4, 5};
    check_order(host_of, 6, want, 3);
}

static void test_cyclic(void **state)
{
    (void)state;
    /* srun --distribution=cyclic: rank r on node r % 3; rank order would cross every hop */
    const int host_of[] = {0, 1, 2, 0, 1, 2, 0, 1, 2};
    const int want[] = {0, 3, 6, 1, 4, 7, 2, 5, 8};
    check_order(host_of, 9, want, 3);
}

static void test_irregular(void **state)
{
    (void)state;
    const int host_of[] = {0, 1, 0, 0, 2, 1, 2};
    const int want[] = {0, 2, 3, 1, 5, 4, 6};
    check_order(host_of, 7, want, 3);
}

static void test_one_host_and_one_rank(void **state)
{
    (void)state;
    const int one_host[] = {0, 0, 0, 0};
    const int want[] = {0, 1, 2, 3};
    check_order(one_host, 4, want, 0);
    const int single[] = {0};
    check_order(single, 1, want, 0);
    /* one rank per host: the ring is rank order and every hop crosses */
    const int spread[] = {0, 1, 2, 3};
    check_order(spread, 4, want, 4);
}

static void test_cpu_lists(void **state)
{
    (void)state;
    cpu_set_t set;
    char why[256];
    assert_int_equal(weft_topo_parse_cpus("0-2,5,7-8", &set, why, sizeof(why)), WEFT_OK);
    assert_int_equal(CPU_COUNT(&set), 6);
    assert_true(CPU_ISSET(0, &set) && CPU_ISSET(2, &set) && CPU_ISSET(5, &set));
    assert_false(CPU_ISSET(3, &set) || CPU_ISSET(6, &set));
    const char *bad[] = {"", "x", "1-", "3-1", "1,,2", "1,", "2;3", "-1", "100000"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        assert_int_equal(weft_topo_parse_cpus(bad[i], &set, why, sizeof(why)),
                         WEFT_ERR_INVALID_ARG);
        assert_true(why[0] != '\0');
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block),
        cmocka_unit_test(test_cyclic),
        cmocka_unit_test(test_irregular),
        cmocka_unit_test(test_one_host_and_one_rank),
        cmocka_unit_test(test_cpu_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
