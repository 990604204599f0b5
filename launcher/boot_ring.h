/*
 * boot_ring.h - the two authenticated links of a rank in the bootstrap ring, formed in one
 * poll() loop so that strangers on the ring listener cannot stall it.
 */
#ifndef WEFT_LAUNCHER_BOOT_RING_H
#define WEFT_LAUNCHER_BOOT_RING_H

#include <stdint.h>

#include "launcher/bootstrap.h"
#include "weft.h"

/* Most connections on the listener that have not proved the job secret yet; a newer one
 * pushes out the oldest. */
#define WEFT_BOOT_RING_PENDING_MAX 64

/* With `next_fd` connected to rank+1: proves the secret to it and checks its proof, while
 * accepting connections on `lfd` until one proves the secret (rank-1's: *prev_fd). Every
 * other connection is dropped with a warning; none can hold the loop up. */
weft_result_t weft_boot_ring_link(int lfd, int next_fd, const uint8_t *secret, int rank,
                                  const char *next_what, double deadline, int *prev_fd);

#endif /* WEFT_LAUNCHER_BOOT_RING_H */
