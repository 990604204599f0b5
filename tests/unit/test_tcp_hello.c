/*
 * test_tcp_hello.c - unit tests of the TCP data-connection handshake: the nonce-bound MACs,
 * and live transports that reject replayed, garbled, silent and wrong-job connections.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <sodium.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "transport/tcp_internal.h"
#include "core/clock.h"

#define WAIT_S 10.0 /* longest any step of a test may take */


static void hello_fields(uint32_t f[WEFT_TCP_HELLO_FIELDS], uint32_t from, uint32_t to,
                         uint32_t index, uint32_t nsocks)
{
    const uint32_t v[WEFT_TCP_HELLO_FIELDS] = {WEFT_TCP_HELLO_MAGIC, WEFT_TCP_HELLO_VERSION,
                                               from, to, index, nsocks};
    memcpy(f, v, sizeof(v));
}

/* ---- the MACs ---------------------------------------------------------------------------- */

static void test_hello_round_trip(void **state)
{
    (void)state;
    uint8_t key[WEFT_TRANSPORT_KEY_BYTES], hs[WEFT_TCP_HS_BYTES];
    uint32_t f[WEFT_TCP_HELLO_FIELDS], got[WEFT_TCP_HELLO_FIELDS];
    randombytes_buf(key, sizeof(key));
    randombytes_buf(hs, WEFT_TCP_NONCE_BYTES);
    hello_fields(f, 3, 7, 1, 4);
    weft_tcp_hello_encode(key, hs, f);
    assert_true(weft_tcp_hello_verify(key, hs, got));
    assert_memory_equal(got, f, sizeof(f));
    weft_tcp_proof_encode(key, hs);
    assert_true(weft_tcp_proof_verify(key, hs));
}

/* A hello recorded on one connection is worthless on another: its nonce differs. */
static void test_hello_replay_rejected(void **state)
{
    (void)state;
    uint8_t key[WEFT_TRANSPORT_KEY_BYTES], old[WEFT_TCP_HS_BYTES], hs[WEFT_TCP_HS_BYTES];
    uint32_t f[WEFT_TCP_HELLO_FIELDS], got[WEFT_TCP_HELLO_FIELDS];
    randombytes_buf(key, sizeof(key));
    randombytes_buf(old, WEFT_TCP_NONCE_BYTES);
    hello_fields(f, 0, 1, 0, 2);
    weft_tcp_hello_encode(key, old, f);
    weft_tcp_proof_encode(key, old);
    randombytes_buf(hs, WEFT_TCP_NONCE_BYTES);
    memcpy(hs + WEFT_TCP_HS_HELLO, old + WEFT_TCP_HS_HELLO,
           WEFT_TCP_HS_BYTES - WEFT_TCP_HS_HELLO);
    assert_false(weft_tcp_hello_verify(key, hs, got));
    assert_false(weft_tcp_proof_verify(key, hs));
}

static void test_hello_tamper_rejected(void **state)
{
    (void)state;
    uint8_t key[WEFT_TRANSPORT_KEY_BYTES], hs[WEFT_TCP_HS_BYTES], bad[WEFT_TCP_HS_BYTES];
    uint32_t f[WEFT_TCP_HELLO_FIELDS], got[WEFT_TCP_HELLO_FIELDS];
    randombytes_buf(key, sizeof(key));
    randombytes_buf(hs, WEFT_TCP_NONCE_BYTES);
    hello_fields(f, 0, 1, 0, 2);
    weft_tcp_hello_encode(key, hs, f);
    weft_tcp_proof_encode(key, hs);
    /* Every single flipped bit of nonce, fields or MAC breaks the hello; of nonce, fields or
     * proof breaks the proof. */
    for (size_t i = 0; i < WEFT_TCP_HS_BYTES; i++) {
        memcpy(bad, hs, sizeof(bad));
        bad[i] ^= (uint8_t)(1u << (i % 8));
        if (i < WEFT_TCP_HS_PROOF)
            assert_false(weft_tcp_hello_verify(key, bad, got));
        if (i < WEFT_TCP_HS_HELLO + 4 * WEFT_TCP_HELLO_FIELDS || i >= WEFT_TCP_HS_PROOF)
            assert_false(weft_tcp_proof_verify(key, bad));
    }
    /* Another job's key, and the hello's MAC offered as the proof (the labels differ). */
    uint8_t other[WEFT_TRANSPORT_KEY_BYTES];
    memcpy(other, key, sizeof(other));
    other[0] ^= 1;
    assert_false(weft_tcp_hello_verify(other, hs, got));
    assert_false(weft_tcp_proof_verify(other, hs));
    memcpy(bad, hs, sizeof(bad));
    memcpy(bad + WEFT_TCP_HS_PROOF, hs + WEFT_TCP_HS_HELLO + 4 * WEFT_TCP_HELLO_FIELDS,
           crypto_auth_hmacsha256_BYTES);
    assert_false(weft_tcp_proof_verify(key, bad));
}

/* ---- live transports --------------------------------------------------------------------- */

static struct weft_tp *tp_new(int rank, double timeout_s, uint8_t key_byte)
{
    struct weft_transport_params p;
    memset(&p, 0, sizeof(p));
    p.rank = rank;
    p.nranks = 2;
    p.local_rank = rank;
    p.local_nranks = 2;
    p.job_tag = "test-tcp-hello";
    memset(p.key, key_byte, sizeof(p.key));
    p.timeout_s = timeout_s;
    struct weft_tp *tp = NULL;
    assert_int_equal(weft_transport_tcp.init(&p, &tp), WEFT_OK);
    return tp;
}

static void progress(struct weft_tp *a, struct weft_tp *b)
{
    bool progressed = false;
    if (a)
        assert_int_equal(weft_transport_tcp.progress(a, &progressed), WEFT_OK);
    if (b)
        assert_int_equal(weft_transport_tcp.progress(b, &progressed), WEFT_OK);
}

/* A plain socket to `tp`'s listener, as anyone on the network could open. */
static int dial(const struct weft_tp *tp)
{
    int fd = socket(tp->laddr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (const struct sockaddr *)&tp->laddr, tp->laddr_len), 0);
    return fd;
}

/* Reads exactly len bytes from fd while the transports make progress. */
static void read_all(int fd, uint8_t *buf, size_t len, struct weft_tp *a, struct weft_tp *b)
{
    const double deadline = weft_now_s() + WAIT_S;
    for (size_t got = 0; got < len;) {
        progress(a, b);
        ssize_t n = recv(fd, buf + got, len - got, MSG_DONTWAIT);
        if (n > 0)
            got += (size_t)n;
        else
            assert_true(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
        assert_true(weft_now_s() < deadline);
    }
}

/* Seconds until the transport closed fd (EOF or reset), or -1 if it did not within WAIT_S. */
static double closed_after(int fd, struct weft_tp *a, struct weft_tp *b)
{
    const double t0 = weft_now_s();
    while (weft_now_s() < t0 + WAIT_S) {
        progress(a, b);
        uint8_t junk[64];
        ssize_t n = recv(fd, junk, sizeof(junk), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            return weft_now_s() - t0;
    }
    return -1;
}

static void connect_pair(struct weft_tp *tp[2], struct weft_ep *ep[2])
{
    uint8_t blob[2][WEFT_TRANSPORT_ADDR_MAX];
    size_t len[2];
    for (int r = 0; r < 2; r++) {
        len[r] = sizeof(blob[r]);
        assert_int_equal(weft_transport_tcp.address(tp[r], blob[r], &len[r]), WEFT_OK);
        ep[r] = NULL;
    }
    const double deadline = weft_now_s() + WAIT_S;
    while (!ep[0] || !ep[1]) {
        for (int r = 0; r < 2; r++) {
            if (ep[r])
                continue;
            weft_result_t res = weft_transport_tcp.connect(tp[r], 1 - r, blob[1 - r],
                                                            len[1 - r], &ep[r]);
            if (res != WEFT_ERR_IN_PROGRESS)
                assert_int_equal(res, WEFT_OK);
        }
        assert_true(weft_now_s() < deadline);
    }
}

/* Replayed, garbled and silent connections reach rank 1 before rank 0 does; each is dropped
 * and rank 0 still gets every socket and its messages through. */
static void test_rogue_connections_dropped(void **state)
{
    (void)state;
    const double timeout_s = 1.0;
    struct weft_tp *tp[2] = {tp_new(0, timeout_s, 0x5a), tp_new(1, timeout_s, 0x5a)};
    struct weft_ep *ep[2];

    /* A hello made for another connection's nonce, claiming rank 0's first socket. */
    uint8_t hs[WEFT_TCP_HS_BYTES];
    uint32_t f[WEFT_TCP_HELLO_FIELDS];
    const double t_silent = weft_now_s();
    int silent = dial(tp[1]);
    int replay = dial(tp[1]);
    read_all(replay, hs, WEFT_TCP_NONCE_BYTES, NULL, tp[1]);
    hs[0] ^= 1;
    hello_fields(f, 0, 1, 0, (uint32_t)tp[1]->nsocks);
    weft_tcp_hello_encode(tp[1]->key, hs, f);
    assert_int_equal(send(replay, hs + WEFT_TCP_HS_HELLO, WEFT_TCP_HELLO_BYTES, MSG_NOSIGNAL),
                     WEFT_TCP_HELLO_BYTES);
    /* The right nonce and fields, a garbled MAC. */
    int garbled = dial(tp[1]);
    read_all(garbled, hs, WEFT_TCP_NONCE_BYTES, NULL, tp[1]);
    weft_tcp_hello_encode(tp[1]->key, hs, f);
    hs[WEFT_TCP_HS_PROOF - 1] ^= 0x80;
    assert_int_equal(send(garbled, hs + WEFT_TCP_HS_HELLO, WEFT_TCP_HELLO_BYTES, MSG_NOSIGNAL),
                     WEFT_TCP_HELLO_BYTES);
    assert_true(closed_after(replay, NULL, tp[1]) >= 0);
    assert_true(closed_after(garbled, NULL, tp[1]) >= 0);

    connect_pair(tp, ep);
    char out[] = "through the real rank", in[sizeof(out)] = {0};
    struct weft_request sreq, rreq;
    memset(&sreq, 0, sizeof(sreq));
    memset(&rreq, 0, sizeof(rreq));
    assert_int_equal(weft_transport_tcp.irecv(ep[1], in, sizeof(in), 42, &rreq), WEFT_OK);
    assert_int_equal(weft_transport_tcp.isend(ep[0], out, sizeof(out), 42, &sreq), WEFT_OK);
    const double deadline = weft_now_s() + WAIT_S;
    while (!sreq.done || !rreq.done) {
        progress(tp[0], tp[1]);
        assert_true(weft_now_s() < deadline);
    }
    assert_int_equal(sreq.status, WEFT_OK);
    assert_int_equal(rreq.status, WEFT_OK);
    assert_string_equal(in, out);

    /* The silent one goes once its timeout has passed, not before. */
    assert_true(closed_after(silent, tp[0], tp[1]) >= 0);
    assert_true(weft_now_s() - t_silent >= timeout_s * 0.99);
    while (tp[1]->pending) {
        progress(tp[0], tp[1]);
        assert_true(weft_now_s() < deadline);
    }
    close(silent);
    close(replay);
    close(garbled);
    weft_transport_tcp.fini(tp[0]);
    weft_transport_tcp.fini(tp[1]);
}

/* Rank 0 reaches a listener that does not know the key: it must not use the socket. */
static void test_initiator_rejects_bad_proof(void **state)
{
    (void)state;
    struct weft_tp *tp0 = tp_new(0, WAIT_S, 0x5a), *tp1 = tp_new(1, WAIT_S, 0x5a);
    uint8_t blob[WEFT_TRANSPORT_ADDR_MAX];
    size_t len = sizeof(blob);
    assert_int_equal(weft_transport_tcp.address(tp1, blob, &len), WEFT_OK);
    /* Put an impostor on rank 1's address. */
    weft_tcp_unlisten(tp1);
    int lfd = socket(tp1->laddr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    assert_true(lfd >= 0);
    assert_int_equal(setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
    assert_int_equal(bind(lfd, (const struct sockaddr *)&tp1->laddr, tp1->laddr_len), 0);
    assert_int_equal(listen(lfd, 8), 0);

    struct weft_ep *ep = NULL;
    assert_int_equal(weft_transport_tcp.connect(tp0, 1, blob, len, &ep), WEFT_ERR_IN_PROGRESS);
    int fds[WEFT_TCP_MAX_NSOCKS];
    for (int i = 0; i < tp0->nsocks; i++) {
        fds[i] = accept(lfd, NULL, NULL);
        assert_true(fds[i] >= 0);
        uint8_t hs[WEFT_TCP_HS_BYTES];
        uint32_t f[WEFT_TCP_HELLO_FIELDS];
        randombytes_buf(hs, WEFT_TCP_NONCE_BYTES);
        assert_int_equal(send(fds[i], hs, WEFT_TCP_NONCE_BYTES, MSG_NOSIGNAL),
                         WEFT_TCP_NONCE_BYTES);
        read_all(fds[i], hs + WEFT_TCP_HS_HELLO, WEFT_TCP_HELLO_BYTES, tp0, NULL);
        /* The initiator answered this connection's nonce. */
        assert_true(weft_tcp_hello_verify(tp0->key, hs, f));
        assert_int_equal(f[2], 0);
        assert_int_equal(f[3], 1);
        randombytes_buf(hs + WEFT_TCP_HS_PROOF, crypto_auth_hmacsha256_BYTES);
        assert_int_equal(send(fds[i], hs + WEFT_TCP_HS_PROOF, crypto_auth_hmacsha256_BYTES,
                              MSG_NOSIGNAL), crypto_auth_hmacsha256_BYTES);
    }
    weft_result_t r = WEFT_ERR_IN_PROGRESS;
    const double deadline = weft_now_s() + WAIT_S;
    while (r == WEFT_ERR_IN_PROGRESS) {
        r = weft_transport_tcp.connect(tp0, 1, blob, len, &ep);
        assert_true(weft_now_s() < deadline);
    }
    assert_int_equal(r, WEFT_ERR_AUTH);
    assert_null(ep);
    for (int i = 0; i < tp0->nsocks; i++)
        close(fds[i]);
    close(lfd);
    weft_transport_tcp.fini(tp0);
    weft_transport_tcp.fini(tp1);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_round_trip),
        cmocka_unit_test(test_hello_replay_rejected),
        cmocka_unit_test(test_hello_tamper_rejected),
        cmocka_unit_test(test_rogue_connections_dropped),
        cmocka_unit_test(test_initiator_rejects_bad_proof),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
