#!/usr/bin/env bash
# run.sh - boots the soft-RoCE VM (tests/rxe/vm.sh) once and checks, inside it, that the two
# rdma_rxe devices are ACTIVE and carry real RC traffic: ibv_rc_pingpong and perftest's
# ib_write_bw at 64 KiB between rxe0 and rxe1. Ends with "N passed, M failed".
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
    show_log() { tail -n 15 "$1" | sed 's/^/#   /'; }

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
    (( fails == 0 ))
}

if [[ ${1-} == --guest ]]; then
    [[ ${RXE_VM-} == 1 ]] || { echo "run.sh --guest runs only inside tests/rxe/vm.sh" >&2; exit 2; }
    guest
    exit
fi

# ---------------------------------------------------------------- host side
BUILD=${1:-build}
EXPECTED=5      # ok/not ok lines the guest prints when it runs to the end
if [[ $(id -u) -ne 0 ]]; then
    echo "# skip - soft-RoCE VM: needs root (apt-get, and qemu exports / to the guest)"
    echo "0 passed, 0 failed"
    exit 0
fi
mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd -P)
LOG=$BUILD/test-logs/rxe-vm.out
mkdir -p "${LOG%/*}"
cd "$ROOT" || exit 1
t0=$SECONDS
# The build directory is shared read-write too: verbs tests run the binaries built there.
"$HERE/vm.sh" --timeout "${WEFT_RXE_VM_TIMEOUT:-480}" --rw "$BUILD" -- \
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
