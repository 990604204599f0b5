/*
 * test_boot.c - unit tests of the bootstrap's pieces: the unique id, the wire messages, the
 * challenge-response over a socketpair, and the WEFT_ROOT/WEFT_SECRET environment form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/config.h"
#include "core/error.h"
#include "launcher/boot_auth.h"
#include "launcher/boot_sock.h"
#include "launcher/boot_wire.h"
#include "launcher/bootstrap.h"

static void make_v4(struct sockaddr_storage *ss, socklen_t *len, const char *ip, uint16_t port)
{
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    memset(ss, 0, sizeof(*ss));
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
    *len = sizeof(*a);
}

static void make_v6(struct sockaddr_storage *ss, socklen_t *len, const char *ip, uint16_t port)
{
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    memset(ss, 0, sizeof(*ss));
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    a->sin6_scope_id = 3;
    assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
    *len = sizeof(*a);
}

static void id_round_trip(const struct sockaddr_storage *ss, socklen_t len)
{
    struct weft_boot_id in, out;
    weft_unique_id_t id;

    memset(&in, 0, sizeof(in));
    memcpy(&in.root, ss, sizeof(*ss));
    in.root_len = len;
    randombytes_buf(in.secret, sizeof(in.secret));
    assert_int_equal(weft_boot_id_encode(&in, &id), WEFT_OK);
    assert_int_equal(weft_boot_id_decode(&id, &out), WEFT_OK);
    assert_int_equal(out.root_len, len);
    assert_memory_equal(&out.root, &in.root, len);
    assert_memory_equal(out.secret, in.secret, sizeof(in.secret));
}

static void test_id_round_trip_v4(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len;
    (void)state;
    make_v4(&ss, &len, "10.1.2.3", 4242);
    id_round_trip(&ss, len);
}

static void test_id_round_trip_v6(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len;
    (void)state;
    make_v6(&ss, &len, "fe80::1:2:3", 65000);
    id_round_trip(&ss, len);
}

static void test_id_bad_magic_and_version(void **state)
{
    struct weft_boot_id in, out;
    weft_unique_id_t id, bad;
    (void)state;

    memset(&in, 0, sizeof(in));
    make_v4(&in.root, &in.root_len, "127.0.0.1", 1);
    assert_int_equal(weft_boot_id_encode(&in, &id), WEFT_OK);
    bad = id;
    bad.internal[0] ^= 1;
    assert_int_equal(weft_boot_id_decode(&bad, &out), WEFT_ERR_INVALID_ARG);
    bad = id;
    bad.internal[5] ^= 1; /* version */
    assert_int_equal(weft_boot_id_decode(&bad, &out), WEFT_ERR_INVALID_ARG);
    memset(&bad, 0, sizeof(bad));
    assert_int_equal(weft_boot_id_decode(&bad, &out), WEFT_ERR_INVALID_ARG);
}

static void test_hdr(void **state)
{
    struct weft_boot_hdr in = { WEFT_BOOT_MSG_ERROR, WEFT_ERR_TIMEOUT, 1234 }, out;
    uint8_t b[WEFT_BOOT_HDR_BYTES];
    (void)state;

    weft_boot_hdr_encode(&in, b);
    assert_int_equal(weft_boot_hdr_decode(b, sizeof(b), &out), WEFT_OK);
    assert_int_equal(out.type, in.type);
    assert_int_equal(out.status, in.status);
    assert_int_equal(out.len, in.len);
    assert_int_equal(weft_boot_hdr_decode(b, sizeof(b) - 1, &out), WEFT_ERR_REMOTE);
    b[0] ^= 0xff;
    assert_int_equal(weft_boot_hdr_decode(b, sizeof(b), &out), WEFT_ERR_REMOTE);
    in.type = 77;
    weft_boot_hdr_encode(&in, b);
    assert_int_equal(weft_boot_hdr_decode(b, sizeof(b), &out), WEFT_ERR_REMOTE);
    in.type = WEFT_BOOT_MSG_TABLE;
    in.len = WEFT_BOOT_MSG_MAX + 1;
    weft_boot_hdr_encode(&in, b);
    assert_int_equal(weft_boot_hdr_decode(b, sizeof(b), &out), WEFT_ERR_REMOTE);
}

static void test_hello(void **state)
{
    struct weft_boot_peer in, out;
    uint8_t b[WEFT_BOOT_HELLO_MAX + 8];
    size_t len;
    (void)state;

    memset(&in, 0, sizeof(in));
    in.rank = 5;
    in.nranks = 8;
    in.pid = 123456;
    strcpy(in.host, "node-17.cluster");
    make_v6(&in.addr, &in.addr_len, "2001:db8::7", 31337);
    assert_int_equal(weft_boot_hello_encode(&in, b, sizeof(b), &len), WEFT_OK);
    assert_int_equal(weft_boot_hello_decode(b, len, &out), WEFT_OK);
    assert_int_equal(out.rank, 5);
    assert_int_equal(out.nranks, 8);
    assert_int_equal(out.pid, 123456);
    assert_string_equal(out.host, in.host);
    assert_int_equal(out.addr_len, in.addr_len);
    assert_memory_equal(&out.addr, &in.addr, in.addr_len);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(weft_boot_hello_decode(b, cut, &out), WEFT_ERR_REMOTE);
    b[len] = 0;
    assert_int_equal(weft_boot_hello_decode(b, len + 1, &out), WEFT_ERR_REMOTE);
    assert_int_equal(weft_boot_hello_encode(&in, b, 10, &len), WEFT_ERR_INTERNAL);
}

static void test_table(void **state)
{
    struct weft_boot_peer in[3], *out = NULL;
    uint8_t *b = NULL;
    size_t len;
    int n = 0;
    (void)state;

    memset(in, 0, sizeof(in));
    for (int i = 0; i < 3; i++) {
        in[i].pid = 100 + i;
        snprintf(in[i].host, sizeof(in[i].host), "host%d", i);
    }
    make_v4(&in[0].addr, &in[0].addr_len, "192.168.0.9", 9);
    make_v6(&in[1].addr, &in[1].addr_len, "::1", 10);
    /* in[2]: no address */
    assert_int_equal(weft_boot_table_encode(in, 3, &b, &len), WEFT_OK);
    assert_int_equal(weft_boot_table_decode(b, len, &out, &n), WEFT_OK);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(out[i].rank, i);
        assert_int_equal(out[i].pid, 100 + i);
        assert_string_equal(out[i].host, in[i].host);
        assert_int_equal(out[i].addr_len, in[i].addr_len);
        assert_memory_equal(&out[i].addr, &in[i].addr, in[i].addr_len);
    }
    free(out);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(weft_boot_table_decode(b, cut, &out, &n), WEFT_ERR_REMOTE);
    /* A huge rank count in a small message must be refused before allocating. */
    b[0] = 0x00;
    b[1] = 0x3f;
    assert_int_equal(weft_boot_table_decode(b, len, &out, &n), WEFT_ERR_REMOTE);
    free(b);
}

static void test_garbage(void **state)
{
    uint8_t buf[300];
    struct weft_boot_peer p, *t;
    struct weft_boot_hdr h;
    char msg[64];
    int n, ok = 0;
    (void)state;

    /* Random input must never crash a decoder; almost all of it must be refused. */
    for (int i = 0; i < 2000; i++) {
        size_t len = randombytes_uniform(sizeof(buf));
        randombytes_buf(buf, len);
        ok += weft_boot_hdr_decode(buf, len, &h) == WEFT_OK;
        ok += weft_boot_hello_decode(buf, len, &p) == WEFT_OK;
        if (weft_boot_table_decode(buf, len, &t, &n) == WEFT_OK) {
            free(t);
            ok++;
        }
        ok += weft_boot_errmsg_decode(buf, len, msg, sizeof(msg)) == WEFT_OK;
    }
    assert_true(ok < 20);
}

static void test_errmsg(void **state)
{
    uint8_t b[WEFT_BOOT_ERRMSG_MAX + 2];
    char msg[WEFT_BOOT_ERRMSG_MAX];
    size_t len;
    (void)state;

    assert_int_equal(weft_boot_errmsg_encode("rank 3 of 4 never joined", b, sizeof(b), &len),
                     WEFT_OK);
    assert_int_equal(weft_boot_errmsg_decode(b, len, msg, sizeof(msg)), WEFT_OK);
    assert_string_equal(msg, "rank 3 of 4 never joined");
    assert_int_equal(weft_boot_errmsg_decode(b, len - 1, msg, sizeof(msg)), WEFT_ERR_REMOTE);
    assert_int_equal(weft_boot_errmsg_decode(b, 1, msg, sizeof(msg)), WEFT_ERR_REMOTE);
}

struct server_arg {
    int fd;
    uint8_t secret[WEFT_BOOT_SECRET_BYTES];
    weft_result_t res;
};

static void *server_thread(void *p)
{
    struct server_arg *a = p;
    a->res = weft_boot_auth_accept(a->fd, a->secret, weft_boot_now() + 5, "test client");
    return NULL;
}

static void auth_pair(int flip, weft_result_t *server, weft_result_t *client)
{
    struct server_arg a;
    uint8_t secret[WEFT_BOOT_SECRET_BYTES];
    pthread_t t;
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    randombytes_buf(a.secret, sizeof(a.secret));
    memcpy(secret, a.secret, sizeof(secret));
    secret[7] ^= (uint8_t)flip;
    a.fd = sv[0];
    assert_int_equal(pthread_create(&t, NULL, server_thread, &a), 0);
    *client = weft_boot_auth_connect(sv[1], secret, weft_boot_now() + 5, "test server");
    pthread_join(t, NULL);
    *server = a.res;
    close(sv[0]);
    close(sv[1]);
}

static void test_auth(void **state)
{
    weft_result_t s, c;
    (void)state;

    auth_pair(0, &s, &c);
    assert_int_equal(s, WEFT_OK);
    assert_int_equal(c, WEFT_OK);
    auth_pair(0x10, &s, &c);
    assert_int_equal(s, WEFT_ERR_AUTH);
    assert_int_equal(c, WEFT_ERR_AUTH);
}

static void test_auth_macs_differ_by_direction(void **state)
{
    uint8_t secret[32], a[32], b[32], m1[32], m2[32];
    (void)state;

    randombytes_buf(secret, 32);
    randombytes_buf(a, 32);
    randombytes_buf(b, 32);
    weft_boot_auth_mac(secret, "weft-client", a, b, m1);
    weft_boot_auth_mac(secret, "weft-root", a, b, m2);
    assert_memory_not_equal(m1, m2, 32);
    assert_true(weft_boot_auth_mac_ok(secret, "weft-client", a, b, m1));
    assert_false(weft_boot_auth_mac_ok(secret, "weft-client", b, a, m1));
}

static void set_env(const char *root, const char *secret)
{
    if (root)
        setenv("WEFT_ROOT", root, 1);
    else
        unsetenv("WEFT_ROOT");
    if (secret)
        setenv("WEFT_SECRET", secret, 1);
    else
        unsetenv("WEFT_SECRET");
    assert_int_equal(weft_config_reload(), WEFT_OK);
}

static void test_env_round_trip(void **state)
{
    struct weft_boot_id in, out;
    weft_unique_id_t id, back;
    char root[128], secret[65];
    char tag1[17], tag2[17];
    (void)state;

    memset(&in, 0, sizeof(in));
    make_v4(&in.root, &in.root_len, "127.0.0.1", 5555);
    randombytes_buf(in.secret, sizeof(in.secret));
    assert_int_equal(weft_boot_id_encode(&in, &id), WEFT_OK);
    assert_int_equal(weft_boot_id_to_env(&id, root, sizeof(root), secret, sizeof(secret)),
                     WEFT_OK);
    assert_string_equal(root, "127.0.0.1:5555");
    assert_int_equal(strlen(secret), 64);
    set_env(root, secret);
    assert_int_equal(weft_boot_id_from_env(&back), WEFT_OK);
    assert_int_equal(weft_boot_id_decode(&back, &out), WEFT_OK);
    assert_memory_equal(&out.root, &in.root, in.root_len);
    assert_memory_equal(out.secret, in.secret, 32);

    assert_int_equal(weft_boot_id_job_tag(&id, tag1, sizeof(tag1)), WEFT_OK);
    assert_int_equal(strlen(tag1), 16);
    assert_int_equal(strspn(tag1, "0123456789abcdef"), 16);
    in.secret[0] ^= 1;
    assert_int_equal(weft_boot_id_encode(&in, &id), WEFT_OK);
    assert_int_equal(weft_boot_id_job_tag(&id, tag2, sizeof(tag2)), WEFT_OK);
    assert_string_not_equal(tag1, tag2);
}

static void test_env_errors(void **state)
{
    weft_unique_id_t id;
    char good[65];
    (void)state;

    memset(good, 'a', 64);
    good[64] = '\0';
    set_env(NULL, NULL);
    assert_int_equal(weft_boot_id_from_env(&id), WEFT_ERR_INVALID_ARG);
    assert_non_null(strstr(weft_error_message(), "weft-run"));
    set_env("127.0.0.1:1234", NULL);
    assert_int_equal(weft_boot_id_from_env(&id), WEFT_ERR_INVALID_ARG);
    set_env("127.0.0.1:1234", "abcd");
    assert_int_equal(weft_boot_id_from_env(&id), WEFT_ERR_INVALID_ARG);
    good[10] = 'g';
    set_env("127.0.0.1:1234", good);
    assert_int_equal(weft_boot_id_from_env(&id), WEFT_ERR_INVALID_ARG);
    good[10] = 'a';
    char longer[70];
    snprintf(longer, sizeof(longer), "%s00", good);
    set_env("127.0.0.1:1234", longer);
    assert_int_equal(weft_boot_id_from_env(&id), WEFT_ERR_INVALID_ARG);
    set_env("127.0.0.1", good);
    assert_int_equal(weft_boot_id_from_env(&id), WEFT_ERR_INVALID_ARG);
    set_env("127.0.0.1:1234", good);
    assert_int_equal(weft_boot_id_from_env(&id), WEFT_OK);
    set_env(NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_round_trip_v4),
        cmocka_unit_test(test_id_round_trip_v6),
        cmocka_unit_test(test_id_bad_magic_and_version),
        cmocka_unit_test(test_hdr),
        cmocka_unit_test(test_hello),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_errmsg),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_auth_macs_differ_by_direction),
        cmocka_unit_test(test_env_round_trip),
        cmocka_unit_test(test_env_errors),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
