#!/usr/bin/env bash
# coll_vs_mpi.sh - Weft against Open MPI and MPICH (Debian's) on this host, shared memory:
# allreduce, allgather, reduce_scatter and broadcast at 2, 3 and 4 ranks, float32 (sum),
# medians of ROUNDS interleaved rounds (Weft, Open MPI, MPICH, Weft, ...). Prints per size the
# three busbw, Weft / the better MPI, and the cost model's plan (algorithm, predicted time)
# beside Weft's measured time; 8 B rows compare times (latency).
#   bench/coll_vs_mpi.sh                       # NPS="2 3 4", sizes 8 B and 64 KiB .. 16 MiB
#   NPS=2 COLLS=broadcast ROUNDS=5 MAXBYTES=256M bench/coll_vs_mpi.sh
#   TABLE_ONLY=1 bench/coll_vs_mpi.sh          # the table again from the last run's files
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
NPS=${NPS:-2 3 4}
COLLS=${COLLS:-allreduce allgather reduce_scatter broadcast}
ROUNDS=${ROUNDS:-3}
MAXBYTES=${MAXBYTES:-16M}
ITERS=${ITERS:-20}          # from 4 MiB
MID_ITERS=${MID_ITERS:-100} # 1 MiB
SMALL_ITERS=${SMALL_ITERS:-400} # 64 and 256 KiB
LAT_ITERS=${LAT_ITERS:-1000}
OUT=$BUILD/bench/coll_vs_mpi
mkdir -p "$OUT"
# TABLE_ONLY=1 prints the table of the rounds already in $OUT without running anything.
if [[ ${TABLE_ONLY:-0} != 1 ]]; then
    rm -f "$OUT"/*.[0-9]*
    make -s -j2 BUILD="$BUILD" all >&2
    mpicc.openmpi -O2 -o "$BUILD/bench/mpi_coll_ompi" bench/mpi_coll.c
    mpicc.mpich -O2 -o "$BUILD/bench/mpi_coll_mpich" bench/mpi_coll.c
fi

max=$(numfmt --from=iec "$MAXBYTES")
SIZES=(8)
for ((s = 65536; s <= max; s *= 4)); do SIZES+=("$s"); done
# Timed iterations by size, the same for every library: a 64 KiB call takes ~10 us, and 20 of
# them are mostly the skew of the ranks leaving the barrier before the loop.
BANDS=("8 8 $LAT_ITERS" "64K 256K $SMALL_ITERS" "1M 1M $MID_ITERS" "4M $MAXBYTES $ITERS")

# weft NP COLL -> "size time_us busbw algo predicted_us" lines
weft_run() {
    local np=$1 coll=$2 lo hi n
    for range in "${BANDS[@]}"; do
        read -r lo hi n <<<"$range"
        (( $(numfmt --from=iec "$lo") <= max )) || continue
        (( $(numfmt --from=iec "$hi") <= max )) || hi=$MAXBYTES
        "$BUILD/bin/weft-run" -n "$np" "$BUILD/bin/weft-perf" "$coll" -b "$lo" -e "$hi" -f 4 \
            -n "$n" -w $((n / 5 + 1)) -c 0 --verbose
    done | awk '
        /^ +[0-9]/ { size = $1; t = $6; bw = $8; next }
        /^#   plan:/ { gsub(",", ""); print size, t, bw, $3, $7 }'
}
mpi_run() {
    local np=$1 coll=$2 lib=$3
    if [[ $lib == ompi ]]; then
        set -- mpirun.openmpi --allow-run-as-root --oversubscribe --mca btl self,vader -n "$np" \
            "$BUILD/bench/mpi_coll_ompi"
    else
        set -- mpiexec.mpich -n "$np" "$BUILD/bench/mpi_coll_mpich"
    fi
    local range lo hi n size
    for range in "${BANDS[@]}"; do
        read -r lo hi n <<<"$range"
        lo=$(numfmt --from=iec "$lo") hi=$(numfmt --from=iec "$hi")
        local sizes=()
        for size in "${SIZES[@]}"; do
            (( size >= lo && size <= hi )) && sizes+=("$size")
        done
        if (( ${#sizes[@]} )); then "$@" "$coll" "$n" "${sizes[@]}"; fi
    done | tr , ' '
}

for np in $NPS; do
    [[ ${TABLE_ONLY:-0} != 1 ]] || break
    for coll in $COLLS; do
        for ((r = 1; r <= ROUNDS; r++)); do
            echo "== $np ranks, $coll, round $r" >&2
            # a run that fails (Open MPI's vader has crashed here under load) leaves its
            # rows out of that round; the medians take the rounds that ran
            for side in weft ompi mpich; do
                if [[ $side == weft ]]; then
                    weft_run "$np" "$coll" >"$OUT/$side.$np.$coll.$r" || failed=1
                else
                    mpi_run "$np" "$coll" "$side" >"$OUT/$side.$np.$coll.$r" || failed=1
                fi
                [[ ${failed:-0} == 0 ]] || echo "== $side failed: $np ranks, $coll, round $r" >&2
                failed=0
            done
        done
    done
done

# Medians over rounds, then the table.
median() { sort -g | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : "nan" }'; }
printf "%-15s %3s %10s %10s %10s %10s %7s %7s %-18s %10s %10s\n" collective np size "weft GB/s" \
    "ompi GB/s" "mpich GB/s" "w/best" "t w/best" algorithm "pred us" "meas us"
for np in $NPS; do
    for coll in $COLLS; do
        for s in "${SIZES[@]}"; do
            # weft-perf rounds allgather and reduce_scatter sizes down to whole elements per
            # rank (65532 B at 3 ranks for 64 KiB): rows within 1% are the same size
            col() {
                cat "$OUT/$1.$np.$coll".* 2>/dev/null |
                    awk -v s="$s" -v c="$2" '$1 >= s * 0.99 && $1 <= s * 1.01 { print $c }' | median
            }
            wt=$(col weft 2) wb=$(col weft 3) ot=$(col ompi 2) ob=$(col ompi 3)
            mt=$(col mpich 2) mb=$(col mpich 3) pred=$(col weft 5)
            algo=$(cat "$OUT/weft.$np.$coll".* |
                awk -v s="$s" '$1 >= s * 0.99 && $1 <= s * 1.01 { print $4 }' | sort |
                uniq -c | sort -rn | awk 'NR == 1 { print $2 }')
            awk -v c="$coll" -v np="$np" -v s="$s" -v wt="$wt" -v wb="$wb" -v ot="$ot" \
                -v ob="$ob" -v mt="$mt" -v mb="$mb" -v a="$algo" -v p="$pred" 'BEGIN {
                best = ob > mb ? ob : mb; bt = ot < mt ? ot : mt
                printf "%-15s %3d %10d %10.3f %10.3f %10.3f %7.2f %7.2f %-18s %10.1f %10.1f\n",
                    c, np, s, wb, ob, mb, (best > 0 ? wb / best : 0), (bt > 0 ? wt / bt : 0), a, p, wt
            }'
        done
    done
done
