/*
 * topo.c - topology discovery through hwloc: NUMA nodes, cores, the PCI locality of NICs
 * and GPUs, each GPU paired with its closest NIC; and `weft-info --topo`'s report.
 */
#include "core/topo.h"

#include <pthread.h>
#include <string.h>

#include "core/config.h"
#include "core/error.h"

#ifdef WEFT_HAVE_HWLOC
#include <hwloc.h>

static hwloc_obj_t pci_parent(hwloc_obj_t o)
{
    while (o && o->type != HWLOC_OBJ_PCI_DEVICE)
        o = o->parent;
    return o;
}

/* Hops from a up to the first common ancestor with b, and from there down to b: two devices
 * behind one PCI switch are 2-4 hops apart, across a host bridge more, across NUMA nodes
 * more still. */
static int tree_hops(hwloc_obj_t a, hwloc_obj_t b)
{
    hwloc_obj_t up[128];
    int n = 0;
    for (hwloc_obj_t o = b; o && n < 128; o = o->parent)
        up[n++] = o;
    int i = 0;
    for (hwloc_obj_t o = a; o; o = o->parent, i++) {
        for (int j = 0; j < n; j++)
            if (up[j] == o)
                return i + j;
    }
    return 1 << 20;
}

static void fill_locality(hwloc_topology_t t, hwloc_obj_t o, struct weft_topo_dev *d)
{
    hwloc_obj_t pci = pci_parent(o);
    if (pci)
        snprintf(d->pci, sizeof(d->pci), "%04x:%02x:%02x.%x", pci->attr->pcidev.domain,
                 pci->attr->pcidev.bus, pci->attr->pcidev.dev, pci->attr->pcidev.func);
    hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(t, o);
    d->numa = -1;
    if (anc && anc->nodeset && hwloc_bitmap_weight(anc->nodeset) == 1)
        d->numa = hwloc_bitmap_first(anc->nodeset);
    if (anc && anc->cpuset)
        hwloc_bitmap_list_snprintf(d->cpus, sizeof(d->cpus), anc->cpuset);
}

/* The topology stays loaded until exit: hwloc then keeps its PCI plugin loaded, and with it
 * libpciaccess's cache of device names. Unloaded, that cache would be memory nothing points
 * to, which LeakSanitizer reports in every rank. */
static hwloc_topology_t volatile kept_topology; /* volatile: never read, but must be stored */

static weft_result_t discover(struct weft_topo *topo)
{
    memset(topo, 0, sizeof(*topo));
    hwloc_topology_t t;
    hwloc_obj_t objs[WEFT_TOPO_MAX_DEVS];
    if (hwloc_topology_init(&t) != 0)
        return WEFT_ERROR(WEFT_ERR_SYSTEM, "hwloc_topology_init failed: %m");
    hwloc_topology_set_io_types_filter(t, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
    if (hwloc_topology_load(t) != 0) {
        hwloc_topology_destroy(t);
        return WEFT_ERROR(WEFT_ERR_SYSTEM, "hwloc_topology_load failed: %m");
    }
    topo->have_hwloc = true;
    topo->numa_nodes = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
    topo->packages = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PACKAGE);
    topo->cores = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
    topo->pus = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);

    /* NICs: netdevs and verbs devices. GPUs: CUDA/NVML/DRM devices, or a display or 3D
     * controller on PCI with no such OS device (hwloc without its CUDA plugin). */
    for (hwloc_obj_t o = hwloc_get_next_osdev(t, NULL); o; o = hwloc_get_next_osdev(t, o)) {
        const hwloc_obj_osdev_type_t ty = o->attr->osdev.type;
        if (topo->ndevs == WEFT_TOPO_MAX_DEVS)
            break;
        struct weft_topo_dev *d = &topo->devs[topo->ndevs];
        if (ty == HWLOC_OBJ_OSDEV_NETWORK || ty == HWLOC_OBJ_OSDEV_OPENFABRICS) {
            d->kind = WEFT_TOPO_NIC;
            snprintf(d->name, sizeof(d->name), "%s%s", o->name,
                     ty == HWLOC_OBJ_OSDEV_OPENFABRICS ? " (verbs)" : "");
        } else if (ty == HWLOC_OBJ_OSDEV_COPROC || (ty == HWLOC_OBJ_OSDEV_GPU &&
                                                    strncmp(o->name, "card", 4) != 0)) {
            d->kind = WEFT_TOPO_GPU;
            snprintf(d->name, sizeof(d->name), "%s", o->name);
        } else {
            continue;
        }
        fill_locality(t, o, d);
        objs[topo->ndevs++] = o;
    }
    for (hwloc_obj_t o = hwloc_get_next_pcidev(t, NULL); o; o = hwloc_get_next_pcidev(t, o)) {
        if ((o->attr->pcidev.class_id >> 8) != 0x03 || topo->ndevs == WEFT_TOPO_MAX_DEVS)
            continue;
        bool named = false;
        for (int i = 0; i < topo->ndevs; i++)
            named |= topo->devs[i].kind == WEFT_TOPO_GPU && pci_parent(objs[i]) == o;
        if (named)
            continue;
        struct weft_topo_dev *d = &topo->devs[topo->ndevs];
        d->kind = WEFT_TOPO_GPU;
        fill_locality(t, o, d);
        char pci[sizeof(d->pci)];
        memcpy(pci, d->pci, sizeof(pci));
        snprintf(d->name, sizeof(d->name), "pci %s (%04x:%04x)", pci,
                 o->attr->pcidev.vendor_id, o->attr->pcidev.device_id);
        objs[topo->ndevs++] = o;
    }
    for (int g = 0; g < topo->ndevs; g++) {
        struct weft_topo_dev *d = &topo->devs[g];
        d->pair = -1;
        if (d->kind != WEFT_TOPO_GPU)
            continue;
        for (int n = 0; n < topo->ndevs; n++) {
            if (topo->devs[n].kind != WEFT_TOPO_NIC || !topo->devs[n].pci[0])
                continue;
            const int hops = tree_hops(objs[g], objs[n]);
            /* verbs devices before netdevs of the same port (same hops): RDMA is the path */
            if (d->pair < 0 || hops < d->pair_hops ||
                (hops == d->pair_hops && strstr(topo->devs[n].name, "(verbs)") &&
                 !strstr(topo->devs[d->pair].name, "(verbs)"))) {
                d->pair = n;
                d->pair_hops = hops;
            }
        }
    }
    kept_topology = t;
    return WEFT_OK;
}

/* One discovery per process (~50 ms), shared by every communicator and weft-info. */
static pthread_once_t discovered = PTHREAD_ONCE_INIT;
static struct weft_topo found;
static weft_result_t found_rc;
static char found_error[256];

static void discover_once(void)
{
    found_rc = discover(&found);
    if (found_rc != WEFT_OK)
        snprintf(found_error, sizeof(found_error), "%s", weft_last_error());
}

weft_result_t weft_topo_discover(struct weft_topo *topo)
{
    pthread_once(&discovered, discover_once);
    if (found_rc != WEFT_OK)
        return WEFT_ERROR(found_rc, "%s", found_error);
    *topo = found;
    return WEFT_OK;
}

static const char *hwloc_version_text(char *buf, size_t len)
{
    const unsigned v = hwloc_get_api_version();
    snprintf(buf, len, "hwloc %u.%u.%u", v >> 16, (v >> 8) & 0xff, v & 0xff);
    return buf;
}
#else
weft_result_t weft_topo_discover(struct weft_topo *topo)
{
    memset(topo, 0, sizeof(*topo));
    return WEFT_OK;
}

static const char *hwloc_version_text(char *buf, size_t len)
{
    snprintf(buf, len, "not built with hwloc");
    return buf;
}
#endif

void weft_topo_print(FILE *out)
{
    struct weft_topo topo;
    char ver[64];
    fprintf(out, "topology (%s):\n", hwloc_version_text(ver, sizeof(ver)));
    if (weft_topo_discover(&topo) != WEFT_OK) {
        fprintf(out, "  none: %s\n", weft_last_error());
        return;
    }
    if (!topo.have_hwloc) {
        fprintf(out, "  unknown: this build has no hwloc (libhwloc-dev); WEFT_BIND=auto binds "
                     "nothing, CPU lists still work\n");
        return;
    }
    fprintf(out, "  numa nodes: %d\n  packages: %d\n  cores: %d\n  pus: %d\n", topo.numa_nodes,
            topo.packages, topo.cores, topo.pus);
    int nics = 0, gpus = 0;
    for (int i = 0; i < topo.ndevs; i++) {
        const struct weft_topo_dev *d = &topo.devs[i];
        char numa[16];
        snprintf(numa, sizeof(numa), "%d", d->numa);
        fprintf(out, "  %s %-20s pci %-12s numa %-3s cpus %s\n",
                d->kind == WEFT_TOPO_NIC ? "nic" : "gpu", d->name, d->pci[0] ? d->pci : "-",
                d->numa >= 0 ? numa : "-", d->cpus[0] ? d->cpus : "-");
        *(d->kind == WEFT_TOPO_NIC ? &nics : &gpus) += 1;
    }
    if (!nics)
        fprintf(out, "  nic none with PCI locality\n");
    if (!gpus)
        fprintf(out, "  gpu none\n");
    for (int i = 0; i < topo.ndevs; i++) {
        const struct weft_topo_dev *d = &topo.devs[i];
        if (d->kind != WEFT_TOPO_GPU)
            continue;
        if (d->pair >= 0)
            fprintf(out, "  pair: gpu %s -> nic %s (%d hops)\n", d->name,
                    topo.devs[d->pair].name, d->pair_hops);
        else
            fprintf(out, "  pair: gpu %s -> no NIC with PCI locality\n", d->name);
    }
}
