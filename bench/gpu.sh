#!/usr/bin/env bash
# gpu.sh - the GPU machine's one call: builds Weft with CUDA, runs tests/gpu (device
# reductions against the host kernels, bit for bit), runs it again under compute-sanitizer
# memcheck and racecheck when that tool is installed, runs every collective on device buffers
# with 2 to 4 ranks on one GPU (coll_gpu_check), times the reduction kernels against
# cudaMemcpy device-to-device, then runs 2-rank weft-perf --gpu sweeps of every collective
# with both ranks on one GPU, and allreduce at 256 MiB staged (WEFT_GPU_IPC=0) and through CUDA
# IPC, each as a fraction of the IPC algorithm's HBM floor at the measured copy rate.
# Without nvcc or without a GPU it says so and exits 0. Each part is meant to fit one
# 10-minute device call (both build first, incrementally): check (tests/gpu,
# compute-sanitizer, coll_gpu_check, then bench/gpu_nccl.sh: nccl_check, nccl-tests over
# Weft's libnccl.so.2 with MPI=1, PyTorch's "nccl" backend on it), perf (the timings); nccl
# (gpu_nccl.sh alone); all (the default) runs check and perf. It first prints what the machine
# has (compilers, headers, MPI, PyTorch). Without libsodium's headers it unpacks the .debs
# that bench/gpu-deps.sh fetched into bench/gpu-deps/ (carry that folder) into $BUILD, never /.
# Every step has a timeout; check stops starting steps after DEADLINE seconds (default 480).
#   bench/gpu.sh [all|check|perf|nccl]  BUILD=build-gpu BYTES=268435456 ITERS=20 JOBS=$(nproc)
set -uo pipefail
PART=${1:-all}
case $PART in all | check | perf | nccl) ;; *) echo "usage: bench/gpu.sh [all|check|perf|nccl]" >&2; exit 2 ;; esac
START=$(date +%s)
export START DEADLINE=${DEADLINE:-480}

cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build-gpu}
BYTES=${BYTES:-268435456}
ITERS=${ITERS:-20}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

# nvcc is often installed but not on PATH (/usr/local/cuda/bin, /usr/local/cuda-*/bin).
if ! command -v nvcc >/dev/null 2>&1; then
    for d in /usr/local/cuda/bin /usr/local/cuda-*/bin /opt/cuda/bin; do
        [[ -x $d/nvcc ]] && { PATH=$d:$PATH; export PATH; break; }
    done
fi
if ! command -v nvcc >/dev/null 2>&1; then
    echo "skip: gpu: nvcc not found (PATH, /usr/local/cuda*/bin): install the CUDA toolkit"
    exit 77
fi
echo "== nvcc: $(nvcc --version | tail -n 1)"
command -v nvidia-smi >/dev/null 2>&1 &&
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory --format=csv,noheader
# What this machine has, before anything depends on it.
# shellcheck disable=SC1091
echo "== machine: $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"), $(uname -r), $(nproc) cores"
for t in cc gcc clang mpicc mpirun pkg-config compute-sanitizer python3; do
    printf '   %-18s %s\n' "$t" "$(command -v $t >/dev/null 2>&1 && { command -v $t; $t --version 2>&1 | head -n 1; } | tr '\n' ' ' || echo -)"
done
has_header() { printf '#include <%s>\n' "$1" | ${CC:-cc} -E -x c - >/dev/null 2>&1; }
for h in sodium.h mpi.h cmocka.h hwloc.h infiniband/verbs.h ucp/api/ucp.h; do
    printf '   %-18s %s\n' "<$h>" "$(has_header "$h" && echo yes || echo no)"
done
command -v mpicc >/dev/null 2>&1 && echo "   mpicc -showme:incdirs: $(mpicc -showme:incdirs 2>&1 | head -n 1)"
timeout 120 python3 -c 'import torch; print("   torch", torch.__version__, "CUDA", torch.version.cuda, "GPUs", torch.cuda.device_count(), "nccl", torch.cuda.nccl.version())' 2>&1 | tail -n 1
# libsodium (the one library Weft cannot build without): the carried Debian packages,
# unpacked into the build folder, found through CPATH/LIBRARY_PATH/LD_LIBRARY_PATH.
if ! has_header sodium.h; then
    debs=(bench/gpu-deps/*.deb)
    if [[ -f ${debs[0]} ]]; then
        root=$PWD/$BUILD/deps-root
        mkdir -p "$root"
        for d in "${debs[@]}"; do dpkg -x "$d" "$root" || echo "cannot unpack $d"; done
        multi=$(ls -d "$root"/usr/lib/*-linux-gnu 2>/dev/null | head -n 1)
        export CPATH=$root/usr/include${CPATH:+:$CPATH}
        export LIBRARY_PATH=$multi${LIBRARY_PATH:+:$LIBRARY_PATH}
        export LD_LIBRARY_PATH=$multi${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
        echo "   unpacked ${#debs[@]} carried packages into $root: <sodium.h> $(has_header sodium.h && echo found || echo 'still missing')"
    else
        echo "   no <sodium.h> and no bench/gpu-deps/*.deb (bench/gpu-deps.sh fetches them): the build will fail"
    fi
fi

echo "== build ($BUILD)"
t0=$SECONDS
if ! timeout 400 make -s -j"$JOBS" BUILD="$BUILD" all "$BUILD/tests/gpu_check" \
    "$BUILD/tests/coll_gpu_check" "$BUILD/tests/nccl_check" nccl gpu-bench; then
    echo "FAILED: build (missing -dev packages? the Makefile needs libsodium; see README)"
    exit 1
fi
echo "built in $((SECONDS - t0)) s"
"$BUILD/bin/weft-info" --version

echo "== tests/gpu: weft_gpu_reduce against the host kernels"
out=$(timeout 120 "$BUILD/tests/gpu_check" 2>&1)
rc=$?
echo "$out"
if [[ $rc -eq 77 ]]; then
    echo "skip: no GPU here: nothing to check or time"
    exit 77
fi
if [[ $rc -ne 0 ]]; then
    echo "FAILED: tests/gpu (exit $rc)"
    exit 1
fi

status=0
# The checks: the device reductions under compute-sanitizer, then every collective on
# device buffers, the ranks sharing the first visible GPU: through CUDA IPC (one host), then
# staged in pipelined 1 KiB chunks.
coll_check() {
    local out
    echo "== tests/gpu: coll_gpu_check $*"
    out=$(timeout 180 "$BUILD/bin/weft-run" "$@" "$BUILD/tests/coll_gpu_check" 2>&1) || status=1
    grep -v '^ok' <<<"$out" | tail -n 20
}
run_checks() {
    local SAN
    for n in 2 3 4; do
        coll_check -n $n
    done
    WEFT_GPU_IPC=0 WEFT_GPU_CHUNK_SIZE=1K coll_check -n 3 --quick
    # NCCL programs on Weft (issue 16): nccl_check, nccl-tests, PyTorch.
    bench/gpu_nccl.sh "$BUILD" || status=1
    SAN=$(command -v compute-sanitizer ||
        ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -n 1)
    if [[ -n $SAN ]]; then
        for tool in memcheck racecheck; do
            echo "== compute-sanitizer --tool $tool tests/gpu --quick"
            if (($(date +%s) - START > DEADLINE - 60)); then
                echo "NOT RUN (time): compute-sanitizer --tool $tool (DEADLINE=$DEADLINE)"
                continue
            fi
            if timeout 120 "$SAN" --tool "$tool" --error-exitcode 3 "$BUILD/tests/gpu_check" --quick \
                >"$BUILD/sanitizer-$tool.log" 2>&1; then
                tail -n 2 "$BUILD/sanitizer-$tool.log"
            else
                echo "FAILED: $tool (see $BUILD/sanitizer-$tool.log):"
                tail -n 30 "$BUILD/sanitizer-$tool.log"
                status=1
            fi
        done
    else
        echo "# skip - compute-sanitizer: not installed"
    fi
}
if [[ $PART == nccl ]]; then
    bench/gpu_nccl.sh "$BUILD"
    exit
fi
[[ $PART != perf ]] && run_checks
[[ $PART == check ]] && exit $status

echo "== reduction kernels vs cudaMemcpy D2D"
bench_out=$("$BUILD/bench/gpu_reduce_bench" "$BYTES" "$ITERS") || status=1
echo "$bench_out"
# "cudaMemcpy D2D: <ms> ms, <GB/s> GB/s (read + written)": HBM bytes per second of a copy.
copy_gbs=$(sed -n 's/.*cudaMemcpy D2D: [0-9.]* ms, \([0-9.]*\) GB\/s.*/\1/p' <<<"$bench_out")

# Both ranks on the first visible GPU, as several ranks of a job may share one.
gpu=${CUDA_VISIBLE_DEVICES:-0}
gpu=${gpu%%,*}
echo "== weft-perf allreduce --gpu: 2 ranks on GPU $gpu, cudaMalloc'd buffers on a stream;"
echo "   one host, so every collective goes through CUDA IPC (WEFT_GPU_IPC=auto)"
CUDA_VISIBLE_DEVICES=$gpu "$BUILD/bin/weft-run" -n 2 "$BUILD/bin/weft-perf" allreduce --gpu \
    -b 1M -e 256M -f 4 || status=1
for c in broadcast reduce allgather reduce_scatter alltoall; do
    echo "== weft-perf $c --gpu: 2 ranks on GPU $gpu"
    CUDA_VISIBLE_DEVICES=$gpu "$BUILD/bin/weft-run" -n 2 "$BUILD/bin/weft-perf" $c --gpu \
        -b 1M -e 64M -f 8 || status=1
done

# Staged against IPC at 256 MiB, each against the IPC algorithm's floor. Per rank, with n
# ranks and S bytes: the reduce-scatter reads n chunks of S/n and writes 1, the allgather
# reads and writes n-1: HBM bytes per rank = (n+1)*S/n + 2*(n-1)*S/n = (3n-1)*S/n. The ranks
# share one GPU here, so its HBM carries n times that: floor = n*(3n-1)*S/n / copy rate.
N=2
S=$((256 << 20))
echo "== allreduce 256 MiB, $N ranks on GPU $gpu: staged vs CUDA IPC, against the floor"
if [[ -z $copy_gbs ]]; then
    echo "FAILED: no cudaMemcpy D2D rate from gpu_reduce_bench"
    exit 1
fi
floor_us=$(awk -v n=$N -v s=$S -v gbs="$copy_gbs" 'BEGIN { printf "%.1f", n * (3*n - 1) * s / n / (gbs * 1e3) }')
echo "floor: $N x (3x$N-1)/$N x 256 MiB through HBM at $copy_gbs GB/s (cudaMemcpy D2D) = $floor_us us"
printf '| path | time (us) | algbw (GB/s) | floor / time |\n|---|---|---|---|\n'
for mode in 0 auto; do
    out=$(CUDA_VISIBLE_DEVICES=$gpu WEFT_GPU_IPC=$mode "$BUILD/bin/weft-run" -n $N \
        "$BUILD/bin/weft-perf" allreduce --gpu -b 256M -e 256M 2>&1) || { echo "$out"; status=1; continue; }
    # The data row: size count type redop root, then out-of-place time algbw busbw #wrong.
    row=$(grep -v '^#' <<<"$out" | awk 'NF >= 9 { print; exit }')
    t=$(awk '{ print $6 }' <<<"$row")
    bw=$(awk '{ print $7 }' <<<"$row")
    [[ $mode == 0 ]] && name="staged (WEFT_GPU_IPC=0)" || name="CUDA IPC (auto)"
    frac=$(awk -v f="$floor_us" -v t="$t" 'BEGIN { if (t > 0) printf "%.0f%%", 100 * f / t; else print "N/A" }')
    printf '| %s | %s | %s | %s |\n' "$name" "$t" "$bw" "$frac"
done
echo "goal (issue 6): CUDA IPC allreduce at 256 MiB at least 70% of the floor"
exit $status
