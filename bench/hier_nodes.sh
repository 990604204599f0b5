#!/usr/bin/env bash
# hier_nodes.sh - allreduce across namespace nodes (tests/slurm/cluster.sh, 4 nodes x 2 CPUs,
# veth links, tcp), 2 ranks per node, block and cyclic placement: Weft's two-level allreduce
# (WEFT_ALGO=hier), Weft's ring ordered by host (WEFT_ALGO=ring) and Open MPI's MPI_Allreduce
# (srun --mpi=pmix, btl self,vader,tcp), on 2 and 4 nodes. ROUNDS interleaved rounds, medians.
#   bench/hier_nodes.sh      (root; env: BUILD=build ROUNDS=3 SIZES="64K 1M 16M" NODES="2 4")
# Every node is a namespace of this one machine: the "network" is memory copies through the
# kernel, and all ranks share this machine's CPUs; see docs/topology.md for what that means.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-3}
SIZES=${SIZES:-64K 1M 16M}
NODES=${NODES:-2 4}
OUT=$BUILD/bench/hier
CL=tests/slurm/cluster.sh
export WFT_CLUSTER_DIR=${WFT_CLUSTER_DIR:-/tmp/weft-bench-hier} \
    WFT_CLUSTER_SUBNET=${WFT_CLUSTER_SUBNET:-10.213.50} WFT_CLUSTER_PREFIX=${WFT_CLUSTER_PREFIX:-wfh}
[ "$(id -u)" = 0 ] || { echo "hier_nodes.sh: needs root (network namespaces)" >&2; exit 1; }
mkdir -p "$OUT"
make -s -j2 BUILD="$BUILD" all >&2
mpicc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -o "$OUT/mpi_allreduce" bench/mpi_allreduce.c
BIN=$(cd "$BUILD" && pwd)
trap '"$CL" down >/dev/null 2>&1 || true' EXIT
trap 'exit 130' INT TERM HUP
"$CL" up --nodes 4 --cpus 2 >/dev/null
eval "$("$CL" env)"
for v in $(env | sed -n 's/^\(\(SLURM\|OMPI\|PMIX\|PMI\)_[A-Za-z0-9_]*\)=.*/\1/p'); do
    [ "$v" = SLURM_CONF ] || unset "$v"
done
unset WEFT_RANK WEFT_NRANKS WEFT_LOCAL_RANK WEFT_ROOT WEFT_SECRET WEFT_ALGO
export WEFT_TIMEOUT=120
to_bytes() { numfmt --from=iec "$1"; }

# one IMPL N DIST SIZE: busbw (GB/s) of one allreduce size, float32
one() {
    local impl=$1 n=$2 dist=$3 size=$4 iters=20 warm=3 f
    (( $(to_bytes "$size") >= 8 * 1048576 )) && iters=5 warm=1
    f=$OUT/$impl-$n-$dist-$size.csv
    case $impl in
        hier|ring)
            WEFT_ALGO=$impl timeout 300 srun -N "$n" -n $((2 * n)) --ntasks-per-node=2 \
                --distribution="$dist" "$BIN/bin/weft-perf" allreduce -b "$size" -e "$size" \
                -d float32 -n $iters -w $warm --csv >"$f" 2>"$f.err" || { echo nan; return; }
            awk -F, '$1 != "collective" && NF > 9 { if ($10 > 0) print "wrong"; else print $9 }' "$f" | tail -1 ;;
        ompi)
            OMPI_MCA_btl=self,vader,tcp OMPI_MCA_pml=ob1 timeout 300 srun --mpi=pmix -N "$n" \
                -n $((2 * n)) --ntasks-per-node=2 --distribution="$dist" "$OUT/mpi_allreduce" \
                -b "$size" -e "$size" -n $iters -w $warm >"$f" 2>"$f.err" || { echo nan; return; }
            awk -F, '$1 != "size" { print $6 }' "$f" | tail -1 ;;
    esac
}

declare -A res
for round in $(seq "$ROUNDS"); do
    for n in $NODES; do
        for dist in block cyclic; do
            for size in $SIZES; do
                for impl in hier ring ompi; do
                    v=$(one $impl "$n" $dist "$size")
                    res[$impl,$n,$dist,$size]+="$v "
                    echo "round $round: $impl $n nodes $dist $size: $v GB/s" >&2
                done
            done
        done
    done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : "nan") }'; }
printf "%-6s %-7s %6s %10s %10s %10s %10s %10s\n" nodes place size hier ring ompi hier/ring hier/ompi
for n in $NODES; do
    for dist in block cyclic; do
        for size in $SIZES; do
            h=$(median <<<"${res[hier,$n,$dist,$size]}")
            r=$(median <<<"${res[ring,$n,$dist,$size]}")
            o=$(median <<<"${res[ompi,$n,$dist,$size]}")
            printf "%-6s %-7s %6s %10s %10s %10s %10s %10s\n" "$n" "$dist" "$size" "$h" "$r" "$o" \
                "$(awk -v a="$h" -v b="$r" 'BEGIN { printf (b > 0 ? "%.2f" : "-"), a / b }')" \
                "$(awk -v a="$h" -v b="$o" 'BEGIN { printf (b > 0 ? "%.2f" : "-"), a / b }')"
        done
    done
done
echo "busbw in GB/s, float32 sum, medians of $ROUNDS interleaved rounds; 2 ranks per node"
