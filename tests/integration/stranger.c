/*
 * stranger.c - a hostile client of Weft's ports, for stranger_check.sh: it speaks just enough
 * of the bootstrap (root and ring) and tcp transport handshakes to send each a bad input.
 *   stranger capture FILE        (as the one rank of a weft-run job: a real handshake, kept)
 *   stranger KIND PROTO HOST:PORT [FILE|N] [HOLD_S]
 * KIND: random (4 KiB of noise), secret (a proof under a wrong secret), replay (FILE's
 * handshake from an earlier job), replay-same (a proof this job's root accepted, replayed on
 * a second connection; needs WEFT_SECRET), half (half a reply, then silence for HOLD_S),
 * flood (N connections at once, held HOLD_S). PROTO: boot or tcp. Prints one line:
 * "rejected", "refused" (nothing listens) or "ACCEPTED"/"NO ANSWER"; exit 1 for the last two.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/netif.h"
#include "launcher/boot_auth.h"
#include "launcher/boot_wire.h"
#include "launcher/bootstrap.h"
#include "transport/tcp_internal.h"

#define REPLY WEFT_BOOT_AUTH_REPLY_BYTES
#define TCP_HELLO WEFT_TCP_HELLO_BYTES

static struct sockaddr_storage target;
static socklen_t target_len;
static double wait_s = 30;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* -1: refused or failed. */
static int dial(void)
{
    int fd = socket(target.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&target, target_len) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* n: all came; 0: the peer closed (or reset); -1: nothing within wait_s. */
static int recv_exact(int fd, uint8_t *buf, size_t n)
{
    size_t got = 0;
    const double end = now_s() + wait_s;
    while (got < n) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int ms = (int)((end - now_s()) * 1000);
        if (ms <= 0 || poll(&p, 1, ms) <= 0)
            return -1;
        ssize_t k = recv(fd, buf + got, n - got, 0);
        if (k <= 0)
            return k == 0 || errno == ECONNRESET ? 0 : -1;
        got += (size_t)k;
    }
    return (int)n;
}

/* Whether the peer closes the connection within wait_s (whatever it sends first). */
static int closed_by_peer(int fd)
{
    uint8_t sink[4096];
    const double end = now_s() + wait_s;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int ms = (int)((end - now_s()) * 1000);
        if (ms <= 0 || poll(&p, 1, ms) <= 0)
            return 0;
        ssize_t k = recv(fd, sink, sizeof(sink), 0);
        if (k == 0 || (k < 0 && errno == ECONNRESET))
            return 1;
        if (k < 0)
            return 0;
    }
}

static void send_all(int fd, const uint8_t *buf, size_t n)
{
    while (n) {
        ssize_t k = send(fd, buf, n, MSG_NOSIGNAL);
        if (k <= 0)
            return;
        buf += k;
        n -= (size_t)k;
    }
}

/* Answers the boot challenge with `reply` (or a proof under `secret`); 1 if refused. */
static int boot_refused(int fd, const uint8_t *reply, const uint8_t *secret)
{
    uint8_t nonce[WEFT_BOOT_NONCE_BYTES], mine[REPLY], verdict[WEFT_BOOT_AUTH_VERDICT_BYTES];
    if (recv_exact(fd, nonce, sizeof(nonce)) != (int)sizeof(nonce))
        return -1;
    if (!reply) {
        randombytes_buf(mine, WEFT_BOOT_NONCE_BYTES);
        weft_boot_auth_mac(secret, "weft-client", nonce, mine, mine + WEFT_BOOT_NONCE_BYTES);
        reply = mine;
    }
    send_all(fd, reply, REPLY);
    int k = recv_exact(fd, verdict, sizeof(verdict));
    if (k == 0)
        return 1;
    if (k < 0)
        return -1;
    return verdict[0] != 0;
}

/* Answers the tcp transport's nonce with `hello` (or one sealed with a random key). */
static int tcp_refused(int fd, const uint8_t *hello)
{
    uint8_t hs[WEFT_TCP_HS_BYTES], key[WEFT_TRANSPORT_KEY_BYTES];
    if (recv_exact(fd, hs, WEFT_TCP_NONCE_BYTES) != WEFT_TCP_NONCE_BYTES)
        return -1;
    if (hello) {
        memcpy(hs + WEFT_TCP_HS_HELLO, hello, TCP_HELLO);
    } else {
        const uint32_t f[WEFT_TCP_HELLO_FIELDS] = {WEFT_TCP_HELLO_MAGIC, WEFT_TCP_HELLO_VERSION,
                                                   0, 1, 0, 2};
        randombytes_buf(key, sizeof(key));
        weft_tcp_hello_encode(key, hs, f);
    }
    send_all(fd, hs + WEFT_TCP_HS_HELLO, TCP_HELLO);
    return closed_by_peer(fd) ? 1 : -1;
}

static int secret_from_env(uint8_t secret[WEFT_BOOT_SECRET_BYTES])
{
    const char *hex = getenv("WEFT_SECRET");
    size_t len = 0;
    return hex && sodium_hex2bin(secret, WEFT_BOOT_SECRET_BYTES, hex, strlen(hex), NULL, &len,
                                 NULL) == 0 && len == WEFT_BOOT_SECRET_BYTES ? 0 : -1;
}

/* A real rank's handshake with this job's root, kept in FILE: the 64-byte proof the root
 * accepted, then a tcp hello sealed with this job's transport key. */
static int capture(const char *file)
{
    uint8_t secret[WEFT_BOOT_SECRET_BYTES], nonce[WEFT_BOOT_NONCE_BYTES], reply[REPLY];
    uint8_t verdict[WEFT_BOOT_AUTH_VERDICT_BYTES], key[32], hs[WEFT_TCP_HS_BYTES];
    const char *root = getenv("WEFT_ROOT");
    if (!root || secret_from_env(secret) != 0 ||
        weft_sockaddr_parse(root, &target, &target_len) != WEFT_OK) {
        fprintf(stderr, "stranger capture: run me under weft-run -n 1\n");
        return 2;
    }
    int fd = dial();
    if (fd < 0 || recv_exact(fd, nonce, sizeof(nonce)) != (int)sizeof(nonce))
        return 1;
    randombytes_buf(reply, WEFT_BOOT_NONCE_BYTES);
    weft_boot_auth_mac(secret, "weft-client", nonce, reply, reply + WEFT_BOOT_NONCE_BYTES);
    send_all(fd, reply, sizeof(reply));
    if (recv_exact(fd, verdict, sizeof(verdict)) != (int)sizeof(verdict) || verdict[0] != 0) {
        fprintf(stderr, "stranger capture: the root refused a real proof\n");
        return 1;
    }
    struct weft_boot_peer me = {.rank = 0, .nranks = 1, .pid = (int)getpid()};
    snprintf(me.host, sizeof(me.host), "stranger");
    uint8_t hello[WEFT_BOOT_HELLO_MAX];
    size_t len;
    struct weft_boot_hdr hdr;
    uint8_t *payload = NULL;
    if (weft_boot_hello_encode(&me, hello, sizeof(hello), &len) != WEFT_OK ||
        weft_boot_msg_send(fd, WEFT_BOOT_MSG_HELLO, 0, hello, len, now_s() + wait_s, "root") !=
            WEFT_OK ||
        weft_boot_msg_recv(fd, WEFT_BOOT_MSG_MAX, now_s() + wait_s, "root", &hdr, &payload) !=
            WEFT_OK)
        return 1;
    free(payload);
    close(fd);
    weft_boot_derive_key(secret, key);
    const uint32_t f[WEFT_TCP_HELLO_FIELDS] = {WEFT_TCP_HELLO_MAGIC, WEFT_TCP_HELLO_VERSION, 0,
                                               1, 0, 2};
    randombytes_buf(hs, WEFT_TCP_NONCE_BYTES);
    weft_tcp_hello_encode(key, hs, f);
    FILE *out = fopen(file, "wb");
    if (!out || fwrite(reply, 1, sizeof(reply), out) != sizeof(reply) ||
        fwrite(hs + WEFT_TCP_HS_HELLO, 1, TCP_HELLO, out) != TCP_HELLO || fclose(out) != 0)
        return 1;
    printf("captured job %s's handshake in %s\n", root, file);
    return 0;
}

static int flood(int n, double hold)
{
    int *fds = calloc((size_t)n, sizeof(*fds));
    int opened = 0, refused = 0, dropped = 0;
    for (int i = 0; i < n; i++) {
        fds[i] = socket(target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fds[i] < 0 || (connect(fds[i], (struct sockaddr *)&target, target_len) < 0 &&
                           errno != EINPROGRESS)) {
            refused++;
            if (fds[i] >= 0)
                close(fds[i]);
            fds[i] = -1;
            continue;
        }
        opened++;
    }
    struct timespec d = {(time_t)hold, (long)((hold - (double)(time_t)hold) * 1e9)};
    nanosleep(&d, NULL);
    for (int i = 0; i < n; i++) {
        if (fds[i] < 0)
            continue;
        uint8_t sink[256];
        ssize_t k;
        while ((k = recv(fds[i], sink, sizeof(sink), 0)) > 0)
            continue;
        if (k == 0 || errno == ECONNRESET || errno == ECONNREFUSED || errno == EPIPE)
            dropped++;
        close(fds[i]);
    }
    free(fds);
    printf("flood: %d connections opened, %d refused, %d dropped by the server within %.0f s\n",
           opened, refused, dropped, hold);
    return 0;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (getenv("STRANGER_WAIT"))
        wait_s = atof(getenv("STRANGER_WAIT"));
    if (argc >= 3 && strcmp(argv[1], "capture") == 0)
        return capture(argv[2]);
    if (argc < 4) {
        fprintf(stderr, "usage: stranger KIND boot|tcp HOST:PORT [FILE|N] [HOLD_S]\n");
        return 2;
    }
    const char *kind = argv[1], *proto = argv[2], *addr = argv[3];
    const int tcp = strcmp(proto, "tcp") == 0;
    if (weft_sockaddr_parse(addr, &target, &target_len) != WEFT_OK) {
        fprintf(stderr, "stranger: bad address %s\n", addr);
        return 2;
    }
    if (strcmp(kind, "flood") == 0)
        return flood(argc > 4 ? atoi(argv[4]) : 1000, argc > 5 ? atof(argv[5]) : 3);
    uint8_t rec[REPLY + TCP_HELLO], secret[WEFT_BOOT_SECRET_BYTES];
    int verdict = -1;
    char what[256] = "";
    int fd = dial();
    if (fd < 0) {
        printf("refused - %s %s %s: nothing listens (%s)\n", kind, proto, addr, strerror(errno));
        return 0;
    }
    const double t0 = now_s();
    if (strcmp(kind, "random") == 0) {
        uint8_t noise[4096];
        randombytes_buf(noise, sizeof(noise));
        send_all(fd, noise, sizeof(noise));
        verdict = closed_by_peer(fd) ? 1 : -1;
    } else if (strcmp(kind, "secret") == 0) {
        randombytes_buf(secret, sizeof(secret));
        verdict = tcp ? tcp_refused(fd, NULL) : boot_refused(fd, NULL, secret);
    } else if (strcmp(kind, "replay") == 0) {
        FILE *in = argc > 4 ? fopen(argv[4], "rb") : NULL;
        if (!in || fread(rec, 1, sizeof(rec), in) != sizeof(rec)) {
            fprintf(stderr, "stranger: cannot read a captured handshake\n");
            return 2;
        }
        fclose(in);
        verdict = tcp ? tcp_refused(fd, rec + REPLY) : boot_refused(fd, rec, NULL);
    } else if (strcmp(kind, "replay-same") == 0) {
        /* A proof that this job's root accepts, then the same bytes on a new connection. */
        uint8_t nonce[WEFT_BOOT_NONCE_BYTES], v[WEFT_BOOT_AUTH_VERDICT_BYTES];
        if (tcp || secret_from_env(secret) != 0) {
            fprintf(stderr, "stranger: replay-same needs boot and WEFT_SECRET\n");
            return 2;
        }
        if (recv_exact(fd, nonce, sizeof(nonce)) != (int)sizeof(nonce))
            return 1;
        randombytes_buf(rec, WEFT_BOOT_NONCE_BYTES);
        weft_boot_auth_mac(secret, "weft-client", nonce, rec, rec + WEFT_BOOT_NONCE_BYTES);
        send_all(fd, rec, REPLY);
        int first = recv_exact(fd, v, sizeof(v)) == (int)sizeof(v) && v[0] == 0;
        close(fd);
        fd = dial();
        verdict = fd < 0 ? 1 : boot_refused(fd, rec, NULL);
        snprintf(what, sizeof(what), " (the first use %s)",
                 first ? "was accepted" : "was NOT accepted: the test proves nothing");
        if (!first)
            verdict = 0;
    } else if (strcmp(kind, "half") == 0) {
        const double hold = argc > 4 ? atof(argv[4]) : 10;
        uint8_t nonce[WEFT_BOOT_NONCE_BYTES], half[REPLY / 2];
        randombytes_buf(half, sizeof(half));
        const int k = recv_exact(fd, nonce, sizeof(nonce));
        if (k > 0)
            send_all(fd, half, sizeof(half));
        const double save = wait_s;
        wait_s = hold;
        const int dropped = k == 0 || closed_by_peer(fd);
        wait_s = save;
        printf("%s - half %s %s: %s after %.1f s\n", dropped ? "rejected" : "held", proto, addr,
               dropped ? "the server dropped the half-written handshake" : "still open, closed by us",
               now_s() - t0);
        close(fd);
        return 0;
    } else {
        fprintf(stderr, "stranger: unknown kind %s\n", kind);
        return 2;
    }
    if (fd >= 0)
        close(fd);
    const char *word = verdict > 0 ? "rejected" : verdict == 0 ? "ACCEPTED" : "NO ANSWER";
    printf("%s - %s %s %s after %.2f s%s\n", word, kind, proto, addr, now_s() - t0, what);
    return verdict > 0 ? 0 : 1;
}
