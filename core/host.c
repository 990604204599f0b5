/*
 * host.c - what identifies this host (see host.h).
 */
#include "core/host.h"

#include <stdio.h>
#include <string.h>

void weft_host_boot_id(char *out, size_t len)
{
    snprintf(out, len, "unknown");
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (!f)
        return;
    if (fgets(out, (int)len, f))
        out[strcspn(out, "\n")] = '\0';
    fclose(f);
}
