/*
 * test_hostlist.c - Slurm host lists and tasks-per-node lists: every form Slurm writes, the
 * order scontrol show hostnames gives, and malformed input named with its position.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "launcher/hostlist.h"

/* Expands `expr` and compares with the space-separated `want`. */
static void expect_hosts(const char *expr, const char *want)
{
    struct weft_hostlist hl;
    char got[4096] = "";
    size_t off = 0;

    assert_int_equal(weft_hostlist_expand(expr, "TEST_NODELIST", &hl), WEFT_OK);
    for (size_t i = 0; i < hl.n; i++)
        off += (size_t)snprintf(got + off, sizeof(got) - off, "%s%s", i ? " " : "", hl.hosts[i]);
    weft_hostlist_free(&hl);
    assert_string_equal(got, want);
}

/* Expects a failure whose message names the variable, the expression and `pos`. */
static void expect_bad(const char *expr, size_t pos, const char *why)
{
    struct weft_hostlist hl = { (char **)1, 7 };
    char where[64];

    assert_int_equal(weft_hostlist_expand(expr, "TEST_NODELIST", &hl), WEFT_ERR_INVALID_ARG);
    assert_null(hl.hosts);
    assert_int_equal(hl.n, 0);
    const char *msg = weft_error_message();
    assert_non_null(strstr(msg, "TEST_NODELIST"));
    assert_non_null(strstr(msg, expr));
    snprintf(where, sizeof(where), "position %zu", pos);
    if (!strstr(msg, where) || !strstr(msg, why))
        fail_msg("\"%s\": message lacks \"%s\" / \"%s\": %s", expr, where, why, msg);
}

static void test_forms(void **state)
{
    (void)state;
    expect_hosts("n1", "n1");
    expect_hosts("n[1-3]", "n1 n2 n3");
    expect_hosts("n[5]", "n5");
    expect_hosts("dgx[0180-0189,0200]",
                 "dgx0180 dgx0181 dgx0182 dgx0183 dgx0184 dgx0185 dgx0186 dgx0187 dgx0188 "
                 "dgx0189 dgx0200");
    expect_hosts("n[1-3]-ib", "n1-ib n2-ib n3-ib");
    expect_hosts("a[1-2],b3", "a1 a2 b3");
    expect_hosts("rack[1-2]-n[01-02]", "rack1-n01 rack1-n02 rack2-n01 rack2-n02");
    expect_hosts("n[8-10]", "n8 n9 n10");
    expect_hosts("n[098-101]", "n098 n099 n100 n101");
    expect_hosts("[1-2]", "1 2");
    expect_hosts("node-a.ib,node-b.ib", "node-a.ib node-b.ib");
    expect_hosts("n[3,1,2]", "n3 n1 n2"); /* Slurm keeps the written order */
    expect_hosts("a,,b,", "a b");         /* empty items are skipped, as Slurm does */
}

static void test_large(void **state)
{
    (void)state;
    struct weft_hostlist hl;
    assert_int_equal(weft_hostlist_expand("c[0000-4095]", NULL, &hl), WEFT_OK);
    assert_int_equal(hl.n, 4096);
    assert_string_equal(hl.hosts[0], "c0000");
    assert_string_equal(hl.hosts[4095], "c4095");
    weft_hostlist_free(&hl);
    /* A typo that would make a billion names fails instead of eating memory. */
    assert_int_equal(weft_hostlist_expand("n[1-999999999]", NULL, &hl), WEFT_ERR_INVALID_ARG);
    assert_int_equal(weft_hostlist_expand("a[1-1024]b[1-1025]", NULL, &hl),
                     WEFT_ERR_INVALID_ARG);
}

static void test_errors(void **state)
{
    (void)state;
    expect_bad("n[1-", 4, "unterminated");
    expect_bad("n[3-1]", 2, "descending");
    expect_bad("n[a-b]", 2, "expected a number");
    expect_bad("n[1-b]", 4, "expected a number");
    expect_bad("n1]", 2, "without");
    expect_bad("n[[1]]", 2, "expected a number");
    expect_bad("n[1-3", 5, "unterminated");
    expect_bad("n[1;3]", 3, "expected");
    expect_bad("n[]", 2, "expected a number");
    expect_bad("n 1", 1, "unexpected character");
    expect_bad(",", 0, "no host");
    struct weft_hostlist hl;
    assert_int_equal(weft_hostlist_expand("", "X", &hl), WEFT_ERR_INVALID_ARG);
    assert_int_equal(weft_hostlist_expand(NULL, "X", &hl), WEFT_ERR_INVALID_ARG);
}

static void test_tasks_per_node(void **state)
{
    (void)state;
    int tasks = -1, nnodes = -1;
    assert_int_equal(weft_tasks_per_node("2(x3),1", "T", 0, &tasks, &nnodes), WEFT_OK);
    assert_int_equal(tasks, 2);
    assert_int_equal(nnodes, 4);
    assert_int_equal(weft_tasks_per_node("2(x3),1", "T", 2, &tasks, NULL), WEFT_OK);
    assert_int_equal(tasks, 2);
    assert_int_equal(weft_tasks_per_node("2(x3),1", "T", 3, &tasks, NULL), WEFT_OK);
    assert_int_equal(tasks, 1);
    assert_int_equal(weft_tasks_per_node("4", "T", 0, &tasks, &nnodes), WEFT_OK);
    assert_int_equal(tasks, 4);
    assert_int_equal(nnodes, 1);
    assert_int_equal(weft_tasks_per_node("1,3,2(x2)", "T", 1, &tasks, &nnodes), WEFT_OK);
    assert_int_equal(tasks, 3);
    assert_int_equal(nnodes, 4);
    /* past the end */
    assert_int_equal(weft_tasks_per_node("2(x3),1", "T", 4, &tasks, NULL),
                     WEFT_ERR_INVALID_ARG);
    assert_non_null(strstr(weft_error_message(), "no entry for node 4"));
    const char *bad[] = { "", "x", "2(x)", "2(3)", "2(x3", "2,,1", "2,", "2(x0)", "-1", "2 " };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(weft_tasks_per_node(bad[i], "SLURM_STEP_TASKS_PER_NODE", 0, &tasks,
                                             NULL),
                         WEFT_ERR_INVALID_ARG);
        assert_non_null(strstr(weft_error_message(), "SLURM_STEP_TASKS_PER_NODE"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_large),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_tasks_per_node),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
