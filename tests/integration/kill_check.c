/*
 * kill_check.c - run under weft-run by kill_check.sh: every rank loops a large allreduce until
 * one rank is SIGKILLed from outside; each survivor reports what its call returned, and when.
 *   kill_check DIR [MIB]   (DIR: where rank R writes R.pid, R.started and R.result)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "weft.h"

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Written whole under a temporary name, then renamed: the driver never sees half a file. */
static void put_file(const char *dir, int rank, const char *kind, const char *text)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof(path), "%s/%d.%s", dir, rank, kind);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        perror(tmp);
        return;
    }
    fputs(text, f);
    fclose(f);
    rename(tmp, path);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: kill_check DIR [MIB]\n");
        return 2;
    }
    const char *dir = argv[1];
    const size_t mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 256;
    const size_t count = mib * ((size_t)1 << 20) / sizeof(float);
    char text[2048], host[256] = "?";
    weft_comm_t comm;
    int rank;

    /* weft-run sends SIGTERM to every rank when one dies; what this test measures is the
     * library's own answer, so the survivors keep going until their call returns (weft-run's
     * SIGKILL GRACE_S later still ends any that do not). */
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    gethostname(host, sizeof(host) - 1);

    weft_result_t r = weft_comm_init_env(&comm);
    if (r != WEFT_OK) {
        fprintf(stderr, "kill_check: init: %s\n", weft_last_error());
        return 1;
    }
    weft_comm_rank(comm, &rank);
    snprintf(text, sizeof(text), "%d %s\n", (int)getpid(), host);
    put_file(dir, rank, "pid", text);

    float *buf = malloc(count * sizeof(float));
    if (!buf) {
        fprintf(stderr, "kill_check: rank %d: no memory for %zu MiB\n", rank, mib);
        return 1;
    }
    for (size_t i = 0; i < count; i++)
        buf[i] = (float)(i & 7);
    if (weft_barrier(comm, NULL) != WEFT_OK) {
        fprintf(stderr, "kill_check: rank %d: barrier: %s\n", rank, weft_last_error());
        return 1;
    }
    snprintf(text, sizeof(text), "%.6f\n", wall_s());
    put_file(dir, rank, "started", text);
    /* Bounded: if no kill comes, the driver reports the missing error. */
    int iter = 0;
    for (; iter < 200 && r == WEFT_OK; iter++)
        r = weft_allreduce(buf, buf, count, WEFT_FLOAT32, WEFT_SUM, comm, NULL);
    const double t = wall_s();
    const char *msg = weft_last_error();
    snprintf(text, sizeof(text), "%.6f %d %s\n%s\n", t, (int)r, weft_strerror(r),
             r == WEFT_OK ? "" : msg);
    put_file(dir, rank, "result", text);
    printf("kill_check: rank %d: allreduce %d returned %s: %s\n", rank, iter, weft_strerror(r),
           r == WEFT_OK ? "" : msg);
    /* Stay a while so that the other survivors learn of the dead rank, not of us. */
    sleep(8);
    weft_comm_abort(comm);
    free(buf);
    return r == WEFT_ERR_REMOTE ? 0 : 1;
}
