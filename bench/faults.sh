#!/usr/bin/env bash
# faults.sh - the full counts of the fault and hostile-input checks that tests/run-all.sh runs
# a few times each: kill -9 of one rank during a 256 MiB allreduce (KILLS per transport: shm,
# tcp, and verbs in the soft-RoCE VM when root), weft_comm_abort from another thread (ABORTS
# per transport), and strangers on the bootstrap and tcp transport ports (STRANGERS rounds of
# each window). Ends with a table: trials, passed, and the worst and median times.
#   bench/faults.sh [BUILD]          env: KILLS=20 ABORTS=20 STRANGERS=3 VERBS=auto|0|1
set -u
BUILD=${1:-build}
KILLS=${KILLS:-20} ABORTS=${ABORTS:-20} STRANGERS=${STRANGERS:-3} VERBS=${VERBS:-auto}
cd "$(dirname "$0")/.." || exit 1
make -j2 all tests BUILD="$BUILD" >/dev/null || { echo "faults.sh: the build failed" >&2; exit 1; }
export WEFT_TIMEOUT=${WEFT_TIMEOUT:-60}
OUT=$BUILD/bench/faults
mkdir -p "$OUT"
rows=()
status=0

# row NAME LOG: the summary line a driver printed last, as a table row.
row() {
    local name=$1 log=$2 line trials passed tmax tmed
    line=$(grep -E '^(kill|abort) [a-z]+: [0-9]+ trials' "$log" | tail -1)
    if [[ -z $line ]]; then
        rows+=("$(printf '%-44s %7s %7s %12s %12s' "$name" - - - -)"); status=1; return
    fi
    trials=$(sed -E 's/.*: ([0-9]+) trials.*/\1/' <<<"$line")
    passed=$(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$line")
    tmax=$(sed -nE 's/.*max ([0-9.]+) s.*/\1/p' <<<"$line")
    tmed=$(sed -nE 's/.*median ([0-9.]+) s.*/\1/p' <<<"$line")
    (( passed == trials )) || status=1
    rows+=("$(printf '%-44s %7s %7s %12s %12s' "$name" "$trials" "$passed" "${tmax:--}" "${tmed:--}")")
}

for tp in shm tcp; do
    echo "== kill -9 over $tp, $KILLS times"
    tests/integration/kill_check.sh --build "$BUILD" "$tp" "$KILLS" | tee "$OUT/kill-$tp.log"
    row "kill -9 during 256 MiB allreduce, $tp" "$OUT/kill-$tp.log"
    echo "== weft_comm_abort from another thread over $tp, $ABORTS times"
    tests/integration/abort_check.sh --build "$BUILD" "$tp" "$ABORTS" | tee "$OUT/abort-$tp.log"
    row "abort from another thread, $tp" "$OUT/abort-$tp.log"
done

for w in boot tcp; do
    ok=0 attacks=0 rejected=0 fdmax=0 rssmax=0
    for i in $(seq 1 "$STRANGERS"); do
        echo "== strangers on the $w ports, round $i of $STRANGERS"
        log=$OUT/strangers-$w-$i.log
        tests/integration/stranger_check.sh --build "$BUILD" "$w" >"$log" 2>&1 && ok=$((ok + 1))
        line=$(tail -1 "$log"); echo "$line"
        read -r a r d m < <(sed -E 's/.*: ([0-9]+) attacks, ([0-9]+) rejected, fds \+([0-9]+) .*RSS \+([0-9]+) KiB.*/\1 \2 \3 \4/' <<<"$line")
        attacks=$((attacks + ${a:-0})) rejected=$((rejected + ${r:-0}))
        (( ${d:-0} > fdmax )) && fdmax=$d
        (( ${m:-0} > rssmax )) && rssmax=$m
    done
    (( ok == STRANGERS )) || status=1
    rows+=("$(printf '%-44s %7s %7s %12s %12s' "strangers on $w ports (job rounds)" "$STRANGERS" "$ok" - -)")
    rows+=("$(printf '%-44s %7s %7s %12s %12s' "  attacks in them (rejected)" "$attacks" "$rejected" - -)")
    rows+=("#   $w: at most +$fdmax fds and +$rssmax KiB RSS in a rank or weft-run during the attacks")
done

if [[ $VERBS == 1 || ( $VERBS == auto && $(id -u) -eq 0 ) ]]; then
    # Only the two drivers in one boot of the soft-RoCE VM (the VM's whole suite is
    # tests/rxe/run.sh); under TCG emulation a kill round takes tens of seconds.
    echo "== verbs in the soft-RoCE VM: $KILLS kills, $ABORTS aborts"
    tests/rxe/vm.sh --timeout "${WEFT_RXE_VM_TIMEOUT:-3000}" --rw "$BUILD" -- bash -c \
        'unset WEFT_IB_TIMEOUT
         tests/integration/kill_check.sh --build "$0" verbs "$1"; k=$?
         tests/integration/abort_check.sh --build "$0" --mib 64 --delay 1000 verbs "$2"; a=$?
         exit $((k | a))' "$BUILD" "$KILLS" "$ABORTS" | tee "$OUT/verbs.log"
    grep '^kill verbs:' "$OUT/verbs.log" >"$OUT/kill-verbs.log"
    grep '^abort verbs:' "$OUT/verbs.log" >"$OUT/abort-verbs.log"
    row "kill -9 during 256 MiB allreduce, verbs (VM)" "$OUT/kill-verbs.log"
    row "abort from another thread, verbs (VM)" "$OUT/abort-verbs.log"
else
    rows+=("# verbs: skipped (needs root for the soft-RoCE VM; VERBS=1 forces it)")
fi

echo
printf '%-44s %7s %7s %12s %12s\n' check trials passed "max time s" "median s"
printf '%s\n' "${rows[@]}"
echo "(times: from the kill or abort to a surviving rank's error return; limit 5 s)"
exit $status
