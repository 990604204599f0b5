/*
 * test_exec.c - the stream worker (core/exec.c) driven by fake items whose readiness is a
 * host flag: order, readiness, release exactly once, failures, timeouts, abort, drain, stop;
 * and the host halves of gpu/stream.c: the staging layout and the ticket gate.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/error.h"
#include "core/exec.h"
#include "gpu/stream.h"

/* ---- fake items --------------------------------------------------------------------------- */

struct fake {
    struct weft_exec_item base;
    int ready;               /* a test thread flips it */
    weft_result_t ready_err; /* ready() fails with this instead, when set */
    weft_result_t run_result;
    int hold;        /* run() waits while it is set */
    int ran_seq;     /* order of run (1-based), 0: never ran */
    int released;    /* release calls */
    int release_seq; /* order of release */
    weft_result_t release_result;
    int freed;
    int released_before_run_ended; /* a release while run was still inside: must stay 0 */
    int in_run;
};

static int seq_run, seq_release;

static weft_result_t fake_ready(struct weft_exec_item *base)
{
    struct fake *f = (struct fake *)base;
    if (f->ready_err != WEFT_OK)
        return WEFT_ERROR(f->ready_err, "fake %s: ready failed", base->name);
    return __atomic_load_n(&f->ready, __ATOMIC_ACQUIRE) ? WEFT_OK : WEFT_ERR_IN_PROGRESS;
}

static weft_result_t fake_run(struct weft_exec_item *base)
{
    struct fake *f = (struct fake *)base;
    __atomic_store_n(&f->in_run, 1, __ATOMIC_RELEASE);
    f->ran_seq = __atomic_add_fetch(&seq_run, 1, __ATOMIC_ACQ_REL);
    while (__atomic_load_n(&f->hold, __ATOMIC_ACQUIRE)) {
        const struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    __atomic_store_n(&f->in_run, 0, __ATOMIC_RELEASE);
    if (f->run_result != WEFT_OK)
        return WEFT_ERROR(f->run_result, "fake %s: boom", base->name);
    return WEFT_OK;
}

static void fake_release(struct weft_exec_item *base, weft_result_t result)
{
    struct fake *f = (struct fake *)base;
    if (__atomic_load_n(&f->in_run, __ATOMIC_ACQUIRE))
        f->released_before_run_ended = 1;
    f->release_result = result;
    f->release_seq = __atomic_add_fetch(&seq_release, 1, __ATOMIC_ACQ_REL);
    __atomic_add_fetch(&f->released, 1, __ATOMIC_ACQ_REL);
}

static void fake_free(struct weft_exec_item *base)
{
    __atomic_add_fetch(&((struct fake *)base)->freed, 1, __ATOMIC_ACQ_REL);
}

static const struct weft_exec_item_ops fake_ops = {fake_ready, fake_run, fake_release, fake_free};

static const char *const names[] = {"item0", "item1", "item2", "item3",
                                    "item4", "item5", "item6", "item7"};

static void fakes_init(struct fake *f, size_t n, int ready)
{
    memset(f, 0, n * sizeof(*f));
    for (size_t i = 0; i < n; i++) {
        f[i].base = (struct weft_exec_item){&fake_ops, names[i], NULL};
        f[i].ready = ready;
    }
    seq_run = 0;
    seq_release = 0;
}

static int released(struct fake *f)
{
    return __atomic_load_n(&f->released, __ATOMIC_ACQUIRE);
}

/* Every item released and freed exactly once. */
static void assert_all_released_once(struct fake *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(released(&f[i]), 1);
        assert_int_equal(__atomic_load_n(&f[i].freed, __ATOMIC_ACQUIRE), 1);
        assert_int_equal(f[i].released_before_run_ended, 0);
    }
}

static void sleep_ms(long ms)
{
    const struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Flips an int to 1 after a delay, from another thread. */
struct flip {
    int *flag;
    int value;
    long after_ms;
};

static void *flip_main(void *arg)
{
    struct flip *fl = arg;
    sleep_ms(fl->after_ms);
    __atomic_store_n(fl->flag, fl->value, __ATOMIC_RELEASE);
    return NULL;
}

static int setup_config(void **state)
{
    (void)state;
    unsetenv("WEFT_TIMEOUT");
    return weft_config_reload() == WEFT_OK ? 0 : -1;
}

/* ---- the executor ------------------------------------------------------------------------- */

static void test_order(void **state)
{
    (void)state;
    struct fake f[8];
    fakes_init(f, 8, 1);
    struct weft_exec *ex;
    assert_int_equal(weft_exec_start(&ex, 0), WEFT_OK);
    for (int i = 0; i < 8; i++)
        assert_int_equal(weft_exec_push(ex, &f[i].base), WEFT_OK);
    assert_int_equal(weft_exec_drain(ex, 10), WEFT_OK);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(f[i].ran_seq, i + 1);
        assert_int_equal(f[i].release_seq, i + 1);
        assert_int_equal(f[i].release_result, WEFT_OK);
    }
    assert_all_released_once(f, 8);
    assert_int_equal(weft_exec_error(ex, NULL, 0), WEFT_OK);
    weft_exec_stop(ex);
}

/* The first item is not ready: neither it nor the ready one behind it may run until it is. */
static void test_runs_only_when_ready(void **state)
{
    (void)state;
    struct fake f[2];
    fakes_init(f, 2, 0);
    f[1].ready = 1;
    struct weft_exec *ex;
    assert_int_equal(weft_exec_start(&ex, 0), WEFT_OK);
    assert_int_equal(weft_exec_push(ex, &f[0].base), WEFT_OK);
    assert_int_equal(weft_exec_push(ex, &f[1].base), WEFT_OK);
    sleep_ms(100);
    assert_int_equal(f[0].ran_seq, 0);
    assert_int_equal(f[1].ran_seq, 0);
    assert_int_equal(released(&f[0]) + released(&f[1]), 0);
    pthread_t t;
    struct flip fl = {&f[0].ready, 1, 50};
    assert_int_equal(pthread_create(&t, NULL, flip_main, &fl), 0);
    assert_int_equal(weft_exec_drain(ex, 10), WEFT_OK);
    pthread_join(t, NULL);
    assert_int_equal(f[0].ran_seq, 1);
    assert_int_equal(f[1].ran_seq, 2);
    assert_all_released_once(f, 2);
    weft_exec_stop(ex);
}

/* A failed run: later items are released with its error without running, and so are items
 * pushed afterwards; the error and its message stay. */
static void test_failure_fails_the_rest(void **state)
{
    (void)state;
    struct fake f[5];
    fakes_init(f, 5, 1);
    f[1].run_result = WEFT_ERR_REMOTE;
    struct weft_exec *ex;
    assert_int_equal(weft_exec_start(&ex, 3), WEFT_OK);
    for (int i = 0; i < 4; i++)
        assert_int_equal(weft_exec_push(ex, &f[i].base), WEFT_OK);
    assert_int_equal(weft_exec_drain(ex, 10), WEFT_OK);
    assert_int_equal(f[0].ran_seq, 1);
    assert_int_equal(f[1].ran_seq, 2);
    assert_int_equal(f[2].ran_seq, 0);
    assert_int_equal(f[3].ran_seq, 0);
    assert_int_equal(f[0].release_result, WEFT_OK);
    for (int i = 1; i < 4; i++) {
        assert_int_equal(f[i].release_result, WEFT_ERR_REMOTE);
        assert_int_equal(f[i].release_seq, i + 1);
    }
    char msg[256];
    assert_int_equal(weft_exec_error(ex, msg, sizeof(msg)), WEFT_ERR_REMOTE);
    assert_non_null(strstr(msg, "fake item1: boom"));
    assert_int_equal(weft_exec_push(ex, &f[4].base), WEFT_OK);
    assert_int_equal(weft_exec_drain(ex, 10), WEFT_OK);
    assert_int_equal(f[4].ran_seq, 0);
    assert_int_equal(f[4].release_result, WEFT_ERR_REMOTE);
    assert_all_released_once(f, 5);
    weft_exec_stop(ex);
}

/* ready() itself fails (a broken stream): released with that error, never run. */
static void test_ready_failure(void **state)
{
    (void)state;
    struct fake f[2];
    fakes_init(f, 2, 1);
    f[0].ready_err = WEFT_ERR_SYSTEM;
    struct weft_exec *ex;
    assert_int_equal(weft_exec_start(&ex, 0), WEFT_OK);
    assert_int_equal(weft_exec_push(ex, &f[0].base), WEFT_OK);
    assert_int_equal(weft_exec_push(ex, &f[1].base), WEFT_OK);
    assert_int_equal(weft_exec_drain(ex, 10), WEFT_OK);
    assert_int_equal(f[0].ran_seq + f[1].ran_seq, 0);
    assert_int_equal(f[0].release_result, WEFT_ERR_SYSTEM);
    assert_int_equal(f[1].release_result, WEFT_ERR_SYSTEM);
    assert_int_equal(weft_exec_error(ex, NULL, 0), WEFT_ERR_SYSTEM);
    assert_all_released_once(f, 2);
    weft_exec_stop(ex);
}

/* A never-ready item is released with WEFT_ERR_TIMEOUT after WEFT_TIMEOUT, and the rest with
 * it, without running; nothing hangs. */
static void test_never_ready_times_out(void **state)
{
    (void)state;
    setenv("WEFT_TIMEOUT", "0.3", 1);
    assert_int_equal(weft_config_reload(), WEFT_OK);
    struct fake f[3];
    fakes_init(f, 3, 0);
    f[1].ready = f[2].ready = 1;
    struct weft_exec *ex;
    assert_int_equal(weft_exec_start(&ex, 5), WEFT_OK);
    const double t0 = weft_now_s();
    for (int i = 0; i < 3; i++)
        assert_int_equal(weft_exec_push(ex, &f[i].base), WEFT_OK);
    assert_int_equal(weft_exec_drain(ex, 10), WEFT_OK);
    const double took = weft_now_s() - t0;
    assert_true(took >= 0.29 && took < 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(f[i].ran_seq, 0);
        assert_int_equal(f[i].release_result, WEFT_ERR_TIMEOUT);
    }
    char msg[512];
    assert_int_equal(weft_exec_error(ex, msg, sizeof(msg)), WEFT_ERR_TIMEOUT);
    assert_non_null(strstr(msg, "WEFT_TIMEOUT=0.3"));
    assert_non_null(strstr(msg, "rank 5"));
    assert_non_null(strstr(msg, "item0"));
    assert_all_released_once(f, 3);
    weft_exec_stop(ex);
    unsetenv("WEFT_TIMEOUT");
    assert_int_equal(weft_config_reload(), WEFT_OK);
}

/* Abort while the head waits for readiness: everything is released with WEFT_ERR_ABORTED at
 * once (WEFT_TIMEOUT is the default 300 s), none runs; a later push is refused. */
static void test_abort_releases_promptly(void **state)
{
    (void)state;
    struct fake f[4];
    fakes_init(f, 4, 0);
    f[1].ready = f[2].ready = 1;
    struct weft_exec *ex;
    assert_int_equal(weft_exec_start(&ex, 0), WEFT_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(weft_exec_push(ex, &f[i].base), WEFT_OK);
    sleep_ms(50);
    const double t0 = weft_now_s();
    weft_exec_abort(ex);
    while (released(&f[2]) == 0 && weft_now_s() - t0 < 5)
        sleep_ms(1);
    assert_true(weft_now_s() - t0 < 1);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(f[i].ran_seq, 0);
        assert_int_equal(f[i].release_result, WEFT_ERR_ABORTED);
        assert_int_equal(f[i].release_seq, i + 1);
    }
    assert_int_equal(weft_exec_push(ex, &f[3].base), WEFT_ERR_ABORTED);
    weft_exec_stop(ex);
    assert_int_equal(f[3].release_result, WEFT_ERR_ABORTED);
    assert_all_released_once(f, 4);
}

/* Abort while an item runs: it finishes and is released first (in order), then the rest. */
static void test_abort_while_running(void **state)
{
    (void)state;
    struct fake f[3];
    fakes_init(f, 3, 1);
    f[0].hold = 1;
    struct weft_exec *ex;
    assert_int_equal(weft_exec_start(&ex, 0), WEFT_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(weft_exec_push(ex, &f[i].base), WEFT_OK);
    while (!__atomic_load_n(&f[0].in_run, __ATOMIC_ACQUIRE))
        sleep_ms(1);
    weft_exec_abort(ex);
    sleep_ms(50);
    assert_int_equal(released(&f[0]) + released(&f[1]) + released(&f[2]), 0);
    __atomic_store_n(&f[0].hold, 0, __ATOMIC_RELEASE);
    weft_exec_stop(ex);
    assert_int_equal(f[0].ran_seq, 1);
    assert_int_equal(f[0].release_result, WEFT_OK);
    assert_int_equal(f[0].release_seq, 1);
    for (int i = 1; i < 3; i++) {
        assert_int_equal(f[i].ran_seq, 0);
        assert_int_equal(f[i].release_result, WEFT_ERR_ABORTED);
        assert_int_equal(f[i].release_seq, i + 1);
    }
    assert_all_released_once(f, 3);
}

/* Drain returns only once the items are released; with no progress it gives up in time. */
static void test_drain(void **state)
{
    (void)state;
    struct fake f[2];
    fakes_init(f, 2, 0);
    struct weft_exec *ex;
    assert_int_equal(weft_exec_start(&ex, 0), WEFT_OK);
    assert_int_equal(weft_exec_drain(ex, 1), WEFT_OK); /* empty */
    assert_int_equal(weft_exec_push(ex, &f[0].base), WEFT_OK);
    pthread_t t;
    struct flip fl = {&f[0].ready, 1, 150};
    assert_int_equal(pthread_create(&t, NULL, flip_main, &fl), 0);
    const double t0 = weft_now_s();
    assert_int_equal(weft_exec_drain(ex, 10), WEFT_OK);
    assert_true(weft_now_s() - t0 >= 0.14);
    assert_int_equal(released(&f[0]), 1);
    pthread_join(t, NULL);

    /* A running item does not count against the drain's deadline. */
    f[1].ready = 1;
    f[1].hold = 1;
    struct flip unhold = {&f[1].hold, 0, 600};
    assert_int_equal(weft_exec_push(ex, &f[1].base), WEFT_OK);
    assert_int_equal(pthread_create(&t, NULL, flip_main, &unhold), 0);
    assert_int_equal(weft_exec_drain(ex, 0.2), WEFT_OK);
    assert_int_equal(released(&f[1]), 1);
    pthread_join(t, NULL);

    /* Never ready (and WEFT_TIMEOUT long): drain times out after its own limit. */
    struct fake g[1];
    fakes_init(g, 1, 0);
    assert_int_equal(weft_exec_push(ex, &g[0].base), WEFT_OK);
    const double t1 = weft_now_s();
    assert_int_equal(weft_exec_drain(ex, 0.2), WEFT_ERR_TIMEOUT);
    assert_true(weft_now_s() - t1 < 2);
    assert_non_null(strstr(weft_error_message(), "still queued"));
    assert_int_equal(released(&g[0]), 0);
    weft_exec_stop(ex); /* must not wait for readiness */
    assert_int_equal(g[0].release_result, WEFT_ERR_ABORTED);
    assert_all_released_once(g, 1);
    assert_all_released_once(f, 2);
}

/* Stop right after pushing: every item released exactly once (run or aborted), the thread
 * joined; a push after stop is released at once. */
static void test_stop_joins(void **state)
{
    (void)state;
    struct fake f[8];
    fakes_init(f, 8, 1);
    f[7].ready = 0;
    struct weft_exec *ex;
    assert_int_equal(weft_exec_start(&ex, 0), WEFT_OK);
    for (int i = 0; i < 8; i++)
        assert_int_equal(weft_exec_push(ex, &f[i].base), WEFT_OK);
    weft_exec_stop(ex);
    assert_all_released_once(f, 8);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(f[i].release_seq, i + 1);
        assert_true(f[i].release_result == (f[i].ran_seq ? WEFT_OK : WEFT_ERR_ABORTED));
    }
    assert_int_equal(f[7].ran_seq, 0);
    weft_exec_stop(NULL); /* harmless */
}

/* ---- gpu/stream.c's host halves --------------------------------------------------------- */

static void layout_checks(struct weft_stage_buf *b, size_t n, size_t total)
{
    for (size_t i = 0; i < n; i++) {
        const uintptr_t di = (uintptr_t)b[i].dev;
        assert_true(b[i].offset + b[i].bytes <= total);
        assert_int_equal(b[i].offset % 256, di % 256);
        for (size_t j = 0; j < n; j++) {
            const uintptr_t dj = (uintptr_t)b[j].dev;
            const bool overlap_dev = di < dj + b[j].bytes && dj < di + b[i].bytes;
            const bool overlap_host =
                b[i].offset < b[j].offset + b[j].bytes && b[j].offset < b[i].offset + b[i].bytes;
            /* Overlapping buffers keep their distance; others do not share staging. */
            if (overlap_dev)
                assert_true((intptr_t)(b[i].offset - b[j].offset) == (intptr_t)(di - dj));
            assert_int_equal(overlap_host, overlap_dev);
        }
    }
}

static void test_stage_layout(void **state)
{
    (void)state;
    static char arena[1 << 16] __attribute__((aligned(256)));
    size_t total = 1;
    assert_int_equal(weft_stage_layout(NULL, 0, &total), WEFT_OK);
    assert_int_equal(total, 0);

    /* In place: the same buffer in and out shares one staging range. */
    struct weft_stage_buf inplace[2] = {{arena + 8, 400, WEFT_STAGE_IN, 0, NULL},
                                        {arena + 8, 400, WEFT_STAGE_OUT, 0, NULL}};
    assert_int_equal(weft_stage_layout(inplace, 2, &total), WEFT_OK);
    assert_int_equal(inplace[0].offset, inplace[1].offset);
    assert_true(total >= 400 && total < 400 + 256);

    /* Allgather in place on rank 2 of 4: sendbuf is block 2 of recvbuf. */
    struct weft_stage_buf ag[2] = {{arena + 1024 + 2 * 96, 96, WEFT_STAGE_IN, 0, NULL},
                                   {arena + 1024, 4 * 96, WEFT_STAGE_OUT, 0, NULL}};
    assert_int_equal(weft_stage_layout(ag, 2, &total), WEFT_OK);
    assert_int_equal(ag[0].offset, ag[1].offset + 2 * 96);
    layout_checks(ag, 2, total);

    /* Disjoint buffers (out of address order) get disjoint staging. */
    struct weft_stage_buf dis[3] = {{arena + 5000, 100, WEFT_STAGE_OUT, 0, NULL},
                                    {arena + 3, 100, WEFT_STAGE_IN, 0, NULL},
                                    {arena + 100, 7, WEFT_STAGE_IN, 0, NULL}};
    assert_int_equal(weft_stage_layout(dis, 3, &total), WEFT_OK);
    layout_checks(dis, 3, total);
    assert_true(total >= 207 && total < 207 + 3 * 512);

    /* Random sets, including chains of partial overlaps. */
    srand(7);
    for (int iter = 0; iter < 2000; iter++) {
        struct weft_stage_buf b[8];
        const size_t n = 1 + (size_t)rand() % 8;
        for (size_t i = 0; i < n; i++)
            b[i] = (struct weft_stage_buf){arena + rand() % 4096, 1 + (size_t)(rand() % 700),
                                           1u + (unsigned)(rand() % 3), 0, NULL};
        assert_int_equal(weft_stage_layout(b, n, &total), WEFT_OK);
        layout_checks(b, n, total);
    }

    struct weft_stage_buf bad = {arena, 0, WEFT_STAGE_IN, 0, NULL};
    assert_int_equal(weft_stage_layout(&bad, 1, &total), WEFT_ERR_INVALID_ARG);
    bad = (struct weft_stage_buf){(void *)(UINTPTR_MAX - 10), 100, WEFT_STAGE_IN, 0, NULL};
    assert_int_equal(weft_stage_layout(&bad, 1, &total), WEFT_ERR_INVALID_ARG);
}

struct gate_release {
    struct weft_ticket_gate *g;
    uint32_t ticket;
    long after_ms;
};

static void *gate_release_main(void *arg)
{
    struct gate_release *gr = arg;
    sleep_ms(gr->after_ms);
    weft_ticket_gate_release(gr->g, gr->ticket);
    return NULL;
}

/* Releases tickets 3, 4, 5, then `ticket`, one every after_ms. */
static void *gate_release_steps(void *arg)
{
    struct gate_release *gr = arg;
    const uint32_t tickets[4] = {3, 4, 5, gr->ticket};
    for (int i = 0; i < 4; i++) {
        sleep_ms(gr->after_ms);
        weft_ticket_gate_release(gr->g, tickets[i]);
    }
    return NULL;
}

static void test_ticket_gate(void **state)
{
    (void)state;
    assert_true(weft_ticket_passed(5, 5));
    assert_true(weft_ticket_passed(6, 5));
    assert_false(weft_ticket_passed(4, 5));
    assert_true(weft_ticket_passed(1, 0xffffffffu)); /* wrapped */
    assert_false(weft_ticket_passed(0xffffffffu, 1));

    struct weft_ticket_gate g;
    weft_ticket_gate_init(&g);
    double t0 = weft_now_s();
    assert_int_equal(weft_ticket_gate_wait(&g, 1, 0.15), WEFT_ERR_TIMEOUT);
    assert_true(weft_now_s() - t0 >= 0.14 && weft_now_s() - t0 < 2);
    assert_non_null(strstr(weft_error_message(), "WEFT_TIMEOUT"));

    /* Released by another thread: the waiter wakes, and an older ticket passes at once. */
    pthread_t t;
    struct gate_release gr = {&g, 2, 100};
    assert_int_equal(pthread_create(&t, NULL, gate_release_main, &gr), 0);
    t0 = weft_now_s();
    assert_int_equal(weft_ticket_gate_wait(&g, 2, 10), WEFT_OK);
    assert_true(weft_now_s() - t0 < 5);
    pthread_join(t, NULL);
    assert_int_equal(weft_ticket_gate_wait(&g, 1, 0), WEFT_OK);

    /* Releases of earlier tickets restart the deadline: 4 x 300 ms waited with 1 s (wide
     * margins: under ThreadSanitizer on a loaded host, 60 ms steps overran 0.15 s). */
    pthread_t st;
    struct gate_release steps = {&g, 9, 300};
    assert_int_equal(pthread_create(&st, NULL, gate_release_steps, &steps), 0);
    t0 = weft_now_s();
    assert_int_equal(weft_ticket_gate_wait(&g, 9, 1.0), WEFT_OK);
    assert_true(weft_now_s() - t0 >= 1.1);
    pthread_join(st, NULL);

    /* Across the wrap of the 32-bit counter. */
    weft_ticket_gate_release(&g, 0xfffffffeu);
    assert_int_equal(weft_ticket_gate_wait(&g, 0, 0.05), WEFT_ERR_TIMEOUT);
    weft_ticket_gate_release(&g, 1);
    assert_int_equal(weft_ticket_gate_wait(&g, 0xffffffffu, 0), WEFT_OK);
    assert_int_equal(weft_ticket_gate_wait(&g, 0, 0), WEFT_OK);
    assert_int_equal(weft_ticket_gate_wait(&g, 1, 0), WEFT_OK);
    weft_ticket_gate_fini(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_runs_only_when_ready),
        cmocka_unit_test(test_failure_fails_the_rest),
        cmocka_unit_test(test_ready_failure),
        cmocka_unit_test(test_never_ready_times_out),
        cmocka_unit_test(test_abort_releases_promptly),
        cmocka_unit_test(test_abort_while_running),
        cmocka_unit_test(test_drain),
        cmocka_unit_test(test_stop_joins),
        cmocka_unit_test(test_stage_layout),
        cmocka_unit_test(test_ticket_gate),
    };
    return cmocka_run_group_tests(tests, setup_config, NULL);
}
