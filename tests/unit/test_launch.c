/*
 * test_launch.c - launcher detection: the precedence of launch.h over real environments
 * (mpirun inside an allocation must not take the inherited SLURM_*), each launcher's rank,
 * size and local numbers, the Slurm and torchrun roots, and bad values named in errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/config.h"
#include "core/error.h"
#include "launcher/bootstrap.h"
#include "launcher/kvs.h"
#include "launcher/launch.h"
#include "launcher/launch_env.h"
#include "weft.h"

static const char *const all_vars[] = {
    "WEFT_RANK", "WEFT_NRANKS", "WEFT_LOCAL_RANK", "WEFT_ROOT", "WEFT_SECRET",
    "WEFT_SLURM_PORT_RANGE", "PMIX_RANK", "PMIX_NAMESPACE", "OMPI_COMM_WORLD_RANK",
    "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE",
    "PMI_RANK", "PMI_SIZE", "PMI_FD", "PMI_JOBID", "MPI_LOCALRANKID", "MPI_LOCALNRANKS",
    "SLURM_JOB_ID", "SLURM_JOBID", "SLURM_STEP_ID", "SLURM_STEPID", "SLURM_PROCID",
    "SLURM_NTASKS", "SLURM_STEP_NUM_TASKS", "SLURM_NPROCS", "SLURM_LOCALID", "SLURM_NODEID",
    "SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE", "SLURM_STEP_NODELIST",
    "SLURM_JOB_NODELIST", "SLURM_NODELIST", "SLURM_MPI_TYPE", "SLURM_JOB_UID",
    "SLURM_CLUSTER_NAME", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE",
    "MASTER_ADDR", "MASTER_PORT", NULL
};

/* Clears every launcher variable, then sets "NAME=VALUE" pairs (NULL-terminated). */
static void set_env(const char *const *pairs)
{
    for (const char *const *v = all_vars; *v; v++)
        unsetenv(*v);
    for (; pairs && *pairs; pairs++) {
        char name[64];
        const char *eq = strchr(*pairs, '=');
        snprintf(name, sizeof(name), "%.*s", (int)(eq - *pairs), *pairs);
        setenv(name, eq + 1, 1);
    }
    assert_int_equal(weft_config_reload(), WEFT_OK);
}

static weft_result_t plan_of(const char *const *pairs, struct weft_launch_plan *p)
{
    set_env(pairs);
    return weft_launch_plan(p);
}

/* Fails unless planning errs with `code` and its message holds every string in `needles`. */
static void expect_error(const char *const *pairs, weft_result_t code, const char *const *needles)
{
    struct weft_launch_plan p;
    weft_result_t r = plan_of(pairs, &p);
    if (r != code)
        fail_msg("expected %s, got %s (%s)", weft_strerror(code), weft_strerror(r),
                 weft_error_message());
    for (; *needles; needles++)
        if (!strstr(weft_error_message(), *needles))
            fail_msg("message lacks \"%s\": %s", *needles, weft_error_message());
}

static void expect_numbers(const struct weft_launch_plan *p, int rank, int nranks,
                           int local_rank, int local_nranks)
{
    assert_int_equal(p->l.rank, rank);
    assert_int_equal(p->l.nranks, nranks);
    assert_int_equal(p->l.local_rank, local_rank);
    assert_int_equal(p->l.local_nranks, local_nranks);
}

/* What srun gives rank 3 of 5 on the second of three nodes (measured on Slurm 22.05). */
#define SRUN_RANK3                                                                        \
    "SLURM_JOB_ID=12", "SLURM_STEP_ID=3", "SLURM_PROCID=3", "SLURM_NTASKS=5",               \
        "SLURM_LOCALID=1", "SLURM_NODEID=1", "SLURM_STEP_TASKS_PER_NODE=2(x2),1",           \
        "SLURM_TASKS_PER_NODE=2(x2),1", "SLURM_STEP_NODELIST=n[1-3]",                       \
        "SLURM_JOB_NODELIST=n[1-3]", "SLURM_JOB_UID=1000", "SLURM_CLUSTER_NAME=c"
/* What the same rank inherits when mpirun/mpiexec started it inside the allocation: the
 * values describe the launcher's daemon step. */
#define INHERITED_SLURM                                                                   \
    "SLURM_JOB_ID=12", "SLURM_STEP_ID=0", "SLURM_PROCID=1", "SLURM_NTASKS=2",               \
        "SLURM_LOCALID=0", "SLURM_NODEID=1", "SLURM_STEP_TASKS_PER_NODE=1(x2)",             \
        "SLURM_STEP_NODELIST=n[1-2]"

static void test_nothing(void **state)
{
    (void)state;
    expect_error(NULL, WEFT_ERR_INVALID_ARG,
                 (const char *[]){ "no launcher environment", "weft-run", "srun", "mpirun",
                                   "MASTER_ADDR", NULL });
    /* An salloc shell is a job, but not one of its tasks. */
    expect_error((const char *[]){ "SLURM_JOB_ID=55", "SLURM_NTASKS=4", NULL },
                 WEFT_ERR_INVALID_ARG,
                 (const char *[]){ "Slurm job 55", "SLURM_PROCID", "srun", NULL });
}

static void test_weft_run_first(void **state)
{
    (void)state;
    struct weft_launch_plan p;
    assert_int_equal(plan_of((const char *[]){ "WEFT_RANK=1", "WEFT_NRANKS=3",
                                               "WEFT_LOCAL_RANK=1", "WEFT_ROOT=127.0.0.1:5",
                                               SRUN_RANK3, "RANK=0", "WORLD_SIZE=9", NULL },
                             &p),
                     WEFT_OK);
    assert_string_equal(p.l.source, "weft-run");
    assert_string_equal(p.l.rendezvous, "WEFT_ROOT");
    assert_int_equal(p.mode, WEFT_LAUNCH_WEFT_RUN);
    expect_numbers(&p, 1, 3, 1, -1);
    expect_error((const char *[]){ "WEFT_RANK=3", "WEFT_NRANKS=3", NULL }, WEFT_ERR_INVALID_ARG,
                 (const char *[]){ "WEFT_RANK=3", "WEFT_NRANKS=3", NULL });
    expect_error((const char *[]){ "WEFT_RANK=0", NULL }, WEFT_ERR_INVALID_ARG,
                 (const char *[]){ "WEFT_NRANKS", NULL });
}

static void test_plain_srun(void **state)
{
    (void)state;
    struct weft_launch_plan p, q;
    assert_int_equal(plan_of((const char *[]){ SRUN_RANK3, NULL }, &p), WEFT_OK);
    assert_string_equal(p.l.source, "Slurm");
    assert_string_equal(p.l.rendezvous, "Slurm step nodelist");
    assert_int_equal(p.mode, WEFT_LAUNCH_ROOT_AT);
    expect_numbers(&p, 3, 5, 1, 2);
    assert_string_equal(p.root_host, "n1");
    assert_int_equal(p.root_port, 20000 + (12 * 101 + 3) % 10000);
    assert_int_equal(p.slurm_node_id, 1);
    assert_non_null(strstr(p.secret_from, "derived"));
    assert_non_null(strstr(p.root_from, "SLURM_STEP_NODELIST=n[1-3]"));
    /* Every rank of the step derives the same secret; another step another one. */
    assert_int_equal(plan_of((const char *[]){ SRUN_RANK3, "SLURM_PROCID=0", "SLURM_LOCALID=0",
                                               "SLURM_NODEID=0", NULL },
                             &q),
                     WEFT_OK);
    assert_memory_equal(p.secret, q.secret, sizeof(p.secret));
    expect_numbers(&q, 0, 5, 0, 2);
    assert_int_equal(plan_of((const char *[]){ SRUN_RANK3, "SLURM_STEP_ID=4", NULL }, &q),
                     WEFT_OK);
    assert_memory_not_equal(p.secret, q.secret, sizeof(p.secret));
    assert_int_not_equal(p.root_port, q.root_port);
    /* The third node runs one task. */
    assert_int_equal(plan_of((const char *[]){ SRUN_RANK3, "SLURM_PROCID=4", "SLURM_LOCALID=0",
                                               "SLURM_NODEID=2", NULL },
                             &q),
                     WEFT_OK);
    expect_numbers(&q, 4, 5, 0, 1);
    /* WEFT_SECRET and WEFT_ROOT (weft-run inside an allocation sets the first). */
    char hex[65];
    memset(hex, 'a', 64);
    hex[64] = '\0';
    char secret_var[80];
    snprintf(secret_var, sizeof(secret_var), "WEFT_SECRET=%s", hex);
    assert_int_equal(plan_of((const char *[]){ SRUN_RANK3, secret_var,
                                               "WEFT_ROOT=head.example:31000", NULL },
                             &q),
                     WEFT_OK);
    assert_string_equal(q.secret_from, "WEFT_SECRET");
    for (size_t i = 0; i < sizeof(q.secret); i++)
        assert_int_equal(q.secret[i], 0xaa);
    assert_string_equal(q.root_host, "head.example");
    assert_int_equal(q.root_port, 31000);
    assert_string_equal(q.l.rendezvous, "WEFT_ROOT");
}

static void test_batch_step(void **state)
{
    (void)state;
    struct weft_launch_plan p;
    /* The batch script: no SLURM_STEP_ID, job-wide SLURM_NTASKS. It is one process. */
    assert_int_equal(plan_of((const char *[]){ "SLURM_JOB_ID=7", "SLURM_PROCID=0",
                                               "SLURM_NTASKS=4", "SLURM_LOCALID=0",
                                               "SLURM_NODEID=0", "SLURM_TASKS_PER_NODE=2(x2)",
                                               "SLURM_JOB_NODELIST=n[3-4]",
                                               "SLURM_NODELIST=n[3-4]", NULL },
                             &p),
                     WEFT_OK);
    assert_string_equal(p.l.source, "Slurm");
    expect_numbers(&p, 0, 1, 0, 1);
    assert_string_equal(p.root_host, "n3");
    assert_non_null(strstr(p.root_from, "SLURM_JOB_NODELIST"));
    assert_non_null(strstr(p.note, "srun"));
}

static void test_mpirun_in_allocation(void **state)
{
    (void)state;
    struct weft_launch_plan p;
    const char *const ompi[] = { INHERITED_SLURM, "OMPI_COMM_WORLD_RANK=2",
                                 "OMPI_COMM_WORLD_SIZE=4", "OMPI_COMM_WORLD_LOCAL_RANK=0",
                                 "OMPI_COMM_WORLD_LOCAL_SIZE=2", "PMIX_RANK=2",
                                 "PMIX_NAMESPACE=1234", NULL };
    weft_result_t r = plan_of(ompi, &p);
    const char *kvs = weft_kvs_available();
    if (kvs && strcmp(kvs, "PMIx") == 0) {
        assert_int_equal(r, WEFT_OK);
        assert_string_equal(p.l.source, "Open MPI");
        assert_string_equal(p.l.rendezvous, "PMIx");
        assert_int_equal(p.mode, WEFT_LAUNCH_KVS);
        expect_numbers(&p, 2, 4, 0, 2);
    } else {
        /* Without libpmix it must fail plainly, never fall back to the daemon's SLURM_*. */
        assert_int_equal(r, WEFT_ERR_UNSUPPORTED);
        assert_non_null(strstr(weft_error_message(), "Open MPI"));
        assert_non_null(strstr(weft_error_message(), "libpmix"));
    }
    /* MPICH's mpiexec (hydra, PMI-1). */
    assert_int_equal(plan_of((const char *[]){ INHERITED_SLURM, "PMI_RANK=2", "PMI_SIZE=4",
                                               "PMI_FD=99", "MPI_LOCALRANKID=0",
                                               "MPI_LOCALNRANKS=2", NULL },
                             &p),
                     WEFT_OK);
    assert_string_equal(p.l.source, "MPICH");
    assert_string_equal(p.l.rendezvous, "PMI-1");
    assert_int_equal(p.mode, WEFT_LAUNCH_KVS);
    expect_numbers(&p, 2, 4, 0, 2);
    expect_error((const char *[]){ "PMI_RANK=4", "PMI_SIZE=4", "PMI_FD=9", NULL },
                 WEFT_ERR_INVALID_ARG, (const char *[]){ "PMI_RANK=4", "PMI_SIZE=4", NULL });
    expect_error((const char *[]){ "OMPI_COMM_WORLD_RANK=1", "OMPI_COMM_WORLD_SIZE=4",
                                   "PMIX_RANK=2", NULL },
                 kvs && strcmp(kvs, "PMIx") == 0 ? WEFT_ERR_INVALID_ARG : WEFT_ERR_UNSUPPORTED,
                 (const char *[]){ "OMPI_COMM_WORLD_RANK", NULL });
}

static void test_srun_with_pmi(void **state)
{
    (void)state;
    struct weft_launch_plan p;
    /* srun --mpi=pmi2 */
    assert_int_equal(plan_of((const char *[]){ SRUN_RANK3, "SLURM_MPI_TYPE=pmi2", "PMI_RANK=3",
                                               "PMI_SIZE=5", "PMI_FD=9", "PMI_JOBID=12.3",
                                               NULL },
                             &p),
                     WEFT_OK);
    assert_string_equal(p.l.source, "Slurm");
    assert_string_equal(p.l.rendezvous, "PMI-2");
    expect_numbers(&p, 3, 5, 1, 2);
    /* srun --mpi=pmix: PMIx when built in, else srun's own variables */
    assert_int_equal(plan_of((const char *[]){ SRUN_RANK3, "SLURM_MPI_TYPE=pmix_v4",
                                               "PMIX_RANK=3", NULL },
                             &p),
                     WEFT_OK);
    const char *kvs = weft_kvs_available();
    if (kvs && strcmp(kvs, "PMIx") == 0) {
        assert_string_equal(p.l.source, "PMIx");
        assert_string_equal(p.l.rendezvous, "PMIx");
    } else {
        assert_string_equal(p.l.source, "Slurm");
        assert_non_null(strstr(p.note, "PMIx"));
    }
    expect_numbers(&p, 3, 5, 1, 2);
}

static void test_torchrun(void **state)
{
    (void)state;
    struct weft_launch_plan p, q;
    assert_int_equal(plan_of((const char *[]){ "RANK=1", "WORLD_SIZE=4", "LOCAL_RANK=1",
                                               "LOCAL_WORLD_SIZE=2", "MASTER_ADDR=10.1.2.3",
                                               "MASTER_PORT=29500", NULL },
                             &p),
                     WEFT_OK);
    assert_string_equal(p.l.source, "torchrun");
    assert_string_equal(p.l.rendezvous, "MASTER_ADDR");
    expect_numbers(&p, 1, 4, 1, 2);
    assert_string_equal(p.root_host, "10.1.2.3");
    assert_int_equal(p.root_port, 29501);
    assert_int_equal(plan_of((const char *[]){ "RANK=0", "WORLD_SIZE=4",
                                               "MASTER_ADDR=10.1.2.3", "MASTER_PORT=29500",
                                               NULL },
                             &q),
                     WEFT_OK);
    assert_memory_equal(p.secret, q.secret, sizeof(p.secret));
    expect_numbers(&q, 0, 4, -1, -1);
    /* Slurm outranks torchrun-style variables. */
    assert_int_equal(plan_of((const char *[]){ SRUN_RANK3, "RANK=0", "WORLD_SIZE=2",
                                               "MASTER_ADDR=x", "MASTER_PORT=1", NULL },
                             &p),
                     WEFT_OK);
    assert_string_equal(p.l.source, "Slurm");
    /* WEFT_ROOT overrides MASTER_ADDR. */
    assert_int_equal(plan_of((const char *[]){ "RANK=0", "WORLD_SIZE=2",
                                               "WEFT_ROOT=[::1]:4000", NULL },
                             &p),
                     WEFT_OK);
    assert_string_equal(p.root_host, "::1");
    assert_int_equal(p.root_port, 4000);
    expect_error((const char *[]){ "RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=h", NULL },
                 WEFT_ERR_INVALID_ARG, (const char *[]){ "MASTER_PORT", NULL });
    expect_error((const char *[]){ "RANK=0", NULL }, WEFT_ERR_INVALID_ARG,
                 (const char *[]){ "WORLD_SIZE", NULL });
    expect_error((const char *[]){ "RANK=abc", "WORLD_SIZE=2", NULL }, WEFT_ERR_INVALID_ARG,
                 (const char *[]){ "RANK=\"abc\"", NULL });
    expect_error((const char *[]){ "RANK=2", "WORLD_SIZE=2", "MASTER_ADDR=h",
                                   "MASTER_PORT=5", NULL },
                 WEFT_ERR_INVALID_ARG, (const char *[]){ "RANK=2", "WORLD_SIZE=2", NULL });
    expect_error((const char *[]){ "RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=h",
                                   "MASTER_PORT=65535", NULL },
                 WEFT_ERR_INVALID_ARG, (const char *[]){ "MASTER_PORT=65535", NULL });
}

static void test_bad_slurm(void **state)
{
    (void)state;
    expect_error((const char *[]){ SRUN_RANK3, "SLURM_PROCID=5", NULL }, WEFT_ERR_INVALID_ARG,
                 (const char *[]){ "SLURM_PROCID=5", "SLURM_NTASKS=5", NULL });
    expect_error((const char *[]){ SRUN_RANK3, "SLURM_PROCID=x1", NULL }, WEFT_ERR_INVALID_ARG,
                 (const char *[]){ "SLURM_PROCID=\"x1\"", NULL });
    expect_error((const char *[]){ SRUN_RANK3, "SLURM_STEP_NODELIST=n[1-", NULL },
                 WEFT_ERR_INVALID_ARG,
                 (const char *[]){ "SLURM_STEP_NODELIST", "n[1-", "position 4", NULL });
    expect_error((const char *[]){ SRUN_RANK3, "SLURM_STEP_TASKS_PER_NODE=2(x2", NULL },
                 WEFT_ERR_INVALID_ARG, (const char *[]){ "SLURM_STEP_TASKS_PER_NODE", NULL });
    expect_error((const char *[]){ SRUN_RANK3, "SLURM_LOCALID=2", NULL }, WEFT_ERR_INVALID_ARG,
                 (const char *[]){ "SLURM_LOCALID=2", NULL });
    expect_error((const char *[]){ SRUN_RANK3, "WEFT_SLURM_PORT_RANGE=300-200", NULL },
                 WEFT_ERR_INVALID_ARG, (const char *[]){ "WEFT_SLURM_PORT_RANGE", NULL });
    expect_error((const char *[]){ SRUN_RANK3, "WEFT_SECRET=abc", NULL }, WEFT_ERR_INVALID_ARG,
                 (const char *[]){ "WEFT_SECRET", NULL });
    int port;
    assert_int_equal(weft_launch_slurm_port("5000-5000", 99, 7, &port), WEFT_OK);
    assert_int_equal(port, 5000);
    assert_int_equal(weft_launch_slurm_port("20000-29999", 1, 0, &port), WEFT_OK);
    assert_int_equal(port, 20101);
    assert_int_equal(weft_launch_slurm_port("0-10", 1, 0, &port), WEFT_ERR_INVALID_ARG);
    assert_int_equal(weft_launch_slurm_port("1-70000", 1, 0, &port), WEFT_ERR_INVALID_ARG);
    assert_int_equal(weft_launch_slurm_port("20000", 1, 0, &port), WEFT_ERR_INVALID_ARG);
}

/* The whole path in one process: a 1-rank Slurm step on localhost bootstraps and runs. */
static void test_slurm_one_rank_end_to_end(void **state)
{
    (void)state;
    weft_comm_t comm;
    int size = 0;
    char range[64];
    /* A port range of its own, away from other tests running at the same time. */
    int base = 40000 + (int)(getpid() % 2000) * 8;
    snprintf(range, sizeof(range), "WEFT_SLURM_PORT_RANGE=%d-%d", base, base + 7);
    set_env((const char *[]){ "SLURM_JOB_ID=3", "SLURM_STEP_ID=0", "SLURM_PROCID=0",
                              "SLURM_NTASKS=1", "SLURM_LOCALID=0", "SLURM_NODEID=0",
                              "SLURM_STEP_TASKS_PER_NODE=1", "SLURM_STEP_NODELIST=localhost",
                              range, "WEFT_TIMEOUT=20", NULL });
    assert_int_equal(weft_comm_init_env(&comm), WEFT_OK);
    assert_int_equal(weft_comm_size(comm, &size), WEFT_OK);
    assert_int_equal(size, 1);
    float x = 2.5f;
    assert_int_equal(weft_allreduce(&x, &x, 1, WEFT_FLOAT32, WEFT_SUM, comm, NULL), WEFT_OK);
    assert_true(x == 2.5f);
    assert_int_equal(weft_comm_destroy(comm), WEFT_OK);
    /* Rank 0 placed on another node than the root's is told so at once. */
    struct weft_launch l;
    set_env((const char *[]){ "SLURM_JOB_ID=3", "SLURM_STEP_ID=1", "SLURM_PROCID=0",
                              "SLURM_NTASKS=2", "SLURM_NODEID=1", "SLURM_STEP_NODELIST=localhost",
                              range, NULL });
    assert_int_equal(weft_launch_detect(&l), WEFT_ERR_INVALID_ARG);
    assert_non_null(strstr(weft_error_message(), "first node localhost"));
    unsetenv("WEFT_TIMEOUT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing),
        cmocka_unit_test(test_weft_run_first),
        cmocka_unit_test(test_plain_srun),
        cmocka_unit_test(test_batch_step),
        cmocka_unit_test(test_mpirun_in_allocation),
        cmocka_unit_test(test_srun_with_pmi),
        cmocka_unit_test(test_torchrun),
        cmocka_unit_test(test_bad_slurm),
        cmocka_unit_test(test_slurm_one_rank_end_to_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
