#!/usr/bin/env bash
# stranger_check.sh - strangers on a running job's ports (tests/integration/stranger.c): random
# bytes, a proof under a wrong secret, a handshake captured from an earlier job, a proof this
# job's root accepted replayed on a new connection, half a handshake held open, and FLOOD
# connections at once. Two windows, each held open by stopping the last rank (SIGSTOP from
# stranger_job's listen()) until the attacks are in:
#   boot: the rendezvous root in weft-run and every rank's bootstrap-ring listener;
#   tcp:  every rank's tcp transport listener (the job runs with --transport tcp).
# Each attack must be rejected (or find nothing listening), the ranks must log a WARN for
# them, their fds and RSS (and weft-run's, which hosts the root) must stay bounded, and the
# job must complete with every allreduce result right. Then, with the job past set-up, the
# same ports are tried again: nothing may listen there any more. Ends with one line:
#   strangers WINDOW: N attacks, R rejected, fds +D max during, RSS +M KiB max, job ok|FAILED
#   tests/integration/stranger_check.sh [--build DIR] [--nranks N] [--flood N] boot|tcp
set -u
BUILD=build NRANKS=3 FLOOD=1000 HOLD=8
while [[ $# -gt 1 ]]; do
    case $1 in
    --build) BUILD=$2; shift 2 ;;
    --nranks) NRANKS=$2; shift 2 ;;
    --flood) FLOOD=$2; shift 2 ;;
    *) echo "stranger_check.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
WINDOW=${1:?boot or tcp}
RUN=$BUILD/bin/weft-run JOB=$BUILD/tests/stranger_job ST=$BUILD/tests/stranger
[[ -x $RUN && -x $JOB && -x $ST ]] || { echo "stranger_check.sh: build first" >&2; exit 2; }
command -v ss >/dev/null || { echo "skip: ss (iproute2) is not installed"; exit 77; }
# Bounds: what the attacks may add to a process while they last, and what may stay after.
FD_DURING=${FD_DURING:-300} FD_AFTER=${FD_AFTER:-16} RSS_DURING_KB=${RSS_DURING_KB:-65536}
RSS_AFTER_KB=${RSS_AFTER_KB:-16384}
dir=$(mktemp -d /tmp/stranger_check.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fails=0
bad() { echo "not ok - strangers $WINDOW: $*"; fails=$((fails + 1)); }

# An earlier job's real handshake, for the replay.
"$RUN" -n 1 "$ST" capture "$dir/earlier.hs" >/dev/null 2>"$dir/capture.log" ||
    { bad "could not capture a handshake: $(tail -3 "$dir/capture.log")"; exit 1; }

stop_at=1 tp=${TRANSPORT:-shm}
[[ $WINDOW == tcp ]] && stop_at=2 tp=tcp
env WEFT_TIMEOUT=${WEFT_TIMEOUT:-60} STRANGER_STOP_AT_LISTEN=$stop_at \
    "$RUN" -n "$NRANKS" --transport "$tp" "$JOB" "$dir" 400 >"$dir/run.log" 2>&1 &
runpid=$!

# listening PID: the TCP ports PID listens on (one per line).
listening() { ss -ltnpH 2>/dev/null | awk -v p="pid=$1," 'index($0, p) { print $4 }'; }
fds() { ls /proc/"$1"/fd 2>/dev/null | wc -l; }
rss() { awk '/^VmRSS/ { print $2 }' /proc/"$1"/status 2>/dev/null || echo 0; }

ranks=() stopped=""
for _ in $(seq 600); do   # up to 60 s: every rank started, the last one stopped itself
    mapfile -t ranks < <(ps -o pid= --ppid "$runpid" | tr -d ' ')
    for p in "${ranks[@]}"; do
        grep -q '^State:.*T (stopped)' /proc/"$p"/status 2>/dev/null && stopped=$p
    done
    [[ -n $stopped && ${#ranks[@]} -eq $NRANKS ]] && break
    kill -0 "$runpid" 2>/dev/null || break
    sleep 0.1
done
[[ -n $stopped ]] || { bad "the last rank never stopped at its listen() #$stop_at"; cat "$dir/run.log"; exit 1; }
others=()
for p in "${ranks[@]}"; do [[ $p == "$stopped" ]] || others+=("$p"); done
# Targets: the root (boot window) and each waiting rank's listener, once they all listen.
targets=()
if [[ $WINDOW == boot ]]; then
    root=$(tr '\0' '\n' <"/proc/$stopped/environ" | sed -n 's/^WEFT_ROOT=//p')
    targets+=("$root")
fi
for _ in $(seq 300); do
    t=()
    for p in "${others[@]}"; do t+=($(listening "$p")); done
    (( ${#t[@]} >= ${#others[@]} )) && break
    sleep 0.1
done
(( ${#t[@]} >= ${#others[@]} )) || bad "the waiting ranks do not all listen: ${t[*]}"
targets+=("${t[@]}")
secret=$(tr '\0' '\n' <"/proc/$stopped/environ" | sed -n 's/^WEFT_SECRET=//p')
watched=("$runpid" "${others[@]}")
declare -A fd0 rss0 fdmax rssmax
for p in "${watched[@]}"; do fd0[$p]=$(fds "$p"); rss0[$p]=$(rss "$p"); fdmax[$p]=${fd0[$p]}; rssmax[$p]=${rss0[$p]}; done
sample() {
    local p f r
    for p in "${watched[@]}"; do
        f=$(fds "$p"); r=$(rss "$p")
        (( f > fdmax[$p] )) && fdmax[$p]=$f
        (( r > rssmax[$p] )) && rssmax[$p]=$r
    done
}

proto=boot; [[ $WINDOW == tcp ]] && proto=tcp
n=0 apids=()
for a in "${targets[@]}"; do
    for kind in random secret replay half flood; do
        arg=""
        case $kind in replay) arg=$dir/earlier.hs ;; half) arg=$HOLD ;; flood) arg="$FLOOD $HOLD" ;; esac
        # shellcheck disable=SC2086
        STRANGER_WAIT=40 "$ST" "$kind" "$proto" "$a" $arg >"$dir/attack.$n" 2>&1 &
        apids+=($!); n=$((n + 1))
    done
done
if [[ $WINDOW == boot && -n $secret ]]; then
    WEFT_SECRET=$secret STRANGER_WAIT=40 "$ST" replay-same boot "$root" >"$dir/attack.$n" 2>&1 &
    apids+=($!); n=$((n + 1))
fi
for _ in $(seq 30); do sample; sleep 0.1; done   # the attacks land while the job waits
kill -CONT "$stopped"
while :; do
    alive=0
    for a in "${apids[@]}"; do kill -0 "$a" 2>/dev/null && alive=1; done
    (( alive )) || break
    sample; sleep 0.2
done
arc=0
for a in "${apids[@]}"; do wait "$a" || arc=1; done
# The job is past set-up now: nothing of it may listen, and the attacks' traces must be gone.
sleep 1
declare -A fd1 rss1
for p in "${watched[@]}"; do fd1[$p]=$(fds "$p"); rss1[$p]=$(rss "$p"); done
late=0
for a in "${targets[@]}"; do
    STRANGER_WAIT=5 "$ST" random "$proto" "$a" >"$dir/late.$late" 2>&1 || true
    late=$((late + 1))
done
wait "$runpid"; rc=$?

rejected=0
for i in $(seq 0 $((n - 1))); do
    line=$(head -1 "$dir/attack.$i")
    case $line in
    rejected*|refused*|flood:*) rejected=$((rejected + 1)); echo "ok - $line" ;;
    held*) bad "$line (a half-written handshake must be dropped within ${HOLD} s)" ;;
    *) bad "attack $i: ${line:-no output}"; sed 's/^/#   /' "$dir/attack.$i" ;;
    esac
done
for i in $(seq 0 $((late - 1))); do
    line=$(head -1 "$dir/late.$i")
    case $line in
    refused*) echo "ok - after set-up: $line" ;;
    *) bad "after set-up a port still answers: $line" ;;
    esac
done
warns=$(grep -c 'WARN' "$dir/run.log")
(( warns > 0 )) || bad "no WARN line logged for the attacks"
dmax=0 rmax=0
for p in "${watched[@]}"; do
    d=$((fdmax[$p] - fd0[$p])) da=$((fd1[$p] - fd0[$p])) r=$((rssmax[$p] - rss0[$p])) ra=$((rss1[$p] - rss0[$p]))
    echo "# pid $p: fds ${fd0[$p]} before, max ${fdmax[$p]} during, ${fd1[$p]} after;" \
         "RSS ${rss0[$p]} KiB before, max ${rssmax[$p]} during, ${rss1[$p]} after"
    (( d > dmax )) && dmax=$d
    (( r > rmax )) && rmax=$r
    (( d <= FD_DURING )) || bad "pid $p: $d more fds during the attacks (bound $FD_DURING)"
    (( da <= FD_AFTER )) || bad "pid $p: $da more fds after the attacks (bound $FD_AFTER)"
    (( r <= RSS_DURING_KB )) || bad "pid $p: RSS grew $r KiB during the attacks (bound $RSS_DURING_KB)"
    (( ra <= RSS_AFTER_KB )) || bad "pid $p: RSS grew $ra KiB and stayed (bound $RSS_AFTER_KB)"
done
okranks=$(grep -c '^ok - rank' "$dir/run.log")
job=ok
if (( rc != 0 || okranks != NRANKS )); then
    job=FAILED; bad "the job failed (weft-run exit $rc, $okranks of $NRANKS ranks right)"
    grep -v '^ok' "$dir/run.log" | tail -20 | sed 's/^/#   /'
fi
echo "# $warns WARN lines; first ones:"; grep WARN "$dir/run.log" | sort | uniq -c | sort -rn | head -8 | cut -c1-220 | sed 's/^/#   /'
echo "strangers $WINDOW: $n attacks, $rejected rejected, fds +$dmax max during," \
     "RSS +$rmax KiB max, job $job"
(( fails == 0 ))
