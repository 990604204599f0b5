/*
 * boot_hdr.c - fuzz target: the bootstrap's 12-byte message header (launcher/boot_wire.c), as
 * read from any connection to the root or ring port. A header it accepts must re-encode to
 * the same bytes.
 */
#include <string.h>

#include "launcher/boot_wire.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct weft_boot_hdr hdr;
    uint8_t again[WEFT_BOOT_HDR_BYTES];

    if (weft_boot_hdr_decode(data, size, &hdr) != WEFT_OK)
        return 0;
    FUZZ_ASSERT(size >= WEFT_BOOT_HDR_BYTES);
    FUZZ_ASSERT(hdr.len <= WEFT_BOOT_MSG_MAX);
    FUZZ_ASSERT(hdr.type >= WEFT_BOOT_MSG_HELLO && hdr.type <= WEFT_BOOT_MSG_ERROR);
    weft_boot_hdr_encode(&hdr, again);
    FUZZ_ASSERT(memcmp(again, data, WEFT_BOOT_HDR_BYTES) == 0);
    return 0;
}
