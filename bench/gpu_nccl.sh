#!/usr/bin/env bash
# gpu_nccl.sh - Weft under NCCL programs on the GPU machine (bench/gpu.sh runs it after its
# build; issue 16 part 2): tests/nccl/nccl_check on device buffers, nccl-tests built from their
# unmodified sources against Weft's nccl.h and libnccl.so.2 (MPI=1, two ranks on the one GPU:
# all_reduce, all_gather, reduce_scatter, broadcast and sendrecv, 8 B to 256 MiB, -c 1, wrong
# results counted), then PyTorch's "nccl" backend with Weft's libnccl.so.2 in LD_PRELOAD
# (bench/torch_nccl_check.py: every dtype's all_reduce and the other collectives exact, a DDP
# run whose loss must fall). Every step has a timeout; steps stop being started once
# DEADLINE seconds (from START, the epoch second the caller began) have passed, and say so.
#   bench/gpu_nccl.sh BUILD   (env: START, DEADLINE=480, OUT=a folder for nccl-logs.tgz, MPI_HOME,
#   NCCL_TESTS_SRC, NCCL_TESTS_BUILD_TIMEOUT=300, PYTHON=python3)
set -uo pipefail
BUILD=${1:?usage: gpu_nccl.sh BUILD}
cd "$(dirname "$0")/.." || exit 2
START=${START:-$(date +%s)}
DEADLINE=${DEADLINE:-480}
LOGS=$PWD/$BUILD/nccl-logs
mkdir -p "$LOGS"
LIB=$(readlink -f "$BUILD/lib/nccl/libnccl.so.2")
status=0
summary=()
note() { summary+=("$1"); echo "$1"; }
left() { echo $((DEADLINE - ($(date +%s) - START))); }
# step NAME SECONDS: whether there is time for a step of about that long; says so when not.
step() {
    if (($(left) < $2)); then
        note "NOT RUN (time): $1 ($(left) s left of DEADLINE=$DEADLINE)"
        return 1
    fi
    echo "== $1 ($(left) s left)"
}
# tmo SECONDS: a step's timeout, cut so that it ends within a minute after DEADLINE (the
# device call's own limit is 10 minutes; a step killed there would lose what follows).
tmo() {
    local t=$1 l
    l=$(left)
    ((l + 60 < t)) && t=$((l + 60))
    ((t < 20)) && t=20
    echo "$t"
}
gpu=${CUDA_VISIBLE_DEVICES:-0}
gpu=${gpu%%,*}

if [[ ! -f $LIB ]]; then
    echo "FAILED: $BUILD/lib/nccl/libnccl.so.2 is missing (make nccl)"
    exit 1
fi
echo "== Weft's libnccl.so.2: $LIB"
echo "   exports $(nm -D --defined-only "$LIB" | grep -c ' T nccl') nccl* functions; needs:"
ldd "$LIB" | sed 's/^/     /'

# ---- nccl_check: every call of nccl.h on device buffers, 2 and 3 ranks on one GPU ----------
if step "nccl_check (every call of nccl.h, device buffers on a stream)" 60; then
    for n in 2 3; do
        if CUDA_VISIBLE_DEVICES=$gpu timeout "$(tmo 120)" "$BUILD/bin/weft-run" -n $n \
            "$BUILD/tests/nccl_check" >"$LOGS/nccl_check_$n.log" 2>&1; then
            note "ok - nccl_check, $n ranks: $(grep -c ', 0 failed' "$LOGS/nccl_check_$n.log") ranks clean"
        else
            note "FAILED - nccl_check, $n ranks (exit $?): $(grep -a 'not ok' "$LOGS/nccl_check_$n.log" | head -3)"
            tail -n 15 "$LOGS/nccl_check_$n.log"
            status=1
        fi
    done
    for m in mismatch dead-peer abort; do
        if CUDA_VISIBLE_DEVICES=$gpu WEFT_CHECK=$([[ $m == mismatch ]] && echo 1 || echo 0) \
            timeout "$(tmo 60)" "$BUILD/bin/weft-run" -n 2 "$BUILD/tests/nccl_check" $m \
            >"$LOGS/nccl_check_$m.log" 2>&1; then
            note "ok - nccl_check $m, 2 ranks"
        else
            note "FAILED - nccl_check $m, 2 ranks: $(grep -a 'not ok' "$LOGS/nccl_check_$m.log" | head -2)"
            status=1
        fi
    done
fi

# ---- nccl-tests with MPI=1 -----------------------------------------------------------------
# An MPI_HOME with include/mpi.h and lib/libmpi.so: from mpicc (Open MPI's -showme), else the
# headers of the carried libopenmpi-dev (bench/gpu-deps) with the installed libmpi.so.40.
mpi_home() {
    local inc="" libdir="" h=$PWD/$BUILD/mpi-home
    if [[ -n ${MPI_HOME:-} && -f $MPI_HOME/include/mpi.h ]]; then
        echo "$MPI_HOME"
        return
    fi
    if command -v mpicc >/dev/null 2>&1; then
        inc=$(mpicc -showme:incdirs 2>/dev/null | awk '{print $1}')
        libdir=$(mpicc -showme:libdirs 2>/dev/null | awk '{print $1}')
    fi
    [[ -f $inc/mpi.h ]] || inc=$(dirname "$(ls "$BUILD"/deps-root/usr/lib/*/openmpi/include/mpi.h \
        /usr/lib/*/openmpi/include/mpi.h /usr/include/mpi.h 2>/dev/null | head -n 1)" 2>/dev/null)
    local so
    so=$(ls ${libdir:+$libdir/libmpi.so*} /usr/lib/*/openmpi/lib/libmpi.so* \
        /usr/lib/*/libmpi.so.40* 2>/dev/null | head -n 1)
    [[ -f $inc/mpi.h && -n $so ]] || return 1
    rm -rf "$h" && mkdir -p "$h/lib"
    ln -s "$inc" "$h/include"
    ln -s "$so" "$h/lib/libmpi.so"
    echo "$h"
}
NT_BIN=$PWD/$BUILD/nccl-tests/build
TESTS=(all_reduce all_gather reduce_scatter broadcast sendrecv)
MPIRUN=$(command -v mpirun || command -v mpiexec || true)
if step "nccl-tests: build with MPI=1 against Weft's nccl.h and libnccl.so.2" 90; then
    if ! mh=$(mpi_home); then
        note "FAILED - nccl-tests: no MPI (no mpicc, no mpi.h, or no libmpi.so); MPI=1 impossible"
        status=1
    elif [[ -z $MPIRUN ]]; then
        note "FAILED - nccl-tests: no mpirun or mpiexec to start the ranks"
        status=1
    else
        echo "MPI_HOME=$mh ($(readlink -f "$mh/include")/mpi.h, $(readlink -f "$mh/lib/libmpi.so")); $MPIRUN"
        # Every architecture of this GPU only (nvidia-smi's compute_cap: 9.0 -> sm_90).
        cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader -i "$gpu" 2>/dev/null | tr -d ' .')
        gencode="-gencode=arch=compute_${cc:-90},code=sm_${cc:-90}"
        if MPI=1 MPI_HOME=$mh NCCL_TESTS_WORK=$PWD/$BUILD/nccl-tests NVCC_GENCODE="$gencode" \
            JOBS=$(nproc) timeout "${NCCL_TESTS_BUILD_TIMEOUT:-$(tmo 300)}" tests/nccl/nccl_tests_build.sh "$BUILD" "${TESTS[@]}" \
            >"$LOGS/nccl_tests_build.log" 2>&1; then
            note "ok - nccl-tests built (MPI=1, $gencode): ${TESTS[*]}"
        else
            note "FAILED - nccl-tests build (see $LOGS/nccl_tests_build.log)"
            tail -n 30 "$LOGS/nccl_tests_build.log"
            status=1
        fi
    fi
fi
# One test: 2 ranks by mpirun, both on GPU $gpu (NCCL_TESTS_DEVICE), Weft's library first.
nccl_test() {
    local t=$1 log=$LOGS/${1}_perf.log bin=$NT_BIN/${1}_perf
    [[ -x $bin ]] || return 1
    step "nccl-tests ${t}_perf, 2 ranks, 8 B .. 256 MiB, -c 1" 30 || return 0
    timeout "$(tmo 150)" "$MPIRUN" --allow-run-as-root --oversubscribe -np 2 --bind-to none \
        -x NCCL_TESTS_DEVICE="$gpu" -x LD_LIBRARY_PATH="$(dirname "$LIB"):${LD_LIBRARY_PATH:-}" \
        -x WEFT_DEBUG="${WEFT_DEBUG:-WARN}" -x WEFT_TIMEOUT="${WEFT_TIMEOUT:-60}" \
        "$bin" -b 8 -e 256M -f 2 -c 1 -n 5 -w 1 >"$log" 2>&1
    local rc=$? wrong bw
    # "# Out of bounds values : N OK" and the #wrong columns; "# Avg bus bandwidth : X".
    wrong=$(sed -n 's/^# *Out of bounds values *: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
    bw=$(sed -n 's/^# *Avg bus bandwidth *: *\([0-9.]*\).*/\1/p' "$log" | tail -n 1)
    grep -q 'libnccl\|nccl-headers\|NCCL version' "$log" && grep -m 2 'nccl-headers\|NCCL version' "$log"
    if [[ $rc -eq 0 && ${wrong:-x} == 0 ]]; then
        note "ok - ${t}_perf: 0 wrong, avg busbw ${bw:-?} GB/s"
    else
        note "FAILED - ${t}_perf: exit $rc, wrong=${wrong:-unknown} (see $log)"
        tail -n 25 "$log"
        status=1
    fi
    grep -v '^#' "$log" | awk 'NF >= 10' | sed 's/^/    /' | tail -n 13
}

# ---- PyTorch with Weft's libnccl.so.2 preloaded ---------------------------------------------
PY=${PYTHON:-python3}
if step "PyTorch: torch.distributed 'nccl' on Weft (LD_PRELOAD), 2 ranks on GPU $gpu" 60; then
    tinfo=$(timeout 120 "$PY" -c 'import torch, os; print(torch.__version__, torch.version.cuda, os.path.dirname(torch.__file__))' 2>&1)
    if [[ $? -ne 0 ]]; then
        note "FAILED - PyTorch: cannot import torch: $(tail -n 1 <<<"$tinfo")"
        status=1
    else
        read -r tver tcuda tdir <<<"$tinfo"
        echo "torch $tver (CUDA $tcuda) at $tdir"
        tlib=$(ls "$tdir"/lib/libtorch_cuda.so 2>/dev/null | head -n 1)
        if [[ -n $tlib ]]; then
            echo "libtorch_cuda.so needs: $(ldd "$tlib" | grep -i nccl | tr -s ' \t' ' ')"
            # Every nccl* symbol it imports must be in Weft's library: the preloaded library
            # takes the soname libnccl.so.2, so NVIDIA's is never loaded to serve the rest.
            missing=$(comm -23 <(nm -D --undefined-only "$tlib" | awk '{print $2}' |
                grep '^nccl' | sed 's/@.*//' | sort -u) \
                <(nm -D --defined-only "$LIB" | awk '{print $3}' | sort -u))
            imported=$(nm -D --undefined-only "$tlib" | awk '{print $2}' | grep -c '^nccl')
            if [[ -z $missing ]]; then
                note "ok - Weft's libnccl.so.2 has all $imported nccl* symbols libtorch_cuda.so imports"
            else
                note "FAILED - libtorch_cuda.so imports nccl* symbols Weft lacks: $(tr '\n' ' ' <<<"$missing")"
                status=1
            fi
        fi
        if timeout "$(tmo 300)" env LD_PRELOAD="$LIB" WEFT_LIBNCCL="$LIB" PYTHONUNBUFFERED=1 \
            WEFT_TORCH_DEVICE=0 CUDA_VISIBLE_DEVICES="$gpu" WEFT_TIMEOUT="${WEFT_TIMEOUT:-60}" \
            "$PY" -m torch.distributed.run --standalone --nnodes 1 --nproc_per_node 2 \
            bench/torch_nccl_check.py >"$LOGS/torch.log" 2>&1; then
            note "ok - PyTorch on Weft: $(grep -a 'torch_nccl_check: rank 0' "$LOGS/torch.log")"
        else
            note "FAILED - PyTorch on Weft (see $LOGS/torch.log)"
            status=1
        fi
        grep -a '^#\|^not ok' "$LOGS/torch.log" | head -n 30
        grep -a 'torch_nccl_check: rank' "$LOGS/torch.log"
        grep -qa '^not ok\|Error' "$LOGS/torch.log" && tail -n 30 "$LOGS/torch.log"
    fi
fi

# nccl-tests' runs last: PyTorch above takes a minute, each of these a fraction.
if [[ -n $MPIRUN && -d $NT_BIN ]]; then
    for t in "${TESTS[@]}"; do nccl_test "$t"; done
fi

echo "== summary (Weft's NCCL on GPU $gpu; logs in $LOGS)"
printf '  %s\n' "${summary[@]}"
# The device call brings back a few files of $OUT: the logs as one archive.
if [[ -n ${OUT:-} && -d $OUT ]]; then
    printf '%s\n' "${summary[@]}" >"$LOGS/summary.txt"
    tar czf "$OUT/nccl-logs.tgz" -C "$LOGS" . && echo "logs: \$OUT/nccl-logs.tgz"
fi
exit $status
