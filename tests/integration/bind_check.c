/*
 * bind_check.c - run under weft-run: WEFT_BIND binds every thread of the rank, those started
 * before weft_comm_init_env included, as the knob says; a bad value fails init clearly.
 *   bind_check list      WEFT_BIND=A:B...: local rank i runs on list i (mod count) only
 *   bind_check bad TEXT  init fails with WEFT_ERR_INVALID_ARG naming WEFT_BIND and TEXT
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/topo.h"
#include "weft.h"

static volatile pid_t early_tid;
static volatile int stop;

/* A thread that exists before Weft binds: it must be bound too. */
static void *early(void *arg)
{
    (void)arg;
    early_tid = (pid_t)syscall(SYS_gettid);
    while (!stop)
        usleep(1000);
    return NULL;
}

static void *late(void *arg)
{
    cpu_set_t *out = arg;
    sched_getaffinity(0, sizeof(*out), out);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "list";
    const char *lr = getenv("WEFT_LOCAL_RANK");
    const int local = lr ? atoi(lr) : 0;
    weft_comm_t comm;

    if (strcmp(mode, "bad") == 0) {
        weft_result_t r = weft_comm_init_env(&comm);
        const char *msg = weft_last_error();
        const char *text = argc > 2 ? argv[2] : "";
        if (r != WEFT_ERR_INVALID_ARG || !strstr(msg, "WEFT_BIND") || !strstr(msg, text)) {
            printf("FAIL rank %d: expected WEFT_ERR_INVALID_ARG naming WEFT_BIND and \"%s\", "
                   "got %s: %s\n", local, text, weft_strerror(r), msg);
            return 1;
        }
        printf("rank %d: refused as expected: %s\n1 passed, 0 failed\n", local, msg);
        return 0;
    }

    const char *spec = getenv("WEFT_BIND");
    if (!spec || !strchr("0123456789", spec[0])) {
        printf("FAIL: WEFT_BIND must hold CPU lists for this mode\n");
        return 1;
    }
    /* The list this rank should get: the local-th ':' field, cycling. */
    int nlists = 1;
    for (const char *s = spec; *s; s++)
        nlists += *s == ':';
    const char *s = spec;
    for (int i = 0; i < local % nlists; i++)
        s = strchr(s, ':') + 1;
    char list[256], why[256];
    snprintf(list, sizeof(list), "%.*s", (int)strcspn(s, ":"), s);
    cpu_set_t want, got, got_early, got_late;
    if (weft_topo_parse_cpus(list, &want, why, sizeof(why)) != WEFT_OK) {
        printf("FAIL: %s\n", why);
        return 1;
    }

    pthread_t t1, t2;
    pthread_create(&t1, NULL, early, NULL);
    while (!early_tid)
        usleep(1000);
    weft_result_t r = weft_comm_init_env(&comm);
    if (r != WEFT_OK) {
        printf("FAIL: init: %s\n", weft_last_error());
        return 1;
    }
    sched_getaffinity(0, sizeof(got), &got);
    sched_getaffinity(early_tid, sizeof(got_early), &got_early);
    pthread_create(&t2, NULL, late, &got_late);
    pthread_join(t2, NULL);
    stop = 1;
    pthread_join(t1, NULL);

    int passed = 0, failed = 0;
    const struct { const char *what; cpu_set_t *set; } checks[] = {
        {"the calling thread", &got},
        {"a thread started before init", &got_early},
        {"a thread started after init", &got_late},
    };
    for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
        if (CPU_EQUAL(checks[i].set, &want)) {
            passed++;
        } else {
            failed++;
            printf("FAIL local rank %d: %s runs on %d CPUs, not on exactly \"%s\"\n", local,
                   checks[i].what, CPU_COUNT(checks[i].set), list);
        }
    }
    /* a collective still works once bound */
    int v = 1, sum = 0, n = 0;
    weft_comm_size(comm, &n);
    if (weft_allreduce(&v, &sum, 1, WEFT_INT32, WEFT_SUM, comm, NULL) != WEFT_OK || sum != n) {
        failed++;
        printf("FAIL: allreduce after binding: %d, expected %d\n", sum, n);
    } else {
        passed++;
    }
    weft_comm_destroy(comm);
    printf("local rank %d bound to CPUs %s: %d passed, %d failed\n", local, list, passed, failed);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
