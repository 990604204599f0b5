/*
 * test_fabric_judge.c - fabric's verdict from synthetic matrices: one slow node flags exactly
 * its pairs and is blamed alone, a slow link names both ends, counters that rose blame a node.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "perftest/fabric.h"

#define N 4

static struct fab_opts opts(void)
{
    struct fab_opts o;
    memset(&o, 0, sizeof(o));
    o.threshold = 75.0;
    return o;
}

static void fill(double *bw, int n, double v)
{
    for (int i = 0; i < n * n; i++)
        bw[i] = i % (n + 1) == 0 ? NAN : v; /* the diagonal has no value */
}

static void test_slow_node(void **state)
{
    (void)state;
    struct fab_opts o = opts();
    struct fab_node nodes[N];
    double bw[N * N];
    memset(nodes, 0, sizeof(nodes));
    fill(bw, N, 10.0);
    /* node 2 slow both ways (tbf on its link) */
    for (int j = 0; j < N; j++) {
        if (j != 2) {
            bw[2 * N + j] = 0.05;
            bw[j * N + 2] = 0.05;
        }
    }
    struct perf_fab_findings fd;
    perf_fabric_judge(&o, N, bw, nodes, &fd);
    assert_int_equal(fd.nflagged, 3);
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            assert_int_equal(fd.flag[i * N + j], i == 2 || j == 2);
    for (int i = 0; i < N; i++)
        assert_int_equal(fd.bad[i], i == 2);
    assert_true(fd.cell[2 * N + 0] && fd.cell[0 * N + 2] && !fd.cell[0 * N + 1]);
    perf_fabric_findings_free(&fd);

    /* one direction only (tbf on the node's egress): the same pairs and node */
    fill(bw, N, 10.0);
    for (int j = 0; j < N; j++)
        if (j != 2)
            bw[2 * N + j] = 0.05;
    perf_fabric_judge(&o, N, bw, nodes, &fd);
    assert_int_equal(fd.nflagged, 3);
    for (int i = 0; i < N; i++)
        assert_int_equal(fd.bad[i], i == 2);
    perf_fabric_findings_free(&fd);
}

static void test_slow_link_and_healthy(void **state)
{
    (void)state;
    struct fab_opts o = opts();
    struct fab_node nodes[N];
    double bw[N * N];
    memset(nodes, 0, sizeof(nodes));
    fill(bw, N, 10.0);
    struct perf_fab_findings fd;
    perf_fabric_judge(&o, N, bw, nodes, &fd);
    assert_int_equal(fd.nflagged, 0);
    assert_float_equal(fd.median, 10.0, 1e-12);
    for (int i = 0; i < N; i++)
        assert_false(fd.bad[i]);
    perf_fabric_findings_free(&fd);
    /* just the 0-3 link: both its ends, nobody else */
    bw[0 * N + 3] = 1.0;
    perf_fabric_judge(&o, N, bw, nodes, &fd);
    assert_int_equal(fd.nflagged, 1);
    assert_true(fd.flag[0 * N + 3]);
    for (int i = 0; i < N; i++)
        assert_int_equal(fd.bad[i], i == 0 || i == 3);
    perf_fabric_findings_free(&fd);
    /* 7.6 of 10 is above 75 %: not flagged; 7.4 is */
    fill(bw, N, 10.0);
    bw[1 * N + 2] = 7.6;
    perf_fabric_judge(&o, N, bw, nodes, &fd);
    assert_int_equal(fd.nflagged, 0);
    perf_fabric_findings_free(&fd);
    bw[1 * N + 2] = 7.4;
    perf_fabric_judge(&o, N, bw, nodes, &fd);
    assert_int_equal(fd.nflagged, 1);
    perf_fabric_findings_free(&fd);
}

static void test_against_line_and_counters(void **state)
{
    (void)state;
    struct fab_opts o = opts();
    struct fab_node nodes[N];
    double bw[N * N];
    memset(nodes, 0, sizeof(nodes));
    fill(bw, N, 150.0);
    for (int i = 0; i < N; i++)
        nodes[i].line_gbits = 200.0; /* 4X HDR: 150 is 75 %, at the limit, not below */
    o.against_line = true;
    struct perf_fab_findings fd;
    perf_fabric_judge(&o, N, bw, nodes, &fd);
    assert_int_equal(fd.nflagged, 0);
    perf_fabric_findings_free(&fd);
    nodes[1].line_gbits = 100.0; /* an EDR node: pairs with it are judged against 100 */
    fill(bw, N, 140.0);
    perf_fabric_judge(&o, N, bw, nodes, &fd);
    assert_int_equal(fd.nflagged, 0 + 3); /* 140 < 150 for the HDR pairs */
    perf_fabric_findings_free(&fd);
    /* the median against itself never flags all; counters that rose blame their node */
    o.against_line = false;
    fill(bw, N, 140.0);
    nodes[3].before[1] = 4;
    nodes[3].after[1] = 5; /* link_downed rose */
    perf_fabric_judge(&o, N, bw, nodes, &fd);
    assert_int_equal(fd.nflagged, 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(fd.bad[i], i == 3);
        assert_int_equal(fd.errors[i], i == 3);
    }
    perf_fabric_findings_free(&fd);
}

/* Five nodes, node 0 slow with two of its four peers: exactly half is not "more than half",
 * so nobody is blamed for the majority and each slow pair names both of its ends. */
static void test_half_is_not_more(void **state)
{
    (void)state;
    struct fab_opts o = opts();
    struct fab_node nodes[5];
    double bw[25];
    memset(nodes, 0, sizeof(nodes));
    fill(bw, 5, 10.0);
    bw[0 * 5 + 1] = bw[0 * 5 + 2] = 1.0;
    struct perf_fab_findings fd;
    perf_fabric_judge(&o, 5, bw, nodes, &fd);
    assert_int_equal(fd.nflagged, 2);
    assert_int_equal(fd.slow[0], 2);
    for (int i = 0; i < 5; i++)
        assert_int_equal(fd.bad[i], i <= 2);
    perf_fabric_findings_free(&fd);
    bw[0 * 5 + 3] = 1.0; /* three of four: node 0 alone */
    perf_fabric_judge(&o, 5, bw, nodes, &fd);
    for (int i = 0; i < 5; i++)
        assert_int_equal(fd.bad[i], i == 0);
    perf_fabric_findings_free(&fd);
}

static void test_two_nodes(void **state)
{
    (void)state;
    struct fab_opts o = opts();
    struct fab_node nodes[2];
    double bw[4] = {NAN, 10.0, 1.0, NAN};
    memset(nodes, 0, sizeof(nodes));
    o.against_line = true;
    o.line_gbits = 100.0;
    nodes[0].line_gbits = nodes[1].line_gbits = 100.0;
    struct perf_fab_findings fd;
    perf_fabric_judge(&o, 2, bw, nodes, &fd);
    assert_int_equal(fd.nflagged, 1);
    assert_true(fd.bad[0] && fd.bad[1]); /* one pair: both ends named */
    perf_fabric_findings_free(&fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_node),
        cmocka_unit_test(test_slow_link_and_healthy),
        cmocka_unit_test(test_against_line_and_counters),
        cmocka_unit_test(test_half_is_not_more),
        cmocka_unit_test(test_two_nodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
