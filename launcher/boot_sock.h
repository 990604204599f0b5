/*
 * boot_sock.h - deadline-bounded TCP helpers of the bootstrap: listen, connect with retry,
 * accept, and exact sends/receives driven by poll(). `what` names the peer in messages.
 */
#ifndef WEFT_LAUNCHER_BOOT_SOCK_H
#define WEFT_LAUNCHER_BOOT_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "weft.h"

/* Seconds on CLOCK_MONOTONIC. */
double weft_boot_now(void);
/* Milliseconds left until `deadline` for poll(), rounded up; 0 once it has passed. */
int weft_boot_ms_left(double deadline);
/* now + WEFT_TIMEOUT. */
double weft_boot_deadline(void);
bool weft_boot_addr_is_loopback(const struct sockaddr *addr);

/* Listens on `addr` (port 0: the kernel picks); *bound gets the address actually bound. */
weft_result_t weft_boot_listen(const struct sockaddr_storage *addr, socklen_t addr_len, int *fd,
                               struct sockaddr_storage *bound, socklen_t *bound_len);
/* Connects, retrying refused connections with a short backoff until `deadline`. */
weft_result_t weft_boot_connect(const struct sockaddr_storage *addr, socklen_t addr_len,
                                double deadline, const char *what, int *fd);
/* Waits for one connection on listener `lfd`; *peer gets its address (may be NULL). */
weft_result_t weft_boot_accept(int lfd, double deadline, const char *what, int *fd,
                               struct sockaddr_storage *peer, socklen_t *peer_len);

weft_result_t weft_boot_send_all(int fd, const void *buf, size_t len, double deadline,
                                 const char *what);
weft_result_t weft_boot_recv_all(int fd, void *buf, size_t len, double deadline,
                                 const char *what);
/* Sends `slen` bytes on `sfd` while receiving `rlen` bytes on `rfd`, so that a ring of
 * processes doing the same never deadlocks on full socket buffers. */
weft_result_t weft_boot_sendrecv(int sfd, const void *sbuf, size_t slen, const char *swhat,
                                 int rfd, void *rbuf, size_t rlen, const char *rwhat,
                                 double deadline);

#endif /* WEFT_LAUNCHER_BOOT_SOCK_H */
