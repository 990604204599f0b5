#!/usr/bin/env bash
# run-all.sh - Weft's test suite: the cmocka unit tests, then multi-rank integration runs of
# every collective over shm and tcp, the launcher, the error paths and the tools. Each case
# runs under a hard timeout, so nothing can hang the suite. Ends with "N passed, M failed,
# K skipped" and the list of every skip with its reason.
#   tests/run-all.sh BUILD_DIR [--unit | --integration | ""] [FILTER]
# FILTER keeps the cases whose name contains it, e.g. tests/run-all.sh build "" shm
# WEFT_TEST_MIN_CASES=N (`make test` sets it) fails an unfiltered full run that registered
# fewer cases (run or skipped): a deleted block, or a part of the build silently lost.
# WEFT_TEST_LIST=1 only lists the cases this build and host would run, and counts them.
# WEFT_TEST_SKIP=TEXT[,TEXT...] skips (and lists as skipped) the cases whose name contains
# one of the TEXTs, e.g. WEFT_TEST_SKIP=rxe: for a run without the soft-RoCE VM.
#
# A case passes (exit 0), fails (any other exit, or a timeout) or is skipped: it exits 77
# after printing `skip: <reason>`, because it found nothing to test (no GPU, no device, no
# root). Checks skipped inside a case that still tested something print `# skip - WHAT:
# reason`; they are listed and counted too, so that no skip hides behind a pass.
set -u
BUILD=${1:-build}; shift || true
PART=all
case ${1-} in --unit) PART=unit; shift ;; --integration) PART=integration; shift ;; "") shift || true ;; esac
FILTER=${1:-}
BIN=$BUILD/bin
T=$BUILD/tests
LOGDIR=$BUILD/test-logs
mkdir -p "$LOGDIR"
pass=0; fail=0; skipped=0; case_skips=0; registered=0; failed_names=(); skips=()
SKIP_RC=77

# wanted NAME: whether FILTER keeps the case.
wanted() { [[ -z $FILTER || $1 == *$FILTER* ]]; }

# skip NAME REASON: a case that cannot run here, counted and listed as skipped. Every skip
# goes through here (or through run's exit 77), never through a bare echo.
skip() {
    wanted "$1" || return 0
    registered=$((registered + 1)); skipped=$((skipped + 1)); case_skips=$((case_skips + 1))
    skips+=("$1: $2")
    echo "# skip - $1: $2"
}

# fail_case NAME REASON: a case that could not even be started (e.g. its binary is missing).
fail_case() {
    wanted "$1" || return 0
    registered=$((registered + 1)); fail=$((fail + 1)); failed_names+=("$1")
    echo "not ok - $1: $2"
}

# Where the GPU cases run (GPU=the build dir, GPU_NOTE=a suffix for their names): this build
# on a host with a GPU; else the fake-CUDA build (tests/fakecuda; `make fakecuda` makes
# $BUILD/fakecuda), the same library against a CUDA runtime double, so that the orchestration
# (streams, staging, IPC, the worker) still runs, as "... (fake CUDA)": not the real kernels,
# driver or IPC, which only a GPU covers; else nowhere, and GPU_SKIP says why.
is_fake() { "$1/bin/weft-info" --version 2>/dev/null | grep -q 'cuda=fake'; }
FAKE=${WEFT_FAKECUDA_BUILD:-$BUILD/fakecuda}
is_fake "$BUILD" && FAKE=$BUILD
GPU="" GPU_NOTE="" GPU_SKIP=""
if ! is_fake "$BUILD" && GPU_SKIP=$("$T/gpu_check" --probe 2>&1); then
    GPU=$BUILD
elif [[ -x $FAKE/tests/gpu_check ]] && is_fake "$FAKE"; then
    GPU=$FAKE GPU_NOTE=" (fake CUDA)"
else
    GPU_SKIP="${GPU_SKIP#skip: }; no fake-CUDA build at $FAKE"
    GPU_SKIP+=" (\`make fakecuda\` builds it; it needs the CUDA headers)"
fi
# skip_gpu CASE: the case has neither a GPU nor a fake-CUDA build.
skip_gpu() { skip "$1" "$GPU_SKIP"; }

# sub_skips NAME LOG: the `# skip - ` lines of a case's log, and cmocka's skipped tests that
# printed no such line, added to the skips (counted, listed under the case's name).
sub_skips() {
    local name=$1 log=$2 line n=0 cm
    while IFS= read -r line; do
        skips+=("$name: ${line#\# skip - }"); skipped=$((skipped + 1)); n=$((n + 1))
    done < <(grep -a '^# skip - ' "$log")
    cm=$(sed -n 's/^\[  SKIPPED \] \([0-9][0-9]*\) test(s), listed below:$/\1/p' "$log" | tail -n 1)
    if [[ -n $cm ]] && (( cm > n )); then
        skips+=("$name: $((cm - n)) cmocka test(s) called skip() without a \`# skip - \` reason")
        skipped=$((skipped + cm - n))
    fi
}

# nothing_tested LOG: true when the case's own summary says it checked nothing (cmocka ran no
# test to a pass; "0 passed, 0 failed"; "0 checks passed"): an exit 0 is then no pass.
nothing_tested() {
    grep -aq -e '^\[  PASSED  \] 0 test(s)\.$' -e '^0 passed, 0 failed' \
        -e ': 0 checks passed' "$1"
}

# run NAME TIMEOUT CMD...: one test case; its output goes to a log, shown on failure.
# WEFT_TEST_TIME_SCALE multiplies every limit (sanitizer builds run several times slower).
run() {
    local name=$1 limit=$(($2 * ${WEFT_TEST_TIME_SCALE:-1})); shift 2
    wanted "$name" || return 0
    local left_out text
    IFS=, read -ra left_out <<<"${WEFT_TEST_SKIP-}"
    for text in "${left_out[@]}"; do
        if [[ -n $text && $name == *"$text"* ]]; then
            skip "$name" "left out on purpose (WEFT_TEST_SKIP=$WEFT_TEST_SKIP)"
            return 0
        fi
    done
    registered=$((registered + 1))
    if [[ ${WEFT_TEST_LIST-} == 1 ]]; then echo "case: $name"; return 0; fi
    local log=$LOGDIR/${name//[^A-Za-z0-9_.-]/_}.log t0=$SECONDS rc reason
    timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
    rc=$?
    if [[ $rc -eq 0 ]] && nothing_tested "$log"; then
        echo "# exit 0, but its summary says that nothing was tested" >>"$log"
        rc=1
    fi
    if [[ $rc -eq 0 ]]; then
        pass=$((pass + 1)); echo "ok - $name ($((SECONDS - t0)) s)"
        sub_skips "$name" "$log"
    elif [[ $rc -eq $SKIP_RC ]]; then
        reason=$(sed -n 's/^skip: //p' "$log" | tail -n 1)
        [[ -n $reason ]] || reason=$(grep -av '^[[:space:]]*$' "$log" | tail -n 1)
        skipped=$((skipped + 1)); case_skips=$((case_skips + 1))
        skips+=("$name: ${reason:-exit $SKIP_RC without a reason}")
        echo "# skip - $name: ${reason:-exit $SKIP_RC without a reason} ($((SECONDS - t0)) s)"
    else
        fail=$((fail + 1)); failed_names+=("$name")
        [[ $rc -eq 124 || $rc -eq 137 ]] && echo "# timed out after $limit s" >>"$log"
        echo "not ok - $name (exit $rc, $((SECONDS - t0)) s); last lines of $log:"
        tail -n 25 "$log" | sed 's/^/#   /'
    fi
}

FEATURES=$("$BIN/weft-info" --version 2>/dev/null)

if [[ $PART != integration ]]; then
    # Every tests/unit/test_*.c has a binary that runs: one that is missing fails the run.
    for src in tests/unit/test_*.c; do
        t=$(basename "$src" .c)
        if [[ -x $T/$t ]]; then
            run "unit $t" 300 "$T/$t"
        else
            fail_case "unit $t" "$T/$t was not built (make tests)"
        fi
    done
    # tests/gpu/gpu_check: on a GPU, the device reduction kernels against the host ones, bit
    # for bit. Under the fake CUDA the "kernels" are the host kernels themselves, so the same
    # program checks only what surrounds them: the copies to and from device memory, the
    # stream ordering, offsets and the argument checks; its name says so. Then the fake's own
    # test.
    if [[ -z $GPU ]]; then
        skip_gpu "gpu: reduction kernels match the host kernels"
    elif [[ -z $GPU_NOTE ]]; then
        run "gpu: reduction kernels match the host kernels" 300 "$GPU/tests/gpu_check"
    else
        run "unit test_fakecuda$GPU_NOTE" 300 "$GPU/tests/test_fakecuda"
        fake_gpu_case="gpu: device copies, streams and argument checks of the reduction calls"
        run "$fake_gpu_case (fake CUDA: host kernels on both sides)" 300 "$GPU/tests/gpu_check"
    fi
    # Every fuzz target (tests/fuzz, built with a replay main) runs its seed corpus and the
    # inputs of crashes found and fixed (tests/fuzz/regress), so that a fixed crash stays fixed
    # without clang or libFuzzer. A target without a binary fails the run.
    for src in tests/fuzz/*.c; do
        t=$(basename "$src" .c)
        [[ $t == replay ]] && continue
        name="fuzz replay $t: seed corpus and kept crash inputs"
        if [[ -x $T/fuzz_$t ]]; then
            run "$name" 120 "$T/fuzz_$t" "tests/fuzz/corpus/$t" "tests/fuzz/regress/$t"
        else
            fail_case "$name" "$T/fuzz_$t was not built (make tests)"
        fi
    done
fi

if [[ $PART != unit ]]; then
    export WEFT_TIMEOUT=60
    # An optional library whose development files are installed but that the build left out
    # would turn its cases into skips: that is a failure (the Makefile finds them with
    # pkg-config). WEFT_TEST_WITHOUT=ucx,... accepts a build made without them on purpose.
    run "build: every optional library installed here is built in" 30 bash -c '
        bad=0
        for f in ucx:ucx verbs:libibverbs pmix:pmix; do
            [[ ,${WEFT_TEST_WITHOUT-}, == *,${f%%:*},* ]] && continue
            if pkg-config --exists "${f#*:}" && ! grep -q "${f%%:*}=yes" <<<"$1"; then
                echo "${f#*:} is installed (pkg-config) but the build says ${f%%:*}=no"; bad=1
            else
                echo "${f%%:*}: consistent"
            fi
        done
        exit $bad' _ "$FEATURES"
    run "bootstrap: rendezvous, auth, bad input" 120 "$T/boot_check"
    run "launcher: weft-run" 120 tests/integration/weft_run_check.sh "$BUILD"
    for tp in shm tcp; do
        run "transport $tp: conformance" 300 "$T/transport_check" "$tp"
    done
    # 5 slots of 192 bytes: bodies in spans of 2 slots that wrap at odd places, a full ring
    # at every message from 1 KiB
    run "transport shm: conformance, 5 slots of 192 bytes" 300 \
        env WEFT_SHM_SLOTS=5 WEFT_SHM_SLOT_SIZE=192 "$T/transport_check" shm
    # 6 and 7 ranks: recursive doubling with 2 and 3 extra ranks, rings of odd length.
    for tp in shm tcp; do
        for n in 2 3 4 6 7 8; do
            run "collectives over $tp, $n ranks" 600 "$BIN/weft-run" -n $n --transport $tp \
                "$T/coll_check"
        done
        run "errors over $tp: bad arguments" 120 "$BIN/weft-run" -n 3 --transport $tp \
            "$T/errors_check" args
        run "errors over $tp: dead peer" 120 "$BIN/weft-run" -n 4 --transport $tp \
            "$T/errors_check" dead-peer
        run "errors over $tp: silent peer" 120 env WEFT_TIMEOUT=3 "$BIN/weft-run" -n 3 \
            --transport $tp "$T/errors_check" silent-peer
        run "errors over $tp: ranks disagree on nranks" 120 env WEFT_TIMEOUT=3 \
            "$BIN/weft-run" -n 3 --transport $tp "$T/errors_check" nranks
    done
    # --- api (issue 12): overlapping buffers, int8/uint8 AVG, WEFT_CHECK fingerprints ---
    for tp in shm tcp; do
        run "collectives api over $tp: overlapping buffers refused, in place exact" 120 \
            "$BIN/weft-run" -n 4 --transport $tp "$T/overlap_check"
        run "collectives api over $tp: int8/uint8 AVG without wrap-around" 120 \
            "$BIN/weft-run" -n 4 --transport $tp "$T/avg_check"
        for n in 3 4; do
            run "collectives api over $tp: WEFT_CHECK=1 fingerprints, $n ranks" 120 \
                env WEFT_CHECK=1 "$BIN/weft-run" -n $n --transport $tp "$T/fingerprint_check"
        done
    done
    api_gpu="collectives api on device buffers on a stream"
    if [[ -n $GPU ]]; then
        run "$api_gpu: overlapping buffers refused, in place exact, 3 ranks$GPU_NOTE" 300 \
            "$GPU/bin/weft-run" -n 3 "$GPU/tests/overlap_check" stream
        run "$api_gpu: int8/uint8 AVG staged without wrap-around, 4 ranks$GPU_NOTE" 300 \
            "$GPU/bin/weft-run" -n 4 "$GPU/tests/avg_check" stream
        run "$api_gpu: WEFT_CHECK=1 mismatch is every rank's async error, 3 ranks$GPU_NOTE" 300 \
            env WEFT_CHECK=1 "$GPU/bin/weft-run" -n 3 "$GPU/tests/fingerprint_check" stream
    else
        skip_gpu "$api_gpu"
    fi
    # --- end api ---
    # Faults and hostile input (issue 12; bench/faults.sh runs the full counts): kill -9 of one
    # rank during a 256 MiB allreduce (each survivor: WEFT_ERR_REMOTE within 5 s naming the dead
    # rank and host; no process or /dev/shm segment left), weft_comm_abort from another thread
    # during one, and strangers (noise, wrong secret, replayed handshakes, half a handshake,
    # 1000 connections) on the bootstrap and tcp transport ports while a job sets up.
    for tp in shm tcp; do
        run "faults over $tp: kill -9 one rank during a 256 MiB allreduce, 3 reps" 300 \
            tests/integration/kill_check.sh --build "$BUILD" "$tp" 3
        run "faults over $tp: weft_comm_abort from another thread, 3 reps" 300 \
            tests/integration/abort_check.sh --build "$BUILD" "$tp" 3
    done
    for w in boot tcp; do
        run "faults: strangers on the $w ports during set-up" 300 \
            tests/integration/stranger_check.sh --build "$BUILD" "$w"
    done
    # UCX (built with libucx-dev; used only with --transport ucx): conformance, every collective
    # and the error paths, over UCX's tcp and over its shared-memory transports (posix and sysv
    # for messages, cma for single-copy), then a UCX that cannot start and ranks that have no
    # UCX transport in common. Each must fail on every rank within WEFT_TIMEOUT.
    if "$BIN/weft-info" --version 2>/dev/null | grep -q 'ucx=yes'; then
        for tls in tcp posix,sysv,cma,self; do
            run "transport ucx ($tls): conformance" 300 env UCX_TLS=$tls "$T/transport_check" ucx
            for n in 2 3 4; do
                run "collectives over ucx ($tls), $n ranks" 600 env UCX_TLS=$tls \
                    "$BIN/weft-run" -n $n --transport ucx "$T/coll_check"
            done
            run "errors over ucx ($tls): bad arguments" 120 env UCX_TLS=$tls "$BIN/weft-run" -n 3 \
                --transport ucx "$T/errors_check" args
            run "errors over ucx ($tls): dead peer" 120 env UCX_TLS=$tls "$BIN/weft-run" -n 4 \
                --transport ucx "$T/errors_check" dead-peer
            run "errors over ucx ($tls): silent peer" 120 env UCX_TLS=$tls WEFT_TIMEOUT=3 \
                "$BIN/weft-run" -n 3 --transport ucx "$T/errors_check" silent-peer
            run "weft-perf send_lat -a over ucx ($tls)" 120 env UCX_TLS=$tls "$BIN/weft-run" -n 2 \
                --transport ucx "$BIN/weft-perf" send_lat -a -n 20
            run "weft-perf send_bw -a -b over ucx ($tls)" 120 env UCX_TLS=$tls "$BIN/weft-run" \
                -n 2 --transport ucx "$BIN/weft-perf" send_bw -a -b -n 20
        done
        run "errors over ucx: UCX not initialisable (UCX_TLS=nonexistent)" 120 \
            env UCX_TLS=nonexistent WEFT_TIMEOUT=10 "$BIN/weft-run" -n 3 --transport ucx \
            "$T/errors_check" init-fails ucp_init UCX_TLS=nonexistent
        run "errors over ucx: no UCX transport in common (unreachable peer)" 120 \
            env WEFT_TIMEOUT=10 "$BIN/weft-run" -n 2 --transport ucx sh -c \
            'if [ "$WEFT_RANK" = 0 ]; then export UCX_TLS=tcp; else export UCX_TLS=posix,self; fi
             exec "$0" init-fails "cannot reach rank" ucp_ep_create' "$T/errors_check"
    else
        skip "ucx: conformance, collectives, errors, weft-perf" \
            "this build has no UCX (install libucx-dev and rebuild)"
    fi
    # Issue 12, timeouts: live ranks whose calls can never match (each receives from its
    # neighbour, nobody sends) all fail with WEFT_ERR_TIMEOUT within WEFT_TIMEOUT + 2 s, saying
    # what they waited for, whatever the transport exchanges meanwhile; WEFT_TIMEOUT=20 is
    # longer than every internal period (UCX keepalive 1 s, TCP keepalive idle 9 s at the
    # default WEFT_SOCKET_DEAD_TIMEOUT; verbs probes 0.5 s, in tests/rxe/run.sh). Then a TCP
    # peer whose host vanishes (namespaces, root) is noticed within WEFT_SOCKET_DEAD_TIMEOUT.
    for tp in shm tcp; do
        run "errors over $tp: calls that never match time out" 120 env WEFT_TIMEOUT=20 \
            "$BIN/weft-run" -n 3 --transport $tp "$T/errors_check" never-match
    done
    if "$BIN/weft-info" --version 2>/dev/null | grep -q 'ucx=yes'; then
        for tls in tcp posix,sysv,cma,self; do
            run "errors over ucx ($tls): calls that never match time out" 120 env UCX_TLS=$tls \
                WEFT_TIMEOUT=20 "$BIN/weft-run" -n 3 --transport ucx "$T/errors_check" never-match
        done
    fi
    run "errors over tcp: a vanished host is noticed within WEFT_SOCKET_DEAD_TIMEOUT" 120 \
        tests/integration/tcp_vanish_check.sh "$BUILD"
    run "collectives over shm with single-copy (CMA), 4 ranks" 600 env WEFT_SHM_CMA=1 \
        "$BIN/weft-run" -n 4 --transport shm "$T/coll_check"
    run "mixed: shm and tcp chosen per peer (auto)" 600 "$BIN/weft-run" -n 4 "$T/coll_check" --quick
    # tests/gpu under weft-run: every collective on cudaMalloc'd buffers on a stream (CUDA IPC,
    # the ranks being on one host; pinned host staging), the ranks sharing one GPU; over shm
    # and tcp, with the fallback release (host functions, also as a driver without stream
    # memory operations makes the library pick it), and with WEFT_GPU_IPC=0 in 1 KiB chunks so
    # that the pipelined staging runs many chunks.
    coll_gpu_case="gpu: collectives on device buffers on a stream"
    if [[ -n $GPU ]]; then
        for n in 2 3 4; do
            run "$coll_gpu_case, $n ranks$GPU_NOTE" 600 "$GPU/bin/weft-run" -n $n \
                "$GPU/tests/coll_gpu_check"
        done
        run "$coll_gpu_case, over tcp, 3 ranks$GPU_NOTE" 600 "$GPU/bin/weft-run" -n 3 \
            --transport tcp "$GPU/tests/coll_gpu_check" --quick
        run "$coll_gpu_case, host-function release, 2 ranks$GPU_NOTE" 600 \
            env WEFT_GPU_STREAM_RELEASE=hostfn "$GPU/bin/weft-run" -n 2 \
            "$GPU/tests/coll_gpu_check" --quick
        run "$coll_gpu_case, pipelined staging (WEFT_GPU_IPC=0, 1 KiB chunks), 3 ranks$GPU_NOTE" \
            600 env WEFT_GPU_IPC=0 WEFT_GPU_CHUNK_SIZE=1K "$GPU/bin/weft-run" -n 3 \
            "$GPU/tests/coll_gpu_check" --quick
        if [[ -n $GPU_NOTE ]]; then
            run "$coll_gpu_case, a driver without stream memory operations, 2 ranks$GPU_NOTE" \
                600 env FAKECUDA_NO_WAITVALUE=1 "$GPU/bin/weft-run" -n 2 \
                "$GPU/tests/coll_gpu_check" --quick
            # One rank cannot map its peers' buffers: every rank stages instead, and agrees.
            run "$coll_gpu_case, rank 1 cannot map CUDA IPC handles, 3 ranks$GPU_NOTE" 600 \
                "$GPU/bin/weft-run" -n 3 sh -c '[ "$WEFT_RANK" = 1 ] &&
                    export FAKECUDA_IPC_OPEN_FAIL=1; exec "$0" --quick' \
                "$GPU/tests/coll_gpu_check"
            # CUDA's implicit synchronization taken literally: a pinned allocation while a
            # stream waits for the worker would deadlock (hence the staging pinned up front).
            run "$coll_gpu_case, strict implicit synchronization, 3 ranks$GPU_NOTE" 600 \
                env FAKECUDA_IMPLICIT_SYNC=1 WEFT_GPU_CHUNK_SIZE=1K "$GPU/bin/weft-run" -n 3 \
                "$GPU/tests/coll_gpu_check" --quick
        fi
    else
        skip_gpu "$coll_gpu_case"
    fi
    for c in allreduce allgather reduce_scatter broadcast reduce alltoall sendrecv; do
        run "weft-perf $c checks its results" 300 "$BIN/weft-run" -n 3 "$BIN/weft-perf" $c \
            -b 8 -e 1M -f 16 -n 3 -w 1 -c 1
    done
    run "weft-perf bfloat16 max --json" 120 "$BIN/weft-run" -n 2 "$BIN/weft-perf" allreduce \
        -b 1K -e 64K -f 8 -d bfloat16 -o max -n 2 -w 1 --json
    # weft-perf --gpu: --fake-gpu drives its separate buffers, copies and checks with host
    # memory as the device on any host; the refusals (no GPU: exit 2 with the reason; the
    # point-to-point tests) everywhere; the real sweeps where there is a GPU, the ranks
    # sharing it, skipped with the reason elsewhere.
    for c in allreduce allgather reduce_scatter broadcast reduce alltoall sendrecv; do
        run "weft-perf $c --fake-gpu checks its results" 300 "$BIN/weft-run" -n 3 \
            "$BIN/weft-perf" $c --fake-gpu -b 8 -e 1M -f 16 -n 3 -w 1 -c 1 -r 1
    done
    run "weft-perf --gpu refusals" 120 tests/integration/perf_gpu_check.sh "$BUILD"
    perf_gpu_case="gpu: weft-perf --gpu checks its results"
    if [[ -n $GPU ]]; then
        for c in allreduce allgather reduce_scatter broadcast reduce alltoall sendrecv; do
            run "$perf_gpu_case, $c, 3 ranks$GPU_NOTE" 300 "$GPU/bin/weft-run" -n 3 \
                "$GPU/bin/weft-perf" $c --gpu -b 8 -e 1M -f 16 -n 3 -w 1 -c 1
        done
    else
        skip_gpu "$perf_gpu_case"
    fi
    # perftest-style point-to-point sweeps (2 B .. 8 MiB), each size's data checked on the
    # receiver; small -n keeps each run to seconds.
    for tp in shm tcp; do
        run "weft-perf send_lat -a over $tp" 120 "$BIN/weft-run" -n 2 --transport $tp \
            "$BIN/weft-perf" send_lat -a -n 20
        run "weft-perf send_bw -a -b over $tp" 120 "$BIN/weft-run" -n 2 --transport $tp \
            "$BIN/weft-perf" send_bw -a -b -n 20
    done
    # weft-perf without a launcher (issue 15, docs/perftest.md): perftest's server and client
    # over shm and tcp with the shared secret and its refusal, --json records compared by
    # links --compare, --plot, links --table, fabric's all-pairs check over 4 and 3 ranks.
    run "weft-perf server/client, links, fabric" 120 tests/integration/perf_pair_check.sh \
        "$BUILD"
    run "weft-info lists transports and every knob" 60 tests/integration/info_check.sh "$BUILD"
    run "install, pkg-config, example program" 300 tests/integration/install_check.sh "$BUILD"
    # Key-value exchange (launcher/kvs.c): the PMI-1 and PMI-2 clients against pmi_fake, a
    # process manager that serves them on socketpairs, then MPICH's and Open MPI's own servers
    # where they are installed. Each run checks every rank's values; the faults must give a
    # clear error on every rank within WEFT_TIMEOUT.
    for v in pmi1 pmi2; do
        run "kvs $v: 4 ranks exchange values" 60 "$T/pmi_fake" --$v -n 4 -- "$T/kvs_check" \
            --len 512
        run "kvs $v: server refuses put" 60 "$T/pmi_fake" --$v --fault put:rc -n 2 -- \
            "$T/kvs_check" --expect REMOTE --expect-msg "refused put"
        run "kvs $v: server hangs up in fence" 60 "$T/pmi_fake" --$v --fault fence:close -n 2 \
            -- "$T/kvs_check" --expect REMOTE --expect-msg "closed PMI_FD"
        run "kvs $v: server answers garbage to init" 60 "$T/pmi_fake" --$v --fault init:garble \
            -n 2 -- "$T/kvs_check" --expect REMOTE --expect-msg "to init"
        run "kvs $v: silent server times out" 60 env WEFT_TIMEOUT=2 "$T/pmi_fake" --$v \
            --fault fence:silent -n 3 -- "$T/kvs_check" --expect TIMEOUT \
            --expect-msg "WEFT_TIMEOUT=2"
    done
    run "kvs pmi1: values split to fit vallen_max" 60 "$T/pmi_fake" --pmi1 --vallen 17 -n 3 -- \
        "$T/kvs_check" --len 100
    if command -v mpiexec.mpich >/dev/null 2>&1; then
        run "kvs: MPICH mpiexec (hydra, PMI-1), 3 ranks" 120 mpiexec.mpich -n 3 "$T/kvs_check"
        run "kvs: MPICH mpiexec (hydra, PMI-2), 3 ranks" 120 mpiexec.mpich -n 3 \
            env SLURM_MPI_TYPE=pmi2 "$T/kvs_check"
    else
        skip "kvs: MPICH mpiexec (hydra, PMI-1 and PMI-2), 3 ranks" "mpiexec.mpich is not installed"
    fi
    if command -v mpirun.openmpi >/dev/null 2>&1 && "$BIN/weft-info" --version 2>/dev/null |
        grep -q 'pmix=yes'; then
        run "kvs: Open MPI mpirun (PMIx), 3 ranks" 120 mpirun.openmpi --allow-run-as-root \
            --oversubscribe -np 3 "$T/kvs_check"
    else
        skip "kvs: Open MPI mpirun (PMIx), 3 ranks" "mpirun.openmpi or PMIx support missing"
    fi
    # --- nccl (issue 16): Weft's libnccl.so.2, the NCCL API over include/weft.h ---
    # tests/nccl/nccl_check.c is an NCCL program (nccl.h and the CUDA runtime only) run under
    # weft-run: every call of nccl.h with exact results (all dtypes, float16/bfloat16 as bit
    # patterns, all ops), bad arguments, then WEFT_CHECK=1 mismatches (ncclInvalidUsage), a
    # dead peer (ncclCommGetAsyncError) and ncclCommAbort from another thread. Host buffers
    # without a GPU; device buffers on a stream on a GPU or the fake CUDA. lib_check.sh checks
    # the shared library itself (exports, header as C/C++, nccl.pc, install) and runs
    # nccl_check linked against it; nccl_tests_build.sh builds nccl-tests' own sources with
    # nvcc against nccl.h and libnccl.so.2 (skipped without nvcc).
    WEFT_TEST_CFLAGS_SEEN=${WEFT_TEST_CFLAGS-}
    if [[ -x $T/nccl_check ]]; then
        run "nccl: libnccl.so.2 exports, nccl.h as C/C++, nccl.pc, install, linked run" 300 \
            tests/nccl/lib_check.sh "$BUILD"
        run "nccl: every call of nccl.h on host buffers over shm, 3 ranks" 300 \
            "$BIN/weft-run" -n 3 --transport shm "$T/nccl_check"
        run "nccl: every call of nccl.h on host buffers over tcp (with ncclCommInitAll), 4 ranks" \
            300 "$BIN/weft-run" -n 4 --transport tcp "$T/nccl_check"
        run "nccl: WEFT_CHECK=1 mismatch is ncclInvalidUsage, 3 ranks" 120 env WEFT_CHECK=1 \
            "$BIN/weft-run" -n 3 "$T/nccl_check" mismatch
        run "nccl: a dead peer is ncclRemoteError and the async error, 3 ranks" 120 \
            "$BIN/weft-run" -n 3 "$T/nccl_check" dead-peer
        run "nccl: ncclCommAbort from another thread unblocks a call, 2 ranks" 120 \
            "$BIN/weft-run" -n 2 "$T/nccl_check" abort
        nccl_gpu="nccl: every call of nccl.h on device buffers on a stream"
        if [[ -n $GPU && -x $GPU/tests/nccl_check ]]; then
            run "$nccl_gpu, 4 ranks$GPU_NOTE" 300 "$GPU/bin/weft-run" -n 4 "$GPU/tests/nccl_check"
            run "nccl: every call of nccl.h on device buffers on stream 0 (legacy default), 2 ranks$GPU_NOTE" 300 \
                env NCCL_CHECK_NULL_STREAM=1 "$GPU/bin/weft-run" -n 2 "$GPU/tests/nccl_check"
            run "$nccl_gpu, over tcp (with ncclCommInitAll), 3 ranks$GPU_NOTE" 300 \
                "$GPU/bin/weft-run" -n 3 --transport tcp "$GPU/tests/nccl_check"
            run "nccl: WEFT_CHECK=1 mismatch on a stream is ncclInvalidUsage, 3 ranks$GPU_NOTE" \
                120 env WEFT_CHECK=1 "$GPU/bin/weft-run" -n 3 "$GPU/tests/nccl_check" mismatch
            run "nccl: a dead peer on a stream is the async error, 3 ranks$GPU_NOTE" 120 \
                "$GPU/bin/weft-run" -n 3 "$GPU/tests/nccl_check" dead-peer
            run "nccl: ncclCommAbort releases a stream, 2 ranks$GPU_NOTE" 120 \
                "$GPU/bin/weft-run" -n 2 "$GPU/tests/nccl_check" abort
        else
            skip_gpu "$nccl_gpu"
        fi
        # nvcc's verdict on the header does not depend on a sanitizer: once, unsanitized.
        nccl_nvcc="nccl: nccl-tests sources compile against nccl.h, their calls all exported (nvcc)"
        if [[ $WEFT_TEST_CFLAGS_SEEN == *sanitize* ]]; then
            skip "$nccl_nvcc" "sanitized run: the unsanitized run compiles them (no sanitizer involved)"
        else
            run "$nccl_nvcc" 600 tests/nccl/nccl_tests_build.sh "$BUILD" sendrecv
        fi
    else
        fail_case "nccl: libnccl.so.2 and nccl_check" "$T/nccl_check was not built (make tests)"
    fi
    # --- end nccl ---
    # ---- Python package and weft.torch (issue 13; tests/python, docs/python.md) ----------
    # weft.Comm on plain buffers with the python3 on PATH (NumPy arrays too where it has
    # NumPy), then with /usr/bin/python3 (Debian's python3-numpy); `pip install ./python` into
    # a venv; the torch backend "weft" (Debian's python3-torch 1.13 for /usr/bin/python3):
    # every op against gloo and exactly, async, errors, DDP weft vs gloo, under weft-run at 2
    # and 4 ranks and under env:// ranks started from Python (then tcp:// and file://), each
    # a pytest test (tests/python/test_torch_backend.py). Sanitized builds skip them: Python
    # would need the sanitizer runtime preloaded.
    py_san=""
    [[ ${WEFT_TEST_CFLAGS-} == *-fsanitize* ]] && py_san="a sanitized libweft cannot be loaded into an unsanitized python3"
    py_env=(env WEFT_SO_PATH="$BUILD/lib/libweft.so" PYTHONPATH=python PYTHONDONTWRITEBYTECODE=1)
    sys_py=/usr/bin/python3
    py_cases=("python: weft.Comm, every collective x dtype x op, errors, 3 ranks (python3 on PATH)"
        "python: weft.Comm with NumPy arrays, 2 ranks, torchrun-style RANK/MASTER_ADDR ($sys_py)"
        "python: pip install ./python into a venv, 2-rank allreduce"
        "python torch: every op vs gloo, async, errors, DDP, 2 ranks (weft-run, weft://)"
        "python torch: every op vs gloo, async, errors, DDP, 3 ranks (env:// from Python), then tcp://, file://"
        "python torch: every op vs gloo, async, errors, DDP, 4 ranks (weft-run, weft://)")
    if [[ -n $py_san ]]; then
        for c in "${py_cases[@]}"; do skip "$c" "$py_san"; done
    elif ! command -v python3 >/dev/null 2>&1; then
        for c in "${py_cases[@]}"; do skip "$c" "python3 is not installed"; done
    else
        run "${py_cases[0]}" 120 "${py_env[@]}" "$BIN/weft-run" -n 3 python3 \
            tests/python/comm_check.py
        if "$sys_py" -c 'import numpy' >/dev/null 2>&1; then
            run "${py_cases[1]}" 120 "${py_env[@]}" "$sys_py" tests/python/spawn.py 2 \
                "$sys_py" tests/python/comm_check.py
        else
            skip "${py_cases[1]}" "python3-numpy is not installed for $sys_py (tools/install-deps.sh --ci)"
        fi
        run "${py_cases[2]}" 180 tests/python/venv_check.sh "$BUILD" "$sys_py"
        torch_why=""
        "$sys_py" -c 'import torch.distributed' >/dev/null 2>&1 ||
            torch_why="python3-torch is not installed for $sys_py (tools/install-deps.sh --ci)"
        "$sys_py" -c 'import pytest' >/dev/null 2>&1 ||
            torch_why="${torch_why:-python3-pytest is not installed for $sys_py (tools/install-deps.sh --ci)}"
        pytest_run=(env WEFT_BUILD="$BUILD" "$sys_py" -m pytest -q -p no:cacheprovider -s
            tests/python/test_torch_backend.py -k)
        for i in 3 4 5; do
            [[ -z $torch_why ]] || { skip "${py_cases[$i]}" "$torch_why"; continue; }
            case $i in
                3) sel="test_weft_run and 2" ;;
                4) sel="test_env_tcp_file" ;;
                5) sel="test_weft_run and 4" ;;
            esac
            run "${py_cases[$i]}" 300 "${pytest_run[@]}" "$sel"
        done
    fi
    # SHARP offload (issue 14) against tests/fakesharp, a libsharp_coll double whose "switch"
    # is a shared-memory segment: exact results of every dtype/op and barrier with the offload
    # counted by the fake (a silent fallback fails), the INFO lines of what it cannot take,
    # WEFT_SHARP=1 without the library failing at init, and a refusal on one rank sending every
    # rank to the host algorithms. No SHARP hardware is tested here (docs/sharp.md).
    for n in 2 4; do
        run "sharp: fake switch, WEFT_SHARP=1, every dtype/op and barrier offloaded, $n ranks" 120 \
            tests/integration/sharp_check.sh "$BUILD" offload $n
    done
    run "sharp: no library: WEFT_SHARP=1 fails at init, auto runs on the host, 3 ranks" 60 \
        tests/integration/sharp_check.sh "$BUILD" missing 3
    run "sharp: auto, rank 1's library refuses the group: all on the host, 3 ranks" 120 \
        tests/integration/sharp_check.sh "$BUILD" refused 3
    # --- algorithms (issue 14): every WEFT_ALGO on communicators of 2 to 9 ranks split from
    # one launch (shm), 2 to 5 over tcp, and random draws (size, dtype, op, algorithms, chunk,
    # channels, rank count) from a seed the log prints; bench/algo_random.sh runs many more. ---
    run "algorithms: every WEFT_ALGO, 2 to 9 ranks over shm" 300 "$BIN/weft-run" -n 9 \
        --transport shm "$T/algo_check"
    run "algorithms: every WEFT_ALGO, 2 to 5 ranks over tcp" 300 "$BIN/weft-run" -n 5 \
        --transport tcp "$T/algo_check"
    run "algorithms: 30 random draws, up to 6 ranks" 300 "$BIN/weft-run" -n 6 \
        "$T/algo_check" --random 0 30
    # the sweep again with the ranks on 2 fake hosts, placed cyclically: rings, trees and
    # chains then follow host order, not rank order (hier_check.sh --as-rank sets the host)
    run "algorithms: every WEFT_ALGO, 2 to 6 ranks on 2 fake hosts, cyclic placement" 300 \
        "$BIN/weft-run" -n 6 tests/integration/hier_check.sh --as-rank cyclic:2 "$T/algo_check"
    # --- end algorithms ---
    # --- topology and hierarchy (issue 14, docs/topology.md) ---------------------------------
    # weft-info --topo against /sys; WEFT_BIND lists bind every thread of each rank (local rank
    # i takes list i); bad WEFT_BIND values fail init naming the knob.
    run "topo: weft-info --topo matches /sys" 30 tests/integration/topo_check.sh "$BUILD"
    if (( $(nproc) >= 2 )); then
        run "topo: WEFT_BIND=0:1 binds each rank's threads" 60 env WEFT_BIND=0:1 \
            "$BIN/weft-run" -n 3 "$T/bind_check" list
    else
        skip "topo: WEFT_BIND=0:1 binds each rank's threads" "needs 2 CPUs, this host has 1"
    fi
    run "topo: bad WEFT_BIND values are refused" 60 bash -c '
        for v in 0-x 1,,2 99999 "0:" ; do
            WEFT_BIND=$v "$1/weft-run" -n 2 "$2/bind_check" bad "$v" || exit 1
        done' _ "$BIN" "$T"
    # Hierarchy on fake hosts of this machine (WEFT_HOST_ID; shm inside a fake host, tcp
    # across): allreduce, allgather and reduce_scatter of every dtype/op/awkward count, the
    # ring ordered by host (crossing hosts once per host), the two-level allreduce picked.
    run "hier: 4 ranks, 2 fake hosts, cyclic placement" 120 tests/integration/hier_check.sh \
        "$BUILD" 4 cyclic:2
    run "hier: 6 ranks, 3 fake hosts, block placement (allreduce)" 120 \
        tests/integration/hier_check.sh "$BUILD" 6 block:2 auto allreduce
    run "hier: 5 ranks, uneven fake hosts, WEFT_ALGO=hier falls back to the ring" 120 \
        tests/integration/hier_check.sh "$BUILD" 5 list:0,1,0,0,1 hier allreduce
    # WEFT_NCHANNELS=2: half the data round the ring, half round the reversed ring at once.
    run "channels: WEFT_NCHANNELS=2 ring allreduce, allgather, reduce_scatter, 4 ranks over tcp" 120 \
        tests/integration/channels_check.sh "$BUILD" 4 tcp
    # Multi-node: a real Slurm cluster in network namespaces (tests/slurm/run.sh brings it up
    # and always down). It needs root and namespaces with bridges; elsewhere it is skipped,
    # counted neither passed nor failed.
    slurm_case="slurm: 4-node cluster: srun, sbatch, scancel, mpirun, mpiexec, fabric, hierarchy, faults"
    if wanted "$slurm_case"; then
        slurm_skip=""
        if [[ $(id -u) -ne 0 ]]; then
            slurm_skip="needs root (network namespaces, daemons)"
        elif ! unshare --net sh -c 'ip link add wftprobe0 type bridge && ip link del wftprobe0' \
            >/dev/null 2>&1; then
            slurm_skip="network namespaces with a bridge are not allowed here"
        fi
        if [[ -n $slurm_skip ]]; then
            skip "$slurm_case" "$slurm_skip"
        else
            run "$slurm_case" 900 tests/slurm/run.sh "$BUILD"
        fi
    fi
    # Verbs: a QEMU VM with two soft-RoCE (rdma_rxe) devices (tests/rxe/run.sh boots it once
    # and checks them with ibv_devinfo, ibv_rc_pingpong and perftest, then runs Weft's verbs
    # transport there: conformance, every collective, mixed shm + verbs, the error paths).
    # It needs root; the first run downloads the kernel package and builds the VM's cache.
    rxe_case="rxe: soft-RoCE VM: devices, perftest, Weft over verbs"
    if wanted "$rxe_case"; then
        if [[ $(id -u) -ne 0 ]]; then
            skip "$rxe_case" "needs root (apt-get, and qemu exports / to the guest)"
        else
            run "$rxe_case" 1800 tests/rxe/run.sh "$BUILD"
        fi
    fi
fi

# The verdict. A run fails when a case failed, when none ran, when the runner lost count,
# or when an unfiltered full run registered fewer cases than WEFT_TEST_MIN_CASES.
verdict_bad=()
min=${WEFT_TEST_MIN_CASES:-0}
if [[ -z $FILTER && $PART == all ]] && (( registered < min )); then
    verdict_bad+=("$registered cases registered, fewer than the $min this suite has (WEFT_TEST_MIN_CASES): a block of tests/run-all.sh is gone or was never reached")
fi
if [[ ${WEFT_TEST_LIST-} == 1 ]]; then
    echo "$registered cases ($case_skips of them skipped here)"
    for b in "${verdict_bad[@]}"; do echo "not ok - suite: $b"; done
    (( ${#verdict_bad[@]} == 0 ))
    exit
fi
(( pass + fail == 0 )) && verdict_bad+=("no case ran (${FILTER:+filter \"$FILTER\", }build $BUILD)")
if (( registered != pass + fail + case_skips )); then
    verdict_bad+=("the runner lost count: $registered cases registered, but $pass passed, $fail failed and $case_skips were skipped")
fi
if (( ${#skips[@]} )); then
    echo "# skipped (${#skips[@]}):"
    printf '#   %s\n' "${skips[@]}"
fi
if (( fail )); then
    echo "# failed: ${failed_names[*]}"
    echo "# logs: $LOGDIR"
fi
for b in "${verdict_bad[@]}"; do echo "not ok - suite: $b"; done
echo "$pass passed, $fail failed, $skipped skipped"
(( fail == 0 && ${#verdict_bad[@]} == 0 ))
