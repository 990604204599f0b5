/*
 * topo.h - the host's topology as hwloc sees it (NUMA nodes, cores, and the PCI locality of
 * NICs and GPUs, each GPU paired with its closest NIC), and WEFT_BIND: binding a rank, with
 * the threads Weft starts, near its NIC or GPU or to a list of CPUs. Without hwloc the
 * discovery reports nothing and WEFT_BIND=auto binds nothing (one INFO line says so).
 */
#ifndef WEFT_CORE_TOPO_H
#define WEFT_CORE_TOPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "weft.h"

#define WEFT_TOPO_MAX_DEVS 32
#define WEFT_TOPO_NAME 64
#define WEFT_TOPO_CPUS 256 /* text of a CPU list */

enum weft_topo_dev_kind { WEFT_TOPO_NIC, WEFT_TOPO_GPU };

struct weft_topo_dev {
    enum weft_topo_dev_kind kind;
    char name[WEFT_TOPO_NAME];  /* "eth0", "mlx5_0 (verbs)", "cuda0" or the PCI id */
    char pci[16];               /* "0000:3b:00.0", or "" when hwloc found no PCI parent */
    int numa;                   /* NUMA node index, -1 when none is local */
    char cpus[WEFT_TOPO_CPUS];  /* CPUs local to the device, a list like "0-15,32-47" */
    int pair;                   /* GPU: index of the closest NIC (-1: none); NIC: -1 */
    int pair_hops;              /* tree hops between the GPU and that NIC */
};

struct weft_topo {
    bool have_hwloc;
    int numa_nodes, packages, cores, pus;
    int ndevs;
    struct weft_topo_dev devs[WEFT_TOPO_MAX_DEVS];
};

/* The topology (hwloc with its PCI discovery; ~50 ms, once per process). Without hwloc,
 * fills have_hwloc = false and zero counts. */
weft_result_t weft_topo_discover(struct weft_topo *topo);
/* Prints what weft_topo_discover found, and what WEFT_BIND would do for local rank 0. */
void weft_topo_print(FILE *out);

/* Binds this process (every thread it has; threads started later inherit the binding) as
 * WEFT_BIND says for local rank `local` of the job's ranks on this host, in a job over
 * `nhosts` hosts: auto (near its NIC when the job spans hosts and hwloc finds the NIC's PCI
 * locality: a verbs device, else the interface WEFT_SOCKET_IFNAME picks; local ranks take
 * several NICs in turn), none, or CPU lists. Never widens the CPUs the process may use.
 * Reports the outcome at INFO. A malformed WEFT_BIND, or a list naming CPUs this process
 * may not use, fails with WEFT_ERR_INVALID_ARG. Once per process: later calls return the
 * first result. */
weft_result_t weft_topo_bind(int local, int nhosts);
/* What weft_topo_bind would do for local rank `local` in a job over `nhosts` hosts, in
 * words, without binding: "CPUs 0-3 (near NIC eth0)" or "not bound: ...". */
weft_result_t weft_topo_bind_plan(int local, int nhosts, char *what, size_t len);

/* Parses a CPU list ("0-3,8,10-11") into `set` (a cpu_set_t); on failure (then
 * WEFT_ERR_INVALID_ARG) `why` says what is wrong. Exposed for tests. */
weft_result_t weft_topo_parse_cpus(const char *text, void *set, char *why, size_t why_len);

#endif /* WEFT_CORE_TOPO_H */
