/*
 * algo_check.c - run under weft-run: every algorithm WEFT_ALGO can force, on communicators of
 * 2 to N ranks split from one launch, checked exactly; or (--random SEED DRAWS) random draws of
 * rank count, algorithms, chunk size, channels, collective, dtype, op, count and in-place from
 * a seed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "core/dtype.h"
#include "tests/integration/coll_values.h"
#include "weft.h"

static int rank, nranks;
static long passed, failed;

enum kind { ALLREDUCE, BROADCAST, REDUCE, ALLGATHER, REDUCE_SCATTER, NKINDS };
static const char *const kind_names[NKINDS] = {"allreduce", "broadcast", "reduce", "allgather",
                                               "reduce_scatter"};
/* What WEFT_ALGO can force per kind (docs/algorithms.md). */
static const char *const algos[NKINDS][5] = {
    {"ring", "rd", "rabenseifner", "tree", NULL},
    {"binomial", "chain", "scatter_allgather", NULL},
    {"binomial", "chain", NULL},
    {"ring", "bruck", NULL},
    {"ring", "halving", NULL},
};

/* One call on communicator `comm` of `n` ranks (this rank is `me`); false if the call failed,
 * which leaves the communicator broken. `what` describes the setting for messages. */
static int run_case(weft_comm_t comm, int me, int n, enum kind k, weft_dtype_t t, weft_op_t op,
                    size_t count, int inplace, unsigned salt, const char *what)
{
    const size_t es = weft_dtype_size(t);
    const int root = (int)((count + salt) % (size_t)n);
    const size_t in_elems = k == REDUCE_SCATTER ? count * (size_t)n : count;
    const size_t out_elems = k == ALLGATHER ? count * (size_t)n : count;
    uint8_t *in = malloc(in_elems * es + 1), *out = malloc(out_elems * es + 1);
    if (!in || !out) {
        fprintf(stderr, "rank %d: out of memory\n", rank);
        exit(1);
    }
    memset(out, 0xa5, out_elems * es);
    for (size_t i = 0; i < in_elems; i++)
        weft_dtype_store(t, in, i, coll_input(t, op, me, i, salt));
    const void *sbuf = in;
    void *rbuf = out;
    const uint8_t *res = out;
    if (inplace) {
        if (k == ALLGATHER) {
            memcpy(out + (size_t)me * count * es, in, count * es);
            sbuf = out + (size_t)me * count * es;
        } else if (k == REDUCE_SCATTER) {
            rbuf = in + (size_t)me * count * es;
            res = rbuf;
        } else {
            memcpy(out, in, count * es);
            sbuf = out;
        }
    }
    weft_result_t r;
    switch (k) {
    case ALLREDUCE: r = weft_allreduce(sbuf, rbuf, count, t, op, comm, NULL); break;
    case BROADCAST: r = weft_broadcast(sbuf, rbuf, count, t, root, comm, NULL); break;
    case REDUCE: r = weft_reduce(sbuf, rbuf, count, t, op, root, comm, NULL); break;
    case ALLGATHER: r = weft_allgather(sbuf, rbuf, count, t, comm, NULL); break;
    default: r = weft_reduce_scatter(sbuf, rbuf, count, t, op, comm, NULL); break;
    }
    if (r != WEFT_OK) {
        failed++;
        printf("not ok - rank %d: %s: %s %s %s count %zu%s: %s: %s\n", rank, what,
               kind_names[k], weft_dtype_name(t), weft_op_name(op), count,
               inplace ? " in place" : "", weft_strerror(r), weft_last_error());
        free(in);
        free(out);
        return 0;
    }
    size_t wrong = 0, first = 0;
    double got = 0, want = 0;
    for (size_t i = 0; i < out_elems && !(k == REDUCE && me != root); i++) {
        double w;
        switch (k) {
        case BROADCAST: w = coll_input(t, op, root, i, salt); break;
        case ALLGATHER: w = coll_input(t, op, (int)(i / count), i % count, salt); break;
        case REDUCE_SCATTER:
            w = coll_reference(t, op, n, (size_t)me * count + i, salt);
            break;
        default: w = coll_reference(t, op, n, i, salt); break;
        }
        const double g = weft_dtype_load(t, res, i);
        if (!coll_same(t, n, g, w) && wrong++ == 0) {
            first = i;
            got = g;
            want = w;
        }
    }
    if (wrong) {
        failed++;
        printf("not ok - rank %d of %d: %s: %s %s %s count %zu%s root %d: %zu wrong, first at "
               "%zu: got %g, want %g\n",
               me, n, what, kind_names[k], weft_dtype_name(t), weft_op_name(op), count,
               inplace ? " in place" : "", root, wrong, first, got, want);
    } else {
        passed++;
    }
    free(in);
    free(out);
    return 1;
}

/* A communicator of the first n ranks whose collectives use WEFT_ALGO=algo, WEFT_NCHANNELS=nch
 * and, when chunk is not NULL, WEFT_CHUNK_SIZE=chunk (read at creation); NULL on the other
 * ranks. */
static weft_comm_t sub_comm(weft_comm_t world, int n, const char *algo, const char *chunk,
                            int nch)
{
    weft_comm_t sub = NULL;
    char nch_text[16];
    snprintf(nch_text, sizeof(nch_text), "%d", nch);
    setenv("WEFT_ALGO", algo, 1);
    setenv("WEFT_NCHANNELS", nch_text, 1);
    if (chunk)
        setenv("WEFT_CHUNK_SIZE", chunk, 1);
    else
        unsetenv("WEFT_CHUNK_SIZE");
    weft_result_t r = weft_config_reload();
    if (r == WEFT_OK)
        r = weft_comm_split(world, rank < n ? 0 : WEFT_SPLIT_NOCOLOR, rank, &sub);
    if (r != WEFT_OK) {
        fprintf(stderr, "rank %d: WEFT_ALGO=%s: split to %d ranks failed: %s\n", rank, algo, n,
                weft_last_error());
        exit(1);
    }
    return sub;
}

/* Every forced algorithm at every size from 2 to nranks. */
static int sweep(weft_comm_t world)
{
    static const struct {
        const char *algo, *chunk;
        int nch;
    } settings[] = {
        {"ring,chain", "4K", 1},
        {"ring", "4K", 2},
        {"rd,binomial,bruck,halving", NULL, 1},
        {"rabenseifner,broadcast=scatter_allgather", "4K", 1},
        {"tree", "4K", 1},
        {"tree,broadcast=scatter_allgather", NULL, 1},
    };
    static const size_t counts[] = {1, 5, 1031, 40000, 7};
    static const struct {
        weft_dtype_t t;
        weft_op_t op;
    } types[] = {{WEFT_INT32, WEFT_SUM}, {WEFT_FLOAT64, WEFT_AVG}, {WEFT_INT8, WEFT_MAX}};
    int alive = 1;
    for (int n = 2; n <= nranks && alive; n++) {
        for (size_t s = 0; s < sizeof(settings) / sizeof(settings[0]) && alive; s++) {
            weft_comm_t sub = sub_comm(world, n, settings[s].algo, settings[s].chunk,
                                       settings[s].nch);
            char what[160];
            snprintf(what, sizeof(what), "WEFT_ALGO=%s WEFT_CHUNK_SIZE=%s WEFT_NCHANNELS=%d",
                     settings[s].algo, settings[s].chunk ? settings[s].chunk : "(model)",
                     settings[s].nch);
            /* dtype/op and in-place rotate with the count, to keep the run short */
            for (int k = 0; sub && k < NKINDS && alive; k++)
                for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]) && alive; c++) {
                    const size_t ti = (c + (size_t)k + s) % (sizeof(types) / sizeof(types[0]));
                    alive = run_case(sub, rank, n, (enum kind)k, types[ti].t, types[ti].op,
                                     counts[c], (int)((c + (size_t)n) % 2), (unsigned)(s + c),
                                     what);
                }
            if (sub) {
                if (alive)
                    weft_comm_destroy(sub);
                else
                    weft_comm_abort(sub);
            }
        }
    }
    return alive;
}

/* xorshift64*: the same stream on every rank from the same seed. */
static uint64_t rng_state;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

/* DRAWS settings (rank count, one algorithm per collective, chunk, channels), each running 4 random
 * calls. Every rank draws the same sequence; ranks outside a setting's communicator skip
 * its calls. */
static int random_draws(weft_comm_t world, uint64_t seed, long draws)
{
    static const char *const chunks[] = {"1K", "4K", "64K", "256K", NULL};
    int alive = 1;
    rng_state = seed ? seed : 1;
    for (long d = 0; d < draws && alive; d++) {
        const int n = 2 + (int)(rng() % (uint64_t)(nranks - 1));
        char algo[256] = "", what[320];
        for (int k = 0; k < NKINDS; k++) {
            size_t na = 0;
            while (algos[k][na])
                na++;
            const size_t pick = rng() % (na + 1); /* na: auto */
            if (pick < na) {
                size_t len = strlen(algo);
                snprintf(algo + len, sizeof(algo) - len, "%s%s=%s", len ? "," : "",
                         kind_names[k], algos[k][pick]);
            }
        }
        if (!algo[0])
            strcpy(algo, "auto");
        const char *chunk = chunks[rng() % (sizeof(chunks) / sizeof(chunks[0]))];
        const int nch = 1 + (int)(rng() % 2);
        snprintf(what, sizeof(what),
                 "seed %llu draw %ld: %d ranks, WEFT_ALGO=%s WEFT_CHUNK_SIZE=%s WEFT_NCHANNELS=%d",
                 (unsigned long long)seed, d, n, algo, chunk ? chunk : "(model)", nch);
        weft_comm_t sub = sub_comm(world, n, algo, chunk, nch);
        for (int call = 0; call < 4 && alive; call++) {
            const enum kind k = (enum kind)(rng() % NKINDS);
            const weft_dtype_t t = (weft_dtype_t)(rng() % WEFT_NUM_DTYPES);
            const weft_op_t op = (weft_op_t)(rng() % WEFT_NUM_OPS);
            /* log-uniform up to 256K elements, so that small and pipelined sizes both come */
            const size_t count = (size_t)(rng() % ((uint64_t)1 << (rng() % 19)));
            const int inplace = (int)(rng() % 2);
            const unsigned salt = (unsigned)(rng() % 97);
            if (sub)
                alive = run_case(sub, rank, n, k, t, op, count, inplace, salt, what);
        }
        if (sub) {
            if (alive)
                weft_comm_destroy(sub);
            else
                weft_comm_abort(sub);
        }
        if (rank == 0 && (d + 1) % 100 == 0)
            printf("algo_check: %ld of %ld draws\n", d + 1, draws);
    }
    return alive;
}

int main(int argc, char **argv)
{
    weft_comm_t comm;
    weft_result_t r = weft_comm_init_env(&comm);
    if (r != WEFT_OK) {
        fprintf(stderr, "algo_check: init failed: %s: %s\n", weft_strerror(r), weft_last_error());
        return 1;
    }
    weft_comm_rank(comm, &rank);
    weft_comm_size(comm, &nranks);
    if (nranks < 2) {
        printf("skip: algo_check needs at least 2 ranks\n");
        weft_comm_destroy(comm);
        return 77;
    }
    int alive;
    if (argc > 3 && !strcmp(argv[1], "--random")) {
        /* rank 0's seed for everyone: 0 asks for one from the clock */
        uint64_t seed = strtoull(argv[2], NULL, 0);
        if (seed == 0)
            seed = (uint64_t)time(NULL) * 2654435761u + 1;
        if (weft_broadcast(&seed, &seed, 1, WEFT_UINT64, 0, comm, NULL) != WEFT_OK) {
            fprintf(stderr, "rank %d: broadcast of the seed failed: %s\n", rank,
                    weft_last_error());
            return 1;
        }
        if (rank == 0)
            printf("algo_check: random draws with seed %llu (rerun: --random %llu %s)\n",
                   (unsigned long long)seed, (unsigned long long)seed, argv[3]);
        alive = random_draws(comm, seed, strtol(argv[3], NULL, 10));
    } else {
        alive = sweep(comm);
    }
    if (alive) {
        long tally[2] = {passed, failed}, sum[2];
        if (weft_allreduce(tally, sum, 2, WEFT_INT64, WEFT_SUM, comm, NULL) == WEFT_OK &&
            rank == 0)
            printf("algo_check: %d ranks: %ld checks passed, %ld failed\n", nranks, sum[0],
                   sum[1]);
        r = weft_comm_destroy(comm);
    } else {
        weft_comm_abort(comm);
    }
    return failed || !alive || r != WEFT_OK ? 1 : 0;
}
