/*
 * hostlist.c - fuzz target: Slurm's compressed host lists and tasks-per-node lists
 * (launcher/hostlist.c), read from SLURM_STEP_NODELIST and SLURM_STEP_TASKS_PER_NODE. The
 * first byte picks which; an expansion is bounded and every host is a non-empty string.
 */
#include <stdlib.h>
#include <string.h>

#include "launcher/hostlist.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    char *text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    if (data[0] & 1) {
        struct weft_hostlist hl = {0};
        if (weft_hostlist_expand(text, "fuzz", &hl) == WEFT_OK) {
            FUZZ_ASSERT(hl.n <= WEFT_HOSTLIST_MAX);
            for (size_t i = 0; i < hl.n; i++)
                FUZZ_ASSERT(hl.hosts[i] != NULL && hl.hosts[i][0] != '\0');
            weft_hostlist_free(&hl);
        }
    } else {
        int nnodes = 0, tasks = 0;
        if (weft_tasks_per_node(text, "fuzz", 0, NULL, &nnodes) == WEFT_OK) {
            FUZZ_ASSERT(nnodes > 0);
            int node = (int)((unsigned)data[0] >> 1) % nnodes;
            FUZZ_ASSERT(weft_tasks_per_node(text, "fuzz", node, &tasks, NULL) == WEFT_OK);
            FUZZ_ASSERT(tasks >= 0);
            FUZZ_ASSERT(weft_tasks_per_node(text, "fuzz", nnodes, &tasks, NULL) != WEFT_OK);
        }
    }
    free(text);
    return 0;
}
