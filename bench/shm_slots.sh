#!/usr/bin/env bash
# shm_slots.sh - the shared-memory queue's geometry (WEFT_SHM_SLOTS x WEFT_SHM_SLOT_SIZE) per
# collective and rank count on this host: 8 B time (us) and busbw (GB/s) from 64 KiB, medians
# of ROUNDS interleaved rounds, one column per geometry, and the gain of the last over the first (above 1: the last is
# faster).
#   bench/shm_slots.sh [BUILD]
#   NPS="3 4" GEOMETRIES="8x64K 128x4K 256x2K" COLLS=broadcast ROUNDS=5 bench/shm_slots.sh
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
BUILD=${1:-build}
NPS=${NPS:-2 3 4}
GEOMETRIES=${GEOMETRIES:-8x64K 128x4K}
COLLS=${COLLS:-allreduce allgather reduce_scatter broadcast}
ROUNDS=${ROUNDS:-3}
# size bands and their timed iterations: each run takes about 0.1-0.5 s
BANDS=("8 8 20000" "64K 256K 400" "1M 1M 100" "4M 16M 20")
make -s -j"$(nproc)" BUILD="$BUILD" all >&2 || exit 1

# NP GEOMETRY COLL -> "size value" lines (8 B: time in us, else busbw in GB/s)
measure() {
    local lo hi n band
    for band in "${BANDS[@]}"; do
        read -r lo hi n <<<"$band"
        WEFT_TRANSPORT=shm WEFT_SHM_SLOTS=${2%x*} WEFT_SHM_SLOT_SIZE=${2#*x} \
            "$BUILD/bin/weft-run" -n "$1" "$BUILD/bin/weft-perf" "$3" -b "$lo" -e "$hi" -f 4 \
            -n "$n" -w $((n / 5)) -c 0 --csv 2>/dev/null |
            awk -F, '$2 ~ /^[0-9]+$/ { print $2, ($2 <= 8 ? $7 : $9) }'
    done
}

raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
for ((r = 1; r <= ROUNDS; r++)); do
    for np in $NPS; do
        for coll in $COLLS; do
            for geo in $GEOMETRIES; do
                echo "== round $r, $np ranks, $coll, $geo" >&2
                measure "$np" "$geo" "$coll" | sed "s/^/$np $coll $geo /" >>"$raw"
            done
        done
    done
done
# rows: np coll geometry size value
awk -v geos="$GEOMETRIES" '
    { key = $1 " " $2 " " $4; v[key, $3] = v[key, $3] " " $5; if (!(key in seen)) { seen[key] = 1; order[++n] = key } }
    function median(list,   a, k, i, j, t) {
        k = split(list, a, " ")
        for (i = 2; i <= k; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
        return k ? a[int((k + 1) / 2)] : 0
    }
    END {
        ng = split(geos, g, " ")
        printf "%-15s %3s %9s", "collective", "np", "size"
        for (i = 1; i <= ng; i++) printf " %10s", g[i]
        printf " %8s\n", "gain"
        for (r = 1; r <= n; r++) {
            split(order[r], f, " ")
            printf "%-15s %3s %9s", f[2], f[1], f[3] == 8 ? "8 (us)" : f[3]
            for (i = 1; i <= ng; i++) { m[i] = median(v[order[r], g[i]]); printf " %10.2f", m[i] }
            ratio = m[1] > 0 ? m[ng] / m[1] : 0
            if (f[3] == 8 && ratio > 0) ratio = 1 / ratio # time: below 1 would be worse
            printf " %8.2f\n", ratio
        }
    }' "$raw"
