/*
 * test_model.c - the cost model (collectives/model.c) and the choices select.c makes from it:
 * predictions grow with the size, latency-bound algorithms win small calls and bandwidth-bound
 * ones large calls, the crossover moves up with the latency, and WEFT_ALGO / WEFT_CHUNK_SIZE
 * override the model.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/coll_internal.h"
#include "core/config.h"
#include "core/error.h"

static const struct weft_coll_model shm_link = {1e-6, 1 / 6e9, 1 / 5e9, "shm"};
static const struct weft_coll_model tcp_link = {20e-6, 1 / 1.5e9, 1 / 5e9, "tcp"};

static const struct {
    enum weft_coll_kind kind;
    const char *algo;
} all_algos[] = {
    {WEFT_COLL_ALLREDUCE, "ring"},      {WEFT_COLL_ALLREDUCE, "rd"},
    {WEFT_COLL_ALLREDUCE, "rabenseifner"}, {WEFT_COLL_ALLREDUCE, "tree"},
    {WEFT_COLL_ALLGATHER, "ring"},      {WEFT_COLL_ALLGATHER, "bruck"},
    {WEFT_COLL_REDUCE_SCATTER, "ring"}, {WEFT_COLL_REDUCE_SCATTER, "halving"},
    {WEFT_COLL_BROADCAST, "binomial"},  {WEFT_COLL_BROADCAST, "chain"},
    {WEFT_COLL_BROADCAST, "scatter_allgather"}, {WEFT_COLL_REDUCE, "binomial"},
    {WEFT_COLL_REDUCE, "chain"},
};
#define NALGOS (sizeof(all_algos) / sizeof(all_algos[0]))

/* A context as weft_coll_ctx_init leaves it, with the link given and no net (the plan
 * queries send nothing). */
static void make_ctx(struct weft_coll_ctx *ctx, int nranks, const struct weft_coll_model *m,
                     const char *algo, const char *chunk)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->nranks = nranks;
    ctx->pipeline_depth = 4;
    ctx->chunk_size = 256 << 10;
    ctx->model = *m;
    assert_int_equal(weft_coll_parse_algo(algo, ctx->forced), WEFT_OK);
    if (chunk) {
        union weft_config_value v;
        assert_int_equal(weft_config_parse(WEFT_CFG_SIZE, chunk, &v), WEFT_OK);
        ctx->chunk_size = v.size;
        ctx->chunk_forced = true;
    }
}

static const char *plan(const struct weft_coll_ctx *ctx, enum weft_coll_kind kind, size_t bytes,
                        size_t *chunk, double *t)
{
    const char *algo;
    size_t c;
    double s;
    assert_int_equal(weft_coll_plan_query(ctx, kind, bytes / 4, WEFT_FLOAT32, &algo, &c, &s),
                     WEFT_OK);
    if (chunk)
        *chunk = c;
    if (t)
        *t = s;
    return algo;
}

/* Every algorithm's prediction grows with the size, at every rank count. */
static void test_monotonic_in_size(void **state)
{
    (void)state;
    for (size_t a = 0; a < NALGOS; a++) {
        for (int p = 2; p <= 64; p++) {
            double prev = 0;
            for (size_t bytes = 8; bytes <= ((size_t)1 << 32); bytes *= 2) {
                const double t = weft_coll_model_time(&shm_link, all_algos[a].kind,
                                                      all_algos[a].algo, p, bytes, 0, NULL);
                if (!(t >= prev) || !isfinite(t))
                    fail_msg("%s %s, %d ranks: %g s at %zu bytes after %g s at half of it",
                             weft_coll_call_name(all_algos[a].kind), all_algos[a].algo, p, t,
                             bytes, prev);
                prev = t;
            }
        }
    }
    assert_true(isinf(weft_coll_model_time(&shm_link, WEFT_COLL_ALLREDUCE, "bruck", 4, 64, 0,
                                           NULL)));
}

/* The choice and its prediction: the chosen one is never slower than any other, and the
 * whole-call prediction grows with the size too. */
static void test_choice_is_the_fastest(void **state)
{
    (void)state;
    struct weft_coll_ctx ctx;
    for (int p = 2; p <= 16; p++) {
        make_ctx(&ctx, p, &shm_link, "auto", NULL);
        for (size_t a = 0; a < NALGOS; a++) {
            double prev = 0;
            /* up to 1 MiB, where no candidate is ruled out for its scratch */
            for (size_t bytes = 8; bytes <= ((size_t)1 << 20); bytes *= 4) {
                double t;
                (void)plan(&ctx, all_algos[a].kind, bytes, NULL, &t);
                const double other = weft_coll_model_time(&shm_link, all_algos[a].kind,
                                                          all_algos[a].algo, p, bytes, 0, NULL);
                assert_true(t <= other * (1 + 1e-12));
                assert_true(t >= prev);
                prev = t;
            }
        }
    }
}

/* The size at which `kind` on p ranks stops using `small_algo`, or 0 if it never does. */
static size_t crossover(const struct weft_coll_model *m, int p, enum weft_coll_kind kind,
                        const char *small_algo)
{
    struct weft_coll_ctx ctx;
    make_ctx(&ctx, p, m, "auto", NULL);
    for (size_t bytes = 8; bytes <= ((size_t)1 << 32); bytes *= 2) {
        if (strcmp(plan(&ctx, kind, bytes, NULL, NULL), small_algo))
            return bytes;
    }
    return 0;
}

static void test_crossovers(void **state)
{
    (void)state;
    struct weft_coll_ctx ctx;
    for (int p = 3; p <= 16; p++) {
        make_ctx(&ctx, p, &shm_link, "auto", NULL);
        const bool pof2 = (p & (p - 1)) == 0;
        /* small: latency-bound algorithms */
        assert_string_equal(plan(&ctx, WEFT_COLL_ALLREDUCE, 8, NULL, NULL), "rd");
        /* Bruck and halving take fewer steps than the ring from 4 ranks on; halving folds
         * extra ranks at a cost, so it is asserted at powers of two only */
        if (p >= 4)
            assert_string_equal(plan(&ctx, WEFT_COLL_ALLGATHER, 8, NULL, NULL), "bruck");
        if (p >= 4 && pof2)
            assert_string_equal(plan(&ctx, WEFT_COLL_REDUCE_SCATTER, 8, NULL, NULL), "halving");
        assert_string_equal(plan(&ctx, WEFT_COLL_BROADCAST, 8, NULL, NULL), "binomial");
        assert_string_equal(plan(&ctx, WEFT_COLL_REDUCE, 8, NULL, NULL), "binomial");
        /* large: bandwidth-bound ones */
        const char *big = plan(&ctx, WEFT_COLL_ALLREDUCE, 256 << 20, NULL, NULL);
        assert_true(!strcmp(big, "ring") || !strcmp(big, "tree") || !strcmp(big, "rabenseifner"));
        assert_string_not_equal(big, "rd");
        assert_string_equal(plan(&ctx, WEFT_COLL_ALLGATHER, 64 << 20, NULL, NULL), "ring");
        /* halving moves the ring's bytes in fewer steps, but the ring overlaps each
         * reduction with the next transfer (measured at 2 and 4 ranks, 1 MiB: ring 70 and
         * 500 us, halving 83 and 635): the ring from 1 MiB */
        assert_string_equal(plan(&ctx, WEFT_COLL_REDUCE_SCATTER, 64 << 20, NULL, NULL), "ring");
        assert_string_equal(plan(&ctx, WEFT_COLL_REDUCE_SCATTER, 1 << 20, NULL, NULL), "ring");
        /* nor Rabenseifner with the whole vector in scratch */
        big = plan(&ctx, WEFT_COLL_ALLREDUCE, 1 << 30, NULL, NULL);
        assert_true(!strcmp(big, "ring") || !strcmp(big, "tree"));
        assert_string_not_equal(plan(&ctx, WEFT_COLL_BROADCAST, 256 << 20, NULL, NULL),
                                "binomial");
        assert_string_equal(plan(&ctx, WEFT_COLL_REDUCE, 256 << 20, NULL, NULL), "chain");
        /* scatter-allgather's ring steps cost at least a 64 KiB block each: not at 64 KiB */
        assert_string_not_equal(plan(&ctx, WEFT_COLL_BROADCAST, 64 << 10, NULL, NULL),
                                "scatter_allgather");
        /* the crossovers lie in between, and a slower link (more latency per byte of
         * bandwidth) moves them up (halving never leaves at powers of two, and leaves within
         * a few hundred bytes elsewhere: no crossover to check) */
        static const enum weft_coll_kind kinds[] = {WEFT_COLL_ALLREDUCE, WEFT_COLL_ALLGATHER};
        static const char *const small[] = {"rd", "bruck"};
        for (int k = 0; k < 2; k++) {
            if (k == 1 && p < 4)
                continue;
            const size_t at_shm = crossover(&shm_link, p, kinds[k], small[k]);
            const size_t at_tcp = crossover(&tcp_link, p, kinds[k], small[k]);
            if (at_shm < 512 || at_shm > (16 << 20) || at_tcp < at_shm)
                fail_msg("%s, %d ranks: leaves %s at %zu bytes on shm, %zu on tcp",
                         weft_coll_call_name(kinds[k]), p, small[k], at_shm, at_tcp);
        }
    }
    /* two ranks: a broadcast is one message whatever its size */
    make_ctx(&ctx, 2, &shm_link, "auto", NULL);
    assert_string_equal(plan(&ctx, WEFT_COLL_BROADCAST, 256 << 20, NULL, NULL), "binomial");
}

/* The model's chunk stays within its bounds; WEFT_CHUNK_SIZE and WEFT_ALGO win. */
static void test_overrides(void **state)
{
    (void)state;
    struct weft_coll_ctx ctx;
    size_t chunk;
    make_ctx(&ctx, 4, &shm_link, "auto", NULL);
    for (size_t bytes = 1 << 20; bytes <= ((size_t)1 << 30); bytes *= 4) {
        const char *algo = plan(&ctx, WEFT_COLL_ALLREDUCE, bytes, &chunk, NULL);
        if (!strcmp(algo, "ring")) /* the rings keep WEFT_CHUNK_SIZE */
            assert_int_equal(chunk, 256 << 10);
        if (!strcmp(algo, "tree"))
            assert_true(chunk >= WEFT_MODEL_MIN_TREE_CHUNK && chunk <= WEFT_MODEL_MAX_CHUNK);
    }
    make_ctx(&ctx, 5, &shm_link, "auto", NULL);
    for (size_t bytes = 1 << 20; bytes <= ((size_t)1 << 30); bytes *= 4) {
        const char *algo = plan(&ctx, WEFT_COLL_REDUCE, bytes, &chunk, NULL);
        assert_string_equal(algo, "chain");
        assert_true(chunk >= WEFT_MODEL_MIN_CHUNK && chunk <= WEFT_MODEL_MAX_CHUNK);
    }
    make_ctx(&ctx, 4, &shm_link, "auto", "3K");
    assert_string_equal(plan(&ctx, WEFT_COLL_ALLGATHER, 64 << 20, &chunk, NULL), "ring");
    assert_int_equal(chunk, 3 << 10);

    make_ctx(&ctx, 5, &shm_link, "allreduce=tree,bruck", NULL);
    assert_string_equal(plan(&ctx, WEFT_COLL_ALLREDUCE, 8, NULL, NULL), "tree");
    assert_string_equal(plan(&ctx, WEFT_COLL_ALLGATHER, 1 << 30, &chunk, NULL), "bruck");
    assert_int_equal(chunk, 0); /* not pipelined */
    make_ctx(&ctx, 5, &shm_link, "ring,binomial", NULL);
    assert_string_equal(plan(&ctx, WEFT_COLL_ALLREDUCE, 8, NULL, NULL), "ring");
    assert_string_equal(plan(&ctx, WEFT_COLL_REDUCE_SCATTER, 8, NULL, NULL), "ring");
    assert_string_equal(plan(&ctx, WEFT_COLL_REDUCE, 1 << 30, NULL, NULL), "binomial");
    make_ctx(&ctx, 5, &shm_link, "ring,allreduce=auto", NULL);
    assert_string_equal(plan(&ctx, WEFT_COLL_ALLREDUCE, 8, NULL, NULL), "rd");
    assert_string_equal(plan(&ctx, WEFT_COLL_ALLGATHER, 8, NULL, NULL), "ring");

    /* WEFT_SMALL_MSG_SIZE set: the fixed rule of old */
    make_ctx(&ctx, 4, &shm_link, "auto", NULL);
    ctx.small_msg_size = 64 << 10;
    assert_string_equal(plan(&ctx, WEFT_COLL_ALLREDUCE, 32 << 10, NULL, NULL), "rd");
    assert_string_equal(plan(&ctx, WEFT_COLL_ALLREDUCE, 64 << 10, NULL, NULL), "ring");
    assert_string_equal(plan(&ctx, WEFT_COLL_BROADCAST, 64 << 10, NULL, NULL), "chain");
}

static void test_bad_algo_names(void **state)
{
    (void)state;
    uint8_t forced[WEFT_COLL_KINDS];
    static const char *const bad[] = {"butterfly", "allreduce=bruck", "gather=ring",
                                      "ring,,", "=ring", "allreduce="};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (weft_coll_parse_algo(bad[i], forced) != WEFT_ERR_INVALID_ARG)
            fail_msg("WEFT_ALGO=%s was accepted", bad[i]);
        assert_non_null(strstr(weft_error_message(), "WEFT_ALGO"));
    }
    assert_int_equal(weft_coll_parse_algo("", forced), WEFT_OK);
    assert_int_equal(weft_coll_parse_algo("Tree,BROADCAST=Scatter_Allgather", forced), WEFT_OK);
    assert_int_not_equal(forced[WEFT_COLL_ALLREDUCE], 0);
    assert_int_not_equal(forced[WEFT_COLL_BROADCAST], 0);
    assert_int_equal(forced[WEFT_COLL_ALLGATHER], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_monotonic_in_size),
        cmocka_unit_test(test_choice_is_the_fastest),
        cmocka_unit_test(test_crossovers),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_bad_algo_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
