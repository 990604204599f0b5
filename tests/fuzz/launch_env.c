/*
 * launch_env.c - fuzz target: the launcher variables read from the environment (Slurm,
 * PMI, Open MPI, torchrun, weft-run) and the plan made of them (launcher/launch.c). Each
 * input line "<k>VALUE" sets variable number k (modulo the list) to VALUE. A plan that is
 * accepted must describe a real position: 0 <= rank < nranks, as each variable says.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "launcher/launch_env.h"
#include "tests/fuzz/fuzz.h"

static const char *const names[] = {
    "WEFT_RANK", "WEFT_NRANKS", "WEFT_LOCAL_RANK", "WEFT_ROOT", "WEFT_SECRET",
    "WEFT_SLURM_PORT_RANGE", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_NPROCS",
    "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID", "SLURM_NODEID", "SLURM_JOB_ID", "SLURM_JOBID",
    "SLURM_STEP_ID", "SLURM_STEPID", "SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST",
    "SLURM_NODELIST", "SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE", "SLURM_MPI_TYPE",
    "SLURM_JOB_UID", "SLURM_CLUSTER_NAME", "RANK", "WORLD_SIZE", "LOCAL_RANK",
    "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "OMPI_COMM_WORLD_RANK",
    "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE",
    "PMI_RANK", "PMI_SIZE", "PMIX_RANK", "PMI_JOBID",
};
#define NNAMES (sizeof(names) / sizeof(names[0]))

/* A plain decimal the way a launcher writes it, or -1. */
static long long decimal(const char *s)
{
    char *end;
    if (!s || s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    return errno || *end ? -1 : v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    for (size_t i = 0; i < NNAMES; i++)
        unsetenv(names[i]);
    unsetenv("PMI_FD");
    /* Ranks must not meet anyone: the address is resolved only in weft_launch_detect. */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '\0')
            continue;
        setenv(names[(unsigned char)line[0] % NNAMES], line + 1, 1);
    }
    free(text);
    if (weft_config_reload() != WEFT_OK)
        return 0;
    struct weft_launch_plan plan;
    if (weft_launch_plan(&plan) != WEFT_OK)
        return 0;
    if (plan.l.nranks >= 0) {
        FUZZ_ASSERT(plan.l.nranks >= 1);
        FUZZ_ASSERT(plan.l.rank >= 0 && plan.l.rank < plan.l.nranks);
    }
    if (plan.l.local_nranks >= 0 && plan.l.local_rank >= 0)
        FUZZ_ASSERT(plan.l.local_rank < plan.l.local_nranks);
    if (plan.mode == WEFT_LAUNCH_WEFT_RUN) {
        /* The rank is the number the variable holds, not that number cut to an int. */
        FUZZ_ASSERT(decimal(getenv("WEFT_RANK")) == plan.l.rank);
        FUZZ_ASSERT(decimal(getenv("WEFT_NRANKS")) == plan.l.nranks);
    }
    if (plan.mode == WEFT_LAUNCH_ROOT_AT)
        FUZZ_ASSERT(plan.root_port > 0 && plan.root_port <= 65535);
    return 0;
}
