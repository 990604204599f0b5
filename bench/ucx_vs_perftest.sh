#!/usr/bin/env bash
# ucx_vs_perftest.sh - Weft over its UCX transport against UCX's own ucx_perftest, both on the
# same UCX_TLS, 2 processes on this host: weft-perf send_bw / send_lat against ucx_perftest
# tag_bw / tag_lat per size, with ratios and the goals (>= 90% of the bandwidth from 64 KiB,
# 8-byte latency <= 1.3x); then 2-rank allreduce busbw of Weft over UCX against Weft's own shm
# and tcp transports.
#   bench/ucx_vs_perftest.sh                      # tcp and posix,sysv,cma,self; 8 B .. 64 MiB
#   TLS_LIST="tcp" SIZES="8 64K 1M" BUILD=build-ucx bench/ucx_vs_perftest.sh
# Needs a build with UCX (libucx-dev) and ucx_perftest (Debian: ucx-utils).
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
TLS_LIST=${TLS_LIST:-"tcp posix,sysv,cma,self"}
SIZES=${SIZES:-"8 64 512 4K 32K 64K 256K 1M 4M 16M 64M"}
AR_MAX=${AR_MAX:-64M}  # largest allreduce size
PIN=${PIN:-1}          # pin the two processes to CPUs 0 and 1 (both tools alike)
TIMEOUT=${TIMEOUT:-60} # seconds any one Weft wait may take: a hang fails fast
PORT=${PORT:-13500}
OUT=$BUILD/bench
mkdir -p "$OUT"

command -v ucx_perftest >/dev/null || { echo "needs ucx_perftest (apt-get install ucx-utils)" >&2; exit 2; }
make -s -j"$(nproc)" BUILD="$BUILD" all >&2
"$BUILD/bin/weft-info" --version | grep -q 'ucx=yes' ||
    { echo "$BUILD has no UCX transport: install libucx-dev and rebuild" >&2; exit 2; }
[[ $(nproc) -ge 2 ]] || PIN=0

to_bytes() { numfmt --from=iec "$1"; }
# Iterations: enough bytes per size to be steady, bounded so a sweep takes a few minutes.
bw_iters() { local n=$(( (1 << 30) / $1 )); (( n > 20000 )) && n=20000; (( n < 20 )) && n=20; echo $n; }
lat_iters() { local n=$(( (256 << 20) / $1 )); (( n > 20000 )) && n=20000; (( n < 20 )) && n=20; echo $n; }

# weft-perf on 2 ranks over WEFT_TRANSPORT=$1; rank r pinned to CPU r when PIN=1.
weft() {
    local tp=$1; shift
    local pin='exec "$@"'
    [[ $PIN == 1 ]] && pin='exec taskset -c "$WEFT_RANK" "$@"'
    "$BUILD/bin/weft-run" -n 2 --transport "$tp" --timeout "$TIMEOUT" sh -c "$pin" sh \
        "$BUILD/bin/weft-perf" "$@"
}

# ucx_perftest server and client on this host; prints the client's CSV line.
ucxpt() {
    local port=$((PORT++)) sc=() cc=()
    [[ $PIN == 1 ]] && sc=(-c 0) && cc=(-c 1)
    timeout 120 ucx_perftest -p "$port" "${sc[@]}" "$@" >/dev/null 2>&1 &
    local srv=$!
    local line=""
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        sleep 0.3
        line=$(timeout 120 ucx_perftest 127.0.0.1 -p "$port" "${cc[@]}" "$@" -f -v 2>/dev/null |
               tail -n 1 | tr -d ' ') && [[ $line == [0-9]* ]] && break
        line=""
    done
    wait "$srv" 2>/dev/null || true
    echo "$line"
}

status=0
for tls in $TLS_LIST; do
    export UCX_TLS=$tls
    csv=$OUT/ucx-p2p-${tls//,/_}.csv
    echo "size,weft_bw,ucx_bw,weft_lat,ucx_lat" >"$csv"
    echo "== UCX_TLS=$tls" >&2
    for s in $SIZES; do
        b=$(to_bytes "$s")
        ni=$(bw_iters "$b"); nl=$(lat_iters "$b")
        wbw=$(weft ucx send_bw -s "$b" -n "$ni" --csv | awk -F, '$1 == "send_bw" { print $5 }')
        wlat=$(weft ucx send_lat -s "$b" -n "$nl" --csv | awk -F, '$1 == "send_lat" { print $6 }')
        # ucx_perftest CSV: iterations,50.0_percentile_lat,avg_lat,overall_lat,avg_bw,overall_bw,...
        ubw=$(ucxpt -t tag_bw -s "$b" -n "$ni" -w $((ni / 10 + 1)) | awk -F, '{ print $6 }')
        ulat=$(ucxpt -t tag_lat -s "$b" -n "$nl" -w $((nl / 10 + 1)) | awk -F, '{ print $2 }')
        echo "$b,${wbw:-0},${ubw:-0},${wlat:-0},${ulat:-0}" >>"$csv"
        echo "   $s: weft $wbw MB/s $wlat us, ucx_perftest $ubw MB/s $ulat us" >&2
    done
    echo
    echo "UCX_TLS=$tls: weft-perf over UCX vs ucx_perftest (MB/s = 2^20 B/s; latency: median" \
         "of half round trips, us)"
    awk -F, 'NR > 1 {
        br = $3 > 0 ? $2 / $3 : 0; lr = $5 > 0 ? $4 / $5 : 0
        printf "%10d %12.1f %12.1f %7.2f %10.2f %10.2f %7.2f\n", $1, $2, $3, br, $4, $5, lr
        if ($1 >= 65536 && (min < 0 || br < min)) { min = br; mins = $1 }
        if ($1 == 8) lat = lr
    }
    BEGIN { min = -1
        printf "%10s %12s %12s %7s %10s %10s %7s\n", "size(B)", "weft BW", "ucx BW",
               "ratio", "weft lat", "ucx lat", "ratio" }
    END {
        if (min >= 0) printf "bandwidth >= 90%% of ucx_perftest from 64 KiB: %s (min %.2f at %d)\n",
                             (min >= 0.9 ? "yes" : "no"), min, mins
        if (lat != "") printf "8 B latency <= 1.3x ucx_perftest: %s (%.2f)\n",
                              (lat <= 1.3 ? "yes" : "no"), lat
    }' "$csv"
done

# What a weft_send/weft_recv pair costs without UCX: the same 8-byte ping-pong over Weft's own
# shared memory, for reading the latency ratio.
wshm=$(weft shm send_lat -s 8 -n 20000 --csv | awk -F, '$1 == "send_lat" { print $6 }')
echo
echo "for reference: weft-perf send_lat 8 B over Weft's own shm transport: $wshm us (median)"

# Allreduce busbw at 2 ranks: Weft over UCX (each UCX_TLS) against Weft's own shm and tcp.
echo
echo "allreduce, 2 ranks, float32 sum, out-of-place busbw (GB/s)"
cols=() files=()
for run in $(for t in $TLS_LIST; do echo "ucx:$t"; done) weft:shm weft:tcp; do
    tp=${run%%:*} tls=${run#*:}
    f=$OUT/ucx-ar-${run//[:,]/_}.csv
    files+=("$f")
    if [[ $tp == weft ]]; then
        weft "$tls" allreduce -b 8 -e "$AR_MAX" -f 8 -n 50 -w 5 --csv >"$f" || status=1
        cols+=("weft $tls")
    else
        UCX_TLS=$tls weft ucx allreduce -b 8 -e "$AR_MAX" -f 8 -n 50 -w 5 --csv >"$f" || status=1
        cols+=("ucx $tls")
    fi
done
printf "%10s" "size(B)"; for c in "${cols[@]}"; do printf " %22s" "$c"; done; echo
awk -F, -v ncol=${#cols[@]} '
    FNR == 1 { file++ }
    $1 == "allreduce" { size[$2] = 1; bw[file, $2] = $9; if ($10 > 0 || $14 > 0) wrong = 1 }
    END {
        n = 0; for (s in size) sizes[++n] = s + 0
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
            if (sizes[j] < sizes[i]) { t = sizes[i]; sizes[i] = sizes[j]; sizes[j] = t }
        for (i = 1; i <= n; i++) {
            printf "%10d", sizes[i]
            for (f = 1; f <= ncol; f++) printf " %22.3f", bw[f, sizes[i]]
            printf "\n"
        }
        if (wrong) { print "weft-perf reported wrong elements: FAILED"; exit 1 }
    }' "${files[@]}" || status=1
exit $status
