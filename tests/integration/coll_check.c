/*
 * coll_check.c - run under weft-run: every collective x dtype x op x awkward count, in place
 * and out of place, checked against a reference every rank computes for itself, and every
 * byte the call must not write (send buffers, guards, a non-root's reduce output) re-read.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "tests/integration/coll_values.h"
#include "weft.h"

static int rank, nranks;
static long passed, failed;

/* ---- one case ----------------------------------------------------------------------------- */

enum kind { ALLREDUCE, BROADCAST, REDUCE, ALLGATHER, REDUCE_SCATTER, ALLTOALL, SENDRECV, NKINDS };
static const char *const kind_names[NKINDS] = {"allreduce", "broadcast",      "reduce",
                                               "allgather", "reduce_scatter", "alltoall",
                                               "sendrecv"};

static int has_op(enum kind k)
{
    return k == ALLREDUCE || k == REDUCE || k == REDUCE_SCATTER;
}

static void report(int ok, const char *what, enum kind k, weft_dtype_t t, weft_op_t op,
                   size_t count, int inplace, const char *detail)
{
    if (ok) {
        passed++;
        return;
    }
    failed++;
    printf("not ok - rank %d: %s %s %s count %zu %s: %s %s\n", rank, kind_names[k],
           weft_dtype_name(t), has_op(k) ? weft_op_name(op) : "", count,
           inplace ? "in-place" : "out-of-place", what, detail);
}

/* Bytes of poison around every buffer of a call: a write just outside its range, before or
 * after, lands there. */
#define GUARD 64
#define POISON_IN 0x5a  /* around the send buffer */
#define POISON_OUT 0xa5 /* the receive buffer before the call, and around it */

/* The first byte of [p, p + len) that is not `v`, or len. */
static size_t first_not(const uint8_t *p, size_t len, uint8_t v)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != v)
            return i;
    return len;
}

/* The first byte where a and b differ, or len. */
static size_t first_diff(const uint8_t *a, const uint8_t *b, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (a[i] != b[i])
            return i;
    return len;
}

/* Asserts that [p, p + len) still holds `v` (what: which bytes, for the message). */
static void check_poison(const uint8_t *p, size_t len, uint8_t v, const char *what,
                         enum kind k, weft_dtype_t t, weft_op_t op, size_t count, int inplace)
{
    const size_t at = first_not(p, len, v);
    char detail[160];
    snprintf(detail, sizeof(detail), "byte %zu of %zu is 0x%02x, not the poison 0x%02x", at, len,
             at < len ? p[at] : 0, v);
    report(at == len, what, k, t, op, count, inplace, detail);
}

/* Asserts that [p, p + len) still equals the copy taken before the call. */
static void check_unchanged(const uint8_t *p, const uint8_t *copy, size_t len, const char *what,
                            enum kind k, weft_dtype_t t, weft_op_t op, size_t count, int inplace)
{
    const size_t at = first_diff(p, copy, len);
    char detail[160];
    snprintf(detail, sizeof(detail), "byte %zu of %zu changed from 0x%02x to 0x%02x", at, len,
             at < len ? copy[at] : 0, at < len ? p[at] : 0);
    report(at == len, what, k, t, op, count, inplace, detail);
}

/* Runs one case; returns 0 when the call itself failed (the communicator is then broken).
 * Besides the result: the send buffer is re-read after every out-of-place call and must be
 * unchanged; GUARD poisoned bytes before and after the send and receive buffers must survive;
 * so must the whole receive buffer of a reduce on a rank that is not the root, and, in place,
 * every byte of the buffer outside what the call may write. */
static int run_case(weft_comm_t comm, enum kind k, weft_dtype_t t, weft_op_t op, size_t count,
                    int inplace)
{
    const size_t es = weft_dtype_size(t);
    const size_t n = (size_t)nranks;
    const int root = (int)(count % n);
    size_t in_elems = count, out_elems = count;
    if (k == ALLGATHER)
        out_elems = count * n;
    if (k == REDUCE_SCATTER)
        in_elems = count * n;
    if (k == ALLTOALL)
        in_elems = out_elems = count * n;
    const size_t in_bytes = in_elems * es, out_bytes = out_elems * es;
    uint8_t *in_all = malloc(in_bytes + 2 * GUARD), *out_all = malloc(out_bytes + 2 * GUARD);
    uint8_t *in_copy = malloc(in_bytes + 1), *out_copy = malloc(out_bytes + 1);
    if (!in_all || !out_all || !in_copy || !out_copy) {
        fprintf(stderr, "rank %d: out of memory\n", rank);
        exit(1);
    }
    uint8_t *in = in_all + GUARD, *out = out_all + GUARD;
    memset(in_all, POISON_IN, in_bytes + 2 * GUARD);
    memset(out_all, POISON_OUT, out_bytes + 2 * GUARD);
    for (size_t i = 0; i < in_elems; i++)
        weft_dtype_store(t, in, i, coll_input(t, op, rank, i, 0));

    weft_result_t r;
    const void *sbuf = in;
    void *rbuf = out;
    if (inplace) {
        if (k == ALLGATHER) {
            memcpy(out + (size_t)rank * count * es, in, count * es);
            sbuf = out + (size_t)rank * count * es;
        } else if (k == REDUCE_SCATTER) {
            rbuf = in + (size_t)rank * count * es;
        } else {
            memcpy(out, in, count * es);
            sbuf = out;
        }
    }
    memcpy(in_copy, in, in_bytes);
    memcpy(out_copy, out, out_bytes);
    switch (k) {
    case ALLREDUCE: r = weft_allreduce(sbuf, rbuf, count, t, op, comm, NULL); break;
    case BROADCAST: r = weft_broadcast(sbuf, rbuf, count, t, root, comm, NULL); break;
    case REDUCE: r = weft_reduce(sbuf, rbuf, count, t, op, root, comm, NULL); break;
    case ALLGATHER: r = weft_allgather(sbuf, rbuf, count, t, comm, NULL); break;
    case REDUCE_SCATTER: r = weft_reduce_scatter(sbuf, rbuf, count, t, op, comm, NULL); break;
    case ALLTOALL: r = weft_alltoall(sbuf, rbuf, count, t, comm, NULL); break;
    default:
        weft_group_start();
        weft_send(sbuf, count, t, (rank + 1) % nranks, comm, NULL);
        weft_recv(rbuf, count, t, (rank + nranks - 1) % nranks, comm, NULL);
        r = weft_group_end();
        break;
    }
    if (r != WEFT_OK) {
        char detail[1200];
        snprintf(detail, sizeof(detail), "%s: %s", weft_strerror(r), weft_last_error());
        report(0, "call failed:", k, t, op, count, inplace, detail);
        free(in_all);
        free(out_all);
        free(in_copy);
        free(out_copy);
        return 0;
    }

    const int in_place_rs = k == REDUCE_SCATTER && inplace;
    const uint8_t *res = in_place_rs ? rbuf : out;
    size_t wrong = 0, first = 0;
    double got = 0, want = 0;
    const int check = !(k == REDUCE && rank != root);
    for (size_t i = 0; check && i < out_elems; i++) {
        double w;
        switch (k) {
        case ALLREDUCE:
        case REDUCE: w = coll_reference(t, op, nranks, i, 0); break;
        case BROADCAST: w = coll_input(t, op, root, i, 0); break;
        case ALLGATHER: w = coll_input(t, op, (int)(i / count), i % count, 0); break;
        case REDUCE_SCATTER:
            w = coll_reference(t, op, nranks, (size_t)rank * count + i, 0);
            break;
        case ALLTOALL:
            w = coll_input(t, op, (int)(i / count), (size_t)rank * count + i % count, 0);
            break;
        default: w = coll_input(t, op, (rank + nranks - 1) % nranks, i, 0); break;
        }
        double g = weft_dtype_load(t, res, i);
        if (!coll_same(t, nranks, g, w) && wrong++ == 0) {
            first = i;
            got = g;
            want = w;
        }
    }
    char detail[160];
    snprintf(detail, sizeof(detail), "%zu wrong, first at %zu: got %g, want %g", wrong, first,
             got, want);
    report(wrong == 0, "", k, t, op, count, inplace, detail);

    /* What must not have been written. */
    check_poison(in_all, GUARD, POISON_IN, "wrote before the start of sendbuf:", k, t, op, count,
                 inplace);
    check_poison(in + in_bytes, GUARD, POISON_IN, "wrote past the end of sendbuf:", k, t, op,
                 count, inplace);
    check_poison(out_all, GUARD, POISON_OUT, "wrote before the start of recvbuf:", k, t, op,
                 count, inplace);
    check_poison(out + out_bytes, GUARD, POISON_OUT, "wrote past the end of recvbuf:", k, t, op,
                 count, inplace);
    if (!inplace) {
        check_unchanged(in, in_copy, in_bytes, "changed its sendbuf:", k, t, op, count, inplace);
        if (k == REDUCE && rank != root)
            check_poison(out, out_bytes, POISON_OUT, "wrote recvbuf on a rank not the root:", k,
                         t, op, count, inplace);
    } else if (in_place_rs) {
        /* Only this rank's block of the buffer is its to write. */
        const size_t mine = (size_t)rank * count * es;
        check_unchanged(in, in_copy, mine, "wrote sendbuf before its own block:", k, t, op,
                        count, inplace);
        check_unchanged(in + mine + count * es, in_copy + mine + count * es,
                        in_bytes - mine - count * es, "wrote sendbuf after its own block:", k,
                        t, op, count, inplace);
        check_poison(out_all, out_bytes + 2 * GUARD, POISON_OUT, "wrote an unused buffer:", k, t,
                     op, count, inplace);
    } else if (k == REDUCE && rank != root) {
        check_unchanged(out, out_copy, out_bytes, "wrote its buffer on a rank not the root:", k,
                        t, op, count, inplace);
    } else {
        /* The input buffer is not part of an in-place call: nothing may touch it. */
        check_unchanged(in, in_copy, in_bytes, "wrote a buffer not passed to the call:", k, t,
                        op, count, inplace);
    }
    free(in_all);
    free(out_all);
    free(in_copy);
    free(out_copy);
    return 1;
}

/* Whether `name` is an item of the comma list `list` (NULL: every name is). */
static int listed(const char *list, const char *name)
{
    if (!list)
        return 1;
    const size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    /* Counts: 0, 1, 2, a prime, one not divisible by any small rank count, a large prime-ish. */
    static const size_t counts[] = {0, 1, 2, 7, 97, 1031, 65537 * 2 + 1};
    const int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    weft_comm_t comm;
    weft_result_t r = weft_comm_init_env(&comm);
    if (r != WEFT_OK) {
        fprintf(stderr, "coll_check: init failed: %s: %s\n", weft_strerror(r), weft_last_error());
        return 1;
    }
    weft_comm_rank(comm, &rank);
    weft_comm_size(comm, &nranks);

    int alive = 1;
    /* COLL_CHECK_KINDS=allreduce,allgather: only those kinds (the hierarchy's cases) */
    const char *only = getenv("COLL_CHECK_KINDS");
    for (int k = 0; k < NKINDS && alive; k++)
        for (int t = 0; t < WEFT_NUM_DTYPES && alive && listed(only, kind_names[k]); t++)
            for (int op = 0; op < (has_op(k) ? WEFT_NUM_OPS : 1) && alive; op++)
                for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]) && alive; c++) {
                    /* the largest count once per dtype (SUM) keeps the run short */
                    if (c == sizeof(counts) / sizeof(counts[0]) - 1 && (quick || op > 0))
                        continue;
                    const int variants = k == ALLTOALL || k == SENDRECV ? 1 : 2;
                    for (int inplace = 0; inplace < variants && alive; inplace++)
                        alive = run_case(comm, (enum kind)k, (weft_dtype_t)t, (weft_op_t)op,
                                         counts[c], inplace);
                }
    if (alive) {
        r = weft_barrier(comm, NULL);
        if (r != WEFT_OK) {
            printf("not ok - rank %d: barrier: %s\n", rank, weft_last_error());
            failed++;
        }
        /* Everyone's tally, so rank 0 prints the job's totals. */
        long tally[2] = {passed, failed}, sum[2];
        if (weft_allreduce(tally, sum, 2, WEFT_INT64, WEFT_SUM, comm, NULL) == WEFT_OK &&
            rank == 0)
            printf("coll_check: %d ranks: %ld checks passed, %ld failed\n", nranks, sum[0],
                   sum[1]);
        r = weft_comm_destroy(comm);
    } else {
        weft_comm_abort(comm);
    }
    return failed || !alive || r != WEFT_OK ? 1 : 0;
}
