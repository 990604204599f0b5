/*
 * pmi.c - fuzz target: the answers of a PMI-1 or PMI-2 process manager (launcher/kvs.c,
 * kvs_pmi.c): the first byte picks the version, the rest is everything the server says,
 * written in advance on a socketpair whose server end then stops writing. The client opens
 * the exchange, puts a value, fences and gets a peer's value (split into parts and hex
 * encoded); whatever it reads, it must fail cleanly or return what the server sent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "launcher/kvs.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int sv[2], rank = -1, nranks = -1;
    char fdtext[16];
    uint8_t value[40] = "weft fuzz value", got[40];
    struct weft_kvs *kvs = NULL;

    /* Within the socket buffer, so that the writes below never block. */
    if (size < 1 || size > 16384)
        return 0;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return 0;
    snprintf(fdtext, sizeof(fdtext), "%d", sv[0]);
    setenv("PMI_FD", fdtext, 1);
    setenv("PMI_RANK", "0", 1);
    setenv("PMI_SIZE", "2", 1);
    unsetenv("PMIX_RANK");
    unsetenv("PMI_JOBID");
    if (data[0] & 1)
        setenv("SLURM_MPI_TYPE", "pmi2", 1);
    else
        unsetenv("SLURM_MPI_TYPE");
    if (size > 1)
        FUZZ_ASSERT(write(sv[1], data + 1, size - 1) == (ssize_t)(size - 1));
    shutdown(sv[1], SHUT_WR);
    if (weft_kvs_open(&kvs, &rank, &nranks) == WEFT_OK) {
        FUZZ_ASSERT(rank >= 0 && rank < nranks);
        if (weft_kvs_put(kvs, "fuzz", value, sizeof(value)) == WEFT_OK &&
            weft_kvs_fence(kvs) == WEFT_OK)
            (void)weft_kvs_get(kvs, 1, "fuzz", got, sizeof(got));
        weft_kvs_close(kvs);
    }
    /* Closed by weft_kvs_close, or by the failed open: a leak would run out of descriptors. */
    close(sv[1]);
    return 0;
}
