#!/usr/bin/env bash
# allreduce_vs_mpi.sh - runs weft-perf allreduce and the same sweep of Open MPI's
# MPI_Allreduce (shared memory) on this host, and prints them side by side with the goals.
set -euo pipefail

cd "$(dirname "$0")/.."
NP=${NP:-2}
MAXBYTES=${MAXBYTES:-256M}
BUILD=${BUILD:-build}
TIMEOUT=${TIMEOUT:-60} # seconds any one Weft wait may take: a hang fails fast
OUT=$BUILD/bench
mkdir -p "$OUT"

echo "== building weft and the MPI benchmark" >&2
make -s -j"$(nproc)" BUILD="$BUILD" all >&2
mpicc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
    -Wmissing-prototypes -o "$OUT/mpi_allreduce" bench/mpi_allreduce.c

# Size ranges with their own iteration counts: many for the microsecond sizes (noise), few
# for the 100 MB ones (time). Both sides run exactly the same ranges.
RANGES=("8 64K 1000 100" "128K 4M 100 10" "8M $MAXBYTES 10 3")

to_bytes() { numfmt --from=iec "$1"; }

: >"$OUT/weft.csv"
: >"$OUT/mpi.csv"
failed=0
for r in "${RANGES[@]}"; do
    read -r lo hi iters warm <<<"$r"
    [ "$(to_bytes "$lo")" -le "$(to_bytes "$MAXBYTES")" ] || continue
    [ "$(to_bytes "$hi")" -le "$(to_bytes "$MAXBYTES")" ] || hi=$MAXBYTES
    echo "== weft $lo..$hi ($iters iterations)" >&2
    if ! "$BUILD/bin/weft-run" -n "$NP" --timeout "$TIMEOUT" "$BUILD/bin/weft-perf" allreduce \
        -b "$lo" -e "$hi" -f 2 -d float32 -n "$iters" -w "$warm" --csv >>"$OUT/weft.csv"; then
        echo "== weft-perf failed in $lo..$hi: the table below stops there" >&2
        failed=1
    fi
    echo "== Open MPI $lo..$hi ($iters iterations)" >&2
    mpirun --allow-run-as-root --oversubscribe --mca btl self,vader -n "$NP" \
        "$OUT/mpi_allreduce" -b "$lo" -e "$hi" -f 2 -n "$iters" -w "$warm" >>"$OUT/mpi.csv"
done

# Join on size: weft's out-of-place columns against MPI's (out-of-place too).
awk -F, '
    { file = FILENAME == ARGV[1] ? 1 : 2 }
    $1 == "collective" || $1 == "size" { next }
    file == 1 {
        sizes[++n] = $2; wt[$2] = $7; wb[$2] = $9
        if ($10 != "" && $10 > 0) wrong += $10
        if ($14 != "" && $14 > 0) wrong += $14
        next
    }
    { mt[$1] = $4; mb[$1] = $6 }
    END {
        printf "%12s %12s %12s %8s %12s %12s %8s\n", "size(B)", "weft busbw", "MPI busbw",
               "ratio", "weft us", "MPI us", "t ratio"
        minr = -1
        for (i = 1; i <= n; i++) {
            s = sizes[i]
            if (!(s in mt)) continue
            br = mb[s] > 0 ? wb[s] / mb[s] : 0
            tr = mt[s] > 0 ? wt[s] / mt[s] : 0
            printf "%12d %12.3f %12.3f %8.2f %12.2f %12.2f %8.2f\n", s, wb[s], mb[s], br,
                   wt[s], mt[s], tr
            if (s >= 65536 && (minr < 0 || br < minr)) { minr = br; mins = s }
            if (s == 8) lat = tr
        }
        if (minr < 0) print "busbw >= MPI from 64 KiB: n/a (no sizes >= 64 KiB)"
        else printf "busbw >= MPI from 64 KiB: %s (min ratio %.2f at size %d)\n",
                    (minr >= 1.0 ? "yes" : "no"), minr, mins
        if (lat == "") print "8 B latency ratio: n/a (goal <= 1.5)"
        else printf "8 B latency ratio: %.2f (goal <= 1.5)\n", lat
        if (wrong > 0) { printf "weft reported %d wrong elements: FAILED\n", wrong; exit 1 }
    }' "$OUT/weft.csv" "$OUT/mpi.csv" || failed=1
exit "$failed"
