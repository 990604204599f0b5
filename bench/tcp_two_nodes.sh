#!/usr/bin/env bash
# tcp_two_nodes.sh - Weft's TCP allreduce between two nodes (network namespaces joined by veth,
# tests/slurm/cluster.sh) against iperf3 and Open MPI's MPI_Allreduce on the same link, in one run.
#   bench/tcp_two_nodes.sh        (root; MAXBYTES=256M BUILD=build; a few minutes on 2 cores)
# Prints per size weft's and MPI's bus bandwidth and their ratio, then weft at the largest size
# as a share of what iperf3 moves over the same veth link.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
MAXBYTES=${MAXBYTES:-256M}
TIMEOUT=${TIMEOUT:-120} # WEFT_TIMEOUT: a hang fails fast
OUT=$BUILD/bench
CL=tests/slurm/cluster.sh
# A cluster of its own, so a test run's cluster is never met or torn down.
export WFT_CLUSTER_DIR=${WFT_CLUSTER_DIR:-/tmp/weft-bench} WFT_CLUSTER_SUBNET=${WFT_CLUSTER_SUBNET:-10.213.49}
export WFT_CLUSTER_PREFIX=${WFT_CLUSTER_PREFIX:-wfb}
[ "$(id -u)" = 0 ] || { echo "tcp_two_nodes.sh: needs root (network namespaces)" >&2; exit 1; }
mkdir -p "$OUT"

echo "== packages, weft, the MPI benchmark" >&2
tools/install-deps.sh --slurm
command -v iperf3 >/dev/null || DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends iperf3 >&2
make -s -j"$(nproc)" BUILD="$BUILD" all >&2
mpicc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
    -Wmissing-prototypes -o "$OUT/mpi_allreduce" bench/mpi_allreduce.c

# Job steps see the build by absolute path (the filesystem is shared with the nodes).
BIN=$(cd "$BUILD" && pwd)
trap '"$CL" down >/dev/null 2>&1 || true' EXIT
trap 'exit 130' INT TERM HUP
"$CL" up --nodes 2 --cpus 2 >/dev/null
eval "$("$CL" env)"
for v in $(env | sed -n 's/^\(\(SLURM\|OMPI\|PMIX\|PMI\)_[A-Za-z0-9_]*\)=.*/\1/p'); do
    [ "$v" = SLURM_CONF ] || unset "$v"
done
unset WEFT_RANK WEFT_NRANKS WEFT_LOCAL_RANK WEFT_ROOT WEFT_SECRET

# iperf3 BPS_FIELD [ARGS...]: one 5 s run from n1 to n2, printing the bits per second that
# python's json path BPS_FIELD names (the server may need a moment to listen: retry).
iperf() {
    local field=$1 srv out=""; shift
    "$CL" exec n2 timeout 30 iperf3 -s -1 >/dev/null 2>&1 &
    srv=$!
    for _ in $(seq 50); do
        out=$("$CL" exec n1 iperf3 -c n2 -t 5 -J "$@" 2>/dev/null | python3 -c "
import json, sys
e = json.load(sys.stdin)['end']
print($field)" 2>/dev/null) && [ -n "$out" ] && break
        sleep 0.2
    done
    wait "$srv" 2>/dev/null || true
    [ -n "$out" ] || { echo "iperf3 $* gave no result" >&2; exit 1; }
    echo "$out"
}
# A 2-rank allreduce sends S bytes each way at once, and its busbw is the rate of one
# direction: the like-for-like figure is iperf3 --bidir per direction. Both are printed.
echo "== iperf3 n1 -> n2 over the veth link: one stream, then both directions at once" >&2
iperf_bps=$(iperf "e['sum_received']['bits_per_second']")
iperf_bidir_bps=$(iperf "(e['sum_received']['bits_per_second'] + \
    e['sum_received_bidir_reverse']['bits_per_second']) / 2" --bidir)

# Same ranges and iteration counts on both sides, as bench/allreduce_vs_mpi.sh.
RANGES=("8 64K 1000 100" "128K 4M 100 10" "8M $MAXBYTES 10 3")
to_bytes() { numfmt --from=iec "$1"; }
: >"$OUT/tcp2-weft.csv"
: >"$OUT/tcp2-mpi.csv"
failed=0
for r in "${RANGES[@]}"; do
    read -r lo hi iters warm <<<"$r"
    [ "$(to_bytes "$lo")" -le "$(to_bytes "$MAXBYTES")" ] || continue
    [ "$(to_bytes "$hi")" -le "$(to_bytes "$MAXBYTES")" ] || hi=$MAXBYTES
    echo "== weft (srun, 1 rank per node, tcp) $lo..$hi" >&2
    if ! WEFT_TRANSPORT=tcp WEFT_TIMEOUT=$TIMEOUT srun -N 2 -n 2 --ntasks-per-node=1 \
        "$BIN/bin/weft-perf" allreduce -b "$lo" -e "$hi" -f 2 -d float32 -n "$iters" \
        -w "$warm" --csv >>"$OUT/tcp2-weft.csv"; then
        echo "== weft-perf failed in $lo..$hi" >&2
        failed=1
    fi
    echo "== Open MPI (srun --mpi=pmix, btl tcp) $lo..$hi" >&2
    OMPI_MCA_btl=self,tcp OMPI_MCA_pml=ob1 srun --mpi=pmix -N 2 -n 2 --ntasks-per-node=1 \
        "$BIN/bench/mpi_allreduce" -b "$lo" -e "$hi" -f 2 -n "$iters" -w "$warm" \
        >>"$OUT/tcp2-mpi.csv" || failed=1
done

awk -F, -v bps="$iperf_bps" -v bidir="$iperf_bidir_bps" -v maxb="$(to_bytes "$MAXBYTES")" '
    { file = FILENAME == ARGV[1] ? 1 : 2 }
    $1 == "collective" || $1 == "size" { next }
    file == 1 {
        sizes[++n] = $2; wb[$2] = $9
        if ($10 > 0 || $14 > 0) wrong += $10 + $14
        next
    }
    { mb[$1] = $6 }
    END {
        printf "%12s %12s %12s %8s\n", "size(B)", "weft busbw", "MPI busbw", "ratio"
        for (i = 1; i <= n; i++) {
            s = sizes[i]
            if (!(s in mb)) continue
            ratio = mb[s] > 0 ? wb[s] / mb[s] : 0
            printf "%12d %12.3f %12.3f %8.2f\n", s, wb[s], mb[s], ratio
        }
        printf "busbw in GB/s (1e9 B/s), 2 ranks on 2 nodes over one veth link\n"
        printf "iperf3 n1 -> n2 (1 stream): %.3f GB/s\n", bps / 8e9
        printf "iperf3 --bidir, per direction: %.3f GB/s\n", bidir / 8e9
        if (maxb in wb) {
            printf "weft at %d MiB: %.0f%% of iperf3 one stream\n", maxb / 1048576,
                   100 * wb[maxb] / (bps / 8e9)
            printf "weft at %d MiB: %.0f%% of iperf3 --bidir per direction\n", maxb / 1048576,
                   100 * wb[maxb] / (bidir / 8e9)
        }
        if (wrong > 0) { printf "weft reported %d wrong elements: FAILED\n", wrong; exit 1 }
    }' "$OUT/tcp2-weft.csv" "$OUT/tcp2-mpi.csv" || failed=1
exit "$failed"
