/*
 * topo_bind.c - WEFT_BIND: where a rank and the threads Weft starts run: near the NIC
 * (auto), untouched (none), or on CPU lists, one per local rank in turn.
 */
#include "core/topo.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/netif.h"

#define BAD(...) (snprintf(why, why_len, __VA_ARGS__), WEFT_ERR_INVALID_ARG)

weft_result_t weft_topo_parse_cpus(const char *text, void *setp, char *why, size_t why_len)
{
    cpu_set_t *set = setp;
    CPU_ZERO(set);
    const char *s = text;
    if (!*s)
        return BAD("empty CPU list");
    while (*s) {
        char *end;
        errno = 0;
        long lo = strtol(s, &end, 10), hi = lo;
        if (end == s || errno || lo < 0)
            return BAD("\"%s\": expected a CPU number at \"%s\"", text, s);
        s = end;
        if (*s == '-') {
            const char *h = s + 1;
            hi = strtol(h, &end, 10);
            if (end == h || hi < lo)
                return BAD("\"%s\": bad range at \"%s\"", text, s);
            s = end;
        }
        if (hi >= CPU_SETSIZE)
            return BAD("\"%s\": CPU %ld is beyond %d", text, hi, CPU_SETSIZE - 1);
        for (long c = lo; c <= hi; c++)
            CPU_SET((int)c, set);
        if (*s == ',' && s[1])
            s++;
        else if (*s)
            return BAD("\"%s\": unexpected \"%s\"", text, s);
    }
    return WEFT_OK;
}

static const char *cpus_text(const cpu_set_t *set, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int c = 0; c < CPU_SETSIZE && at + 16 < len; c++) {
        if (!CPU_ISSET(c, set))
            continue;
        int e = c;
        while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, set))
            e++;
        at += (size_t)snprintf(buf + at, len - at, e > c ? "%s%d-%d" : "%s%d", at ? "," : "",
                               c, e);
        c = e;
    }
    return buf;
}

/* The NIC local rank `local` should sit near: a verbs device hwloc places on PCI, else the
 * socket interface when it is on PCI; several of them are taken in turn by local rank. */
static int pick_nic(const struct weft_topo *topo, int local)
{
    int cand[WEFT_TOPO_MAX_DEVS], n = 0;
    for (int i = 0; i < topo->ndevs; i++)
        if (topo->devs[i].kind == WEFT_TOPO_NIC && topo->devs[i].cpus[0] &&
            strstr(topo->devs[i].name, "(verbs)"))
            cand[n++] = i;
    if (n == 0) {
        struct sockaddr_storage addr;
        socklen_t alen;
        char ifname[64];
        if (weft_netif_pick(&addr, &alen, ifname, sizeof(ifname)) != WEFT_OK) {
            weft_error_clear();
            return -1;
        }
        for (int i = 0; i < topo->ndevs; i++)
            if (topo->devs[i].kind == WEFT_TOPO_NIC && topo->devs[i].cpus[0] &&
                strcmp(topo->devs[i].name, ifname) == 0)
                cand[n++] = i;
    }
    return n ? cand[local % n] : -1;
}

/* The CPUs for local rank `local` (none bound: *bind false, `what` says why). */
static weft_result_t plan(int local, int nhosts, cpu_set_t *set, bool *bind, char *what,
                          size_t len)
{
    const char *spec = weft_config_str(WEFT_CFG_BIND);
    cpu_set_t allowed;
    char a[WEFT_TOPO_CPUS], b[WEFT_TOPO_CPUS];
    *bind = false;
    if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0)
        return WEFT_ERROR(WEFT_ERR_SYSTEM, "WEFT_BIND: sched_getaffinity failed: %m");
    if (!spec[0])
        spec = "auto";
    if (!strcasecmp(spec, "none")) {
        snprintf(what, len, "not bound (WEFT_BIND=none): CPUs %s",
                 cpus_text(&allowed, a, sizeof(a)));
        return WEFT_OK;
    }
    if (strcasecmp(spec, "auto") != 0) {
        /* local rank i takes the i-th ':'-separated list, cycling */
        int nlists = 1;
        for (const char *s = spec; *s; s++)
            nlists += *s == ':';
        const int want = local % nlists;
        const char *s = spec;
        /* every list is checked, so that a bad one fails on every rank, not on some */
        for (int i = 0; i < nlists; i++) {
            char list[WEFT_TOPO_CPUS], why[256];
            cpu_set_t one;
            snprintf(list, sizeof(list), "%.*s", (int)strcspn(s, ":"), s);
            if (weft_topo_parse_cpus(list, &one, why, sizeof(why)) != WEFT_OK)
                return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                                  "WEFT_BIND=%s: expected auto, none, or CPU lists like 0-3,8 "
                                  "(one per local rank, separated by ':'): list %d: %s",
                                  spec, i + 1, why);
            if (i == want)
                *set = one;
            s += strcspn(s, ":");
            s += *s == ':';
        }
        cpu_set_t extra;
        CPU_XOR(&extra, set, &allowed);
        CPU_AND(&extra, &extra, set);
        if (CPU_COUNT(&extra))
            return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                              "WEFT_BIND=%s: local rank %d: CPUs %s are not available to this "
                              "process on %s (it may use %s)",
                              spec, local, cpus_text(&extra, a, sizeof(a)), weft_log_hostname(),
                              cpus_text(&allowed, b, sizeof(b)));
        *bind = true;
        snprintf(what, len, "CPUs %s (WEFT_BIND list %d of %d)", cpus_text(set, a, sizeof(a)),
                 want + 1, nlists);
        return WEFT_OK;
    }
    /* Before the discovery: a job on one host has nothing to learn from it (and spares
     * every rank hwloc's PCI scan). */
    if (nhosts < 2) {
        snprintf(what, len, "not bound (WEFT_BIND=auto: one host, no NIC traffic): CPUs %s",
                 cpus_text(&allowed, a, sizeof(a)));
        return WEFT_OK;
    }
    struct weft_topo topo;
    WEFT_CHECK(weft_topo_discover(&topo));
    if (!topo.have_hwloc) {
        snprintf(what, len, "not bound (WEFT_BIND=auto, but this build has no hwloc): CPUs %s",
                 cpus_text(&allowed, a, sizeof(a)));
        return WEFT_OK;
    }
    const int nic = pick_nic(&topo, local);
    if (nic < 0) {
        snprintf(what, len, "not bound (WEFT_BIND=auto: no NIC with PCI locality): CPUs %s",
                 cpus_text(&allowed, a, sizeof(a)));
        return WEFT_OK;
    }
    char why[256];
    if (weft_topo_parse_cpus(topo.devs[nic].cpus, set, why, sizeof(why)) != WEFT_OK)
        return WEFT_ERROR(WEFT_ERR_INTERNAL, "hwloc's CPU list of NIC %s: %s",
                          topo.devs[nic].name, why);
    CPU_AND(set, set, &allowed);
    if (CPU_COUNT(set) == 0 || CPU_EQUAL(set, &allowed)) {
        snprintf(what, len, "not bound (WEFT_BIND=auto: NIC %s is local to CPUs %s, %s): CPUs %s",
                 topo.devs[nic].name, topo.devs[nic].cpus,
                 CPU_COUNT(set) ? "all this process may use" : "none of which it may use",
                 cpus_text(&allowed, a, sizeof(a)));
        return WEFT_OK;
    }
    *bind = true;
    snprintf(what, len, "CPUs %s (WEFT_BIND=auto: near NIC %s, NUMA node %d)",
             cpus_text(set, a, sizeof(a)), topo.devs[nic].name, topo.devs[nic].numa);
    return WEFT_OK;
}

weft_result_t weft_topo_bind_plan(int local, int nhosts, char *what, size_t len)
{
    cpu_set_t set;
    bool bind;
    return plan(local, nhosts, &set, &bind, what, len);
}

/* sched_setaffinity binds one thread: every thread of the process gets the set, so that
 * threads Weft started before (the bootstrap's, the transports') are bound too. */
static weft_result_t bind_all_threads(const cpu_set_t *set, int *nthreads)
{
    DIR *dir = opendir("/proc/self/task");
    *nthreads = 0;
    if (!dir)
        return sched_setaffinity(0, sizeof(*set), set) == 0
                   ? WEFT_OK
                   : WEFT_ERROR(WEFT_ERR_SYSTEM, "WEFT_BIND: sched_setaffinity failed: %m");
    struct dirent *e;
    weft_result_t r = WEFT_OK;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue;
        const pid_t tid = (pid_t)atoi(e->d_name);
        /* a thread that just exited is no failure */
        if (sched_setaffinity(tid, sizeof(*set), set) != 0 && errno != ESRCH) {
            r = WEFT_ERROR(WEFT_ERR_SYSTEM, "WEFT_BIND: sched_setaffinity(thread %d) failed: %m",
                           (int)tid);
            break;
        }
        (*nthreads)++;
    }
    closedir(dir);
    return r;
}

static pthread_mutex_t bind_lock = PTHREAD_MUTEX_INITIALIZER;
static bool bind_done;
static weft_result_t bind_result;
static char bind_error[512];

weft_result_t weft_topo_bind(int local, int nhosts)
{
    pthread_mutex_lock(&bind_lock);
    if (bind_done) {
        const weft_result_t r = bind_result;
        pthread_mutex_unlock(&bind_lock);
        return r == WEFT_OK ? r : WEFT_ERROR(r, "%s", bind_error);
    }
    cpu_set_t set;
    bool bind;
    char what[600];
    int nthreads = 0;
    weft_result_t r = plan(local, nhosts, &set, &bind, what, sizeof(what));
    if (r == WEFT_OK && bind)
        r = bind_all_threads(&set, &nthreads);
    if (r == WEFT_OK)
        WEFT_INFO(INIT, "local rank %d: %s%s", local, what,
                  bind ? (nthreads > 1 ? ", every thread" : "") : "");
    bind_done = true;
    bind_result = r;
    if (r != WEFT_OK)
        snprintf(bind_error, sizeof(bind_error), "%s", weft_last_error());
    pthread_mutex_unlock(&bind_lock);
    return r;
}
