/*
 * boot_msg.c - fuzz target: the bootstrap's payloads (launcher/boot_wire.c): the first byte
 * picks the decoder (0 hello, 1 table, 2 error text), the rest is the payload as it arrives
 * from a rank or the root. What decodes must encode again to the same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "launcher/boot_wire.h"
#include "tests/fuzz/fuzz.h"

static void hello(const uint8_t *p, size_t n)
{
    struct weft_boot_peer peer;
    uint8_t again[WEFT_BOOT_HELLO_MAX + 64];
    size_t len = 0;

    if (weft_boot_hello_decode(p, n, &peer) != WEFT_OK)
        return;
    FUZZ_ASSERT(memchr(peer.host, 0, sizeof(peer.host)) != NULL);
    FUZZ_ASSERT(weft_boot_hello_encode(&peer, again, sizeof(again), &len) == WEFT_OK);
    FUZZ_ASSERT(len == n && memcmp(again, p, n) == 0);
}

static void table(const uint8_t *p, size_t n)
{
    struct weft_boot_peer *peers = NULL;
    uint8_t *again = NULL;
    size_t len = 0;
    int count = 0;

    if (weft_boot_table_decode(p, n, &peers, &count) != WEFT_OK)
        return;
    FUZZ_ASSERT(count > 0 && count <= WEFT_BOOT_NRANKS_MAX);
    for (int i = 0; i < count; i++)
        FUZZ_ASSERT(peers[i].rank == i && peers[i].nranks == count);
    FUZZ_ASSERT(weft_boot_table_encode(peers, count, &again, &len) == WEFT_OK);
    FUZZ_ASSERT(len == n && memcmp(again, p, n) == 0);
    free(again);
    free(peers);
}

static void errmsg(const uint8_t *p, size_t n)
{
    char msg[WEFT_BOOT_ERRMSG_MAX], small[16];

    if (weft_boot_errmsg_decode(p, n, msg, sizeof(msg)) != WEFT_OK)
        return;
    FUZZ_ASSERT(strlen(msg) + 2 == n);
    /* A caller's buffer shorter than the text gets it cut, never overrun. */
    FUZZ_ASSERT(weft_boot_errmsg_decode(p, n, small, sizeof(small)) == WEFT_OK);
    FUZZ_ASSERT(strlen(small) < sizeof(small));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0: hello(data + 1, size - 1); break;
    case 1: table(data + 1, size - 1); break;
    default: errmsg(data + 1, size - 1); break;
    }
    return 0;
}
