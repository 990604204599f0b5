#!/usr/bin/env bash
# abort_check.sh - weft_comm_abort from a second thread while every rank is inside a large
# allreduce (tests/integration/abort_check.c), REPS times under weft-run: the aborting rank's
# call returns WEFT_ERR_ABORTED, every other rank's WEFT_ERR_REMOTE, all within LIMIT s of the
# abort, with WEFT_TIMEOUT far longer. Ends with one summary line:
#   abort TRANSPORT: N trials, P passed, max T s (time from abort to the last rank's return)
#   tests/integration/abort_check.sh [--build DIR] [--nranks N] [--mib M] [--limit S]
#                                    [--delay MS] TRANSPORT REPS
# --delay: when the abort comes after the call began (100 ms; more on a slow VM, where the
# main thread may not have entered the library yet).
set -u
BUILD=build NRANKS=3 MIB=256 LIMIT=5 DELAY=100
while [[ $# -gt 2 ]]; do
    case $1 in
    --build) BUILD=$2; shift 2 ;;
    --nranks) NRANKS=$2; shift 2 ;;
    --mib) MIB=$2; shift 2 ;;
    --limit) LIMIT=$2; shift 2 ;;
    --delay) DELAY=$2; shift 2 ;;
    *) echo "abort_check.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
TP=${1:?transport}; REPS=${2:?repetitions}
RUN=$BUILD/bin/weft-run PROG=$BUILD/tests/abort_check
[[ -x $RUN && -x $PROG ]] || { echo "abort_check.sh: build $RUN and $PROG first" >&2; exit 2; }
passed=0 tmax=0
log=$(mktemp /tmp/abort_check.XXXXXX)
for rep in $(seq 1 "$REPS"); do
    env WEFT_TIMEOUT=${WEFT_TIMEOUT:-60} timeout -k 5 120 "$RUN" -n "$NRANKS" --transport "$TP" \
        "$PROG" "$MIB" "$LIMIT" "$DELAY" >"$log" 2>&1
    rc=$?
    at=$(awk '/^abort at/ { print $3 }' "$log")
    worst=$(awk -v a="${at:-0}" '/^returned at/ { d = $3 - a; if (d > m) m = d } END { printf "%.3f", m }' "$log")
    nret=$(grep -c '^returned at' "$log")
    if (( rc == 0 )) && [[ -n $at && $at != 0.000000 ]] && (( nret == NRANKS - 1 )) &&
        awk -v d="$worst" -v l="$LIMIT" 'BEGIN { exit !(d < l) }'; then
        passed=$((passed + 1))
        echo "ok - abort $TP rep $rep: every rank returned within $worst s of the abort"
    else
        echo "not ok - abort $TP rep $rep: exit $rc, $nret of $((NRANKS - 1)) ranks returned," \
             "the last $worst s after the abort"
        grep -v '^ok -' "$log" | tail -20 | sed 's/^/#   /'
    fi
    awk -v d="$worst" -v m="$tmax" 'BEGIN { exit !(d > m) }' && tmax=$worst
done
rm -f "$log"
echo "abort $TP: $REPS trials, $passed passed, max $tmax s (time from abort to the last rank's return)"
(( passed == REPS ))
