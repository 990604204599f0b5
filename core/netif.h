/*
 * netif.h - choosing a network interface and printing socket addresses, shared by the
 * bootstrap and the TCP transport.
 */
#ifndef WEFT_CORE_NETIF_H
#define WEFT_CORE_NETIF_H

#include <stddef.h>
#include <sys/socket.h>

#include "weft.h"

#define WEFT_ADDR_STRLEN 80 /* "[ipv6%scope]:port" */

/* Picks an interface address by WEFT_SOCKET_IFNAME and WEFT_SOCKET_FAMILY: the spec is a
 * comma list of prefixes, "^" excludes, "=" matches exactly; with no spec, the first up
 * non-loopback interface, else loopback. Port 0 in *addr. ifname gets the interface name. */
weft_result_t weft_netif_pick(struct sockaddr_storage *addr, socklen_t *addr_len, char *ifname,
                              size_t ifname_len);
/* Whether interface `name` matches `spec` (the WEFT_SOCKET_IFNAME syntax). */
int weft_netif_match(const char *spec, const char *name);
/* "1.2.3.4:5" or "[::1]:5". */
const char *weft_sockaddr_str(const struct sockaddr *addr, char *buf, size_t len);
/* Parses "host:port", "[v6]:port" or "host" (port 0); host may be a name. */
weft_result_t weft_sockaddr_parse(const char *text, struct sockaddr_storage *addr,
                                  socklen_t *addr_len);

#endif /* WEFT_CORE_NETIF_H */
