/*
 * boot_check.c - multi-process checks of the bootstrap: forks ranks itself, runs the root
 * service in this process, and prints "ok - name" / "not ok - name: reason" per check.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/error.h"
#include "launcher/bootstrap.h"

#define MAX_RANKS 8
#define BIG_BLOCK (256 * 1024)

struct rank_spec {
    int rank;
    int nranks;
    int bad_secret; /* flip a bit of the secret: an intruder */
    double delay;   /* seconds to wait before joining */
};

struct result {
    int rank;
    int code; /* weft_result_t, or -1: a wrong result */
    double secs;
    char msg[900];
};

static int passed, failed;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void report(int ok, const char *name, const char *fmt, ...)
{
    if (ok) {
        printf("ok - %s\n", name);
        passed++;
    } else {
        va_list ap;
        printf("not ok - %s: ", name);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        failed++;
    }
    fflush(stdout);
}

static uint8_t pattern(int rank, size_t i)
{
    return (uint8_t)(rank * 31 + (int)(i % 251) + 7);
}

/* The collective part of a healthy rank. Returns 0, or -1 with a reason in msg. */
static int exercise(struct weft_boot *b, int rank, int nranks, char *msg, size_t len)
{
    size_t sizes[2] = { 100, BIG_BLOCK };
    uint8_t key[32], *keys = NULL, *mine = NULL, *all = NULL;
    char tags[MAX_RANKS][17];
    int rc = -1;

    if (weft_boot_rank(b) != rank || weft_boot_nranks(b) != nranks ||
        weft_boot_pid(b, rank) != (int)getpid()) {
        snprintf(msg, len, "rank/nranks/pid accessors disagree");
        return -1;
    }
    for (int k = 0; k < 2; k++) {
        size_t n = sizes[k];
        mine = malloc(n);
        all = malloc(n * (size_t)nranks);
        if (!mine || !all)
            goto out;
        for (size_t i = 0; i < n; i++)
            mine[i] = pattern(rank, i);
        memset(all, 0xee, n * (size_t)nranks);
        weft_result_t r = weft_boot_allgather(b, mine, all, n);
        if (r != WEFT_OK) {
            snprintf(msg, len, "allgather(%zu): %s", n, weft_error_message());
            goto out;
        }
        for (int p = 0; p < nranks; p++)
            for (size_t i = 0; i < n; i++)
                if (all[(size_t)p * n + i] != pattern(p, i)) {
                    snprintf(msg, len, "allgather(%zu): block %d byte %zu is %u, want %u", n, p,
                             i, all[(size_t)p * n + i], pattern(p, i));
                    goto out;
                }
        free(mine);
        free(all);
        mine = all = NULL;
    }
    /* Every rank must derive the same job tag and transport key. */
    weft_boot_transport_key(b, key);
    keys = malloc(32 * (size_t)nranks);
    if (!keys || weft_boot_allgather(b, key, keys, 32) != WEFT_OK ||
        weft_boot_allgather(b, weft_boot_job_tag(b), tags, 17) != WEFT_OK) {
        snprintf(msg, len, "key/tag allgather failed: %s", weft_error_message());
        goto out;
    }
    for (int p = 0; p < nranks; p++)
        if (memcmp(keys + 32 * p, key, 32) != 0 || strcmp(tags[p], weft_boot_job_tag(b)) != 0 ||
            strlen(tags[p]) != 16) {
            snprintf(msg, len, "rank %d has a different key or tag (%s vs %s)", p, tags[p],
                     weft_boot_job_tag(b));
            goto out;
        }
    if (weft_boot_barrier(b) != WEFT_OK) {
        snprintf(msg, len, "barrier: %s", weft_error_message());
        goto out;
    }
    rc = 0;
out:
    free(keys);
    free(mine);
    free(all);
    return rc;
}

static void child(const struct rank_spec *s, int id_fd, int res_fd, int exercise_it)
{
    struct result res;
    weft_unique_id_t id;
    struct weft_boot *b = NULL;
    size_t got = 0;

    memset(&res, 0, sizeof(res));
    res.rank = s->rank;
    while (got < sizeof(id)) {
        ssize_t k = read(id_fd, (char *)&id + got, sizeof(id) - got);
        if (k <= 0)
            _exit(2);
        got += (size_t)k;
    }
    if (s->bad_secret)
        id.internal[40] ^= 0x5a; /* inside the secret */
    if (s->delay > 0)
        usleep((useconds_t)(s->delay * 1e6));
    double t0 = now();
    weft_result_t r = weft_boot_init(&id, s->rank, s->nranks, &b);
    res.secs = now() - t0;
    res.code = r;
    if (r != WEFT_OK) {
        snprintf(res.msg, sizeof(res.msg), "%s", weft_error_message());
    } else if (exercise_it && exercise(b, s->rank, s->nranks, res.msg, sizeof(res.msg)) != 0) {
        res.code = -1;
    }
    weft_boot_destroy(b);
    if (write(res_fd, &res, sizeof(res)) != (ssize_t)sizeof(res))
        _exit(3);
    _exit(0);
}

/* Forks one process per spec, starts the root here, hands out the id, and collects results
 * within `limit` seconds. Returns the number of results collected. */
static int run_job(const struct rank_spec *specs, int n, struct result *out, double limit,
                   int exercise_it)
{
    int res_pipe[2], id_pipe[MAX_RANKS + 2][2];
    pid_t pids[MAX_RANKS + 2];
    weft_unique_id_t id;
    int got = 0;

    if (pipe(res_pipe) != 0)
        return 0;
    for (int i = 0; i < n; i++) {
        if (pipe(id_pipe[i]) != 0)
            return 0;
        fflush(stdout);
        pids[i] = fork();
        if (pids[i] == 0) {
            close(res_pipe[0]);
            close(id_pipe[i][1]);
            child(&specs[i], id_pipe[i][0], res_pipe[1], exercise_it);
        }
        close(id_pipe[i][0]);
    }
    close(res_pipe[1]);
    /* Children were forked before the root thread exists: no fork-with-threads hazards. */
    if (weft_boot_root_start("127.0.0.1", &id) != WEFT_OK) {
        fprintf(stderr, "boot_check: root start failed: %s\n", weft_error_message());
        memset(&id, 0, sizeof(id));
    }
    for (int i = 0; i < n; i++) {
        if (write(id_pipe[i][1], &id, sizeof(id)) != (ssize_t)sizeof(id))
            fprintf(stderr, "boot_check: cannot hand the id to child %d\n", i);
        close(id_pipe[i][1]);
    }
    double deadline = now() + limit;
    size_t part = 0;
    while (got < n) {
        struct pollfd pfd = { .fd = res_pipe[0], .events = POLLIN };
        int ms = (int)((deadline - now()) * 1000);
        if (ms <= 0 || poll(&pfd, 1, ms) <= 0)
            break;
        ssize_t k = read(res_pipe[0], (char *)&out[got] + part, sizeof(out[got]) - part);
        if (k <= 0)
            break;
        part += (size_t)k;
        if (part == sizeof(out[got])) {
            part = 0;
            got++;
        }
    }
    close(res_pipe[0]);
    for (int i = 0; i < n; i++) {
        kill(pids[i], SIGKILL);
        waitpid(pids[i], NULL, 0);
    }
    return got;
}

static void check_ranks(int nranks)
{
    struct rank_spec specs[MAX_RANKS] = { { 0 } };
    struct result res[MAX_RANKS];
    char name[64];

    snprintf(name, sizeof(name), "%d rank%s: init, allgather, barrier, destroy", nranks,
             nranks == 1 ? "" : "s");
    for (int i = 0; i < nranks; i++)
        specs[i] = (struct rank_spec){ .rank = nranks - 1 - i, .nranks = nranks };
    int got = run_job(specs, nranks, res, 10.0, 1);
    if (got != nranks) {
        report(0, name, "only %d of %d ranks reported", got, nranks);
        return;
    }
    for (int i = 0; i < nranks; i++)
        if (res[i].code != WEFT_OK) {
            report(0, name, "rank %d: code %d: %s", res[i].rank, res[i].code, res[i].msg);
            return;
        }
    report(1, name, NULL);
}

static void check_wrong_secret(void)
{
    const char *name = "wrong secret: intruder gets WEFT_ERR_AUTH, real ranks complete";
    struct rank_spec specs[3] = {
        { .rank = 0, .nranks = 2, .bad_secret = 1 },
        { .rank = 0, .nranks = 2, .delay = 0.3 },
        { .rank = 1, .nranks = 2, .delay = 0.3 },
    };
    struct result res[3];
    int got = run_job(specs, 3, res, 10.0, 1);
    int intruder = 0, good = 0;

    for (int i = 0; i < got; i++) {
        if (res[i].code == WEFT_ERR_AUTH && res[i].secs < 2.0)
            intruder++;
        else if (res[i].code == WEFT_OK)
            good++;
        else
            fprintf(stderr, "boot_check: rank %d: code %d after %.2f s: %s\n", res[i].rank,
                    res[i].code, res[i].secs, res[i].msg);
    }
    report(got == 3 && intruder == 1 && good == 2, name,
           "%d results, %d intruders refused promptly, %d ranks completed", got, intruder, good);
}

static void check_disagreement(void)
{
    const char *name = "nranks disagreement: every rank gets an error naming it";
    struct rank_spec specs[3] = {
        { .rank = 0, .nranks = 3 },
        { .rank = 1, .nranks = 3, .delay = 0.1 },
        { .rank = 2, .nranks = 4, .delay = 0.2 },
    };
    struct result res[3];
    int got = run_job(specs, 3, res, 10.0, 0);
    int named = 0;

    for (int i = 0; i < got; i++) {
        if (res[i].code == WEFT_ERR_INVALID_ARG && strstr(res[i].msg, "nranks=4") &&
            strstr(res[i].msg, "nranks=3"))
            named++;
        else
            fprintf(stderr, "boot_check: rank %d: code %d: %s\n", res[i].rank, res[i].code,
                    res[i].msg);
    }
    report(got == 3 && named == 3, name, "%d of %d ranks got the disagreement error", named, got);
}

static void check_rank_range(void)
{
    const char *name = "rank >= nranks: WEFT_ERR_INVALID_ARG";
    struct weft_boot *b = NULL;
    weft_unique_id_t id;

    memset(&id, 0, sizeof(id));
    weft_result_t r = weft_boot_init(&id, 4, 4, &b);
    report(r == WEFT_ERR_INVALID_ARG && b == NULL && strstr(weft_error_message(), "4"), name,
           "got %d: %s", r, weft_error_message());
}

static void check_missing_rank(void)
{
    const char *name = "missing rank: 3 of 4 get WEFT_ERR_TIMEOUT naming rank 3";
    struct rank_spec specs[3] = {
        { .rank = 0, .nranks = 4 },
        { .rank = 1, .nranks = 4 },
        { .rank = 2, .nranks = 4 },
    };
    struct result res[3];
    int got = run_job(specs, 3, res, 10.0, 0);
    int named = 0;

    for (int i = 0; i < got; i++) {
        if (res[i].code == WEFT_ERR_TIMEOUT && strstr(res[i].msg, "rank 3 of 4") &&
            res[i].secs < 2.0 + 1.5)
            named++;
        else
            fprintf(stderr, "boot_check: rank %d: code %d after %.2f s: %s\n", res[i].rank,
                    res[i].code, res[i].secs, res[i].msg);
    }
    report(got == 3 && named == 3, name, "%d of %d ranks got the timeout naming rank 3",
           named, got);
}

static void check_unreachable_root(void)
{
    const char *name = "unreachable root: WEFT_ERR_TIMEOUT naming the address";
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    struct weft_boot_id bid;
    struct weft_boot *b = NULL;
    weft_unique_id_t id;
    char want[64];

    /* A port that was just free and is now closed: connections are refused. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) != 0) {
        report(0, name, "cannot find a closed port: %s", strerror(errno));
        return;
    }
    close(s);
    memset(&bid, 0, sizeof(bid));
    memcpy(&bid.root, &a, sizeof(a));
    bid.root_len = sizeof(a);
    snprintf(want, sizeof(want), "127.0.0.1:%u", ntohs(a.sin_port));
    if (weft_boot_id_encode(&bid, &id) != WEFT_OK) {
        report(0, name, "encode: %s", weft_error_message());
        return;
    }
    double t0 = now();
    weft_result_t r = weft_boot_init(&id, 0, 2, &b);
    double secs = now() - t0;
    report(r == WEFT_ERR_TIMEOUT && strstr(weft_error_message(), want) && secs < 2.0 + 1.0 &&
               secs > 1.5,
           name, "got %d after %.2f s: %s", r, secs, weft_error_message());
}

int main(void)
{
    static const int sizes[] = { 1, 2, 3, 4, 8 };

    signal(SIGPIPE, SIG_IGN);
    setenv("WEFT_TIMEOUT", "10", 1);
    if (weft_config_reload() != WEFT_OK) {
        fprintf(stderr, "boot_check: config: %s\n", weft_error_message());
        return 1;
    }
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        check_ranks(sizes[i]);
    check_wrong_secret();
    check_disagreement();
    check_rank_range();
    setenv("WEFT_TIMEOUT", "2", 1);
    if (weft_config_reload() != WEFT_OK) {
        fprintf(stderr, "boot_check: config: %s\n", weft_error_message());
        return 1;
    }
    check_missing_rank();
    check_unreachable_root();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
