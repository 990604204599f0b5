/*
 * abort_check.c - run under weft-run: while every rank is inside a large allreduce, a second
 * thread of the last rank calls weft_comm_abort. That rank's call must return WEFT_ERR_ABORTED
 * and every other rank's WEFT_ERR_REMOTE, within LIMIT s of the abort (WEFT_TIMEOUT is long).
 *   abort_check [MIB] [LIMIT] [DELAY_MS]   prints "abort at T" (aborter) or "returned at T"
 * The abort comes DELAY_MS (100) into the call, once the main thread has run inside it: an
 * abort that frees the communicator before the call enters it would be the program's race,
 * not the library's. Short enough that the call is still in flight.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "weft.h"

static weft_comm_t comm;
static atomic_int in_call;     /* 1 while the main thread is inside weft_allreduce */
static _Atomic double abort_at; /* when the other thread called weft_comm_abort; 0: it did not */
static weft_result_t abort_result;
static long delay_ms = 100;

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU seconds a thread has run. */
static double cpu_s(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Aborts DELAY_MS into the call, and not before the main thread has run MIN_CALL_CPU_S of
 * CPU since it set in_call: on a starved VM the wall-clock delay alone passed once before the
 * main thread had entered the library, and the abort freed the communicator under it.
 * Unless the call is over by then (the test then says so). */
#define MIN_CALL_CPU_S 0.02
static pthread_t main_thread;
static _Atomic double call_cpu; /* the main thread's CPU time when it set in_call */
static void *aborter(void *arg)
{
    (void)arg;
    clockid_t main_clock;
    if (pthread_getcpuclockid(main_thread, &main_clock) != 0)
        return NULL;
    struct timespec d = {delay_ms / 1000, (delay_ms % 1000) * 1000 * 1000};
    nanosleep(&d, NULL);
    const struct timespec ms = {0, 1000 * 1000};
    while (atomic_load(&in_call) && cpu_s(main_clock) - atomic_load(&call_cpu) < MIN_CALL_CPU_S)
        nanosleep(&ms, NULL);
    if (!atomic_load(&in_call))
        return NULL;
    atomic_store(&abort_at, wall_s());
    abort_result = weft_comm_abort(comm);
    return NULL;
}

int main(int argc, char **argv)
{
    const size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
    const double limit = argc > 2 ? atof(argv[2]) : 5.0;
    if (argc > 3)
        delay_ms = atol(argv[3]);
    const size_t count = mib * ((size_t)1 << 20) / sizeof(float);
    int rank, nranks;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (weft_comm_init_env(&comm) != WEFT_OK) {
        fprintf(stderr, "abort_check: init: %s\n", weft_last_error());
        return 1;
    }
    weft_comm_rank(comm, &rank);
    weft_comm_size(comm, &nranks);
    const int victim = nranks - 1;
    float *buf = malloc(count * sizeof(float));
    if (!buf)
        return 1;
    memset(buf, 0, count * sizeof(float));
    if (weft_barrier(comm, NULL) != WEFT_OK) {
        fprintf(stderr, "abort_check: rank %d: barrier: %s\n", rank, weft_last_error());
        return 1;
    }
    pthread_t th;
    main_thread = pthread_self();
    atomic_store(&call_cpu, cpu_s(CLOCK_THREAD_CPUTIME_ID));
    atomic_store(&in_call, 1);
    if (rank == victim)
        pthread_create(&th, NULL, aborter, NULL);
    const double t0 = wall_s();
    weft_result_t r = weft_allreduce(buf, buf, count, WEFT_FLOAT32, WEFT_SUM, comm, NULL);
    atomic_store(&in_call, 0);
    const double t1 = wall_s();
    const char *msg = r == WEFT_OK ? "" : weft_last_error();
    int ok = 1;
    if (rank == victim) {
        pthread_join(th, NULL);
        double at = atomic_load(&abort_at);
        printf("abort at %.6f\n", at);
        if (at == 0) {
            printf("not ok - rank %d: the allreduce ended after %.2f s, before the abort: use "
                   "more MiB\n", rank, t1 - t0);
            ok = 0;
        } else if (r != WEFT_ERR_ABORTED || abort_result != WEFT_OK || t1 - at > limit) {
            printf("not ok - rank %d: got %s %.2f s after the abort (abort: %s): %s\n", rank,
                   weft_strerror(r), t1 - at, weft_strerror(abort_result), msg);
            ok = 0;
        } else {
            printf("ok - rank %d: WEFT_ERR_ABORTED %.3f s after the abort: %s\n", rank, t1 - at,
                   msg);
        }
    } else {
        /* The driver compares this time with the aborter's. */
        printf("returned at %.6f\n", t1);
        if (r != WEFT_ERR_REMOTE) {
            printf("not ok - rank %d: got %s, want WEFT_ERR_REMOTE: %s\n", rank,
                   weft_strerror(r), msg);
            ok = 0;
        } else {
            printf("ok - rank %d: WEFT_ERR_REMOTE after %.3f s in the call: %s\n", rank, t1 - t0,
                   msg);
        }
        weft_comm_abort(comm);
    }
    free(buf);
    return ok ? 0 : 1;
}
