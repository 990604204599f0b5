/*
 * boot_id.c - fuzz target: the 128-byte unique id (launcher/boot_id.c), which applications
 * pass between ranks by their own means. An id that decodes must survive the trip through
 * its environment form (WEFT_ROOT, WEFT_SECRET) unchanged.
 */
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "launcher/bootstrap.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    weft_unique_id_t id, again;
    struct weft_boot_id bid, bid2;
    char root[128], secret[2 * WEFT_BOOT_SECRET_BYTES + 1], tag[17];

    memset(&id, 0, sizeof(id));
    memcpy(id.internal, data, size < sizeof(id.internal) ? size : sizeof(id.internal));
    if (weft_boot_id_decode(&id, &bid) != WEFT_OK)
        return 0;
    FUZZ_ASSERT(weft_boot_id_job_tag(&id, tag, sizeof(tag)) == WEFT_OK);
    FUZZ_ASSERT(strlen(tag) == 16);
    FUZZ_ASSERT(weft_boot_id_to_env(&id, root, 4, secret, sizeof(secret)) != WEFT_OK ||
                strlen(root) < 4);
    if (weft_boot_id_to_env(&id, root, sizeof(root), secret, sizeof(secret)) != WEFT_OK)
        return 0;
    setenv("WEFT_ROOT", root, 1);
    setenv("WEFT_SECRET", secret, 1);
    FUZZ_ASSERT(weft_config_reload() == WEFT_OK);
    /* Port 0 is refused by the environment form, as a root never listens there. */
    if (weft_boot_id_from_env(&again) != WEFT_OK)
        return 0;
    FUZZ_ASSERT(weft_boot_id_decode(&again, &bid2) == WEFT_OK);
    FUZZ_ASSERT(bid2.root_len == bid.root_len);
    FUZZ_ASSERT(memcmp(&bid2.root, &bid.root, bid.root_len) == 0);
    FUZZ_ASSERT(memcmp(bid2.secret, bid.secret, sizeof(bid.secret)) == 0);
    return 0;
}
