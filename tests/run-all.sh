#!/usr/bin/env bash
# run-all.sh - Weft's test suite: the cmocka unit tests, then multi-rank integration runs of
# every collective over shm and tcp, the launcher, the error paths and the tools. Each case
# runs under a hard timeout, so nothing can hang the suite. Ends with "N passed, M failed".
#   tests/run-all.sh BUILD_DIR [--unit | --integration | ""] [FILTER]
# FILTER keeps the cases whose name contains it, e.g. tests/run-all.sh build "" shm
set -u
BUILD=${1:-build}; shift || true
PART=all
case ${1-} in --unit) PART=unit; shift ;; --integration) PART=integration; shift ;; "") shift || true ;; esac
FILTER=${1:-}
BIN=$BUILD/bin
T=$BUILD/tests
LOGDIR=$BUILD/test-logs
mkdir -p "$LOGDIR"
pass=0; fail=0; failed_names=()
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
    GPU_SKIP="${GPU_SKIP#skip - gpu: }; no fake-CUDA build at $FAKE"
    GPU_SKIP+=" (\`make fakecuda\` builds it; it needs the CUDA headers)"
fi
# skip_gpu CASE: the case has neither a GPU nor a fake-CUDA build.
skip_gpu() {
    [[ -z $FILTER || $1 == *$FILTER* ]] && echo "# skip - $1: $GPU_SKIP"
    return 0
}

# run NAME TIMEOUT CMD...: one test case; its output goes to a log, shown on failure.
# WEFT_TEST_TIME_SCALE multiplies every limit (sanitizer builds run several times slower).
run() {
    local name=$1 limit=$(($2 * ${WEFT_TEST_TIME_SCALE:-1})); shift 2
    [[ -n $FILTER && $name != *$FILTER* ]] && return 0
    local log=$LOGDIR/${name//[^A-Za-z0-9_.-]/_}.log t0=$SECONDS rc
    timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
    rc=$?
    if [[ $rc -eq 0 ]]; then
        pass=$((pass + 1)); echo "ok - $name ($((SECONDS - t0)) s)"
    else
        fail=$((fail + 1)); failed_names+=("$name")
        [[ $rc -eq 124 || $rc -eq 137 ]] && echo "# timed out after $limit s" >>"$log"
        echo "not ok - $name (exit $rc, $((SECONDS - t0)) s); last lines of $log:"
        tail -n 25 "$log" | sed 's/^/#   /'
    fi
}

if [[ $PART != integration ]]; then
    for t in "$T"/test_*; do
        [[ -x $t ]] && run "unit $(basename "$t")" 300 "$t"
    done
    # tests/gpu: the device reductions against the host ones (under the fake, its stand-ins
    # are the host kernels, so this checks its copies and streams), and the fake's own test.
    gpu_case="gpu: reduction kernels match the host kernels"
    if [[ -n $GPU ]]; then
        [[ -n $GPU_NOTE && $GPU != "$BUILD" ]] && run "unit test_fakecuda$GPU_NOTE" 300 \
            "$GPU/tests/test_fakecuda"
        run "$gpu_case$GPU_NOTE" 300 "$GPU/tests/gpu_check"
    else
        skip_gpu "$gpu_case"
    fi
    # --- fuzzsan: every fuzz target (tests/fuzz, built with a replay main) runs its seed
    # corpus and the inputs of crashes found and fixed (tests/fuzz/regress), so that a fixed
    # crash stays fixed without clang or libFuzzer.
    for f in "$T"/fuzz_*; do
        [[ -x $f ]] || continue
        t=${f##*/fuzz_}
        run "fuzz replay $t: seed corpus and kept crash inputs" 120 "$f" "tests/fuzz/corpus/$t" \
            "tests/fuzz/regress/$t"
    done
    # --- end fuzzsan
fi

if [[ $PART != unit ]]; then
    export WEFT_TIMEOUT=60
    run "bootstrap: rendezvous, auth, bad input" 120 "$T/boot_check"
    run "launcher: weft-run" 120 tests/integration/weft_run_check.sh "$BUILD"
    for tp in shm tcp; do
        run "transport $tp: conformance" 300 "$T/transport_check" "$tp"
    done
    for tp in shm tcp; do
        for n in 2 3 4 8; do
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
        echo "# skip - ucx: this build has no UCX (install libucx-dev and rebuild)"
    fi
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
        echo "# skip - kvs under MPICH mpiexec: mpiexec.mpich is not installed"
    fi
    if command -v mpirun.openmpi >/dev/null 2>&1 && "$BIN/weft-info" --version 2>/dev/null |
        grep -q 'pmix=yes'; then
        run "kvs: Open MPI mpirun (PMIx), 3 ranks" 120 mpirun.openmpi --allow-run-as-root \
            --oversubscribe -np 3 "$T/kvs_check"
    else
        echo "# skip - kvs under Open MPI mpirun: mpirun.openmpi or PMIx support missing"
    fi
    # Multi-node: a real Slurm cluster in network namespaces (tests/slurm/run.sh brings it up
    # and always down). It needs root and namespaces with bridges; elsewhere it is skipped,
    # counted neither passed nor failed.
    slurm_case="slurm: 2-node cluster: srun, sbatch, scancel, mpirun, mpiexec"
    if [[ -z $FILTER || $slurm_case == *$FILTER* ]]; then
        slurm_skip=""
        if [[ $(id -u) -ne 0 ]]; then
            slurm_skip="needs root (network namespaces, daemons)"
        elif ! unshare --net sh -c 'ip link add wftprobe0 type bridge && ip link del wftprobe0' \
            >/dev/null 2>&1; then
            slurm_skip="network namespaces with a bridge are not allowed here"
        fi
        if [[ -n $slurm_skip ]]; then
            echo "# skip - $slurm_case: $slurm_skip"
        else
            run "$slurm_case" 900 tests/slurm/run.sh "$BUILD"
        fi
    fi
    # Verbs: a QEMU VM with two soft-RoCE (rdma_rxe) devices (tests/rxe/run.sh boots it once
    # and checks them with ibv_devinfo, ibv_rc_pingpong and perftest, then runs Weft's verbs
    # transport there: conformance, every collective, mixed shm + verbs, the error paths).
    # It needs root; the first run downloads the kernel package and builds the VM's cache.
    rxe_case="rxe: soft-RoCE VM: devices, perftest, Weft over verbs"
    if [[ -z $FILTER || $rxe_case == *$FILTER* ]]; then
        if [[ $(id -u) -ne 0 ]]; then
            echo "# skip - $rxe_case: needs root (apt-get, and qemu exports / to the guest)"
        else
            run "$rxe_case" 1800 tests/rxe/run.sh "$BUILD"
        fi
    fi
fi

if (( fail )); then
    echo "# failed: ${failed_names[*]}"
    echo "# logs: $LOGDIR"
fi
echo "$pass passed, $fail failed"
(( fail == 0 ))
