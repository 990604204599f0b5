/*
 * netif.c - picks the network interface for sockets (WEFT_SOCKET_IFNAME, WEFT_SOCKET_FAMILY)
 * and prints and parses socket addresses for the bootstrap and the TCP transport.
 */
#include "netif.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "error.h"
#include "log.h"

int weft_netif_match(const char *spec, const char *name)
{
    if (!spec || !spec[0])
        return 1;
    int exclude = spec[0] == '^';
    const char *p = spec + exclude;
    int exact = p[0] == '=';
    p += exact;
    int hit = 0;
    while (*p && !hit) {
        size_t len = strcspn(p, ",");
        if (len > 0)
            hit = exact ? (strlen(name) == len && strncmp(name, p, len) == 0)
                        : strncmp(name, p, len) == 0;
        p += len + (p[len] == ',');
    }
    return exclude ? !hit : hit;
}

const char *weft_sockaddr_str(const struct sockaddr *addr, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
    } else if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        /* A link-local address means nothing without its interface: keep the scope, in the
         * numeric form weft_sockaddr_parse reads back (WEFT_ROOT made from a unique id). */
        if (in6->sin6_scope_id)
            snprintf(buf, len, "[%s%%%u]:%u", host, in6->sin6_scope_id, ntohs(in6->sin6_port));
        else
            snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        snprintf(buf, len, "(family %d)", addr->sa_family);
    }
    return buf;
}

static int family_wanted(int family)
{
    const char *want = weft_config_str(WEFT_CFG_SOCKET_FAMILY);
    if (strcmp(want, "ipv4") == 0)
        return family == AF_INET;
    if (strcmp(want, "ipv6") == 0)
        return family == AF_INET6;
    return family == AF_INET || family == AF_INET6;
}

/* IPv6 link-local addresses need a scope id on every peer: skip them. */
static int usable(const struct ifaddrs *ifa)
{
    if (!ifa->ifa_addr || !(ifa->ifa_flags & IFF_UP) || !family_wanted(ifa->ifa_addr->sa_family))
        return 0;
    if (ifa->ifa_addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ifa->ifa_addr;
        if (IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr))
            return 0;
    }
    return 1;
}

weft_result_t weft_netif_pick(struct sockaddr_storage *addr, socklen_t *addr_len, char *ifname,
                              size_t ifname_len)
{
    const char *spec = weft_config_str(WEFT_CFG_SOCKET_IFNAME);
    struct ifaddrs *list;
    if (getifaddrs(&list) != 0)
        return WEFT_ERROR_ERRNO(WEFT_ERR_SYSTEM, "getifaddrs", "cannot list network interfaces");
    const struct ifaddrs *pick = NULL;
    /* With a spec: the first match in order. Without: first non-loopback, IPv4 before IPv6,
     * then loopback. */
    for (int pass = 0; pass < 3 && !pick; pass++) {
        for (const struct ifaddrs *ifa = list; ifa && !pick; ifa = ifa->ifa_next) {
            if (!usable(ifa))
                continue;
            int loop = (ifa->ifa_flags & IFF_LOOPBACK) != 0;
            if (spec[0]) {
                if (pass == 0 && weft_netif_match(spec, ifa->ifa_name))
                    pick = ifa;
            } else if ((pass == 0 && !loop && ifa->ifa_addr->sa_family == AF_INET) ||
                       (pass == 1 && !loop) || (pass == 2 && loop)) {
                pick = ifa;
            }
        }
    }
    if (!pick) {
        freeifaddrs(list);
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                          "no up interface matches WEFT_SOCKET_IFNAME=\"%s\" with "
                          "WEFT_SOCKET_FAMILY=%s",
                          spec, weft_config_str(WEFT_CFG_SOCKET_FAMILY));
    }
    socklen_t len = pick->ifa_addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                                         : sizeof(struct sockaddr_in6);
    memset(addr, 0, sizeof(*addr));
    memcpy(addr, pick->ifa_addr, len);
    if (addr->ss_family == AF_INET)
        ((struct sockaddr_in *)addr)->sin_port = 0;
    else
        ((struct sockaddr_in6 *)addr)->sin6_port = 0;
    *addr_len = len;
    if (ifname)
        snprintf(ifname, ifname_len, "%s", pick->ifa_name);
    freeifaddrs(list);
    return WEFT_OK;
}

weft_result_t weft_sockaddr_parse(const char *text, struct sockaddr_storage *addr,
                                  socklen_t *addr_len)
{
    char host[256];
    const char *port = NULL;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || (size_t)(close - text - 1) >= sizeof(host))
            return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "malformed address \"%s\"", text);
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        if (close[1] == ':')
            port = close + 2;
        else if (close[1])
            return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "malformed address \"%s\"", text);
    } else {
        const char *colon = strrchr(text, ':');
        if (colon && strchr(text, ':') != colon) /* bare IPv6 without brackets: no port */
            colon = NULL;
        size_t hlen = colon ? (size_t)(colon - text) : strlen(text);
        if (hlen == 0 || hlen >= sizeof(host))
            return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "malformed address \"%s\"", text);
        memcpy(host, text, hlen);
        host[hlen] = '\0';
        port = colon ? colon + 1 : NULL;
    }
    if (port) {
        char *end;
        long p = strtol(port, &end, 10);
        if (!*port || *end || p < 0 || p > 65535)
            return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "bad port in address \"%s\"", text);
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    int rc = getaddrinfo(host, port ? port : "0", &hints, &res);
    if (rc != 0)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "cannot resolve \"%s\": getaddrinfo: %s", host,
                          gai_strerror(rc));
    memset(addr, 0, sizeof(*addr));
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    return WEFT_OK;
}
