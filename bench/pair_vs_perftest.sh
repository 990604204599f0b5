#!/usr/bin/env bash
# pair_vs_perftest.sh - weft-perf's launcher-free server/client write_bw against ib_write_bw on
# the same soft-RoCE devices, in one boot of the test VM (tests/rxe/vm.sh): server on rxe0,
# client on rxe1, RoCE v2 GID $RXE_GID_INDEX, the two tools in interleaved rounds at each size;
# BW average medians (MB/s), the ratio weft/perftest, and weft-perf's efficiency (% of the
# port's data rate, from weft-perf links). Also prints `weft-perf links` as seen in the VM.
#   bench/pair_vs_perftest.sh [BUILD]      # needs root (the VM)
#   SIZES="65536 1048576" ITERS=1000 ROUNDS=3 bench/pair_vs_perftest.sh build
# Raw outputs land in BUILD/bench/pair/.
set -uo pipefail
SIZES=${SIZES:-65536 1048576}
ITERS=${ITERS:-500}          # messages per round, at most BUDGET bytes' worth
BUDGET=${BUDGET:-33554432}   # soft-RoCE moves a few MB/s on a loaded host
ROUNDS=${ROUNDS:-3}
TIMEOUT=${TIMEOUT:-150}
PORT=${PORT:-18900}

# pair OUT TOOL-ARGS...: server on rxe0 in the background, client on rxe1 (retried until the
# server listens); the client's output goes to OUT. TOOL is ib_write_bw or weft-perf.
pair() {
    local out=$1 tool=$2 port=$((PORT++)) rc=1 g=$RXE_GID_INDEX
    shift 2
    local pre=() post=()
    [[ $tool == ib_write_bw ]] && pre=(-i 1 -F) || post=(--json "$out.json")
    if [[ $tool == ib_write_bw ]]; then
        timeout "$TIMEOUT" ib_write_bw -d "$RXE_DEV0" -x "$g" -p "$port" "${pre[@]}" "$@" \
            >"$out.server" 2>&1 &
    else
        timeout "$TIMEOUT" "$tool" write_bw -d "$RXE_DEV0" -x "$g" -p "$port" "$@" \
            >"$out.server" 2>&1 &
    fi
    local spid=$!
    for _ in $(seq 50); do
        sleep 0.3
        if [[ $tool == ib_write_bw ]]; then
            timeout "$TIMEOUT" ib_write_bw -d "$RXE_DEV1" -x "$g" -p "$port" "${pre[@]}" "$@" \
                127.0.0.1 >"$out" 2>&1 && { rc=0; break; }
            grep -q "Couldn't connect\|Unable to open file descriptor" "$out" || break
        else
            timeout "$TIMEOUT" "$tool" write_bw -d "$RXE_DEV1" -x "$g" -p "$port" "$@" \
                "${post[@]}" 127.0.0.1 >"$out" 2>&1 && { rc=0; break; }
            break
        fi
    done
    wait "$spid" || rc=1
    ((rc == 0)) || { echo "   $tool $* failed:" >&2; tail -n 5 "$out" "$out.server" >&2; }
    return $rc
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END {
    if (NR == 0) print 0; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

guest() {
    [[ ${RXE_VM-} == 1 && -n ${RXE_GID_INDEX-} ]] || {
        echo "--guest runs inside tests/rxe/vm.sh, which sets RXE_GID_INDEX" >&2; exit 2; }
    local out=$BUILD/bench/pair status=0 s r ib w e
    mkdir -p "$out"
    export WEFT_TRANSPORT=verbs WEFT_TIMEOUT=60
    WEFT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
    export WEFT_SECRET
    echo "soft-RoCE: server $RXE_DEV0, client $RXE_DEV1, RoCE v2 GID index $RXE_GID_INDEX"
    "$BUILD/bin/weft-perf" links
    echo
    printf "%10s %16s %16s %8s %12s\n" bytes "ib_write_bw MB/s" "weft-perf MB/s" ratio "weft eff %"
    for s in $SIZES; do
        ib="" w="" e=""
        local it=$((BUDGET / s < ITERS ? BUDGET / s : ITERS))
        ((it >= 8)) || it=8
        for r in $(seq "$ROUNDS"); do
            pair "$out/ib-$s-$r" ib_write_bw -s "$s" -n "$it" || status=1
            pair "$out/weft-$s-$r" "$BUILD/bin/weft-perf" -s "$s" -n "$it" || status=1
            ib="$ib $(awk -v s="$s" '$1 == s && NF >= 5 { print $4; exit }' "$out/ib-$s-$r")"
            w="$w $(awk -v s="$s" '$1 == s && NF >= 5 { print $4; exit }' "$out/weft-$s-$r")"
            e="$e $(awk -v s="$s" '$1 == s && NF >= 6 { print $6; exit }' "$out/weft-$s-$r")"
        done
        ib=$(echo "$ib" | median) w=$(echo "$w" | median) e=$(echo "$e" | median)
        printf "%10d %16.2f %16.2f %8s %12s\n" "$s" "$ib" "$w" \
            "$(awk -v a="$w" -v b="$ib" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')" "$e"
    done
    echo "(medians of $ROUNDS interleaved rounds of up to $ITERS messages, $BUDGET B; raw outputs in $out)"
    exit $status
}

if [[ ${1-} == --guest ]]; then
    BUILD=$2
    guest
fi

cd "$(dirname "$0")/.." || exit 1
BUILD=${1:-build}
[[ $(id -u) -eq 0 ]] || { echo "needs root: tests/rxe/vm.sh boots a VM" >&2; exit 2; }
make -s -j2 BUILD="$BUILD" all >&2 || exit 1
mkdir -p "$BUILD/bench"
BUILD=$(cd "$BUILD" && pwd -P)
t0=$SECONDS
tests/rxe/vm.sh --timeout "${VM_TIMEOUT:-470}" --rw "$BUILD" -- \
    env SIZES="$SIZES" ITERS="$ITERS" BUDGET="$BUDGET" ROUNDS="$ROUNDS" TIMEOUT="$TIMEOUT" \
    "$PWD/bench/pair_vs_perftest.sh" --guest "$BUILD"
rc=$?
echo "(whole run, VM boot included: $((SECONDS - t0)) s)"
exit $rc
