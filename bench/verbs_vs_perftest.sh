#!/usr/bin/env bash
# verbs_vs_perftest.sh - Weft's verbs transport against perftest and Open MPI on the same
# soft-RoCE devices, in one boot of the test VM (tests/rxe/vm.sh): server on rxe0, client on
# rxe1, RoCE v2 GID $RXE_GID_INDEX.
#   - ib_write_bw -a  vs  weft-perf write_bw -a: BW average per size and the ratio
#   - a bandwidth control at 4 MiB: ib_write_bw alone, ib_write_bw beside a spinning process
#     (the load a polling rank puts on the VM), weft-perf write_bw, interleaved rounds
#   - ib_write_lat -a vs  weft-perf write_lat -a: t_typical per size and the ratio, then 8 B
#     in interleaved rounds with more iterations for the latency goal (medians)
#   - Open MPI (pml ucx over the rxe devices) MPI_Allreduce vs weft-perf allreduce, 2 ranks
#   - queue pairs per peer: ib_write_bw -q N vs weft-perf write_bw with WEFT_IB_QPS_PER_PEER=N
#     at $CTL_SIZE B, for N in $QPS_LIST, interleaved rounds (medians); an entry Nr is N rails
#     (WEFT_IB_RAILS=N: every rank on rxe0 and rxe1) against ib_write_bw -q N on one device
# SECTIONS picks the parts (default: all, in the order above).
# Goals (issue 4): bandwidth >= 95% of ib_write_bw from 64 KiB; 8 B latency <= 1.2x
# ib_write_lat. Soft-RoCE is CPU-bound and slow (tens of MB/s): read the ratios, not the
# absolute figures, and keep the iteration counts modest (the whole run takes < 8 minutes).
#   bench/verbs_vs_perftest.sh [BUILD]           # default build; needs root (the VM)
#   BW_ITERS=50 LAT_ITERS=20 bench/verbs_vs_perftest.sh build
#   SECTIONS=queue_pairs QPS_LIST="1 2 4" bench/verbs_vs_perftest.sh
# Tables and raw outputs land in BUILD/bench/verbs/.
set -uo pipefail

BW_ITERS=${BW_ITERS:-16}     # iterations per size, both bandwidth tools (-n)
LAT_ITERS=${LAT_ITERS:-10}   # iterations per size, both latency sweeps
LAT8_ITERS=${LAT8_ITERS:-2000} # iterations of each 8 B latency round
LAT8_ROUNDS=${LAT8_ROUNDS:-5} # interleaved 8 B rounds of each tool
CTL_SIZE=${CTL_SIZE:-4194304} # bandwidth control: message size
CTL_ITERS=${CTL_ITERS:-32}   # bandwidth control: iterations per round
AR_MAX=${AR_MAX:-1M}         # largest allreduce size
AR_ITERS=${AR_ITERS:-20}
TIMEOUT=${TIMEOUT:-150}      # seconds any one command may take inside the VM
MPI_TIMEOUT=${MPI_TIMEOUT:-45} # seconds for the Open MPI run (it hangs when UD does not work)
QPS_LIST=${QPS_LIST:-1 2 4 2r} # queue pairs per peer compared (Nr: N rails)
QPS_ROUNDS=${QPS_ROUNDS:-3}  # interleaved rounds of each
SECTIONS=${SECTIONS:-bandwidth control latency allreduce queue_pairs}
PORT=${PORT:-18800}          # perftest's TCP port for the out-of-band exchange

# ---------------------------------------------------------------- guest side
# perftest pair: server on rxe0 in the background, client on rxe1 (retried until the server
# listens); the client's output goes to $1.
perftest_pair() {
    local out=$1 tool=$2; shift 2
    local port=$((PORT++)) g=$RXE_GID_INDEX
    timeout "$TIMEOUT" "$tool" -d "$RXE_DEV0" -i 1 -x "$g" -p "$port" -F "$@" \
        >"$out.server" 2>&1 &
    local spid=$! rc=1
    for _ in $(seq 50); do
        sleep 0.3
        timeout "$TIMEOUT" "$tool" -d "$RXE_DEV1" -i 1 -x "$g" -p "$port" -F "$@" 127.0.0.1 \
            >"$out" 2>&1 && { rc=0; break; }
        grep -q "Couldn't connect\|Unable to open file descriptor" "$out" || break
    done
    wait "$spid" || rc=1
    ((rc == 0)) || { echo "   $tool $* failed:" >&2; tail -n 5 "$out" "$out.server" >&2; }
    return $rc
}

# weft-perf on 2 ranks over verbs: weft-run puts local rank 0 on rxe0 and rank 1 on rxe1.
weft() {
    timeout "$TIMEOUT" "$BUILD/bin/weft-run" -n 2 --transport verbs --timeout 60 \
        "$BUILD/bin/weft-perf" "$@"
}

# An awk function: the median of the numbers in a space-separated string (0 for none).
AWK_MEDIAN='function median(str,   a, n, i, j, t) {
    n = split(str, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
        if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n ? (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2) : 0
}'

# Data rows of a perftest table as "bytes value", value in column $2 of the row.
perftest_rows() { awk -v c="$2" '$1 ~ /^[0-9]+$/ && NF >= 5 { print $1, $c }' "$1"; }
# weft-perf CSV rows as "bytes value", value in column $2.
weft_rows() { awk -F, -v c="$2" '$2 ~ /^[0-9]+$/ { print $2, $c }' "$1"; }

# join A B TITLE UNIT HIGHER_IS_BETTER: a table of both columns and their ratio weft/perftest.
compare() {
    awk -v title="$3" -v unit="$4" -v higher="$5" '
        FNR == 1 { f++ }
        f == 1 { pt[$1] = $2; next }
        { sizes[++n] = $1; w[$1] = $2 }
        END {
            print title
            printf "%10s %14s %14s %8s\n", "bytes", "perftest " unit, "weft " unit, "ratio"
            for (i = 1; i <= n; i++) {
                s = sizes[i]
                r = (s in pt && pt[s] > 0) ? w[s] / pt[s] : 0
                printf "%10d %14.2f %14.2f %8.2f\n", s, pt[s], w[s], r
            }
        }' "$1" "$2"
}

# rxe packet counters, to show which devices carried a run.
rxe_pkts() {
    local d f sum=0
    for d in "$RXE_DEV0" "$RXE_DEV1"; do
        f=/sys/class/infiniband/$d/ports/1/hw_counters/sent_pkts
        [[ -r $f ]] && sum=$((sum + $(<"$f")))
    done
    echo "$sum"
}

bandwidth() {
    echo "== ib_write_bw -a -n $BW_ITERS vs weft-perf write_bw -a -n $BW_ITERS" >&2
    perftest_pair "$OUT/ib_write_bw.txt" ib_write_bw -a -n "$BW_ITERS" || status=1
    weft write_bw -a -n "$BW_ITERS" --csv >"$OUT/write_bw.csv" 2>"$OUT/write_bw.err" || {
        status=1; cat "$OUT/write_bw.err" >&2; }
    perftest_rows "$OUT/ib_write_bw.txt" 4 >"$OUT/bw.pt"
    weft_rows "$OUT/write_bw.csv" 5 >"$OUT/bw.weft"
    compare "$OUT/bw.pt" "$OUT/bw.weft" \
        "Bandwidth: BW average, MB/s (2^20 B/s), ratio weft/perftest (higher is better)" MB/s 1
    awk 'FNR == 1 { f++ } f == 1 { pt[$1] = $2; next }
        $1 >= 65536 && ($1 in pt) && pt[$1] > 0 {
            r = $2 / pt[$1]; if (min == "" || r < min) { min = r; at = $1 } }
        END {
            if (min == "") {
                print "bandwidth >= 95% of ib_write_bw from 64 KiB: n/a"
            } else {
                printf "bandwidth >= 95%% of ib_write_bw from 64 KiB: %s (min %.2f at %d B)\n",
                       (min >= 0.95 ? "yes" : "NO"), min, at
            }
        }' "$OUT/bw.pt" "$OUT/bw.weft"
}

# The sweep above compares unequal loads: ib_write_bw's server sleeps while Weft's receiving
# rank polls its completion queue, as MPI and NCCL ranks do. Inside this VM the vCPUs share
# the host's cores, so a polling vCPU slows the one that does the RoCE work. The control puts
# perftest under the same load: rounds of ib_write_bw alone, ib_write_bw beside a spinning
# process (standing in for the polling rank), and weft-perf, interleaved; medians of each.
control() {
    echo "== control at $CTL_SIZE B, $CTL_ITERS iterations: 3 interleaved rounds" >&2
    local i sp
    for i in 1 2 3; do
        perftest_pair "$OUT/ctl-ib-$i.txt" ib_write_bw -s "$CTL_SIZE" -n "$CTL_ITERS" || status=1
        timeout "$TIMEOUT" sh -c 'while :; do :; done' &
        sp=$!
        perftest_pair "$OUT/ctl-spin-$i.txt" ib_write_bw -s "$CTL_SIZE" -n "$CTL_ITERS" || status=1
        kill "$sp"; wait "$sp" 2>/dev/null
        weft write_bw -s "$CTL_SIZE" -n "$CTL_ITERS" --csv >"$OUT/ctl-weft-$i.csv" || status=1
    done
    local ib spin w
    ib=$(cat "$OUT"/ctl-ib-*.txt | perftest_rows /dev/stdin 4 | awk '{print $2}' | tr '\n' ' ')
    spin=$(cat "$OUT"/ctl-spin-*.txt | perftest_rows /dev/stdin 4 | awk '{print $2}' | tr '\n' ' ')
    w=$(cat "$OUT"/ctl-weft-*.csv | weft_rows /dev/stdin 5 | awk '{print $2}' | tr '\n' ' ')
    echo "Bandwidth control at $CTL_SIZE B, BW average MB/s per round:"
    echo "  ib_write_bw alone: $ib"
    echo "  ib_write_bw beside a spinning process: $spin"
    echo "  weft-perf write_bw: $w"
    awk -v ib="$ib" -v spin="$spin" -v w="$w" "$AWK_MEDIAN"'
        BEGIN {
            mi = median(ib); ms = median(spin); mw = median(w)
            if (mi <= 0 || ms <= 0) { print "  medians: n/a"; exit }
            printf "  medians: %.2f, %.2f, %.2f MB/s; weft / alone %.2f, weft / beside a spinner %.2f\n",
                   mi, ms, mw, mw / mi, mw / ms
        }'
}

latency() {
    echo "== ib_write_lat -a -n $LAT_ITERS vs weft-perf write_lat -a -n $LAT_ITERS" >&2
    perftest_pair "$OUT/ib_write_lat.txt" ib_write_lat -a -n "$LAT_ITERS" || status=1
    weft write_lat -a -n "$LAT_ITERS" --csv >"$OUT/write_lat.csv" 2>"$OUT/write_lat.err" || {
        status=1; cat "$OUT/write_lat.err" >&2; }
    perftest_rows "$OUT/ib_write_lat.txt" 5 >"$OUT/lat.pt"
    weft_rows "$OUT/write_lat.csv" 6 >"$OUT/lat.weft"
    compare "$OUT/lat.pt" "$OUT/lat.weft" \
        "Latency: t_typical (median half round trip), usec, ratio weft/perftest (lower is better)" \
        usec 0
    echo "== 8 B, $LAT8_ITERS iterations each, $LAT8_ROUNDS interleaved rounds" >&2
    local i
    for ((i = 1; i <= LAT8_ROUNDS; i++)); do
        perftest_pair "$OUT/ib_write_lat8-$i.txt" ib_write_lat -s 8 -n "$LAT8_ITERS" || status=1
        weft write_lat -s 8 -n "$LAT8_ITERS" --csv >"$OUT/write_lat8-$i.csv" || status=1
    done
    # "bytes t_min t_typical" per round
    cat "$OUT"/ib_write_lat8-*.txt | awk '$1 ~ /^[0-9]+$/ && NF >= 5 { print $1, $3, $5 }' \
        >"$OUT/lat8.pt"
    cat "$OUT"/write_lat8-*.csv | awk -F, '$2 ~ /^[0-9]+$/ { print $2, $4, $6 }' >"$OUT/lat8.weft"
    # Rounds swing by 2x on this emulated host: the medians over the interleaved rounds.
    awk "$AWK_MEDIAN"'
        FNR == 1 { f++ }
        f == 1 { pmin = pmin " " $2; ptyp = ptyp " " $3; next }
        { wmin = wmin " " $2; wtyp = wtyp " " $3 }
        END {
            if (ptyp == "" || wtyp == "") { print "8 B latency: n/a"; exit }
            printf "8 B t_typical per round: ib_write_lat%s us; weft%s us\n", ptyp, wtyp
            t = median(wtyp) / median(ptyp); m = median(wmin) / median(pmin)
            printf "8 B latency <= 1.2x ib_write_lat: %s (median t_typical %.2f vs %.2f us: %.2f;" \
                   " median t_min %.2f vs %.2f us: %.2f)\n", (t <= 1.2 ? "yes" : "NO"),
                   median(wtyp), median(ptyp), t, median(wmin), median(pmin), m
        }' "$OUT/lat8.pt" "$OUT/lat8.weft"
}

# Open MPI over UCX on the rxe devices: rank 0 on rxe0, rank 1 on rxe1, and UCX's verbs
# transports only, so that the two ranks (on one host) cannot fall back to shared memory. UCX
# connects rc through ud ("no auxiliary transport" without it).
mpi_wrapper() {
    cat >"$OUT/mpi_rank.sh" <<EOF
#!/bin/bash
if [ "\${OMPI_COMM_WORLD_RANK:-0}" = 0 ]; then dev=$RXE_DEV0; else dev=$RXE_DEV1; fi
export UCX_NET_DEVICES=\$dev:1 UCX_IB_GID_INDEX=$RXE_GID_INDEX
exec "\$@"
EOF
    chmod +x "$OUT/mpi_rank.sh"
}

# UCX wires rc up over ud: does plain UD traffic cross between the two devices here?
ud_check() {
    local g=$RXE_GID_INDEX port=$((PORT++))
    timeout 20 ibv_ud_pingpong -d "$RXE_DEV0" -i 1 -g "$g" -p "$port" -n 10 -s 1024 \
        >"$OUT/ud.server" 2>&1 &
    local spid=$!
    sleep 1
    if timeout 20 ibv_ud_pingpong -d "$RXE_DEV1" -i 1 -g "$g" -p "$port" -n 10 -s 1024 \
        127.0.0.1 >"$OUT/ud.client" 2>&1; then
        echo "   (ibv_ud_pingpong rxe1 -> rxe0 works: UD itself crosses; see $OUT/mpi_ar.err)"
    else
        echo "   ibv_ud_pingpong rxe1 -> rxe0 fails too: UD datagrams do not cross between the" \
             "two rxe devices in this VM, and Open MPI's UCX (and openib's udcm) connect over UD"
    fi
    wait "$spid" 2>/dev/null
}

allreduce() {
    local mpi=$BUILD/bench/mpi_allreduce args=(-b 8 -e "$AR_MAX" -f 8 -n "$AR_ITERS" -w 3)
    echo "== allreduce 8 B..$AR_MAX: Open MPI (pml ucx over rxe) vs weft-perf over verbs" >&2
    local before after mpi_ok=0
    if [[ -x $mpi ]] && command -v mpirun.openmpi >/dev/null; then
        mpi_wrapper
        before=$(rxe_pkts)
        if timeout "$MPI_TIMEOUT" mpirun.openmpi --allow-run-as-root --oversubscribe -n 2 \
            --mca pml ucx --mca btl self -x UCX_TLS=rc_verbs,ud_verbs,self \
            -x UCX_WARN_UNUSED_ENV_VARS=n "$OUT/mpi_rank.sh" "$mpi" "${args[@]}" \
            >"$OUT/mpi_ar.csv" 2>"$OUT/mpi_ar.err"; then
            after=$(rxe_pkts)
            mpi_ok=1
            echo "Open MPI pml ucx (UCX_TLS=rc_verbs,ud_verbs,self, UCX_NET_DEVICES rxe0:1 /" \
                 "rxe1:1): ran, $((after - before)) RoCE packets sent on the rxe devices"
        else
            local rc=$?
            after=$(rxe_pkts)
            echo "Open MPI could NOT use the rxe devices (pml ucx, UCX_TLS=rc_verbs,ud_verbs,self):" \
                 "$( ((rc == 124)) && echo "hung for ${MPI_TIMEOUT} s" || echo "exit $rc"), only" \
                 "$((after - before)) RoCE packets sent"
            grep -m 3 'Fatal\|ERROR\|Error' "$OUT/mpi_ar.err" | sed 's/^/   /'
            ud_check
        fi
    else
        echo "Open MPI: mpirun.openmpi or $mpi missing (built on the host by this script)"
    fi
    before=$(rxe_pkts)
    weft allreduce "${args[@]}" -d float32 --csv >"$OUT/weft_ar.csv" || status=1
    after=$(rxe_pkts)
    echo "weft-perf allreduce over verbs: $((after - before)) RoCE packets sent on the rxe devices"
    echo "Allreduce, 2 ranks, float32 sum, out-of-place: busbw GB/s and time us"
    awk -F, -v mpi_ok="$mpi_ok" '
        FNR == 1 { f++ }
        f == 1 { if ($1 == "allreduce") { s[++n] = $2; wt[$2] = $7; wb[$2] = $9
                                          if ($10 > 0 || $14 > 0) bad = 1 }; next }
        $1 ~ /^[0-9]+$/ { mt[$1] = $4; mb[$1] = $6 }
        END {
            printf "%10s %12s %12s %8s %12s %12s %8s\n", "bytes", "weft busbw", "MPI busbw",
                   "ratio", "weft us", "MPI us", "t ratio"
            for (i = 1; i <= n; i++) {
                k = s[i]; m = mpi_ok && (k in mt)
                mbs = "-"; br = "-"; mts = "-"; tr = "-"
                if (m) { mbs = sprintf("%.4f", mb[k]); mts = sprintf("%.1f", mt[k]) }
                if (m && mb[k] > 0) br = sprintf("%.2f", wb[k] / mb[k])
                if (m && mt[k] > 0) tr = sprintf("%.2f", wt[k] / mt[k])
                printf "%10d %12.4f %12s %8s %12.1f %12s %8s\n", k, wb[k], mbs, br, wt[k], mts, tr
            }
            if (bad) { print "weft-perf reported wrong elements: FAILED"; exit 1 }
        }' "$OUT/weft_ar.csv" "$OUT/mpi_ar.csv" || status=1
}

# Several queue pairs per connection: perftest's -q N opens N queue pairs and spreads its
# iterations over them; Weft stripes each message over WEFT_IB_QPS_PER_PEER queue pairs.
queue_pairs() {
    echo "== queue pairs per peer ($QPS_LIST) at $CTL_SIZE B, $CTL_ITERS iterations:" \
         "$QPS_ROUNDS interleaved rounds" >&2
    local q n rails i ib w
    echo "Queue pairs per peer at $CTL_SIZE B, BW average MB/s: medians of $QPS_ROUNDS" \
         "interleaved rounds (per round in brackets)"
    printf "%4s %14s %14s %8s\n" qps "ib_write_bw -q" "weft write_bw" ratio
    for q in $QPS_LIST; do
        n=${q%r}
        rails=1
        [[ $q == *r ]] && rails=$n
        for ((i = 1; i <= QPS_ROUNDS; i++)); do
            perftest_pair "$OUT/qps$q-ib-$i.txt" ib_write_bw -q "$n" -s "$CTL_SIZE" \
                -n "$CTL_ITERS" || status=1
            WEFT_IB_QPS_PER_PEER=$n WEFT_IB_RAILS=$rails weft write_bw -s "$CTL_SIZE" \
                -n "$CTL_ITERS" --csv >"$OUT/qps$q-weft-$i.csv" || status=1
        done
        ib=$(cat "$OUT"/qps$q-ib-*.txt | perftest_rows /dev/stdin 4 | awk '{print $2}' | tr '\n' ' ')
        w=$(cat "$OUT"/qps$q-weft-*.csv | weft_rows /dev/stdin 5 | awk '{print $2}' | tr '\n' ' ')
        awk -v q="$q" -v ib="$ib" -v w="$w" "$AWK_MEDIAN"'
            BEGIN {
                mi = median(ib); mw = median(w)
                r = mi > 0 ? sprintf("%.2f", mw / mi) : "-"
                printf "%4s %14.2f %14.2f %8s   [%s] [%s]\n", q, mi, mw, r, ib, w
            }'
    done
}

guest() {
    [[ ${RXE_VM-} == 1 && -n ${RXE_GID_INDEX-} ]] || {
        echo "--guest runs inside tests/rxe/vm.sh, which sets RXE_GID_INDEX" >&2; exit 2; }
    OUT=$BUILD/bench/verbs
    mkdir -p "$OUT"
    status=0
    local t0=$SECONDS
    echo "soft-RoCE: server $RXE_DEV0, client $RXE_DEV1, RoCE v2 GID index $RXE_GID_INDEX"
    echo
    local section
    for section in $SECTIONS; do
        "$section"
        echo
    done
    echo "(guest part took $((SECONDS - t0)) s; raw outputs in $OUT)"
    exit $status
}

if [[ ${1-} == --guest ]]; then
    BUILD=$2
    guest
fi

# ---------------------------------------------------------------- host side
cd "$(dirname "$0")/.." || exit 1
BUILD=${1:-build}
[[ $(id -u) -eq 0 ]] || { echo "needs root: tests/rxe/vm.sh boots a VM" >&2; exit 2; }
make -s -j"$(nproc)" BUILD="$BUILD" all >&2 || exit 1
mkdir -p "$BUILD/bench"
BUILD=$(cd "$BUILD" && pwd -P)
"$BUILD/bin/weft-info" --version | grep -q 'verbs=yes' ||
    { echo "$BUILD has no verbs transport: install libibverbs-dev and rebuild" >&2; exit 2; }
if command -v mpicc >/dev/null; then
    mpicc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -o "$BUILD/bench/mpi_allreduce" bench/mpi_allreduce.c || exit 1
fi
t0=$SECONDS
tests/rxe/vm.sh --timeout "${VM_TIMEOUT:-470}" --rw "$BUILD" -- \
    env BW_ITERS="$BW_ITERS" LAT_ITERS="$LAT_ITERS" LAT8_ITERS="$LAT8_ITERS" AR_MAX="$AR_MAX" \
    AR_ITERS="$AR_ITERS" TIMEOUT="$TIMEOUT" SECTIONS="$SECTIONS" QPS_LIST="$QPS_LIST" \
    QPS_ROUNDS="$QPS_ROUNDS" CTL_SIZE="$CTL_SIZE" CTL_ITERS="$CTL_ITERS" MPI_TIMEOUT="$MPI_TIMEOUT" "$PWD/bench/verbs_vs_perftest.sh" --guest "$BUILD"
rc=$?
echo "(whole run, VM boot included: $((SECONDS - t0)) s)"
exit $rc
