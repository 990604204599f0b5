#!/bin/sh
# install-deps.sh - installs the Debian/Ubuntu packages Weft needs to build and test, when
# they are missing. As root it runs apt-get; otherwise it says what to install.
#   tools/install-deps.sh [--ci] [--slurm] [--rxe]
# --ci adds clang, for the second compiler build, fuzzing and sanitizers, and Python with
# NumPy and torch for tests/python; --slurm what the multi-node Slurm harness
# (tests/slurm) needs: Slurm's daemons and client, munge, PMIx, Open MPI and MPICH; --rxe what
# the soft-RoCE VM harness (tests/rxe) needs: qemu, initramfs tools, rdma-core's verbs
# providers and utilities, perftest.
set -eu
pkgs="make gcc pkg-config libsodium-dev libcmocka-dev libpmix-dev libibverbs-dev libucx-dev"
pkgs="$pkgs libhwloc-dev" # topology: NUMA, cores, PCI locality (core/topo.c)
pkgs="$pkgs ucx-utils iproute2 procps"
pkgs="$pkgs libjansson-dev gnuplot-nox" # weft-perf: links --compare reads JSON; --plot
for opt in "$@"; do
    case $opt in
        --ci) pkgs="$pkgs clang libclang-rt-14-dev"
              # the Python package's and weft.torch's cases (tests/python)
              pkgs="$pkgs python3 python3-venv python3-pip python3-wheel python3-setuptools"
              pkgs="$pkgs python3-numpy python3-torch python3-pytest" ;;
        --slurm) pkgs="$pkgs slurmctld slurmd slurm-client munge libpmix2 libpmix-dev util-linux"
                 pkgs="$pkgs iptables libnetfilter-queue-dev iputils-ping" # net_faults.sh
                 pkgs="$pkgs openmpi-bin libopenmpi-dev mpich libmpich-dev bc" ;;
        --rxe) pkgs="$pkgs qemu-system-x86 cpio kmod xz-utils iproute2 ibverbs-providers"
               pkgs="$pkgs ibverbs-utils perftest rdmacm-utils" ;;
    esac
done
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "weft: missing packages:$missing" >&2
    echo "weft: install them with: sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "weft: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing >&2 || {
    apt-get -o DPkg::Lock::Timeout=600 update -q >&2
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing >&2
}
