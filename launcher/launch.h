/*
 * launch.h - where ranks come from. weft_comm_init_env asks the launcher's environment for
 * this process's rank, the job size and a unique id everyone agrees on, in this precedence:
 *   1. WEFT_RANK / WEFT_NRANKS (+ WEFT_ROOT / WEFT_SECRET), as weft-run sets them
 *   2. PMIx (PMIX_RANK; key-value exchange through libpmix)
 *   3. Open MPI (OMPI_COMM_WORLD_*; rendezvous through its PMIx server)
 *   4. MPICH/Hydra and srun --mpi=pmi2 (PMI_RANK, PMI_SIZE, PMI_FD; PMI-1 or PMI-2 wire)
 *   5. Slurm (SLURM_PROCID, SLURM_NTASKS, ...; root on the step's first node, port derived
 *      from the job and step ids)
 *   6. torchrun-style (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT)
 * MPI and PMIx win over Slurm because under mpirun inside an allocation the inherited
 * SLURM_* variables describe mpirun's helper daemon, not the rank.
 */
#ifndef WEFT_LAUNCHER_LAUNCH_H
#define WEFT_LAUNCHER_LAUNCH_H

#include "weft.h"

struct weft_launch {
    int rank;
    int nranks;
    int local_rank;   /* -1 when the launcher does not say */
    int local_nranks; /* -1 when the launcher does not say */
    const char *source;     /* "weft-run", "PMIx", "Open MPI", "MPICH", "Slurm", "torchrun" */
    const char *rendezvous; /* how the id was agreed, e.g. "WEFT_ROOT", "PMIx", "PMI-2",
                               "PMI-1", "Slurm step nodelist", "MASTER_ADDR" */
    weft_unique_id_t id;
};

/* Detects the launcher and agrees on a unique id with the other ranks (rank 0 starts the
 * rendezvous service where the mode needs it). Every failure names the variables involved;
 * no environment at all gives WEFT_ERR_INVALID_ARG telling how to start a job. */
weft_result_t weft_launch_detect(struct weft_launch *out);

#endif /* WEFT_LAUNCHER_LAUNCH_H */
