/*
 * fabric_sched.c - the circle method: node 0 stays put, the others turn one place a round,
 * and slot i meets slot m-1-i; an odd count gets a phantom node, whose partner rests.
 */
#include "perftest/fabric_sched.h"

int perf_fabric_rounds(int n)
{
    if (n < 2)
        return 0;
    return n % 2 == 0 ? n - 1 : n;
}

/* The node in slot s of round r, for m (even) slots. */
static int slot_node(int m, int r, int s)
{
    return s == 0 ? 0 : 1 + (s - 1 + r) % (m - 1);
}

int perf_fabric_round(int n, int r, int *pairs)
{
    int m = n + n % 2, count = 0;
    if (n < 2 || r < 0 || r >= perf_fabric_rounds(n))
        return 0;
    for (int i = 0; i < m / 2; i++) {
        int a = slot_node(m, r, i), b = slot_node(m, r, m - 1 - i);
        if (a >= n || b >= n) /* the phantom: a bye */
            continue;
        pairs[2 * count] = a < b ? a : b;
        pairs[2 * count + 1] = a < b ? b : a;
        count++;
    }
    return count;
}
