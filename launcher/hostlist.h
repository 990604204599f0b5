/*
 * hostlist.h - Slurm's compressed host lists ("dgx[0180-0189,0200]", "rack[1-2]-n[01-02]")
 * and tasks-per-node lists ("2(x3),1"), expanded the way scontrol show hostnames does.
 */
#ifndef WEFT_LAUNCHER_HOSTLIST_H
#define WEFT_LAUNCHER_HOSTLIST_H

#include <stddef.h>

#include "weft.h"

/* Expansion is capped so that a typo like "n[1-999999999]" fails instead of eating memory. */
#define WEFT_HOSTLIST_MAX 1048576

struct weft_hostlist {
    char **hosts;
    size_t n;
};

/* Expands `expr` into out->hosts in Slurm's order (the first bracket varies slowest; zero
 * padding of a range's lower bound is kept). `what` names the source in errors (e.g.
 * "SLURM_STEP_NODELIST"; NULL: "hostlist"). A malformed expression is WEFT_ERR_INVALID_ARG
 * naming the expression and the 0-based position of the fault. */
weft_result_t weft_hostlist_expand(const char *expr, const char *what, struct weft_hostlist *out);
void weft_hostlist_free(struct weft_hostlist *hl);

/* Reads a compressed tasks-per-node list ("2(x3),1": nodes 0-2 run 2 tasks, node 3 one):
 * *tasks gets node `node`'s entry (when tasks is not NULL), *nnodes the number of nodes it
 * describes (when not NULL). A node past the end or a malformed list is WEFT_ERR_INVALID_ARG
 * naming `what` (NULL: "tasks-per-node list"). */
weft_result_t weft_tasks_per_node(const char *expr, const char *what, int node, int *tasks,
                                  int *nnodes);

#endif /* WEFT_LAUNCHER_HOSTLIST_H */
