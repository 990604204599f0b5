/*
 * launch_env.h - the detect-only half of weft_launch_detect: which launcher started this
 * process and how the ranks will meet, read from the environment without connecting to
 * anything (weft-info --launch prints it; the unit tests check the precedence with it).
 */
#ifndef WEFT_LAUNCHER_LAUNCH_ENV_H
#define WEFT_LAUNCHER_LAUNCH_ENV_H

#include <stdbool.h>
#include <stdint.h>

#include "launcher/bootstrap.h"
#include "launcher/launch.h"

enum weft_launch_mode {
    WEFT_LAUNCH_WEFT_RUN, /* WEFT_ROOT + WEFT_SECRET */
    WEFT_LAUNCH_KVS,      /* PMIx / PMI-2 / PMI-1 key-value exchange carries rank 0's id */
    WEFT_LAUNCH_ROOT_AT,  /* Slurm without PMI, torchrun: everyone computes the root's address */
};

struct weft_launch_plan {
    enum weft_launch_mode mode;
    /* rank and nranks are -1 where only the process manager can tell (PMIx outside Slurm);
     * id is not filled. */
    struct weft_launch l;
    /* WEFT_LAUNCH_ROOT_AT: where rank 0 listens, the variables it came from, and the secret. */
    char root_host[256];
    int root_port;
    char root_from[256];
    char secret_from[160];
    uint8_t secret[WEFT_BOOT_SECRET_BYTES];
    /* Slurm: rank 0 must be on the root host; its node index in the step (-1: not Slurm). */
    int slurm_node_id;
    /* Why a more preferred launcher was passed over ("" if none), e.g. PMIx not built in. */
    char note[256];
};

/* Reads the environment in launch.h's precedence. Fails with WEFT_ERR_INVALID_ARG naming the
 * variables when they are inconsistent or when no launcher is found. Connects to nothing. */
weft_result_t weft_launch_plan(struct weft_launch_plan *plan);

/* The Slurm rendezvous port: lo + (job_id * 101 + step_id) mod (hi - lo + 1), where "lo-hi" is
 * `range` (WEFT_SLURM_PORT_RANGE). Distinct steps of one job, and the last (hi - lo + 1) / 101
 * jobs' first steps, get distinct ports. */
weft_result_t weft_launch_slurm_port(const char *range, uint64_t job_id, uint64_t step_id,
                                     int *port);

#endif /* WEFT_LAUNCHER_LAUNCH_ENV_H */
