/*
 * pmi.c - fuzz target: the answers of a PMI-1 or PMI-2 process manager (launcher/kvs_pmi.c):
 * the first byte picks the version, the rest is everything the server says, written in
 * advance on a socketpair whose server end then hangs up. The client runs init, a put, a
 * fence and a get; whatever it reads, it must fail cleanly or return a value that fits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/config.h"
#include "launcher/kvs_pmi.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int sv[2];
    char fdtext[16], value[64];
    struct weft_kvs *kvs;

    /* Within the socket buffer, so that the writes below never block. */
    if (size < 1 || size > 16384)
        return 0;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return 0;
    kvs = calloc(1, sizeof(*kvs));
    if (!kvs) {
        close(sv[0]);
        close(sv[1]);
        return 0;
    }
    kvs->kind = data[0] & 1 ? WEFT_KVS_PMI2 : WEFT_KVS_PMI1;
    snprintf(fdtext, sizeof(fdtext), "%d", sv[0]);
    setenv("PMI_FD", fdtext, 1);
    setenv("PMI_RANK", "0", 1);
    setenv("PMI_SIZE", "2", 1);
    unsetenv("PMI_JOBID");
    if (size > 1)
        FUZZ_ASSERT(write(sv[1], data + 1, size - 1) == (ssize_t)(size - 1));
    shutdown(sv[1], SHUT_WR);
    if (weft_kvs_pmi_open(kvs) == WEFT_OK) {
        FUZZ_ASSERT(kvs->rank >= 0 && kvs->rank < kvs->nranks);
        FUZZ_ASSERT(strlen(kvs->name) < sizeof(kvs->name));
        if (weft_kvs_pmi_put(kvs, "weft-fuzz-0", "00ff") == WEFT_OK &&
            weft_kvs_pmi_fence(kvs) == WEFT_OK &&
            weft_kvs_pmi_get(kvs, 1, "weft-fuzz-1", value, sizeof(value)) == WEFT_OK)
            FUZZ_ASSERT(strlen(value) < sizeof(value));
    }
    weft_kvs_pmi_close(kvs);
    FUZZ_ASSERT(kvs->rlen <= sizeof(kvs->rbuf));
    free(kvs);
    close(sv[1]);
    return 0;
}
