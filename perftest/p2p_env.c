/*
 * p2p_env.c - what a point-to-point test settles before the communicator exists: the RDMA
 * device, port and GID of -d/-i/-x, and the verbs rendezvous mode of write_* and read_*.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perftest/links.h"
#include "perftest/p2p.h"
#include "weft_tools.h"

static bool set_var(const char *name, const char *value, char *why, size_t why_len)
{
    if (setenv(name, value, 1) == 0)
        return true;
    snprintf(why, why_len, "cannot set %s=%s: %s", name, value, strerror(errno));
    return false;
}

/* perftest without -d takes the first device the verbs library lists: so does -i alone. */
static bool first_device(char *name, size_t len, char *why, size_t why_len)
{
    struct perf_link *links = NULL;
    size_t n = 0;
    if (!perf_links_list(NULL, &links, &n, why, why_len))
        return false;
    if (n == 0) {
        free(links);
        snprintf(why, why_len, "-i without -d: no RDMA device found");
        return false;
    }
    snprintf(name, len, "%s", links[0].dev);
    free(links);
    return true;
}

/* -d DEV [-i PORT] becomes WEFT_IB_HCA="=DEV[:PORT]" (exact name), -x N WEFT_IB_GID_INDEX. */
static bool set_device(const struct perf_args *a, char *why, size_t why_len)
{
    char dev[PERF_LINK_NAME_MAX], hca[PERF_LINK_NAME_MAX + 8], gid[16];
    if (a->ib_dev != NULL || a->ib_port != 0) {
        if (a->ib_dev != NULL)
            snprintf(dev, sizeof(dev), "%s", a->ib_dev);
        else if (!first_device(dev, sizeof(dev), why, why_len))
            return false;
        if (a->ib_port != 0)
            snprintf(hca, sizeof(hca), "=%s:%d", dev, a->ib_port);
        else
            snprintf(hca, sizeof(hca), "=%s", dev);
        if (!set_var("WEFT_IB_HCA", hca, why, why_len))
            return false;
    }
    if (a->gid_index >= 0) {
        snprintf(gid, sizeof(gid), "%d", a->gid_index);
        if (!set_var("WEFT_IB_GID_INDEX", gid, why, why_len))
            return false;
    }
    return true;
}

const char *perf_p2p_rndv(enum perf_p2p test)
{
    switch (test) {
    case PERF_WRITE_BW:
    case PERF_WRITE_LAT:
        return "write";
    case PERF_READ_BW:
    case PERF_READ_LAT:
        return "read";
    default:
        return NULL;
    }
}

bool perf_p2p_env(const struct perf_args *a, enum perf_p2p test, char *why, size_t why_len)
{
    if ((a->ib_dev != NULL || a->ib_port != 0 || a->gid_index >= 0) && strstr(weft_features(), "verbs=yes") == NULL) {
        snprintf(why, why_len, "-d, -i and -x choose an RDMA device, port and GID for the "
                               "verbs transport, which this build lacks (no libibverbs)");
        return false;
    }
    if (!set_device(a, why, why_len))
        return false;
    /* Both ranks run the same test, so they agree on the mode as the transport demands. */
    const char *rndv = perf_p2p_rndv(test);
    if (rndv != NULL && !set_var("WEFT_IB_RNDV", rndv, why, why_len))
        return false;
    if (weft_config_refresh() != WEFT_OK) {
        snprintf(why, why_len, "%s", weft_last_error());
        return false;
    }
    return true;
}
