/*
 * host.c - what identifies this host (see host.h).
 */
#include "core/host.h"

#include <stdio.h>
#include <string.h>

#include "core/config.h"

void weft_host_boot_id(char *out, size_t len)
{
    snprintf(out, len, "unknown");
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (!f)
        return;
    if (fgets(out, (int)len, f))
        out[strcspn(out, "\n")] = '\0';
    fclose(f);
    /* WEFT_HOST_ID (testing): a fake host inside this one */
    const char *fake = weft_config_str(WEFT_CFG_HOST_ID);
    if (fake && fake[0]) {
        const size_t at = strlen(out) < 8 ? strlen(out) : 8;
        snprintf(out + at, len - at, "/host:%s", fake);
    }
}
