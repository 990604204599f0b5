/*
 * test_host_order.c - the ring order by host (collectives/host_order.c): block, cyclic and
 * irregular placements give host-contiguous rings that cross hosts once per host, ranks in
 * order within a host; trees and chains numbered in that order (weft_coll_vrank/vpeer) cross
 * hosts once where rank order crosses at every other edge; and WEFT_BIND's CPU list parser.
 */
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "collectives/coll_internal.h"
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

/* Host crossings of the binomial tree and of the chain from `root` over n ranks placed by
 * host_of, numbered in host order when `by_host`, else in rank order. */
static void tree_crossings(const int *host_of, int n, int root, bool by_host, int *tree,
                           int *chain)
{
    int ring[64], pos_of[64];
    weft_host_order(host_of, n, ring);
    for (int i = 0; i < n; i++) {
        if (!by_host)
            ring[i] = i;
        pos_of[ring[i]] = i;
    }
    struct weft_coll_groups g = {.ring = ring, .pos_of = pos_of};
    struct weft_coll_ctx ctx = {.nranks = n, .groups = &g};
    *tree = *chain = 0;
    for (int r = 0; r < n; r++) {
        g.ring_pos = pos_of[r];
        const int v = weft_coll_vrank(&ctx, root);
        if (v == 0)
            continue;
        const int parent = weft_coll_vpeer(&ctx, root, v & (v - 1)); /* lowest bit cleared */
        const int prev = weft_coll_vpeer(&ctx, root, v - 1);
        *tree += host_of[parent] != host_of[r];
        *chain += host_of[prev] != host_of[r];
    }
}

static void test_trees_by_host(void **state)
{
    (void)state;
    /* srun --distribution=cyclic over 2 nodes, 4 ranks each */
    const int host_of[] = {0, 1, 0, 1, 0, 1, 0, 1};
    int tree, chain;
    tree_crossings(host_of, 8, 0, true, &tree, &chain);
    assert_int_equal(tree, 1);
    assert_int_equal(chain, 1);
    tree_crossings(host_of, 8, 0, false, &tree, &chain);
    assert_int_equal(tree, 4);
    assert_int_equal(chain, 7);
    /* a root inside its host: the chain wraps round once more, the tree stays local-first */
    tree_crossings(host_of, 8, 3, true, &tree, &chain);
    assert_true(tree <= 3);
    assert_int_equal(chain, 2);
    /* ranks placed by host: the same numbering as rank order */
    const int block[] = {0, 0, 0, 0, 1, 1, 1, 1};
    int t2, c2;
    tree_crossings(block, 8, 5, true, &tree, &chain);
    tree_crossings(block, 8, 5, false, &t2, &c2);
    assert_int_equal(tree, t2);
    assert_int_equal(chain, c2);
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
        cmocka_unit_test(test_trees_by_host),
        cmocka_unit_test(test_cpu_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
