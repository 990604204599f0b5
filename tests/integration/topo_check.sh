#!/usr/bin/env bash
# topo_check.sh BUILD - weft-info --topo against /sys: NUMA nodes, cores (distinct package and
# core ids) and PUs (online CPUs) agree; skipped (77) in a build without hwloc.
set -u
BIN=${1:-build}/bin
out=$("$BIN/weft-info" --topo) || { echo "weft-info --topo failed"; exit 1; }
echo "$out"
if grep -q 'not built with hwloc' <<<"$out"; then
    echo "skip: this build has no hwloc (weft-info --topo says so)"
    exit 77
fi
field() { sed -n "s/^  $1: \([0-9]*\)\$/\1/p" <<<"$out"; }
numa=$(ls -d /sys/devices/system/node/node[0-9]* 2>/dev/null | wc -l)
(( numa == 0 )) && numa=1 # a kernel without NUMA: hwloc reports one node
cores=$(for c in /sys/devices/system/cpu/cpu[0-9]*/topology; do
            echo "$(cat "$c/physical_package_id") $(cat "$c/core_id")"
        done | sort -u | wc -l)
pus=$(ls -d /sys/devices/system/cpu/cpu[0-9]*/topology | wc -l)
bad=0 n=0
for f in "numa nodes:$numa" "cores:$cores" "pus:$pus"; do
    got=$(field "${f%%:*}")
    n=$((n + 1))
    if [[ $got == "${f#*:}" ]]; then
        echo "ok: ${f%%:*} $got"
    else
        echo "FAIL: ${f%%:*}: weft-info says '${got}', /sys says ${f#*:}"; bad=$((bad + 1))
    fi
done
# every NIC line names a device that exists in /sys/class/net or /sys/class/infiniband
while read -r _ name _; do
    n=$((n + 1))
    if [[ -e /sys/class/net/$name || -e /sys/class/infiniband/$name ]]; then
        echo "ok: nic $name exists"
    else
        echo "FAIL: nic $name is in no /sys/class"; bad=$((bad + 1))
    fi
done < <(grep '^  nic ' <<<"$out" | grep -v 'nic none')
echo "$((n - bad)) passed, $bad failed"
(( bad == 0 ))
