/*
 * exec.c - the worker thread of a communicator's stream operations: a FIFO of items, each
 * polled until ready, run, then released, strictly in order; the first failure fails the rest.
 */
#include "exec.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"
#include "config.h"
#include "error.h"
#include "log.h"

/* Polls of ready() that only yield, then sleeps doubling from the first to the last. */
#define READY_SPINS 64
#define READY_SLEEP_MIN_NS 4000L
#define READY_SLEEP_MAX_NS 1000000L

struct weft_exec {
    pthread_mutex_t lock;
    pthread_cond_t wake;                /* for the worker: an item came, or abort or stop */
    pthread_cond_t idle;                /* for drain: an item started running or was released */
    struct weft_exec_item *head, *tail; /* queued, not yet taken by the worker */
    size_t pending;                     /* pushed and not yet released */
    uint64_t progress;                  /* bumped on every start of a run and release */
    bool running;                       /* the worker is inside an item's run() */
    int aborted;                        /* read by the worker's polls without the lock */
    bool stopping;
    weft_result_t error; /* first failure of an item; sticky */
    char error_msg[1024];
    int rank;
    double timeout_s;
    pthread_t thread;
};

/* The worker's view of abort, read between polls. */
static bool is_aborted(struct weft_exec *ex)
{
    return __atomic_load_n(&ex->aborted, __ATOMIC_ACQUIRE) != 0;
}

static void wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, double deadline)
{
    struct timespec ts;
    ts.tv_sec = (time_t)deadline;
    ts.tv_nsec = (long)((deadline - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L)
        ts.tv_nsec = 999999999L;
    pthread_cond_timedwait(cond, lock, &ts);
}

/* Polls ready() with backoff: a stream reaches an operation within microseconds to seconds,
 * and a worker that spins would take a core from the ranks sharing this host. */
static weft_result_t wait_ready(struct weft_exec *ex, struct weft_exec_item *item)
{
    const double deadline = weft_now_s() + ex->timeout_s;
    long sleep_ns = READY_SLEEP_MIN_NS;
    for (unsigned polls = 0;; polls++) {
        weft_result_t r = item->ops->ready(item);
        if (r != WEFT_ERR_IN_PROGRESS)
            return r;
        if (is_aborted(ex))
            return WEFT_ERR_ABORTED;
        if (weft_now_s() > deadline)
            return WEFT_ERROR(WEFT_ERR_TIMEOUT,
                              "rank %d: %s: its stream did not reach it within WEFT_TIMEOUT=%g s "
                              "(is the stream waiting for something that comes later?); it and "
                              "every later stream operation of the communicator are released "
                              "without running",
                              ex->rank, item->name, ex->timeout_s);
        if (polls < READY_SPINS) {
            sched_yield();
            continue;
        }
        const struct timespec ts = {0, sleep_ns};
        nanosleep(&ts, NULL);
        if (sleep_ns < READY_SLEEP_MAX_NS)
            sleep_ns = sleep_ns * 2 < READY_SLEEP_MAX_NS ? sleep_ns * 2 : READY_SLEEP_MAX_NS;
    }
}

/* Records the item's own failure: the first one becomes the executor's sticky error. */
static void note_failure(struct weft_exec *ex, struct weft_exec_item *item, weft_result_t r)
{
    const char *msg = weft_error_message();
    WEFT_WARN(COLL, "rank %d: stream operation %s failed (%s): %s", ex->rank, item->name,
              weft_strerror(r), msg[0] ? msg : "no message");
    pthread_mutex_lock(&ex->lock);
    if (ex->error == WEFT_OK) {
        ex->error = r;
        snprintf(ex->error_msg, sizeof(ex->error_msg), "%s", msg[0] ? msg : weft_strerror(r));
    }
    pthread_mutex_unlock(&ex->lock);
}

static void *worker_main(void *arg)
{
    struct weft_exec *ex = arg;
    pthread_mutex_lock(&ex->lock);
    for (;;) {
        while (!ex->head && !ex->stopping)
            pthread_cond_wait(&ex->wake, &ex->lock);
        struct weft_exec_item *item = ex->head;
        if (!item)
            break; /* stopping, and everything is released */
        ex->head = item->next;
        if (!ex->head)
            ex->tail = NULL;
        /* Items behind a failure, or queued when the executor was aborted, never run. */
        weft_result_t r = ex->aborted ? WEFT_ERR_ABORTED : ex->error;
        pthread_mutex_unlock(&ex->lock);

        if (r == WEFT_OK) {
            weft_error_clear();
            r = wait_ready(ex, item);
            if (r == WEFT_OK) {
                pthread_mutex_lock(&ex->lock);
                ex->running = true;
                ex->progress++;
                pthread_cond_broadcast(&ex->idle);
                pthread_mutex_unlock(&ex->lock);
                r = item->ops->run(item);
                pthread_mutex_lock(&ex->lock);
                ex->running = false;
                pthread_mutex_unlock(&ex->lock);
            }
            if (r != WEFT_OK && r != WEFT_ERR_ABORTED)
                note_failure(ex, item, r);
        }
        item->ops->release(item, r);
        item->ops->free(item);

        pthread_mutex_lock(&ex->lock);
        ex->pending--;
        ex->progress++;
        pthread_cond_broadcast(&ex->idle);
    }
    pthread_mutex_unlock(&ex->lock);
    return NULL;
}

weft_result_t weft_exec_start(struct weft_exec **out, int rank)
{
    struct weft_exec *ex = calloc(1, sizeof(*ex));
    if (!ex)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: cannot allocate the stream worker", rank);
    ex->rank = rank;
    ex->timeout_s = weft_config_double(WEFT_CFG_TIMEOUT);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* weft_now_s's clock */
    pthread_mutex_init(&ex->lock, NULL);
    pthread_cond_init(&ex->wake, &ca);
    pthread_cond_init(&ex->idle, &ca);
    pthread_condattr_destroy(&ca);

    /* The worker blocks every signal, so the application's handlers run on its threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    const int err = pthread_create(&ex->thread, NULL, worker_main, ex);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        pthread_cond_destroy(&ex->idle);
        pthread_cond_destroy(&ex->wake);
        pthread_mutex_destroy(&ex->lock);
        free(ex);
        return WEFT_ERROR_ERR(WEFT_ERR_SYSTEM, err, "pthread_create",
                              "rank %d: cannot start the stream worker thread", rank);
    }
    *out = ex;
    return WEFT_OK;
}

weft_result_t weft_exec_push(struct weft_exec *ex, struct weft_exec_item *item)
{
    pthread_mutex_lock(&ex->lock);
    if (ex->stopping) {
        /* The worker is gone or leaving, and has released everything before this item. */
        pthread_mutex_unlock(&ex->lock);
        item->ops->release(item, WEFT_ERR_ABORTED);
        item->ops->free(item);
        return WEFT_ERROR(WEFT_ERR_ABORTED, "rank %d: %s: the communicator is being destroyed",
                          ex->rank, item->name);
    }
    item->next = NULL;
    if (ex->tail)
        ex->tail->next = item;
    else
        ex->head = item;
    ex->tail = item;
    ex->pending++;
    const bool aborted = ex->aborted;
    pthread_cond_signal(&ex->wake);
    pthread_mutex_unlock(&ex->lock);
    /* Queued all the same, so that the worker releases it after those before it. */
    if (aborted)
        return WEFT_ERROR(WEFT_ERR_ABORTED, "rank %d: %s: the communicator was aborted", ex->rank,
                          item->name);
    return WEFT_OK;
}

weft_result_t weft_exec_drain(struct weft_exec *ex, double timeout_s)
{
    pthread_mutex_lock(&ex->lock);
    uint64_t seen = ex->progress;
    double deadline = weft_now_s() + timeout_s;
    while (ex->pending > 0) {
        const double now = weft_now_s();
        if (ex->running || ex->progress != seen) {
            seen = ex->progress;
            deadline = now + timeout_s;
        } else if (now >= deadline) {
            const size_t left = ex->pending;
            pthread_mutex_unlock(&ex->lock);
            return WEFT_ERROR(WEFT_ERR_TIMEOUT,
                              "rank %d: %zu stream operation%s of the communicator still queued "
                              "after WEFT_TIMEOUT=%g s without progress",
                              ex->rank, left, left == 1 ? "" : "s", timeout_s);
        }
        /* Wake at least once a second to restart the deadline while an item runs. */
        wait_until(&ex->idle, &ex->lock, deadline < now + 1 ? deadline : now + 1);
    }
    pthread_mutex_unlock(&ex->lock);
    return WEFT_OK;
}

weft_result_t weft_exec_error(struct weft_exec *ex, char *msg, size_t len)
{
    pthread_mutex_lock(&ex->lock);
    const weft_result_t r = ex->error;
    if (msg && len)
        snprintf(msg, len, "%s", ex->error_msg);
    pthread_mutex_unlock(&ex->lock);
    return r;
}

void weft_exec_abort(struct weft_exec *ex)
{
    pthread_mutex_lock(&ex->lock);
    __atomic_store_n(&ex->aborted, 1, __ATOMIC_RELEASE);
    pthread_cond_signal(&ex->wake);
    pthread_mutex_unlock(&ex->lock);
}

void weft_exec_stop(struct weft_exec *ex)
{
    if (!ex)
        return;
    pthread_mutex_lock(&ex->lock);
    __atomic_store_n(&ex->aborted, 1, __ATOMIC_RELEASE);
    ex->stopping = true;
    pthread_cond_signal(&ex->wake);
    pthread_mutex_unlock(&ex->lock);
    /* Bounded: queued items are released without running, a poll of ready() sees the abort,
     * and a run keeps the deadline of the host operation. */
    pthread_join(ex->thread, NULL);
    pthread_cond_destroy(&ex->idle);
    pthread_cond_destroy(&ex->wake);
    pthread_mutex_destroy(&ex->lock);
    free(ex);
}
