/*
 * fabric.c - `weft-perf fabric`: placeholder until the all-pairs check lands.
 */
#include <stdio.h>

#include "perftest/perf.h"

int perf_fabric_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "weft-perf fabric: not yet\n");
    return 2;
}
