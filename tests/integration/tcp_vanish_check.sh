#!/usr/bin/env bash
# tcp_vanish_check.sh - a TCP peer whose host vanishes (power loss, cable pull: no FIN, no
# RST) is noticed within WEFT_SOCKET_DEAD_TIMEOUT, not after WEFT_TIMEOUT. Two ranks run in
# two network namespaces (hosts vanish-a and vanish-b) joined by a veth pair this script
# creates and removes; mid-run every packet arriving on either end is dropped (iptables), and
# each rank must fail with WEFT_ERR_REMOTE naming the other rank, its host and ETIMEDOUT
# within WEFT_SOCKET_DEAD_TIMEOUT=5 s + 5 s (WEFT_TIMEOUT is 120). Two cases: ranks busy in
# allreduces (unacknowledged data: TCP_USER_TIMEOUT) and ranks idle on a receive (keepalive).
#   tests/integration/tcp_vanish_check.sh BUILD_DIR [busy|idle]...
# Needs root, ip and iptables; else exits 77 with "skip: reason".
set -u
BUILD=${1:-build}; shift || true
CASES=("$@"); [[ ${#CASES[@]} -eq 0 ]] && CASES=(busy idle)
T=$BUILD/tests/errors_check
[[ $(id -u) -eq 0 ]] || { echo "skip: needs root (network namespaces)"; exit 77; }
for tool in ip iptables unshare; do
    command -v $tool >/dev/null || { echo "skip: $tool is not installed"; exit 77; }
done
[[ -x $T ]] || { echo "not ok - $T is not built"; exit 1; }

ID=$$
NA=wvan-a-$ID NB=wvan-b-$ID VA=wva$ID VB=wvb$ID
NET=10.231.$((ID % 250 + 1))
WORK=$(mktemp -d /tmp/weft-vanish.XXXXXX)
cleanup() {
    local p
    for p in $(jobs -p); do kill -9 "$p" 2>/dev/null; done
    ip netns del "$NA" 2>/dev/null
    ip netns del "$NB" 2>/dev/null # the veth pair goes with its namespaces
    [[ -n ${KEEP_WORK-} ]] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ip netns add "$NA" && ip netns add "$NB" &&
    ip link add "$VA" netns "$NA" type veth peer name "$VB" netns "$NB" &&
    ip -n "$NA" addr add "$NET.1/24" dev "$VA" && ip -n "$NB" addr add "$NET.2/24" dev "$VB" &&
    ip -n "$NA" link set lo up && ip -n "$NB" link set lo up &&
    ip -n "$NA" link set "$VA" up && ip -n "$NB" link set "$VB" up ||
    { echo "skip: cannot create network namespaces and a veth pair"; exit 77; }
ip netns exec "$NA" iptables -L INPUT >/dev/null 2>&1 ||
    { echo "skip: iptables does not work in a network namespace here"; exit 77; }

fails=0
for how in "${CASES[@]}"; do
    rm -f "$WORK"/ready.* "$WORK"/t0
    ip netns exec "$NA" iptables -F INPUT
    ip netns exec "$NB" iptables -F INPUT
    secret=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
    pids=()
    for r in 0 1; do
        ns=$NA dev=$VA host=vanish-a peer=vanish-b
        (( r == 1 )) && ns=$NB dev=$VB host=vanish-b peer=vanish-a
        ip netns exec "$ns" unshare --uts env RANK=$r WORLD_SIZE=2 LOCAL_RANK=0 \
            LOCAL_WORLD_SIZE=1 MASTER_ADDR=$NET.1 MASTER_PORT=29400 WEFT_SECRET=$secret \
            WEFT_TRANSPORT=tcp WEFT_SOCKET_IFNAME=$dev WEFT_TIMEOUT=120 \
            WEFT_SOCKET_DEAD_TIMEOUT=5 VANISH_DIR=$WORK VANISH_PEER_HOST=$peer \
            sh -c 'hostname "$0" && exec "$@"' "$host" "$T" vanish "$how" \
            >"$WORK/rank$r.log" 2>&1 &
        pids+=($!)
    done
    for _ in $(seq 600); do   # both ranks initialised and ran one allreduce (60 s at most)
        [[ -e $WORK/ready.0 && -e $WORK/ready.1 ]] && break
        sleep 0.1
    done
    sleep 1
    # The link goes: nothing arrives on either end any more, and nobody sends FIN or RST.
    ip netns exec "$NA" iptables -A INPUT -i "$VA" -j DROP
    ip netns exec "$NB" iptables -A INPUT -i "$VB" -j DROP
    date +%s.%N >"$WORK/t0"
    t0=$SECONDS
    # 30 s for both: far below WEFT_TIMEOUT=120, far above WEFT_SOCKET_DEAD_TIMEOUT=5
    for _ in $(seq 300); do
        kill -0 "${pids[0]}" 2>/dev/null || kill -0 "${pids[1]}" 2>/dev/null || break
        sleep 0.1
    done
    for r in 0 1; do
        if kill -0 "${pids[r]}" 2>/dev/null; then
            echo "not ok - $how: rank $r still running $((SECONDS - t0)) s after the link went"
            kill -9 "${pids[r]}"
        fi
        wait "${pids[r]}" 2>/dev/null; rc=$?
        grep -E '^(ok|not ok) - |^# rank' "$WORK/rank$r.log" | sed "s/^\(ok\|not ok\|#\) /&$how: /"
        if (( rc != 0 )); then
            fails=$((fails + 1))
            echo "# rank $r ($how) exited $rc; its log:"; tail -n 20 "$WORK/rank$r.log" | sed 's/^/#   /'
        fi
    done
done
(( fails == 0 )) && echo "tcp_vanish_check: ${CASES[*]}: every rank failed in time" && exit 0
exit 1
