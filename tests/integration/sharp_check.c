/*
 * sharp_check.c - run under weft-run with WEFT_SHARP_LIB pointing at tests/fakesharp: every
 * dtype and op of allreduce (one- and multi-chunk, in place and not) and barrier give exact
 * results, and the fake switch's counters prove which of them SHARP carried.
 *   sharp_check --stats FILE --expect offload   every call the fake supports went through it
 *                                               (bytes and barriers counted exactly)
 *   sharp_check --stats FILE --expect host      nothing went through it (SHARP off)
 *   sharp_check --expect-init-fail TEXT         weft_comm_init_env fails, WEFT_ERR_UNSUPPORTED,
 *                                               with TEXT in its message
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/reduce.h"
#include "coll_values.h"
#include "weft.h"

#define NBARRIERS 5

static int rank, nranks, passed, failed;
static weft_comm_t comm;
static unsigned long long want_bytes; /* what the fake should have reduced for this rank */

static double get(weft_dtype_t t, const void *buf, size_t i)
{
    switch (t) {
    case WEFT_INT8: return ((const int8_t *)buf)[i];
    case WEFT_UINT8: return ((const uint8_t *)buf)[i];
    case WEFT_INT32: return ((const int32_t *)buf)[i];
    case WEFT_UINT32: return ((const uint32_t *)buf)[i];
    case WEFT_INT64: return (double)((const int64_t *)buf)[i];
    case WEFT_UINT64: return (double)((const uint64_t *)buf)[i];
    case WEFT_FLOAT16: return weft_half_to_float(((const uint16_t *)buf)[i]);
    case WEFT_BFLOAT16: return weft_bf16_to_float(((const uint16_t *)buf)[i]);
    case WEFT_FLOAT32: return ((const float *)buf)[i];
    default: return ((const double *)buf)[i];
    }
}

static void put(weft_dtype_t t, void *buf, size_t i, double v)
{
    switch (t) {
    case WEFT_INT8: ((int8_t *)buf)[i] = (int8_t)v; break;
    case WEFT_UINT8: ((uint8_t *)buf)[i] = (uint8_t)v; break;
    case WEFT_INT32: ((int32_t *)buf)[i] = (int32_t)v; break;
    case WEFT_UINT32: ((uint32_t *)buf)[i] = (uint32_t)v; break;
    case WEFT_INT64: ((int64_t *)buf)[i] = (int64_t)v; break;
    case WEFT_UINT64: ((uint64_t *)buf)[i] = (uint64_t)v; break;
    case WEFT_FLOAT16: ((uint16_t *)buf)[i] = weft_float_to_half((float)v); break;
    case WEFT_BFLOAT16: ((uint16_t *)buf)[i] = weft_float_to_bf16((float)v); break;
    case WEFT_FLOAT32: ((float *)buf)[i] = (float)v; break;
    default: ((double *)buf)[i] = v; break;
    }
}

static size_t dsize(weft_dtype_t t)
{
    static const size_t sizes[] = {1, 1, 4, 4, 8, 8, 2, 2, 4, 8};
    return sizes[t];
}

/* What the fake switch supports (tests/fakesharp: no 8-bit types, no PROD); int8/uint8 AVG
 * is summed in int32 by Weft, which the switch does take. */
static size_t offloaded_bytes(weft_dtype_t t, weft_op_t op, size_t count)
{
    if (t == WEFT_INT8 || t == WEFT_UINT8)
        return op == WEFT_AVG ? count * 4 : 0;
    return op == WEFT_PROD ? 0 : count * dsize(t);
}

static void check(weft_dtype_t t, weft_op_t op, size_t count, int inplace, unsigned salt)
{
    const size_t bytes = count * dsize(t);
    char *in = malloc(bytes), *out = malloc(bytes);
    for (size_t i = 0; i < count; i++) {
        put(t, in, i, coll_input(t, op, rank, i, salt));
        put(t, out, i, -7); /* a stale value never passes */
    }
    if (inplace)
        memcpy(out, in, bytes);
    weft_result_t r = weft_allreduce(inplace ? out : in, out, count, t, op, comm, NULL);
    size_t wrong = 0, first = 0;
    for (size_t i = 0; r == WEFT_OK && i < count; i++) {
        const double want = coll_reference(t, op, nranks, i, salt), got = get(t, out, i);
        /* sums of quarters are exact in every format; only a float mean rounds */
        const int same = op == WEFT_AVG ? coll_same(t, nranks, got, want) : got == want;
        if (!same && wrong++ == 0)
            first = i;
    }
    if (r != WEFT_OK || wrong) {
        failed++;
        printf("not ok - rank %d: allreduce %s %s count %zu%s: %s%s; %zu wrong, first [%zu] "
               "= %g, want %g\n",
               rank, weft_dtype_name(t), weft_op_name(op), count, inplace ? " in place" : "",
               weft_strerror(r), r ? weft_last_error() : "", wrong, first,
               wrong ? get(t, out, first) : 0.0,
               wrong ? coll_reference(t, op, nranks, first, salt) : 0.0);
    } else {
        passed++;
    }
    want_bytes += offloaded_bytes(t, op, count);
    free(in);
    free(out);
}

/* This rank's line of the fake's counters: allreduce bytes, barriers, registrations; 0 when
 * the file has no line for this rank (the fake never had a group here). */
static int read_stats(const char *path, unsigned long long *bytes, unsigned long long *barriers,
                      unsigned long long *regs)
{
    FILE *f = fopen(path, "r");
    char line[256];
    int found = 0;
    while (f && fgets(line, sizeof(line), f)) {
        int r, size;
        unsigned long long ar;
        if (sscanf(line, "fakesharp rank %d size %d allreduce %llu bytes %llu barrier %llu reg %llu",
                   &r, &size, &ar, bytes, barriers, regs) == 6 &&
            r == rank && size == nranks)
            found = 1;
    }
    if (f)
        fclose(f);
    return found;
}

int main(int argc, char **argv)
{
    const char *stats = NULL, *expect = "offload", *init_fail = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--stats"))
            stats = argv[i + 1];
        else if (!strcmp(argv[i], "--expect"))
            expect = argv[i + 1];
        else if (!strcmp(argv[i], "--expect-init-fail"))
            init_fail = argv[i + 1];
    }
    if (stats)
        setenv("FAKESHARP_STATS", stats, 1); /* where the fake writes its counters */
    weft_result_t r = weft_comm_init_env(&comm);
    if (init_fail) {
        const char *msg = weft_last_error();
        const int ok = r == WEFT_ERR_UNSUPPORTED && strstr(msg, init_fail);
        printf("%s - init fails with WEFT_ERR_UNSUPPORTED naming \"%s\": got %s: %s\n",
               ok ? "ok" : "not ok", init_fail, weft_strerror(r), msg);
        if (r == WEFT_OK)
            weft_comm_destroy(comm);
        printf("sharp_check: %d checks passed, %d failed\n", ok, !ok);
        return ok ? 0 : 1;
    }
    if (r != WEFT_OK) {
        fprintf(stderr, "sharp_check: init failed: %s: %s\n", weft_strerror(r), weft_last_error());
        return 1;
    }
    weft_comm_rank(comm, &rank);
    weft_comm_size(comm, &nranks);

    /* 1: one element; 1000: one chunk; SUM also with 600000: 1 MiB chunks and a partial one
     * in every type the switch takes */
    static const size_t counts[] = {1, 1000, 600000};
    unsigned salt = 0;
    for (int t = 0; t < WEFT_NUM_DTYPES; t++)
        for (int op = 0; op < WEFT_NUM_OPS; op++)
            for (size_t c = 0; c < (op == WEFT_SUM ? 3u : 2u); c++)
                check((weft_dtype_t)t, (weft_op_t)op, counts[c], (int)(c + (size_t)op) % 2,
                      salt++);
    for (int b = 0; b < NBARRIERS; b++) {
        r = weft_barrier(comm, NULL);
        if (r != WEFT_OK) {
            failed++;
            printf("not ok - rank %d: barrier %d: %s: %s\n", rank, b, weft_strerror(r),
                   weft_last_error());
        } else {
            passed++;
        }
    }
    r = weft_comm_destroy(comm);
    if (r != WEFT_OK) {
        failed++;
        printf("not ok - rank %d: destroy: %s\n", rank, weft_strerror(r));
    }

    /* The fake writes its counters when Weft destroys the group. */
    if (stats) {
        unsigned long long bytes = 0, barriers = 0, regs = 0;
        const int found = read_stats(stats, &bytes, &barriers, &regs);
        int ok;
        if (!strcmp(expect, "offload")) {
            ok = found && bytes == want_bytes && barriers == NBARRIERS && regs == 1;
            printf("%s - rank %d: the fake switch reduced %llu bytes (want %llu), ran %llu "
                   "barriers (want %d), saw %llu registrations (want 1)%s\n",
                   ok ? "ok" : "not ok", rank, bytes, want_bytes, barriers, NBARRIERS, regs,
                   found ? "" : " [no line for this rank in the stats file]");
        } else {
            ok = !found || (bytes == 0 && barriers == 0);
            printf("%s - rank %d: nothing went through the fake switch (%s)\n",
                   ok ? "ok" : "not ok", rank,
                   found ? "it has a group with no traffic" : "no group");
        }
        ok ? passed++ : failed++;
    }
    printf("sharp_check: rank %d of %d: %d checks passed, %d failed\n", rank, nranks, passed,
           failed);
    return failed ? 1 : 0;
}
