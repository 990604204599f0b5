/*
 * errors_check.c - run under weft-run: bad arguments get clear errors and leave the
 * communicator usable; a dead or silent peer turns into an error on every rank, in bounded
 * time; ranks that disagree on the job size fail at init; a transport that cannot start
 * fails init on every rank, within WEFT_TIMEOUT, with a message naming the cause.
 *   errors_check args | dead-peer | silent-peer | never-match | nranks | init-fails FRAGMENT...
 *   errors_check vanish busy|idle   (run by tcp_vanish_check.sh: the peer's host vanishes)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "launcher/bootstrap.h"
#include "core/clock.h"
#include "weft.h"

static int rank = -1, nranks;
static int passed, failed;

static void check(int ok, const char *name, const char *detail)
{
    if (ok) {
        passed++;
        printf("ok - rank %d: %s\n", rank, name);
    } else {
        failed++;
        printf("not ok - rank %d: %s: %s\n", rank, name, detail);
    }
}

/* The call returned `want` and its message mentions every fragment. */
static void expect(weft_result_t got, weft_result_t want, const char *name, const char *frag1,
                   const char *frag2)
{
    const char *msg = weft_last_error();
    char detail[1400];
    snprintf(detail, sizeof(detail), "got %s, want %s; message \"%s\"", weft_strerror(got),
             weft_strerror(want), msg);
    check(got == want && (!frag1 || strstr(msg, frag1)) && (!frag2 || strstr(msg, frag2)), name,
          detail);
}


static void bad_arguments(weft_comm_t comm)
{
    char me[32];
    snprintf(me, sizeof(me), "rank %d", rank);
    float buf[4] = {1, 2, 3, 4}, out[4];
    expect(weft_allreduce(NULL, out, 4, WEFT_FLOAT32, WEFT_SUM, comm, NULL),
           WEFT_ERR_INVALID_ARG, "NULL sendbuf", "sendbuf is NULL", me);
    expect(weft_allreduce(buf, NULL, 4, WEFT_FLOAT32, WEFT_SUM, comm, NULL),
           WEFT_ERR_INVALID_ARG, "NULL recvbuf", "recvbuf is NULL", me);
    expect(weft_allreduce(buf, out, SIZE_MAX / 2, WEFT_FLOAT32, WEFT_SUM, comm, NULL),
           WEFT_ERR_INVALID_ARG, "count overflow", "overflows", me);
    expect(weft_allgather(buf, out, SIZE_MAX / (size_t)nranks + 1, WEFT_INT8, comm, NULL),
           WEFT_ERR_INVALID_ARG,
           "allgather count x nranks overflow", "overflows", NULL);
    expect(weft_allreduce(buf, out, 4, (weft_dtype_t)42, WEFT_SUM, comm, NULL),
           WEFT_ERR_INVALID_ARG, "invalid dtype", "invalid dtype 42", me);
    expect(weft_allreduce(buf, out, 4, WEFT_FLOAT32, (weft_op_t)9, comm, NULL),
           WEFT_ERR_INVALID_ARG, "invalid op", "invalid op 9", me);
    expect(weft_broadcast(buf, out, 4, WEFT_FLOAT32, nranks, comm, NULL), WEFT_ERR_INVALID_ARG,
           "root out of range", "root", "is not in");
    expect(weft_reduce(buf, out, 4, WEFT_FLOAT32, WEFT_SUM, -1, comm, NULL),
           WEFT_ERR_INVALID_ARG, "negative root", "root -1", NULL);
    expect(weft_send(buf, 4, WEFT_FLOAT32, nranks + 3, comm, NULL), WEFT_ERR_INVALID_ARG,
           "peer out of range", "peer", "is not in");
    expect(weft_allreduce(buf, out, 4, WEFT_FLOAT32, WEFT_SUM, comm, (weft_stream_t)buf),
           WEFT_ERR_UNSUPPORTED, "stream on a host-only build", "stream", NULL);
    expect(weft_allreduce(buf, out, 4, WEFT_FLOAT32, WEFT_SUM, NULL, NULL),
           WEFT_ERR_INVALID_ARG, "NULL comm", "comm is NULL", NULL);
    expect(weft_group_end(), WEFT_ERR_INVALID_ARG, "group_end without start", "without", NULL);
    weft_comm_t other;
    weft_unique_id_t id;
    memset(&id, 0, sizeof(id));
    expect(weft_comm_init_rank(&other, 2, id, 2), WEFT_ERR_INVALID_ARG, "rank >= nranks",
           "rank 2 is not in", NULL);
    /* NULL buffers are fine when there is nothing to move. */
    expect(weft_allreduce(NULL, NULL, 0, WEFT_FLOAT32, WEFT_SUM, comm, NULL), WEFT_OK,
           "count 0 with NULL buffers", NULL, NULL);

    /* None of that broke the communicator. */
    for (int i = 0; i < 4; i++)
        buf[i] = (float)(rank + i);
    weft_result_t r = weft_allreduce(buf, out, 4, WEFT_FLOAT32, WEFT_SUM, comm, NULL);
    float want = (float)(nranks * (nranks - 1) / 2);
    check(r == WEFT_OK && out[0] == want && out[3] == want + 3 * (float)nranks,
          "allreduce after bad calls", weft_last_error());
}

/* The last rank leaves without a word; everyone else must get WEFT_ERR_REMOTE quickly
 * (WEFT_TIMEOUT is long), whether or not they talk to it directly. */
static void dead_peer(weft_comm_t comm)
{
    float buf[1024] = {0}, out[1024];
    weft_allreduce(buf, out, 1024, WEFT_FLOAT32, WEFT_SUM, comm, NULL);
    if (rank == nranks - 1)
        _exit(0);
    const double t0 = weft_now_s();
    weft_result_t r = WEFT_OK;
    for (int i = 0; i < 100 && r == WEFT_OK; i++)
        r = weft_allreduce(buf, out, 1024, WEFT_FLOAT32, WEFT_SUM, comm, NULL);
    const double took = weft_now_s() - t0;
    char detail[1400];
    snprintf(detail, sizeof(detail), "got %s after %.1f s: %s", weft_strerror(r), took,
             weft_last_error());
    check(r == WEFT_ERR_REMOTE && took < 20, "dead peer gives WEFT_ERR_REMOTE", detail);
    weft_result_t async;
    weft_comm_get_async_error(comm, &async);
    check(async == r, "async error records it", weft_strerror(async));
    r = weft_allreduce(buf, out, 4, WEFT_FLOAT32, WEFT_SUM, comm, NULL);
    check(r != WEFT_OK, "later calls fail at once", "a call on a failed communicator worked");
}

/* The last rank stays alive but never joins the collective: the others time out within
 * WEFT_TIMEOUT, with a message naming what they waited for. */
static void silent_peer(weft_comm_t comm)
{
    if (rank == nranks - 1) {
        sleep(8);
        return;
    }
    float buf[16] = {0}, out[16];
    const double t0 = weft_now_s();
    weft_result_t r = weft_allreduce(buf, out, 16, WEFT_FLOAT32, WEFT_SUM, comm, NULL);
    const double took = weft_now_s() - t0;
    char detail[1400];
    snprintf(detail, sizeof(detail), "got %s after %.1f s: %s", weft_strerror(r), took,
             weft_last_error());
    /* Neighbours of the silent rank time out; the others may first see them abort. */
    check((r == WEFT_ERR_TIMEOUT || r == WEFT_ERR_REMOTE) && took < 7, "silent peer is bounded",
          detail);
    if (r == WEFT_ERR_TIMEOUT)
        check(strstr(weft_last_error(), "WEFT_TIMEOUT") != NULL, "timeout message names the knob",
              weft_last_error());
}

/* Every rank is alive and keeps polling, but each receives from its right neighbour and nobody
 * sends: the calls can never match. Whatever the transport exchanges meanwhile (liveness
 * probes, credit notes, keepalives) is not progress, so every rank must fail with
 * WEFT_ERR_TIMEOUT within WEFT_TIMEOUT (+ 2 s) and say what it waited for. */
static void never_match(weft_comm_t comm)
{
    const char *t = getenv("WEFT_TIMEOUT");
    const double limit = t ? atof(t) : 300;
    const int from = (rank + 1) % nranks;
    float buf[300];
    const double t0 = weft_now_s();
    weft_result_t r = weft_recv(buf, 300, WEFT_FLOAT32, from, comm, NULL);
    const double took = weft_now_s() - t0;
    char detail[1400], want[64];
    snprintf(detail, sizeof(detail), "got %s after %.1f s (WEFT_TIMEOUT=%.0f): %s",
             weft_strerror(r), took, limit, weft_last_error());
    check(r == WEFT_ERR_TIMEOUT, "calls that never match give WEFT_ERR_TIMEOUT", detail);
    check(took >= limit - 0.5 && took < limit + 2, "within WEFT_TIMEOUT + 2 s", detail);
    /* what it waited for: the operation, its bytes, the peer, its host and the transport */
    snprintf(want, sizeof(want), "receive of %zu bytes", sizeof(buf));
    const char *env_tp = getenv("WEFT_TRANSPORT");
    char via[64];
    snprintf(via, sizeof(via), "(via %s)", env_tp && *env_tp ? env_tp : "");
    const char *msg = weft_last_error();
    char peer[64];
    snprintf(peer, sizeof(peer), "from rank %d on ", from);
    check(strstr(msg, want) != NULL && strstr(msg, peer) != NULL,
          "message names the operation, its bytes and the peer", detail);
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    check(strstr(msg, host) != NULL, "message names the peer's host", detail);
    check(strstr(msg, via) != NULL, "message names the transport", detail);
}

/* tcp_vanish_check.sh runs two ranks in two network namespaces and, once both wrote
 * $VANISH_DIR/ready.RANK, blackholes the link between them (no FIN, no RST) and writes the
 * wall-clock time it did so to $VANISH_DIR/t0. busy: the ranks run allreduces the whole time
 * (unacknowledged data: TCP_USER_TIMEOUT); idle: each waits on a receive nobody sends (an
 * idle socket: keepalive). Either way each must fail with WEFT_ERR_REMOTE naming the peer,
 * its host and ETIMEDOUT within WEFT_SOCKET_DEAD_TIMEOUT + 5 s, well before WEFT_TIMEOUT. */
static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void vanish(weft_comm_t comm, const char *how)
{
    const char *dir = getenv("VANISH_DIR"), *peer_host = getenv("VANISH_PEER_HOST");
    const char *dead = getenv("WEFT_SOCKET_DEAD_TIMEOUT");
    const double dead_s = dead ? atof(dead) : 30;
    char path[512], detail[1400];
    weft_comm_rank(comm, &rank);
    weft_comm_size(comm, &nranks);
    enum { COUNT = 1 << 18 };
    float *buf = calloc(COUNT, sizeof(float)), *out = calloc(COUNT, sizeof(float));
    weft_result_t r = weft_allreduce(buf, out, COUNT, WEFT_FLOAT32, WEFT_SUM, comm, NULL);
    check(r == WEFT_OK, "allreduce before the link goes", weft_last_error());
    snprintf(path, sizeof(path), "%s/ready.%d", dir ? dir : ".", rank);
    FILE *f = fopen(path, "w");
    if (f)
        fclose(f);
    const int peer = (rank + 1) % nranks;
    if (strcmp(how, "idle") == 0) {
        r = weft_recv(buf, 16, WEFT_FLOAT32, peer, comm, NULL);
    } else {
        while (r == WEFT_OK)
            r = weft_allreduce(buf, out, COUNT, WEFT_FLOAT32, WEFT_SUM, comm, NULL);
    }
    const double t = wall_s();
    double t0 = 0;
    snprintf(path, sizeof(path), "%s/t0", dir ? dir : ".");
    if ((f = fopen(path, "r")) != NULL) {
        if (fscanf(f, "%lf", &t0) != 1)
            t0 = 0;
        fclose(f);
    }
    const char *msg = weft_last_error();
    snprintf(detail, sizeof(detail), "got %s %.1f s after the link went (t0 %s): %s",
             weft_strerror(r), t0 ? t - t0 : -1.0, t0 ? "read" : "missing", msg);
    printf("# rank %d: %s\n", rank, detail);
    check(r == WEFT_ERR_REMOTE, "a vanished host gives WEFT_ERR_REMOTE", detail);
    check(t0 > 0 && t - t0 < dead_s + 5, "within WEFT_SOCKET_DEAD_TIMEOUT + 5 s", detail);
    char who[64];
    snprintf(who, sizeof(who), "rank %d ", peer);
    check(strstr(msg, who) != NULL && peer_host && strstr(msg, peer_host) != NULL,
          "message names the peer and its host", detail);
    check(strstr(msg, "ETIMEDOUT") != NULL || strstr(msg, strerror(ETIMEDOUT)) != NULL,
          "message names ETIMEDOUT", detail);
    free(buf);
    free(out);
}

/* The environment keeps the forced transport from starting (say UCX_TLS=nonexistent): init
 * must fail here, soon, and its message must contain every fragment. */
static void init_fails(int nfrags, char **frags)
{
    const char *t = getenv("WEFT_TIMEOUT");
    const double limit = t ? atof(t) : 300;
    weft_comm_t comm;
    const double t0 = weft_now_s();
    weft_result_t r = weft_comm_init_env(&comm);
    const double took = weft_now_s() - t0;
    char detail[1400];
    snprintf(detail, sizeof(detail), "got %s after %.1f s: %s", weft_strerror(r), took,
             weft_last_error());
    check(r != WEFT_OK && took < limit, "init fails within WEFT_TIMEOUT", detail);
    for (int i = 0; i < nfrags; i++) {
        char name[160];
        snprintf(name, sizeof(name), "message names \"%s\"", frags[i]);
        check(r != WEFT_OK && strstr(weft_last_error(), frags[i]) != NULL, name, detail);
    }
    if (r == WEFT_OK)
        weft_comm_destroy(comm);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "args";
    rank = atoi(getenv("WEFT_RANK") ? getenv("WEFT_RANK") : "-1");
    nranks = atoi(getenv("WEFT_NRANKS") ? getenv("WEFT_NRANKS") : "0");
    weft_comm_t comm;
    weft_result_t r;
    if (strcmp(mode, "init-fails") == 0) {
        init_fails(argc - 2, argv + 2);
    } else if (strcmp(mode, "nranks") == 0) {
        /* Rank 1 believes the job has one rank more than everyone else. */
        weft_unique_id_t id;
        if (weft_boot_id_from_env(&id) != WEFT_OK)
            return 2;
        r = weft_comm_init_rank(&comm, rank == 1 ? nranks + 1 : nranks, id, rank);
        expect(r, r == WEFT_OK ? WEFT_ERR_INVALID_ARG : r, "ranks disagreeing on nranks fail",
               "nranks", NULL);
        check(r != WEFT_OK, "init failed", "init succeeded");
    } else {
        r = weft_comm_init_env(&comm);
        if (r != WEFT_OK) {
            printf("not ok - init: %s\n", weft_last_error());
            return 1;
        }
        if (strcmp(mode, "args") == 0) {
            bad_arguments(comm);
            weft_comm_destroy(comm);
        } else if (strcmp(mode, "dead-peer") == 0) {
            dead_peer(comm);
            weft_comm_abort(comm);
        } else if (strcmp(mode, "silent-peer") == 0) {
            silent_peer(comm);
            weft_comm_abort(comm);
        } else if (strcmp(mode, "vanish") == 0) {
            vanish(comm, argc > 2 ? argv[2] : "busy");
            weft_comm_abort(comm);
        } else if (strcmp(mode, "never-match") == 0) {
            never_match(comm);
            weft_comm_abort(comm);
        } else {
            fprintf(stderr, "errors_check: unknown mode %s\n", mode);
            return 2;
        }
    }
    printf("rank %d: %d passed, %d failed\n", rank, passed, failed);
    return failed ? 1 : 0;
}
