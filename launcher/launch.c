/*
 * launch.c - finds out which launcher started this process (weft-run, PMIx, Open MPI, MPICH,
 * Slurm, torchrun) and agrees on the bootstrap's unique id with the other ranks.
 */
#include "launcher/launch.h"

#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/netif.h"
#include "launcher/bootstrap.h"
#include "launcher/hostlist.h"
#include "launcher/kvs.h"
#include "launcher/launch_env.h"

#define KVS_ID_KEY "weft.id"
/* Slurm's step id of the batch script (SLURM_BATCH_SCRIPT in slurm.h). */
#define SLURM_BATCH_STEP 0xfffffffbULL

static const char how_to_start[] =
    "start the program with weft-run -n N, srun, mpirun or mpiexec, or set RANK, WORLD_SIZE, "
    "MASTER_ADDR and MASTER_PORT (torchrun-style), or WEFT_RANK, WEFT_NRANKS, WEFT_ROOT and "
    "WEFT_SECRET";

/* A launcher variable (not a WEFT_* knob): NULL when unset or empty. */
static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

/* The first of the names that is set; *used gets its name. */
static const char *env_first(const char *const *names, const char **used)
{
    for (; *names; names++) {
        const char *v = env(*names);
        if (v) {
            *used = *names;
            return v;
        }
    }
    *used = NULL;
    return NULL;
}

static weft_result_t parse_u64(const char *name, const char *text, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    if (!text || text[0] < '0' || text[0] > '9')
        goto bad;
    v = strtoull(text, &end, 10);
    if (errno || *end || v > max)
        goto bad;
    *out = v;
    return WEFT_OK;
bad:
    return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "%s=\"%s\" is not a number in 0..%llu", name,
                      text ? text : "", (unsigned long long)max);
}

static weft_result_t parse_int(const char *name, const char *text, int *out)
{
    uint64_t v;
    WEFT_CHECK(parse_u64(name, text, INT_MAX, &v));
    *out = (int)v;
    return WEFT_OK;
}

/* rank/nranks (and local ones when known) must describe a real position. */
static weft_result_t check_pair(const char *rank_name, int rank, const char *size_name,
                                int size)
{
    if (size < 1 || rank >= size)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "%s=%d and %s=%d are inconsistent: need %s >= 1 and %s < %s",
                          rank_name, rank, size_name, size, size_name, rank_name, size_name);
    return WEFT_OK;
}

/* The launcher's local rank and size, each optional, checked against each other when both
 * are given. */
static weft_result_t parse_local(struct weft_launch_plan *p, const char *rank_name,
                                 const char *size_name)
{
    const char *lr = env(rank_name), *ls = env(size_name);

    if (lr)
        WEFT_CHECK(parse_int(rank_name, lr, &p->l.local_rank));
    if (ls)
        WEFT_CHECK(parse_int(size_name, ls, &p->l.local_nranks));
    if (lr && ls)
        WEFT_CHECK(check_pair(rank_name, p->l.local_rank, size_name, p->l.local_nranks));
    return WEFT_OK;
}

static weft_result_t secret_from_hex(const char *hex, uint8_t out[WEFT_BOOT_SECRET_BYTES])
{
    size_t bin_len = 0;
    const char *end = NULL;

    if (strlen(hex) != 2 * WEFT_BOOT_SECRET_BYTES ||
        sodium_hex2bin(out, WEFT_BOOT_SECRET_BYTES, hex, strlen(hex), NULL, &bin_len, &end) !=
            0 ||
        bin_len != WEFT_BOOT_SECRET_BYTES || (end && *end))
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "WEFT_SECRET is not %d hex digits (it has %zu characters)",
                          2 * WEFT_BOOT_SECRET_BYTES, strlen(hex));
    return WEFT_OK;
}

/* WEFT_SECRET when set, else a hash of what every rank of the job sees alike (`parts`,
 * NUL-separated, under a context string). The derived one keeps apart jobs that do not know
 * each other; it is no protection against a user who can read the job's ids. */
static weft_result_t pick_secret(struct weft_launch_plan *p, const char *context,
                                 const char *const *parts, const char *described)
{
    const char *hex = weft_config_str(WEFT_CFG_SECRET);
    crypto_generichash_state st;

    if (hex && hex[0]) {
        WEFT_CHECK(secret_from_hex(hex, p->secret));
        snprintf(p->secret_from, sizeof(p->secret_from), "WEFT_SECRET");
        return WEFT_OK;
    }
    crypto_generichash_init(&st, NULL, 0, sizeof(p->secret));
    crypto_generichash_update(&st, (const unsigned char *)context, strlen(context) + 1);
    for (; *parts; parts++)
        crypto_generichash_update(&st, (const unsigned char *)*parts, strlen(*parts) + 1);
    crypto_generichash_final(&st, p->secret, sizeof(p->secret));
    snprintf(p->secret_from, sizeof(p->secret_from), "derived from %s (not secret)", described);
    return WEFT_OK;
}

/* WEFT_ROOT=host:port overrides the computed root of the Slurm and torchrun modes. */
static weft_result_t root_override(struct weft_launch_plan *p)
{
    const char *root = weft_config_str(WEFT_CFG_ROOT);
    const char *colon;

    if (!root || !root[0])
        return WEFT_OK;
    colon = strrchr(root, ':');
    if (!colon || colon == root || !colon[1] || (root[0] != '[' && strchr(root, ':') != colon))
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "WEFT_ROOT=\"%s\" is not host:port", root);
    WEFT_CHECK(parse_int("the port of WEFT_ROOT", colon + 1, &p->root_port));
    if (p->root_port < 1 || p->root_port > 65535)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "WEFT_ROOT=\"%s\": port out of 1..65535", root);
    if (root[0] == '[')
        snprintf(p->root_host, sizeof(p->root_host), "%.*s", (int)(colon - root - 2), root + 1);
    else
        snprintf(p->root_host, sizeof(p->root_host), "%.*s", (int)(colon - root), root);
    snprintf(p->root_from, sizeof(p->root_from), "WEFT_ROOT=%s", root);
    p->slurm_node_id = -1; /* the user placed the root: no node check */
    p->l.rendezvous = "WEFT_ROOT";
    return WEFT_OK;
}

weft_result_t weft_launch_slurm_port(const char *range, uint64_t job_id, uint64_t step_id,
                                     int *port)
{
    unsigned lo, hi;
    int used = 0;

    if (!range || sscanf(range, "%u-%u%n", &lo, &hi, &used) != 2 || range[used] != '\0' ||
        lo < 1 || hi > 65535 || lo > hi)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "WEFT_SLURM_PORT_RANGE=\"%s\" is not a port range lo-hi within "
                          "1-65535 (e.g. 20000-29999)",
                          range ? range : "");
    *port = (int)(lo + (job_id * 101 + step_id) % (uint64_t)(hi - lo + 1));
    return WEFT_OK;
}

/* ---- the launchers, most preferred first -------------------------------------------- */

static weft_result_t plan_weft_run(struct weft_launch_plan *p)
{
    p->mode = WEFT_LAUNCH_WEFT_RUN;
    p->l.source = "weft-run";
    p->l.rendezvous = "WEFT_ROOT";
    p->l.rank = (int)weft_config_int(WEFT_CFG_RANK);
    p->l.nranks = (int)weft_config_int(WEFT_CFG_NRANKS);
    if (p->l.rank < 0 || p->l.nranks < 1 || p->l.rank >= p->l.nranks)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "WEFT_RANK=%d and WEFT_NRANKS=%d are inconsistent: set both, with "
                          "0 <= WEFT_RANK < WEFT_NRANKS (weft-run sets them)",
                          p->l.rank, p->l.nranks);
    p->l.local_rank = (int)weft_config_int(WEFT_CFG_LOCAL_RANK);
    snprintf(p->root_from, sizeof(p->root_from), "WEFT_ROOT=%s",
             weft_config_str(WEFT_CFG_ROOT));
    return WEFT_OK;
}

/* The rank's position on its node from Slurm's variables (valid inside a step that srun
 * started directly). */
static weft_result_t slurm_local(struct weft_launch_plan *p)
{
    const char *tpn_names[] = { "SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE", NULL };
    const char *tpn_name, *tpn = env_first(tpn_names, &tpn_name);
    const char *localid = env("SLURM_LOCALID"), *nodeid = env("SLURM_NODEID");

    if (localid)
        WEFT_CHECK(parse_int("SLURM_LOCALID", localid, &p->l.local_rank));
    if (nodeid)
        WEFT_CHECK(parse_int("SLURM_NODEID", nodeid, &p->slurm_node_id));
    if (tpn && nodeid) {
        WEFT_CHECK(weft_tasks_per_node(tpn, tpn_name, p->slurm_node_id, &p->l.local_nranks,
                                       NULL));
        if (localid)
            WEFT_CHECK(check_pair("SLURM_LOCALID", p->l.local_rank, tpn_name,
                                  p->l.local_nranks));
    }
    return WEFT_OK;
}

static bool slurm_mpi_type_is(const char *prefix)
{
    const char *t = env("SLURM_MPI_TYPE");
    return t && strncmp(t, prefix, strlen(prefix)) == 0;
}

static weft_result_t plan_slurm(struct weft_launch_plan *p)
{
    const char *nl_names[] = { "SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST",
                               NULL };
    const char *nt_names[] = { "SLURM_NTASKS", "SLURM_STEP_NUM_TASKS", "SLURM_NPROCS", NULL };
    const char *job_names[] = { "SLURM_JOB_ID", "SLURM_JOBID", NULL };
    const char *step_names[] = { "SLURM_STEP_ID", "SLURM_STEPID", NULL };
    const char *nl_name, *nt_name, *job_name, *step_name;
    const char *nodelist, *ntasks, *job, *step;
    uint64_t job_id, step_id;
    struct weft_hostlist hl;
    char uid[32];

    p->mode = WEFT_LAUNCH_ROOT_AT;
    p->l.source = "Slurm";
    p->l.rendezvous = "Slurm step nodelist";
    job = env_first(job_names, &job_name);
    if (!job)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "SLURM_PROCID is set but SLURM_JOB_ID is not: not a Slurm job step?");
    WEFT_CHECK(parse_u64(job_name, job, UINT32_MAX, &job_id));
    step = env_first(step_names, &step_name);
    if (step) {
        WEFT_CHECK(parse_u64(step_name, step, UINT32_MAX, &step_id));
        WEFT_CHECK(parse_int("SLURM_PROCID", env("SLURM_PROCID"), &p->l.rank));
        ntasks = env_first(nt_names, &nt_name);
        if (!ntasks)
            return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                              "SLURM_PROCID=%d is set but none of SLURM_NTASKS, "
                              "SLURM_STEP_NUM_TASKS, SLURM_NPROCS is",
                              p->l.rank);
        WEFT_CHECK(parse_int(nt_name, ntasks, &p->l.nranks));
        WEFT_CHECK(check_pair("SLURM_PROCID", p->l.rank, nt_name, p->l.nranks));
        WEFT_CHECK(slurm_local(p));
    } else {
        /* The batch script is one process, whatever SLURM_NTASKS says about the job: the
         * tasks come from srun inside it. */
        step_id = SLURM_BATCH_STEP;
        step_name = "batch step";
        p->l.rank = 0;
        p->l.nranks = 1;
        p->l.local_rank = 0;
        p->l.local_nranks = 1;
        p->slurm_node_id = 0;
        snprintf(p->note, sizeof(p->note),
                 "Slurm batch script (no SLURM_STEP_ID): one rank; start the job's %s tasks "
                 "with srun",
                 env("SLURM_NTASKS") ? env("SLURM_NTASKS") : "SLURM_NTASKS");
    }

    nodelist = env_first(nl_names, &nl_name);
    if (!nodelist)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "Slurm rank %d: none of SLURM_STEP_NODELIST, SLURM_JOB_NODELIST, "
                          "SLURM_NODELIST is set: cannot find the step's first node",
                          p->l.rank);
    WEFT_CHECK(weft_hostlist_expand(nodelist, nl_name, &hl));
    snprintf(p->root_host, sizeof(p->root_host), "%s", hl.hosts[0]);
    weft_hostlist_free(&hl);
    WEFT_CHECK(weft_launch_slurm_port(weft_config_str(WEFT_CFG_SLURM_PORT_RANGE), job_id,
                                      step_id, &p->root_port));
    snprintf(p->root_from, sizeof(p->root_from),
             "first host of %s=%s; port from %s=%s, %s%s%s in WEFT_SLURM_PORT_RANGE=%s",
             nl_name, nodelist, job_name, job, step_name, step ? "=" : "", step ? step : "",
             weft_config_str(WEFT_CFG_SLURM_PORT_RANGE));
    WEFT_CHECK(root_override(p));

    const char *uid_text = env("SLURM_JOB_UID");
    if (!uid_text) {
        snprintf(uid, sizeof(uid), "%u", (unsigned)getuid());
        uid_text = uid;
    }
    const char *cluster = env("SLURM_CLUSTER_NAME") ? env("SLURM_CLUSTER_NAME") : "";
    char step_text[24];
    snprintf(step_text, sizeof(step_text), "%llu", (unsigned long long)step_id);
    const char *parts[] = { job, step_text, uid_text, cluster, NULL };
    return pick_secret(p, "weft-slurm-secret-v1", parts,
                       "SLURM_JOB_ID, SLURM_STEP_ID, SLURM_JOB_UID, SLURM_CLUSTER_NAME");
}

static weft_result_t plan_torchrun(struct weft_launch_plan *p)
{
    const char *addr = env("MASTER_ADDR"), *port = env("MASTER_PORT");
    int master_port = 0;

    p->mode = WEFT_LAUNCH_ROOT_AT;
    p->l.source = "torchrun";
    p->l.rendezvous = "MASTER_ADDR";
    WEFT_CHECK(parse_int("RANK", env("RANK"), &p->l.rank));
    WEFT_CHECK(parse_int("WORLD_SIZE", env("WORLD_SIZE"), &p->l.nranks));
    WEFT_CHECK(check_pair("RANK", p->l.rank, "WORLD_SIZE", p->l.nranks));
    WEFT_CHECK(parse_local(p, "LOCAL_RANK", "LOCAL_WORLD_SIZE"));
    const char *root = weft_config_str(WEFT_CFG_ROOT);
    if (root && root[0]) {
        WEFT_CHECK(root_override(p));
    } else {
        if (!addr || !port)
            return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                              "RANK=%d and WORLD_SIZE=%d are set but %s%s%s is not: set "
                              "MASTER_ADDR and MASTER_PORT as torchrun does (Weft's root "
                              "listens on MASTER_PORT+1), or WEFT_ROOT=host:port",
                              p->l.rank, p->l.nranks, !addr ? "MASTER_ADDR" : "",
                              !addr && !port ? " and " : "", !port ? "MASTER_PORT" : "");
        WEFT_CHECK(parse_int("MASTER_PORT", port, &master_port));
        if (master_port < 1 || master_port >= 65535)
            return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                              "MASTER_PORT=%s: need 1..65534 (Weft's root listens on "
                              "MASTER_PORT+1)",
                              port);
        snprintf(p->root_host, sizeof(p->root_host), "%s", addr);
        p->root_port = master_port + 1;
        snprintf(p->root_from, sizeof(p->root_from),
                 "MASTER_ADDR=%s, MASTER_PORT+1 (MASTER_PORT=%s is torch's TCPStore)", addr,
                 port);
    }
    const char *parts[] = { addr ? addr : "", port ? port : "", env("WORLD_SIZE"), NULL };
    return pick_secret(p, "weft-torchrun-secret-v1", parts,
                       "MASTER_ADDR, MASTER_PORT, WORLD_SIZE");
}

/* PMIx, alone (srun --mpi=pmix, prterun) or as Open MPI's process manager. */
static weft_result_t plan_pmix(struct weft_launch_plan *p, const char *kvs)
{
    const char *ompi = env("OMPI_COMM_WORLD_RANK");

    p->mode = WEFT_LAUNCH_KVS;
    p->l.rendezvous = kvs;
    WEFT_CHECK(parse_int("PMIX_RANK", env("PMIX_RANK"), &p->l.rank));
    if (ompi) {
        int orank;
        p->l.source = "Open MPI";
        WEFT_CHECK(parse_int("OMPI_COMM_WORLD_RANK", ompi, &orank));
        WEFT_CHECK(parse_int("OMPI_COMM_WORLD_SIZE", env("OMPI_COMM_WORLD_SIZE"),
                             &p->l.nranks));
        WEFT_CHECK(check_pair("OMPI_COMM_WORLD_RANK", orank, "OMPI_COMM_WORLD_SIZE",
                              p->l.nranks));
        if (orank != p->l.rank)
            return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                              "OMPI_COMM_WORLD_RANK=%d and PMIX_RANK=%d disagree", orank,
                              p->l.rank);
        return parse_local(p, "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE");
    }
    p->l.source = "PMIx";
    /* srun --mpi=pmix started us itself: its SLURM_* describe this rank. Under another PMIx
     * launcher inside an allocation they describe its daemon, so they are not read. */
    if (slurm_mpi_type_is("pmix") && env("SLURM_STEP_ID") && env("SLURM_NTASKS")) {
        WEFT_CHECK(parse_int("SLURM_NTASKS", env("SLURM_NTASKS"), &p->l.nranks));
        WEFT_CHECK(check_pair("PMIX_RANK", p->l.rank, "SLURM_NTASKS", p->l.nranks));
        WEFT_CHECK(slurm_local(p));
    }
    return WEFT_OK;
}

/* PMI-1 (MPICH hydra) or PMI-2 (srun --mpi=pmi2) on PMI_FD. */
static weft_result_t plan_pmi(struct weft_launch_plan *p, const char *kvs)
{
    const char *lr = env("MPI_LOCALRANKID");

    p->mode = WEFT_LAUNCH_KVS;
    p->l.rendezvous = kvs;
    WEFT_CHECK(parse_int("PMI_RANK", env("PMI_RANK"), &p->l.rank));
    WEFT_CHECK(parse_int("PMI_SIZE", env("PMI_SIZE"), &p->l.nranks));
    WEFT_CHECK(check_pair("PMI_RANK", p->l.rank, "PMI_SIZE", p->l.nranks));
    if (!lr && slurm_mpi_type_is("pmi2") && env("SLURM_STEP_ID")) {
        p->l.source = "Slurm";
        return slurm_local(p);
    }
    p->l.source = "MPICH";
    return parse_local(p, "MPI_LOCALRANKID", "MPI_LOCALNRANKS");
}

/* A Slurm step's own variables can stand in for a PMI that Weft cannot speak. */
static bool slurm_step_usable(void)
{
    return env("SLURM_PROCID") && env("SLURM_STEP_ID") && env("SLURM_JOB_ID");
}

weft_result_t weft_launch_plan(struct weft_launch_plan *p)
{
    const char *kvs;

    if (!p)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_launch_plan: plan is NULL");
    memset(p, 0, sizeof(*p));
    p->l.rank = p->l.nranks = p->l.local_rank = p->l.local_nranks = -1;
    p->slurm_node_id = -1;
    if (sodium_init() < 0)
        return WEFT_ERROR(WEFT_ERR_SYSTEM, "libsodium failed to initialize");
    WEFT_CHECK(weft_config_load());

    /* 1. weft-run, or a user who set the WEFT_* variables by hand. */
    if (weft_config_is_set(WEFT_CFG_RANK) || weft_config_is_set(WEFT_CFG_NRANKS))
        return plan_weft_run(p);

    kvs = weft_kvs_available();
    /* 2, 3. PMIx (Open MPI's mpirun sets PMIX_RANK too). */
    if (env("PMIX_RANK") || env("OMPI_COMM_WORLD_RANK")) {
        if (kvs && strcmp(kvs, "PMIx") == 0)
            return plan_pmix(p, kvs);
        const char *who = env("OMPI_COMM_WORLD_RANK") ? "Open MPI (OMPI_COMM_WORLD_RANK)"
                                                       : "PMIx (PMIX_RANK)";
        if (!env("OMPI_COMM_WORLD_RANK") && slurm_mpi_type_is("pmix") && slurm_step_usable()) {
            snprintf(p->note, sizeof(p->note),
                     "PMIx is not built into this Weft (no libpmix-dev at build time): using "
                     "srun's SLURM_* variables instead");
        } else {
            return WEFT_ERROR(WEFT_ERR_UNSUPPORTED,
                              "%s started this process, but %s: rebuild Weft with libpmix-dev "
                              "installed, or start the job with srun or weft-run",
                              who,
                              env("PMIX_RANK") ? "this Weft was built without libpmix"
                                               : "PMIX_RANK is not set (Open MPI older than 2?)");
        }
    } else if (env("PMI_RANK") || env("PMI_FD")) {
        /* 4. MPICH hydra, srun --mpi=pmi2. */
        if (kvs && strcmp(kvs, "PMIx") != 0)
            return plan_pmi(p, kvs);
        if (slurm_mpi_type_is("pmi") && slurm_step_usable())
            snprintf(p->note, sizeof(p->note),
                     "PMI_RANK is set but PMI_FD is not usable: using srun's SLURM_* variables "
                     "instead");
        else
            return WEFT_ERROR(WEFT_ERR_UNSUPPORTED,
                              "PMI_RANK=%s is set but there is no PMI_FD to reach the process "
                              "manager (Weft speaks PMI-1 and PMI-2 on PMI_FD only): start the "
                              "job with mpiexec (hydra), srun --mpi=pmi2, or weft-run",
                              env("PMI_RANK") ? env("PMI_RANK") : "");
    }
    /* 5. srun without PMI (or a PMI this Weft cannot use), or the batch script. */
    if (env("SLURM_PROCID"))
        return plan_slurm(p);
    /* 6. torchrun-style. */
    if (env("RANK") || env("WORLD_SIZE")) {
        if (!env("RANK") || !env("WORLD_SIZE"))
            return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                              "%s is set but %s is not: torchrun-style launching needs RANK, "
                              "WORLD_SIZE, MASTER_ADDR and MASTER_PORT",
                              env("RANK") ? "RANK" : "WORLD_SIZE",
                              env("RANK") ? "WORLD_SIZE" : "RANK");
        return plan_torchrun(p);
    }
    if (env("SLURM_JOB_ID"))
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "no launcher environment found: this is Slurm job %s but not one of "
                          "its tasks (no SLURM_PROCID): run the program with srun or "
                          "weft-run -n N",
                          env("SLURM_JOB_ID"));
    return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "no launcher environment found: %s", how_to_start);
}

/* ---- rendezvous ------------------------------------------------------------------------ */

static bool id_is_zero(const weft_unique_id_t *id)
{
    for (size_t i = 0; i < sizeof(id->internal); i++)
        if (id->internal[i])
            return false;
    return true;
}

/* Rank 0 starts the root and publishes its id; everyone reads it after the fence. */
static weft_result_t rendezvous_kvs(struct weft_launch *l)
{
    struct weft_kvs *kvs = NULL;
    weft_result_t res, root_res = WEFT_OK;
    int rank = -1, nranks = -1;
    char root_err[512] = "";

    WEFT_CHECK(weft_kvs_open(&kvs, &rank, &nranks));
    l->rendezvous = weft_kvs_protocol(kvs);
    if ((l->rank >= 0 && rank != l->rank) || (l->nranks > 0 && nranks != l->nranks)) {
        res = WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                         "%s says rank %d of %d but the %s environment says rank %d of %d",
                         l->rendezvous, rank, nranks, l->source, l->rank, l->nranks);
        goto out;
    }
    res = check_pair("the process manager's rank", rank, "its size", nranks);
    if (res != WEFT_OK)
        goto out;
    l->rank = rank;
    l->nranks = nranks;
    weft_log_set_rank(rank);
    if (rank == 0) {
        root_res = weft_boot_root_start(NULL, &l->id);
        if (root_res != WEFT_OK) {
            /* Publish an empty id so the other ranks fail now instead of at the timeout. */
            snprintf(root_err, sizeof(root_err), "%s", weft_error_message());
            memset(&l->id, 0, sizeof(l->id));
        }
        WEFT_CHECK_GOTO(weft_kvs_put(kvs, KVS_ID_KEY, &l->id, sizeof(l->id)), res, out);
    }
    WEFT_CHECK_GOTO(weft_kvs_fence(kvs), res, out);
    if (rank == 0) {
        if (root_res != WEFT_OK)
            res = WEFT_ERROR(root_res, "rank 0 could not start the bootstrap root: %s",
                             root_err);
        goto out;
    }
    WEFT_CHECK_GOTO(weft_kvs_get(kvs, 0, KVS_ID_KEY, &l->id, sizeof(l->id)), res, out);
    if (id_is_zero(&l->id))
        res = WEFT_ERROR(WEFT_ERR_REMOTE,
                         "rank 0 could not start the bootstrap root (its own error says why); "
                         "it told us through %s",
                         l->rendezvous);
out:
    weft_kvs_close(kvs);
    return res;
}

/* Everyone computes the root's address; rank 0 also listens there, on every interface. */
static weft_result_t rendezvous_root_at(const struct weft_launch_plan *p, struct weft_launch *l)
{
    struct weft_boot_id bid;
    char spec[300], why[512];
    weft_result_t res;

    memset(&bid, 0, sizeof(bid));
    snprintf(spec, sizeof(spec), strchr(p->root_host, ':') ? "[%s]:%d" : "%s:%d",
             p->root_host, p->root_port);
    res = weft_sockaddr_parse(spec, &bid.root, &bid.root_len);
    if (res != WEFT_OK) {
        snprintf(why, sizeof(why), "%s", weft_error_message());
        return WEFT_ERROR(res, "%s rank %d: cannot resolve the rendezvous root %s (%s): %s",
                          l->source, l->rank, spec, p->root_from, why);
    }
    memcpy(bid.secret, p->secret, sizeof(bid.secret));
    res = weft_boot_id_encode(&bid, &l->id);
    sodium_memzero(&bid, sizeof(bid));
    WEFT_CHECK(res);
    if (l->rank != 0)
        return WEFT_OK;
    if (p->slurm_node_id > 0)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "Slurm rank 0 runs on node %d (%s) of the step, but the rendezvous "
                          "root is the step's first node %s: use the default block "
                          "distribution, srun --mpi=pmix or --mpi=pmi2, or set WEFT_ROOT",
                          p->slurm_node_id, weft_log_hostname(), p->root_host);
    weft_unique_id_t served;
    snprintf(spec, sizeof(spec), "%s:%d",
             ((struct sockaddr *)&bid.root)->sa_family == AF_INET6 ? "[::]" : "0.0.0.0",
             p->root_port);
    res = weft_boot_root_start_at(spec, p->secret, &served);
    if (res != WEFT_OK) {
        snprintf(why, sizeof(why), "%s", weft_error_message());
        return WEFT_ERROR(res, "%s rank 0 on %s: cannot start the rendezvous root on port %d "
                          "(%s): %s",
                          l->source, weft_log_hostname(), p->root_port, p->root_from, why);
    }
    return WEFT_OK;
}

weft_result_t weft_launch_detect(struct weft_launch *out)
{
    struct weft_launch_plan p;
    weft_result_t res;

    if (!out)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_launch_detect: out is NULL");
    WEFT_CHECK(weft_launch_plan(&p));
    if (p.l.rank >= 0)
        weft_log_set_rank(p.l.rank);
    if (p.note[0])
        WEFT_INFO(INIT, "launch: %s", p.note);
    switch (p.mode) {
    case WEFT_LAUNCH_WEFT_RUN:
        res = weft_boot_id_from_env(&p.l.id);
        break;
    case WEFT_LAUNCH_KVS:
        res = rendezvous_kvs(&p.l);
        break;
    case WEFT_LAUNCH_ROOT_AT:
        WEFT_INFO(INIT, "launch: %s rank %d: rendezvous root %s:%d (%s), secret %s", p.l.source,
                  p.l.rank, p.root_host, p.root_port, p.root_from, p.secret_from);
        res = rendezvous_root_at(&p, &p.l);
        break;
    default:
        res = WEFT_ERROR(WEFT_ERR_INTERNAL, "launch mode %d", (int)p.mode);
        break;
    }
    sodium_memzero(p.secret, sizeof(p.secret));
    if (res == WEFT_OK)
        *out = p.l;
    sodium_memzero(&p.l.id, sizeof(p.l.id));
    return res;
}
