/*
 * regcache_check.c - run under weft-run (over verbs: tests/rxe/run.sh): allreduces from and
 * into buffers that are freed and allocated again, usually at the same address with new
 * pages and other contents, large (glibc maps them on their own) and small (heap). A
 * registration cache that handed out the stale registration would move the old pages: the
 * results are wrong (measured in the soft-RoCE VM with the cache's invalidation removed: 6
 * of 8 rounds failed). Prints how often an address came back.
 */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "weft.h"

#define ROUNDS 8

int main(void)
{
    /* Ring chunks are registered one by one (160 per buffer here): keep them all cached, so
     * that every chunk of a reused buffer is looked up while its old registration is still
     * there (with the default 64, the least recently used are evicted first and a stale
     * registration is never reached). */
    setenv("WEFT_IB_REG_CACHE_MAX", "4096", 0);
    /* A fixed threshold (no dynamic raise): blocks from 256 KiB up are mapped on their own
     * and unmapped by free(), so small ones show the reuse too. */
    mallopt(M_MMAP_THRESHOLD, 256 << 10);
    weft_comm_t comm;
    weft_result_t r = weft_comm_init_env(&comm);
    if (r != WEFT_OK) {
        fprintf(stderr, "regcache_check: init failed: %s: %s\n", weft_strerror(r),
                weft_last_error());
        return 1;
    }
    int rank, n, passed = 0, failed = 0, reused = 0;
    weft_comm_rank(comm, &rank);
    weft_comm_size(comm, &n);
    uintptr_t last_send = 0, last_recv = 0;
    for (int round = 0; round < ROUNDS; round++) {
        /* mapped blocks, which come back at the same address with new pages; then a smaller
         * one inside the old range; then heap-sized ones, which keep their pages */
        const size_t count = round < 4 ? (512u << 10) : round == 4 ? (448u << 10) : (24u << 10);
        int32_t *send = malloc(count * sizeof(int32_t)), *recv = malloc(count * sizeof(int32_t));
        if (!send || !recv) {
            fprintf(stderr, "regcache_check: out of memory\n");
            return 1;
        }
        reused += (uintptr_t)send == last_send || (uintptr_t)recv == last_recv;
        last_send = (uintptr_t)send;
        last_recv = (uintptr_t)recv;
        for (size_t i = 0; i < count; i++) {
            send[i] = (int32_t)((rank + 1) * (round + 1) + (int)(i % 1000));
            recv[i] = -1;
        }
        r = weft_allreduce(send, recv, count, WEFT_INT32, WEFT_SUM, comm, NULL);
        size_t wrong = 0, first = 0;
        const int32_t base = (int32_t)(n * (n + 1) / 2 * (round + 1));
        for (size_t i = 0; r == WEFT_OK && i < count; i++)
            if (recv[i] != base + n * (int32_t)(i % 1000) && wrong++ == 0)
                first = i;
        if (r != WEFT_OK || wrong) {
            failed++;
            printf("not ok - rank %d round %d (%zu int32 at %p): %s; %zu wrong, first [%zu] = %d, "
                   "want %d\n",
                   rank, round, count, (void *)send, r ? weft_last_error() : "ok", wrong, first,
                   wrong ? recv[first] : 0, base + n * (int32_t)(first % 1000));
        } else {
            passed++;
        }
        free(send);
        free(recv);
    }
    weft_comm_destroy(comm);
    printf("regcache_check: rank %d: addresses came back in %d of %d rounds; %d checks passed, "
           "%d failed\n",
           rank, reused, ROUNDS - 1, passed, failed);
    return failed ? 1 : 0;
}
