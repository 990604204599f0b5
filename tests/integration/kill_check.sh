#!/usr/bin/env bash
# kill_check.sh - kill -9 one rank during a large allreduce under weft-run, REPS times: every
# survivor must return WEFT_ERR_REMOTE within LIMIT s of the kill, with a message that names
# the dead rank and its host, and weft-run must leave no rank process and no /dev/shm segment
# of the job behind. The victim rotates over the ranks. Ends with one summary line:
#   kill TRANSPORT: N trials, P passed, max T s, median T s (time from kill to error)
#   tests/integration/kill_check.sh [--build DIR] [--nranks N] [--mib M] [--limit S] TRANSPORT REPS
set -u
BUILD=build NRANKS=3 MIB=256 LIMIT=5
while [[ $# -gt 2 ]]; do
    case $1 in
    --build) BUILD=$2; shift 2 ;;
    --nranks) NRANKS=$2; shift 2 ;;
    --mib) MIB=$2; shift 2 ;;
    --limit) LIMIT=$2; shift 2 ;;
    *) echo "kill_check.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
TP=${1:?transport}; REPS=${2:?repetitions}
RUN=$BUILD/bin/weft-run PROG=$BUILD/tests/kill_check
[[ -x $RUN && -x $PROG ]] || { echo "kill_check.sh: build $RUN and $PROG first" >&2; exit 2; }
HOST=$(hostname)
WEFT_ERR_REMOTE=3
passed=0 times=()

# fail_rep MSG: one failed check of this repetition.
rep_ok=1
fail_rep() { echo "not ok - kill $TP rep $rep: $*"; rep_ok=0; }

for rep in $(seq 1 "$REPS"); do
    dir=$(mktemp -d /tmp/kill_check.XXXXXX)
    victim=$(( (rep - 1) % NRANKS ))
    rep_ok=1
    env WEFT_TIMEOUT=${WEFT_TIMEOUT:-60} "$RUN" -n "$NRANKS" --transport "$TP" \
        "$PROG" "$dir" "$MIB" >"$dir/run.log" 2>&1 &
    runpid=$!
    started=0
    for _ in $(seq 1200); do   # up to 120 s for init and the buffers
        started=$(ls "$dir" | grep -c '\.started$')
        (( started == NRANKS )) && break
        kill -0 "$runpid" 2>/dev/null || break
        sleep 0.1
    done
    if (( started != NRANKS )); then
        fail_rep "only $started of $NRANKS ranks started"; sed 's/^/#   /' "$dir/run.log" | tail -20
        kill "$runpid" 2>/dev/null; wait "$runpid" 2>/dev/null; rm -rf "$dir"; continue
    fi
    pids=()
    for r in $(seq 0 $((NRANKS - 1))); do read -r p _ <"$dir/$r.pid"; pids+=("$p"); done
    # Somewhere inside an allreduce: a random 0.3 to 1.2 s after all started.
    sleep "0.$((3 + RANDOM % 9))"
    # Read before the kill, without a fork: the measured times are upper bounds.
    t_kill=$EPOCHREALTIME
    kill -KILL "${pids[$victim]}"
    # weft-run ends within its own grace periods; 60 s means it hung.
    for _ in $(seq 600); do kill -0 "$runpid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$runpid" 2>/dev/null; then
        fail_rep "weft-run still running 60 s after the kill"; kill -KILL "$runpid"
    fi
    wait "$runpid" 2>/dev/null
    for r in $(seq 0 $((NRANKS - 1))); do
        (( r == victim )) && continue
        f=$dir/$r.result
        if [[ ! -s $f ]]; then
            fail_rep "rank $r reported no result (killed before its call returned?)"
            continue
        fi
        read -r t code _ <"$f"
        msg=$(sed -n 2p "$f")
        dt=$(awk -v a="$t" -v b="$t_kill" 'BEGIN { printf "%.3f", a - b }')
        times+=("$dt")
        [[ $code == "$WEFT_ERR_REMOTE" ]] || fail_rep "rank $r got code $code, not WEFT_ERR_REMOTE: $msg"
        awk -v d="$dt" -v l="$LIMIT" 'BEGIN { exit !(d < l) }' ||
            fail_rep "rank $r returned $dt s after the kill (limit $LIMIT s)"
        grep -Eq "rank $victim([^0-9]|\$)" <<<"$msg" || fail_rep "rank $r: message does not name rank $victim: $msg"
        grep -qF "$HOST" <<<"$msg" || fail_rep "rank $r: message does not name host $HOST: $msg"
    done
    for p in "${pids[@]}"; do
        kill -0 "$p" 2>/dev/null && { fail_rep "rank process $p outlived weft-run"; kill -KILL "$p"; }
        left=$(ls /dev/shm 2>/dev/null | grep "^weft-$p-")
        [[ -z $left ]] || { fail_rep "left in /dev/shm: $left"; rm -f /dev/shm/weft-"$p"-*; }
    done
    if (( rep_ok )); then
        passed=$((passed + 1))
        echo "ok - kill $TP rep $rep: rank $victim killed, survivors' errors after" \
             "$(for r in $(seq 0 $((NRANKS - 1))); do (( r == victim )) ||
                 awk -v a="$(cut -d' ' -f1 "$dir/$r.result" | head -1)" -v b="$t_kill" \
                     'BEGIN { printf "%.2f ", a - b }'; done)s"
    else
        sed 's/^/#   /' "$dir/run.log" | tail -15
    fi
    rm -rf "$dir"
done
stats=$(printf '%s\n' "${times[@]}" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "-", "-"; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.2f %.2f\n", v[NR], m }')
read -r tmax tmed <<<"$stats"
echo "kill $TP: $REPS trials, $passed passed, max $tmax s, median $tmed s (time from kill to error)"
(( passed == REPS ))
