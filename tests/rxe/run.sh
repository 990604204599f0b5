#!/usr/bin/env bash
# run.sh - boots the soft-RoCE VM (tests/rxe/vm.sh) once and checks, inside it, that the two
# rdma_rxe devices are ACTIVE and carry real RC traffic (ibv_rc_pingpong, perftest's
# ib_write_bw at 64 KiB between rxe0 and rxe1), then runs Weft's verbs transport there: the
# transport conformance test (3 ranks), every collective at 2, 3 and 4 ranks (local ranks alternate
# between rxe0 and rxe1), shm and verbs mixed across two "hosts" (UTS namespaces), the error
# paths and weft-perf's point-to-point tests. Ends with "N passed, M failed".
#   tests/rxe/run.sh BUILD_DIR
# Needs root (vm.sh installs packages, and qemu exports / to the guest). The first run
# downloads the kernel package and builds the initramfs under ~/.cache/weft-rxe-vm.
set -u
HERE=$(cd "$(dirname "$0")" && pwd -P)
ROOT=$(cd "$HERE/../.." && pwd -P)

# ---------------------------------------------------------------- guest side
# Runs inside the VM (vm.sh sets RXE_VM=1 and the RXE_* variables). Prints one line per
# check; the host counts them. Every command runs under a timeout so a stuck peer cannot
# hang the VM.
guest() {
    local fails=0 log=/tmp/rxe-check
    mkdir -p "$log"
    ok() { echo "ok - $*"; }
    notok() { echo "not ok - $*"; fails=$((fails + 1)); }
    # show_log FILE: the tail of a failed command's output, as comments
    show_log() { tail -n 40 "$1" | sed 's/^/#   /'; }

    # 1. both devices and their port 1 ACTIVE, RoCE v2 GID found by vm.sh
    local d
    for d in "$RXE_DEV0" "$RXE_DEV1"; do
        if ibv_devinfo -d "$d" -i 1 >"$log/devinfo-$d" 2>&1 &&
            grep -q 'state:[[:space:]]*PORT_ACTIVE' "$log/devinfo-$d" &&
            grep -q 'link_layer:[[:space:]]*Ethernet' "$log/devinfo-$d"; then
            ok "$d port 1 PORT_ACTIVE, link layer Ethernet," \
               "active MTU $(awk '/active_mtu/{print $2; exit}' "$log/devinfo-$d")"
        else
            notok "$d port 1 is not PORT_ACTIVE (ibv_devinfo)"; show_log "$log/devinfo-$d"
        fi
    done
    [[ -n ${RXE_GID_INDEX:-} ]] && ok "RoCE v2 IPv4 GID index $RXE_GID_INDEX on both devices" \
        || notok "vm.sh found no RoCE v2 IPv4 GID index"
    local g=${RXE_GID_INDEX:-1}

    # 2. ibv_rc_pingpong, server on rxe0, client on rxe1, over the RoCE v2 GID
    local srv_rc cli_rc
    timeout 120 ibv_rc_pingpong -d "$RXE_DEV0" -i 1 -g "$g" -p 18611 -n 200 -s 4096 \
        >"$log/pp-server" 2>&1 &
    local spid=$!
    cli_rc=1
    for _ in $(seq 50); do   # retry until the server listens (no fixed sleep)
        sleep 0.2
        timeout 120 ibv_rc_pingpong -d "$RXE_DEV1" -i 1 -g "$g" -p 18611 -n 200 -s 4096 \
            127.0.0.1 >"$log/pp-client" 2>&1 && { cli_rc=0; break; }
        grep -q 'Couldn.t connect' "$log/pp-client" || break
    done
    wait "$spid"; srv_rc=$?
    if (( srv_rc == 0 && cli_rc == 0 )) && grep -q 'bytes in' "$log/pp-client"; then
        ok "ibv_rc_pingpong rxe1 -> rxe0 (RC, GID index $g): $(grep 'bytes in' "$log/pp-client")"
    else
        notok "ibv_rc_pingpong rxe1 -> rxe0 (server exit $srv_rc, client exit $cli_rc)"
        show_log "$log/pp-server"; show_log "$log/pp-client"
    fi

    # 3. perftest ib_write_bw at 64 KiB, server on rxe0, client on rxe1
    timeout 180 ib_write_bw -d "$RXE_DEV0" -i 1 -x "$g" -s 65536 -n 2000 -p 18612 -F \
        >"$log/bw-server" 2>&1 &
    spid=$!
    cli_rc=1
    for _ in $(seq 50); do
        sleep 0.2
        timeout 180 ib_write_bw -d "$RXE_DEV1" -i 1 -x "$g" -s 65536 -n 2000 -p 18612 -F \
            127.0.0.1 >"$log/bw-client" 2>&1 && { cli_rc=0; break; }
        grep -q 'Couldn.t connect\|Unable to open file descriptor' "$log/bw-client" || break
    done
    wait "$spid"; srv_rc=$?
    # result row: #bytes #iterations BW-peak BW-average MsgRate (MB/s, Mpps)
    local row
    row=$(awk '$1 == 65536 && NF >= 5 {print; exit}' "$log/bw-client")
    if (( srv_rc == 0 && cli_rc == 0 )) && [[ -n $row ]]; then
        read -r _ iters peak avg rate <<<"$row"
        ok "ib_write_bw rxe1 -> rxe0, 64 KiB x $iters: BW average $avg MB/s" \
           "(peak $peak MB/s, $rate Mpps)"
    else
        notok "ib_write_bw rxe1 -> rxe0 at 64 KiB (server exit $srv_rc, client exit $cli_rc)"
        show_log "$log/bw-server"; show_log "$log/bw-client"
    fi

    IB_BW_AVG=${avg:-}
    perf_guest "$g" || fails=$((fails + 1))

    # 4. Weft over verbs. `check NAME LIMIT CMD...` runs one case and prints its line.
    local B=${WEFT_RXE_BUILD:?} n CHECK_LOG
    check() {
        local name=$1 limit=$2 f
        shift 2
        f=$log/$(echo "$name" | tr -c 'A-Za-z0-9\n' _)
        CHECK_LOG=$f
        if timeout --kill-after=5 "$limit" "$@" >"$f" 2>&1; then
            ok "$name$(grep -m1 '^coll_check: ' "$f" | sed 's/^coll_check: [0-9]* ranks:/:/')"
        else
            notok "$name (exit $?)"; show_log "$f"
        fi
    }
    # striped_all LOG NRANKS WHAT: every rank's closing INFO line counts bytes moved over
    # its data queue pairs, and none is 0
    striped_all() {
        local moved
        moved=$(grep -c 'moved [1-9][0-9]* of its [0-9]* bytes of rendezvous data over data' "$1")
        if (( moved == $2 )); then
            ok "$3: all $2 ranks moved rendezvous data over data queue pairs:" \
               "$(grep -o 'rank 0 moved [0-9]* of its [0-9]*' "$1")"
        else
            notok "$3: $moved of $2 ranks moved data over data queue pairs"
            grep 'rendezvous data over' "$1" | sed 's/^/#   /'
        fi
    }
    export WEFT_TIMEOUT=60
    # Four ranks spinning on the guest's two emulated CPUs hold ACKs back past the default
    # 67 ms; the transport gives soft-RoCE 1 s per try by itself (see ack_timeout in verbs.c).
    unset WEFT_IB_TIMEOUT
    # the conformance test prints its own ok/not ok lines
    TRANSPORT_CHECK_ROUND_S=200 TRANSPORT_CHECK_OP_S=60 \
        timeout --kill-after=5 600 "$B/tests/transport_check" verbs 3 2>&1 |
        tee "$log/tc" |
        grep -E '^(ok|not ok) - ' || notok "transport_check verbs printed nothing"
    grep -q '^not ok' "$log/tc" && fails=$((fails + 1))
    for n in 2 3 4; do
        check "collectives over verbs, $n ranks" 400 \
            "$B/bin/weft-run" -n $n --transport verbs "$B/tests/coll_check"
    done
    check "collectives over verbs, rendezvous by RDMA read, 3 ranks" 300 env WEFT_IB_RNDV=read \
        "$B/bin/weft-run" -n 3 --transport verbs "$B/tests/coll_check" --quick
    # Issue 14, channels: WEFT_IB_QPS_PER_PEER stripes rendezvous data over several queue
    # pairs per peer; every rank must say it moved data over the data queue pairs.
    check "collectives over verbs, 3 queue pairs per peer (rendezvous striped), 3 ranks" 400 \
        env WEFT_IB_QPS_PER_PEER=3 WEFT_DEBUG=INFO WEFT_DEBUG_SUBSYS=NET \
        "$B/bin/weft-run" -n 3 --transport verbs "$B/tests/coll_check"
    striped_all "$CHECK_LOG" 3 "3 queue pairs per peer, write"
    check "collectives over verbs, 2 queue pairs per peer, rendezvous by RDMA read, 2 ranks" 300 \
        env WEFT_IB_QPS_PER_PEER=2 WEFT_IB_RNDV=read WEFT_DEBUG=INFO WEFT_DEBUG_SUBSYS=NET \
        "$B/bin/weft-run" -n 2 --transport verbs "$B/tests/coll_check" --quick
    striped_all "$CHECK_LOG" 2 "2 queue pairs per peer, read"
    # a window of 4 MiB messages: the next message's RTS may overtake the FIN of the one
    # before, which over several queue pairs follows the data
    check "weft-perf write_bw over verbs at 4 MiB, 32 in flight, 2 queue pairs per peer" 120 \
        env WEFT_IB_QPS_PER_PEER=2 "$B/bin/weft-run" -n 2 --transport verbs \
        "$B/bin/weft-perf" write_bw -s 4M -n 32
    # Issue 14, multi-rail: WEFT_IB_RAILS=2 gives each rank the other rxe device as a second
    # rail, with its own protection domain, completion queue and keys, for its data queue
    # pair. One-way write_bw (128 MiB, 32768 packets of 4 KiB) then makes both devices send
    # data; over one rail the receiving device sends only ACKs (721 packets in one run).
    check "collectives over verbs, 2 rails (rxe0 + rxe1 on every rank), 3 queue pairs, RDMA read, 3 ranks" 300 \
        env WEFT_IB_RAILS=2 WEFT_IB_QPS_PER_PEER=3 WEFT_IB_RNDV=read WEFT_DEBUG=INFO \
        WEFT_DEBUG_SUBSYS=NET "$B/bin/weft-run" -n 3 --transport verbs "$B/tests/coll_check" --quick
    striped_all "$CHECK_LOG" 3 "2 rails, 3 queue pairs per peer, read"
    local sent0=() sent1=() dev
    for dev in "$RXE_DEV0" "$RXE_DEV1"; do
        sent0+=("$(cat "/sys/class/infiniband/$dev/ports/1/hw_counters/sent_pkts")")
    done
    check "weft-perf write_bw over verbs at 4 MiB, 2 rails" 120 \
        env WEFT_IB_RAILS=2 "$B/bin/weft-run" -n 2 --transport verbs \
        "$B/bin/weft-perf" write_bw -s 4M -n 32
    for dev in "$RXE_DEV0" "$RXE_DEV1"; do
        sent1+=("$(cat "/sys/class/infiniband/$dev/ports/1/hw_counters/sent_pkts")")
    done
    local d0=$((sent1[0] - sent0[0])) d1=$((sent1[1] - sent0[1]))
    if (( d0 >= 8192 && d1 >= 8192 )); then
        ok "2 rails: both devices sent data ($RXE_DEV0 $d0, $RXE_DEV1 $d1 packets)"
    else
        notok "2 rails: $RXE_DEV0 sent $d0 and $RXE_DEV1 $d1 packets: want 8192 or more each"
    fi
    # a rank with one port selected beside ranks with two: each side picks its rails alone
    check "collectives over verbs, WEFT_IB_RAILS=2 with one port on rank 0 (WEFT_IB_HCA=$RXE_DEV0), 3 ranks" 300 \
        env WEFT_IB_RAILS=2 "$B/bin/weft-run" -n 3 --transport verbs sh -c \
        '[ "$WEFT_RANK" = 0 ] && export WEFT_IB_HCA='"$RXE_DEV0"'; exec "$0" --quick' \
        "$B/tests/coll_check"
    check "transport conformance over verbs, 2 queue pairs per peer, 3 ranks" 600 \
        env WEFT_IB_QPS_PER_PEER=2 TRANSPORT_CHECK_ROUND_S=200 TRANSPORT_CHECK_OP_S=60 \
        "$B/tests/transport_check" verbs 3
    # Two "hosts": ranks 0-1 and 2-3 each get a UTS namespace with their own host name, so
    # auto picks shm inside each pair and verbs across (the RDMA devices are shared).
    check "mixed: shm inside a host, verbs across (auto), 4 ranks" 300 \
        env WEFT_DEBUG=INFO WEFT_DEBUG_SUBSYS=NET "$B/bin/weft-run" -n 4 \
        unshare --uts sh -c 'hostname "node$((WEFT_RANK / 2))" && exec "$0" --quick' \
        "$B/tests/coll_check"
    local map=$CHECK_LOG
    if grep -q 'peers 0:self 1:shm 2:verbs 3:verbs' "$map"; then
        ok "mixed: rank 0 reaches rank 1 by shm, ranks 2 and 3 by verbs"
    else
        notok "mixed: rank 0's transport map is not shm + verbs"; grep 'peers' "$map" | sed 's/^/#   /'
    fi
    # UCX over the same devices: rc_verbs for data, tcp beside it for UCX's wire-up (UCX 1.13
    # has no other way to connect rc here: ud_verbs times out under soft-RoCE).
    if "$B/bin/weft-info" --version | grep -q 'ucx=yes'; then
        check "collectives over ucx (rc_verbs on rxe0/rxe1), 2 ranks" 400 \
            env UCX_TLS=rc_verbs,tcp,self UCX_IB_GID_INDEX="$g" "$B/bin/weft-run" -n 2 \
            --transport ucx sh -c 'r=$((WEFT_RANK % 2)); UCX_NET_DEVICES=rxe$r:1,veth$r exec "$0"' \
            "$B/tests/coll_check"
    fi
    check "errors over verbs: bad arguments" 120 \
        "$B/bin/weft-run" -n 3 --transport verbs "$B/tests/errors_check" args
    check "errors over verbs: dead peer" 120 \
        "$B/bin/weft-run" -n 3 --transport verbs "$B/tests/errors_check" dead-peer
    check "errors over verbs: dead peer, 2 queue pairs per peer" 120 env WEFT_IB_QPS_PER_PEER=2 \
        "$B/bin/weft-run" -n 3 --transport verbs "$B/tests/errors_check" dead-peer
    check "errors over verbs: silent peer" 120 env WEFT_TIMEOUT=3 \
        "$B/bin/weft-run" -n 3 --transport verbs "$B/tests/errors_check" silent-peer
    # Issue 12, timeouts: liveness probes (every 0.5 s) and credit notes are not progress, so
    # live ranks whose calls never match time out within WEFT_TIMEOUT + 2 s; each peer gets a
    # key to its own receive ring only, and a write with it into another peer's ring fails.
    check "errors over verbs: calls that never match time out" 120 env WEFT_TIMEOUT=20 \
        "$B/bin/weft-run" -n 3 --transport verbs "$B/tests/errors_check" never-match
    check "verbs: each peer can write only into its own receive ring, 3 ranks" 120 \
        "$B/tests/verbs_rkey_check"
    # Issue 14, registration: allreduces from buffers freed and allocated again at the same
    # address with other contents; the registration cache (on by default where libucm's memory
    # events work, which the INFO line must say) must not hand out the stale registration.
    check "verbs: registration cache, buffers freed and reused at the same address, 2 ranks" 120 \
        sh -c 'out=$("$@" 2>&1); rc=$?; printf "%s\n" "$out"; [ $rc -eq 0 ] || exit $rc
            printf "%s\n" "$out" | grep -q "registration cache on" || {
                echo "the registration cache was not on: nothing was tested"; exit 1; }' sh \
        env WEFT_DEBUG=INFO WEFT_DEBUG_SUBSYS=NET "$B/bin/weft-run" -n 2 --transport verbs \
        "$B/tests/regcache_check"

    # ---- faults (issue 12; helper "faults"): kill -9 of one rank during a 256 MiB allreduce
    # (every survivor: WEFT_ERR_REMOTE within 5 s, naming the dead rank and host; nothing left
    # behind) and weft_comm_abort from another thread, over verbs. WEFT_FAULTS_VERBS_REPS
    # repetitions each (bench/faults.sh sets 20); each prints its summary line as a comment.
    local freps=${WEFT_FAULTS_VERBS_REPS:-3}
    check "faults over verbs: kill -9 one rank during a 256 MiB allreduce, $freps reps" \
        $((120 + 30 * freps)) "$ROOT/tests/integration/kill_check.sh" --build "$B" verbs "$freps"
    grep -E '^(not ok|kill verbs:)' "$CHECK_LOG" | sed 's/^/# /'
    check "faults over verbs: weft_comm_abort from another thread, $freps reps" \
        $((120 + 20 * freps)) "$ROOT/tests/integration/abort_check.sh" --build "$B" --mib 64 \
        --delay 1000 verbs "$freps"
    grep -E '^(not ok|abort verbs:)' "$CHECK_LOG" | sed 's/^/# /'
    (( fails == 0 ))
}

# weft-perf on the rxe devices (issue 15, docs/perftest.md): `links` reports the codes rxe
# reports, and perftest's launcher-free server/client write_bw runs rxe0 <-> rxe1 over verbs
# with an efficiency figure, against ib_write_bw's BW average at the same size ($IB_BW_AVG,
# measured here when unset). `tests/rxe/vm.sh ... -- tests/rxe/run.sh --guest-perf` runs
# this part alone.
perf_guest() {
    local g=$1 fails=0 log=/tmp/rxe-perf B=${WEFT_RXE_BUILD:?} d
    mkdir -p "$log"
    ok() { echo "ok - $*"; }
    notok() { echo "not ok - $*"; fails=$((fails + 1)); }
    "$B/bin/weft-perf" links >"$log/links" 2>&1
    "$B/bin/weft-perf" links --json >"$log/links.json" 2>&1
    for d in "$RXE_DEV0" "$RXE_DEV1"; do
        ibv_devinfo -v -d "$d" -i 1 >"$log/devinfo-$d" 2>&1
        local spd wid ws ww
        spd=$(sed -n 's/.*active_speed:.*(\([0-9]*\)).*/\1/p' "$log/devinfo-$d" | head -1)
        wid=$(sed -n 's/.*active_width:.*(\([0-9]*\)).*/\1/p' "$log/devinfo-$d" | head -1)
        ws=$(grep "\"device\": \"$d\", \"port\": 1," "$log/links.json" | sed -n 's/.*"speed_code": \([0-9]*\).*/\1/p')
        ww=$(grep "\"device\": \"$d\", \"port\": 1," "$log/links.json" | sed -n 's/.*"width_code": \([0-9]*\).*/\1/p')
        if [[ -n $spd && $spd == "$ws" && $wid == "$ww" ]] &&
            grep "\"device\": \"$d\"" "$log/links.json" | grep -q '"link_layer": "Ethernet".*"from": "ibv_query_port"'; then
            ok "weft-perf links: $d:1 as ibv_devinfo says (speed code $spd, width code $wid):" \
               "$(grep "^$d " "$log/links" | tr -s ' ')"
        else
            notok "weft-perf links: $d:1 speed/width $ws/$ww, ibv_devinfo $spd/$wid"
            tail -n 20 "$log/links" "$log/devinfo-$d" | sed 's/^/#   /'
        fi
    done
    if [[ -z ${IB_BW_AVG:-} ]]; then
        timeout 180 ib_write_bw -d "$RXE_DEV0" -i 1 -x "$g" -s 65536 -n 2000 -p 18622 -F \
            >"$log/bw-server" 2>&1 &
        local sp=$!
        for _ in $(seq 50); do
            sleep 0.2
            timeout 180 ib_write_bw -d "$RXE_DEV1" -i 1 -x "$g" -s 65536 -n 2000 -p 18622 -F \
                127.0.0.1 >"$log/bw-client" 2>&1 && break
            grep -q 'Couldn.t connect\|Unable to open file descriptor' "$log/bw-client" || break
        done
        wait "$sp"
        IB_BW_AVG=$(awk '$1 == 65536 && NF >= 5 {print $4; exit}' "$log/bw-client")
        [[ -n $IB_BW_AVG ]] || { echo "# ib_write_bw gave no row for the ratio:"; tail -n 5 "$log/bw-client" | sed 's/^/#   /'; }
    fi
    # The server and client as two plain commands, no launcher; verbs forced (same host).
    local secret rs rc
    secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
    WEFT_SECRET=$secret WEFT_TRANSPORT=verbs WEFT_TIMEOUT=120 timeout 240 "$B/bin/weft-perf" \
        write_bw -d "$RXE_DEV0" -x "$g" -s 65536 -n 2000 -p 18623 --json "$log/srv.json" \
        >"$log/pair-server" 2>&1 &
    local sp=$!
    sleep 0.5
    WEFT_SECRET=$secret WEFT_TRANSPORT=verbs WEFT_TIMEOUT=120 timeout 240 "$B/bin/weft-perf" \
        write_bw -d "$RXE_DEV1" -x "$g" -s 65536 -n 2000 -p 18623 127.0.0.1 \
        --json "$log/cli.json" >"$log/pair-client" 2>&1
    rc=$?
    wait "$sp"; rs=$?
    local row avg eff
    row=$(awk '$1 == 65536 && NF >= 6 {print; exit}' "$log/pair-client")
    avg=$(echo "$row" | awk '{print $4}')
    eff=$(echo "$row" | awk '{print $6}')
    if (( rs == 0 && rc == 0 )) && [[ -n $eff ]] && grep -q 'Transport      : verbs' "$log/pair-client" &&
        grep -q "Line rate      : .*rxe" "$log/pair-client" && ! grep -q UNAUTH "$log/pair-client"; then
        ok "weft-perf write_bw server on $RXE_DEV0, client on $RXE_DEV1 (no launcher, WEFT_SECRET," \
           "verbs): 64 KiB x 2000 BW average $avg MB/s = $eff % of the line;" \
           "ib_write_bw $IB_BW_AVG MB/s, ratio $(awk -v a="$avg" -v b="$IB_BW_AVG" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')"
    else
        notok "weft-perf write_bw server/client on rxe (server exit $rs, client exit $rc)"
        tail -n 25 "$log/pair-server" "$log/pair-client" | sed 's/^/#   /'
    fi
    grep -q '"efficiency_pct": [0-9]' "$log/cli.json" && grep -q '"device": "rxe' "$log/srv.json" &&
        ok "weft-perf --json records on both ends carry the rxe port and the efficiency" ||
        notok "weft-perf --json records lack the port or the efficiency"
    (( fails == 0 ))
}

if [[ ${1-} == --guest-perf ]]; then
    [[ ${RXE_VM-} == 1 ]] || { echo "run.sh --guest-perf runs only inside tests/rxe/vm.sh" >&2; exit 2; }
    perf_guest "${RXE_GID_INDEX:-1}"
    exit
fi
if [[ ${1-} == --guest ]]; then
    [[ ${RXE_VM-} == 1 ]] || { echo "run.sh --guest runs only inside tests/rxe/vm.sh" >&2; exit 2; }
    guest
    exit
fi

# ---------------------------------------------------------------- host side
BUILD=${1:-build}
EXPECTED=71     # at least this many ok/not ok lines when the guest runs to the end
if [[ $(id -u) -ne 0 ]]; then
    echo "skip: soft-RoCE VM: needs root (apt-get, and qemu exports / to the guest)"
    exit 77
fi
mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd -P)
LOG=$BUILD/test-logs/rxe-vm.out
mkdir -p "${LOG%/*}"
cd "$ROOT" || exit 1
t0=$SECONDS
# The build directory is shared read-write too: verbs tests run the binaries built there.
WEFT_RXE_BUILD=$BUILD "$HERE/vm.sh" --timeout "${WEFT_RXE_VM_TIMEOUT:-1500}" --rw "$BUILD" -- \
    "$HERE/run.sh" --guest 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}
pass=$(grep -c '^ok - ' "$LOG")
fail=$(grep -c '^not ok - ' "$LOG")
case $rc in
    124) echo "not ok - the VM timed out"; fail=$((fail + 1)) ;;
    125) echo "not ok - the VM or its soft-RoCE set-up failed (see above)"; fail=$((fail + 1)) ;;
    *) if (( pass + fail < EXPECTED )); then
           echo "not ok - the guest checks stopped early (exit $rc)"; fail=$((fail + 1))
       elif (( rc != 0 && fail == 0 )); then
           echo "not ok - the guest exited $rc"; fail=$((fail + 1))
       fi ;;
esac
echo "# soft-RoCE VM run took $((SECONDS - t0)) s"
echo "$pass passed, $fail failed"
(( fail == 0 ))
