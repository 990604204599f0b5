/*
 * host.h - what identifies this host: two ranks share a host when their host names and
 * kernel boot ids agree (containers on one kernel with distinct names do not).
 */
#ifndef WEFT_CORE_HOST_H
#define WEFT_CORE_HOST_H

#include <stddef.h>

#define WEFT_BOOT_ID_BYTES 40

/* The kernel's boot id (/proc/sys/kernel/random/boot_id), or "unknown"; with WEFT_HOST_ID set
 * (testing), its first 8 characters and "/host:" and that value, so that ranks with different
 * values count as different hosts. */
void weft_host_boot_id(char *out, size_t len);

#endif /* WEFT_CORE_HOST_H */
