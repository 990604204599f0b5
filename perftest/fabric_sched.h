/*
 * fabric_sched.h - the all-pairs schedule of `weft-perf fabric`: the circle method's rounds,
 * in which every pair of nodes meets exactly once and no node is in two pairs of one round.
 */
#ifndef WEFT_PERFTEST_FABRIC_SCHED_H
#define WEFT_PERFTEST_FABRIC_SCHED_H

/* Rounds for n endpoints: n - 1 for even n, n for odd n (each node sits out one: its bye). */
int perf_fabric_rounds(int n);
/* The pairs of round r (0 <= r < perf_fabric_rounds(n)): pairs[2k] < pairs[2k+1]; returns how
 * many (n / 2). `pairs` holds at least n entries. */
int perf_fabric_round(int n, int r, int *pairs);

#endif /* WEFT_PERFTEST_FABRIC_SCHED_H */
