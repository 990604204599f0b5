/*
 * test_config.c - the WEFT_* table: value parsing, defaults that parse, environment
 * overrides, malformed values named in the error, and interface-name matching.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/config.h"
#include "core/error.h"
#include "core/netif.h"

static void test_parse_size(void **state)
{
    (void)state;
    union weft_config_value v;
    const struct {
        const char *text;
        size_t want;
    } ok[] = {{"0", 0},           {"17", 17},          {"64K", 65536},
              {"64k", 65536},     {"1M", 1u << 20},    {"2G", (size_t)2 << 30},
              {"1KiB", 1024},     {"3MB", 3u << 20},   {"1T", (size_t)1 << 40}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(weft_config_parse(WEFT_CFG_SIZE, ok[i].text, &v), WEFT_OK);
        assert_int_equal(v.size, ok[i].want);
    }
    /* " -1" and "+5": strtoull alone takes them (" -1" as SIZE_MAX; found by fuzzing). */
    const char *bad[] = {"", "-1", "12Q", "K", "1MX", "99999999999999999999", "1.5M", " -1",
                         "+5", " 5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(weft_config_parse(WEFT_CFG_SIZE, bad[i], &v), WEFT_ERR_INVALID_ARG);
}

static void test_parse_int_bool_double(void **state)
{
    (void)state;
    union weft_config_value v;
    assert_int_equal(weft_config_parse(WEFT_CFG_INT, "-42", &v), WEFT_OK);
    assert_int_equal(v.i, -42);
    assert_int_equal(weft_config_parse(WEFT_CFG_INT, "4x", &v), WEFT_ERR_INVALID_ARG);
    assert_int_equal(weft_config_parse(WEFT_CFG_INT, "", &v), WEFT_ERR_INVALID_ARG);
    /* Past an int, or signs and blanks strtoll alone would take (found by fuzzing). */
    const char *bad_int[] = {"4294967296", "2147483648", "-2147483649", "+1", " 1", "-"};
    for (size_t i = 0; i < sizeof(bad_int) / sizeof(bad_int[0]); i++)
        assert_int_equal(weft_config_parse(WEFT_CFG_INT, bad_int[i], &v), WEFT_ERR_INVALID_ARG);
    assert_int_equal(weft_config_parse(WEFT_CFG_INT, "2147483647", &v), WEFT_OK);
    assert_int_equal(v.i, 2147483647);
    const char *yes[] = {"1", "yes", "TRUE", "on"}, *no[] = {"0", "No", "false", "OFF"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(weft_config_parse(WEFT_CFG_BOOL, yes[i], &v), WEFT_OK);
        assert_int_equal(v.i, 1);
        assert_int_equal(weft_config_parse(WEFT_CFG_BOOL, no[i], &v), WEFT_OK);
        assert_int_equal(v.i, 0);
    }
    assert_int_equal(weft_config_parse(WEFT_CFG_BOOL, "maybe", &v), WEFT_ERR_INVALID_ARG);
    assert_int_equal(weft_config_parse(WEFT_CFG_DOUBLE, "2.5", &v), WEFT_OK);
    assert_true(v.d == 2.5);
    assert_int_equal(weft_config_parse(WEFT_CFG_DOUBLE, "inf", &v), WEFT_ERR_INVALID_ARG);
    assert_int_equal(weft_config_parse(WEFT_CFG_DOUBLE, "1s", &v), WEFT_ERR_INVALID_ARG);
}

/* Every default in the table must parse as its own type. */
static void test_defaults_parse(void **state)
{
    (void)state;
    struct weft_config_row rows[WEFT_CFG_COUNT];
    size_t n = weft_config_rows(rows, WEFT_CFG_COUNT);
    assert_int_equal(n, WEFT_CFG_COUNT);
    const char *types[] = {"int", "size", "bool", "double", "string"};
    for (size_t i = 0; i < n; i++) {
        assert_true(strncmp(rows[i].name, "WEFT_", 5) == 0);
        assert_true(strlen(rows[i].help) > 10);
        union weft_config_value v;
        int t = -1;
        for (int k = 0; k < 5; k++)
            if (strcmp(rows[i].type, types[k]) == 0)
                t = k;
        assert_true(t >= 0);
        assert_int_equal(weft_config_parse((enum weft_config_type)t, rows[i].def, &v), WEFT_OK);
    }
}

static void test_environment(void **state)
{
    (void)state;
    setenv("WEFT_CHUNK_SIZE", "128K", 1);
    setenv("WEFT_TIMEOUT", "7.5", 1);
    setenv("WEFT_SHM_CMA", "off", 1);
    assert_int_equal(weft_config_reload(), WEFT_OK);
    assert_int_equal(weft_config_size(WEFT_CFG_CHUNK_SIZE), 128 * 1024);
    assert_true(weft_config_double(WEFT_CFG_TIMEOUT) == 7.5);
    assert_false(weft_config_bool(WEFT_CFG_SHM_CMA));
    assert_string_equal(weft_config_str(WEFT_CFG_TRANSPORT), "auto");

    setenv("WEFT_PIPELINE_DEPTH", "four", 1);
    assert_int_equal(weft_config_reload(), WEFT_ERR_INVALID_ARG);
    assert_non_null(strstr(weft_last_error(), "WEFT_PIPELINE_DEPTH=\"four\""));
    assert_int_equal(weft_config_int(WEFT_CFG_PIPELINE_DEPTH), 4); /* default kept */

    unsetenv("WEFT_PIPELINE_DEPTH");
    unsetenv("WEFT_CHUNK_SIZE");
    unsetenv("WEFT_TIMEOUT");
    unsetenv("WEFT_SHM_CMA");
    assert_int_equal(weft_config_reload(), WEFT_OK);
    assert_int_equal(weft_config_size(WEFT_CFG_CHUNK_SIZE), 256 * 1024);
}

static void test_ifname_match(void **state)
{
    (void)state;
    assert_true(weft_netif_match("", "eth0"));
    assert_true(weft_netif_match("eth", "eth0"));
    assert_true(weft_netif_match("ib,eth", "eth1"));
    assert_false(weft_netif_match("ib", "eth0"));
    assert_false(weft_netif_match("^eth,lo", "eth0"));
    assert_true(weft_netif_match("^eth,lo", "ib0"));
    assert_true(weft_netif_match("=eth0", "eth0"));
    assert_false(weft_netif_match("=eth0", "eth01"));
    assert_false(weft_netif_match("^=lo", "lo"));
    assert_true(weft_netif_match("^=lo", "lo0"));
}

static void test_sockaddr_parse(void **state)
{
    (void)state;
    struct sockaddr_storage a;
    socklen_t len;
    char text[WEFT_ADDR_STRLEN];
    assert_int_equal(weft_sockaddr_parse("127.0.0.1:4242", &a, &len), WEFT_OK);
    assert_string_equal(weft_sockaddr_str((struct sockaddr *)&a, text, sizeof(text)),
                        "127.0.0.1:4242");
    assert_int_equal(weft_sockaddr_parse("[::1]:80", &a, &len), WEFT_OK);
    assert_string_equal(weft_sockaddr_str((struct sockaddr *)&a, text, sizeof(text)),
                        "[::1]:80");
    assert_int_equal(weft_sockaddr_parse("127.0.0.1:99999", &a, &len), WEFT_ERR_INVALID_ARG);
    assert_int_equal(weft_sockaddr_parse("[::1", &a, &len), WEFT_ERR_INVALID_ARG);
    assert_int_equal(weft_sockaddr_parse(":5", &a, &len), WEFT_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_size),   cmocka_unit_test(test_parse_int_bool_double),
        cmocka_unit_test(test_defaults_parse), cmocka_unit_test(test_environment),
        cmocka_unit_test(test_ifname_match), cmocka_unit_test(test_sockaddr_parse),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
