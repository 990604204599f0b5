/*
 * test_links.c - the link decoder: every speed and width code, codes no table names (reported
 * unknown with the raw value), sysfs rate texts, and a fake sysfs tree of IB and RoCE ports.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "perftest/links.h"

static const struct {
    unsigned speed;
    const char *name;
    double gbaud, signal, data;
    const char *mod;
} speeds[] = {
    {1, "SDR", 2.5, 2.5, 2.0, "NRZ"},          {2, "DDR", 5.0, 5.0, 4.0, "NRZ"},
    {4, "QDR", 10.0, 10.0, 8.0, "NRZ"},        {8, "FDR10", 10.3125, 10.3125, 10.0, "NRZ"},
    {16, "FDR", 14.0625, 14.0625, 13.636, "NRZ"}, {32, "EDR", 25.78125, 25.78125, 25.0, "NRZ"},
    {64, "HDR", 26.5625, 53.125, 50.0, "PAM4"}, {128, "NDR", 53.125, 106.25, 100.0, "PAM4"},
    {256, "XDR", 106.25, 212.5, 200.0, "PAM4"},
};

static void test_every_speed(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(speeds) / sizeof(speeds[0]); i++) {
        const struct perf_link_gen *g = perf_link_gen_by_speed(speeds[i].speed);
        assert_non_null(g);
        assert_string_equal(g->name, speeds[i].name);
        assert_float_equal(g->gbaud, speeds[i].gbaud, 1e-9);
        assert_float_equal(g->signal_gbits, speeds[i].signal, 1e-9);
        assert_float_equal(g->data_gbits, speeds[i].data, 1e-3);
        assert_string_equal(g->modulation, speeds[i].mod);
        /* PAM4 carries 2 bits a symbol, NRZ 1 */
        assert_float_equal(g->signal_gbits / g->gbaud, strcmp(g->modulation, "PAM4") ? 1 : 2,
                           1e-12);
        assert_true(g->data_gbits < g->signal_gbits || g->speed >= 64);
        assert_ptr_equal(perf_link_gen_by_name(speeds[i].name), g);
    }
    size_t n;
    perf_link_gens(&n);
    assert_int_equal(n, sizeof(speeds) / sizeof(speeds[0]));
    /* codes no table names, including every other 9-bit value */
    for (unsigned s = 0; s < 1024; s++) {
        bool named = false;
        for (size_t i = 0; i < n; i++)
            named = named || speeds[i].speed == s;
        if (!named)
            assert_null(perf_link_gen_by_speed(s));
    }
    assert_null(perf_link_gen_by_speed(512));
    assert_null(perf_link_gen_by_speed(0xffffffffu));
}

static void test_every_width(void **state)
{
    (void)state;
    assert_int_equal(perf_link_lanes(1), 1);
    assert_int_equal(perf_link_lanes(2), 4);
    assert_int_equal(perf_link_lanes(4), 8);
    assert_int_equal(perf_link_lanes(8), 12);
    assert_int_equal(perf_link_lanes(16), 2);
    const unsigned unknown[] = {0, 3, 5, 6, 7, 9, 15, 17, 32, 64, 255, 0x10000};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
        assert_int_equal(perf_link_lanes(unknown[i]), 0);
    assert_int_equal(perf_link_mtu_bytes(1), 256);
    assert_int_equal(perf_link_mtu_bytes(5), 4096);
    assert_int_equal(perf_link_mtu_bytes(0), 0);
    assert_int_equal(perf_link_mtu_bytes(6), 0);
    assert_string_equal(perf_link_state_name(4), "ACTIVE");
    assert_null(perf_link_state_name(6));
}

static void test_decode(void **state)
{
    (void)state;
    char buf[64];
    /* every known speed with every known width: data = lanes x per-lane data */
    const unsigned widths[] = {1, 2, 4, 8, 16};
    for (size_t i = 0; i < sizeof(speeds) / sizeof(speeds[0]); i++) {
        for (size_t w = 0; w < 5; w++) {
            struct perf_link l = {.speed = speeds[i].speed, .width = widths[w]};
            snprintf(l.link_layer, sizeof(l.link_layer), "InfiniBand");
            perf_link_decode(&l);
            assert_non_null(l.gen);
            assert_int_equal(l.lanes, perf_link_lanes(widths[w]));
            assert_float_equal(l.data_gbits, l.lanes * speeds[i].data, 1e-2);
            assert_string_equal(perf_link_gen_text(&l, buf, sizeof(buf)), speeds[i].name);
        }
    }
    struct perf_link hdr4 = {.speed = 64, .width = 2};
    perf_link_decode(&hdr4);
    assert_float_equal(hdr4.data_gbits, 200.0, 1e-9);
    struct perf_link xdr4 = {.speed = 256, .width = 2};
    perf_link_decode(&xdr4);
    assert_float_equal(xdr4.data_gbits, 800.0, 1e-9);
    /* unknown speed: no crash, no rate, the raw value in the text */
    struct perf_link odd = {.speed = 512, .width = 2};
    perf_link_decode(&odd);
    assert_null(odd.gen);
    assert_float_equal(odd.data_gbits, 0.0, 0.0);
    assert_string_equal(perf_link_gen_text(&odd, buf, sizeof(buf)), "unknown (raw 512)");
    struct perf_link oddw = {.speed = 32, .width = 3};
    perf_link_decode(&oddw);
    assert_int_equal(oddw.lanes, 0);
    assert_float_equal(oddw.data_gbits, 0.0, 0.0);
    /* RoCE: the netdev's speed wins over the IB-equivalent codes */
    struct perf_link roce = {.speed = 8, .width = 1, .netdev_mbits = 25000};
    snprintf(roce.link_layer, sizeof(roce.link_layer), "Ethernet");
    perf_link_decode(&roce);
    assert_float_equal(roce.data_gbits, 25.0, 1e-9);
    assert_string_equal(roce.data_from, "netdev speed");
    roce.netdev_mbits = -1; /* speed unknown: fall back to the codes */
    perf_link_decode(&roce);
    assert_float_equal(roce.data_gbits, 10.0, 1e-9);
}

static void test_parse_rate(void **state)
{
    (void)state;
    unsigned s = 0, w = 0;
    assert_true(perf_link_parse_rate("100 Gb/sec (4X EDR)", &s, &w));
    assert_int_equal(s, 32);
    assert_int_equal(w, 2);
    assert_true(perf_link_parse_rate("2.5 Gb/sec (1X SDR)", &s, &w));
    assert_int_equal(s, 1);
    assert_int_equal(w, 1);
    assert_true(perf_link_parse_rate("10 Gb/sec (4X)", &s, &w)); /* old kernels' SDR */
    assert_int_equal(s, 1);
    assert_int_equal(w, 2);
    assert_true(perf_link_parse_rate("1600 Gb/sec (8X XDR)", &s, &w));
    assert_int_equal(s, 256);
    assert_int_equal(w, 4);
    assert_true(perf_link_parse_rate("100 Gb/sec (2X HDR)", &s, &w));
    assert_int_equal(s, 64);
    assert_int_equal(w, 16);
    assert_true(perf_link_parse_rate("40 Gb/sec (4X FDR10)", &s, &w));
    assert_int_equal(s, 8);
    assert_false(perf_link_parse_rate("3200 Gb/sec (4X GDR)", &s, &w));
    assert_false(perf_link_parse_rate("10 Gb/sec (3X QDR)", &s, &w));
    assert_false(perf_link_parse_rate("garbage", &s, &w));
    assert_false(perf_link_parse_rate("", &s, &w));
}

static void put(const char *root, const char *rel, const char *text)
{
    char path[512], cmd[600];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
    assert_int_equal(system(cmd), 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", text);
    fclose(f);
}

static void test_sysfs_tree(void **state)
{
    (void)state;
    char root[] = "/tmp/weft-links-XXXXXX";
    assert_non_null(mkdtemp(root));
    put(root, "class/infiniband/mlx5_0/ports/1/rate", "200 Gb/sec (4X HDR)");
    put(root, "class/infiniband/mlx5_0/ports/1/state", "4: ACTIVE");
    put(root, "class/infiniband/mlx5_0/ports/1/link_layer", "InfiniBand");
    put(root, "class/infiniband/mlx5_1/ports/1/rate", "25 Gb/sec (1X EDR)");
    put(root, "class/infiniband/mlx5_1/ports/1/state", "1: DOWN");
    put(root, "class/infiniband/mlx5_1/ports/1/link_layer", "InfiniBand");
    put(root, "class/infiniband/rxe0/ports/1/rate", "10 Gb/sec (1X FDR10)");
    put(root, "class/infiniband/rxe0/ports/1/state", "4: ACTIVE");
    put(root, "class/infiniband/rxe0/ports/1/link_layer", "Ethernet");
    put(root, "class/infiniband/rxe0/ports/1/gid_attrs/ndevs/0", "eth0");
    put(root, "class/net/eth0/speed", "10000");
    put(root, "class/infiniband/odd0/ports/1/rate", "3200 Gb/sec (4X GDR)");
    put(root, "class/infiniband/odd0/ports/1/state", "4: ACTIVE");

    struct perf_link *l;
    size_t n;
    char why[128];
    assert_true(perf_links_list(root, &l, &n, why, sizeof(why)));
    assert_int_equal(n, 4);
    assert_string_equal(l[0].dev, "mlx5_0"); /* sorted */
    assert_string_equal(l[0].gen->name, "HDR");
    assert_int_equal(l[0].lanes, 4);
    assert_float_equal(l[0].data_gbits, 200.0, 1e-9);
    assert_int_equal(l[1].state, 1);
    assert_string_equal(l[2].dev, "odd0");
    assert_null(l[2].gen); /* a rate text we cannot read: unknown, not a crash */
    assert_float_equal(l[2].data_gbits, 0.0, 0.0);
    assert_string_equal(l[3].dev, "rxe0");
    assert_string_equal(l[3].netdev, "eth0");
    assert_float_equal(l[3].data_gbits, 10.0, 1e-9);
    free(l);

    struct perf_link pick;
    assert_true(perf_links_pick(root, NULL, 0, &pick)); /* the first active port */
    assert_string_equal(pick.dev, "mlx5_0");
    assert_true(perf_links_pick(root, "rxe0", 0, &pick));
    assert_string_equal(pick.netdev, "eth0");
    assert_false(perf_links_pick(root, "mlx5_1", 0, &pick)); /* down */
    assert_true(perf_links_pick(root, "mlx5_1", 1, &pick));  /* named port: as is */
    assert_false(perf_links_pick(root, "nope", 0, &pick));

    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
    assert_true(perf_links_list(root, &l, &n, why, sizeof(why))); /* no tree: no ports */
    assert_int_equal(n, 0);
    free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_speed), cmocka_unit_test(test_every_width),
        cmocka_unit_test(test_decode),      cmocka_unit_test(test_parse_rate),
        cmocka_unit_test(test_sysfs_tree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
