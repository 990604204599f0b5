#!/usr/bin/env bash
# nccl_tests_build.sh - nccl-tests' unmodified sources compile against Weft's nccl.h, and
# what they call is in its libnccl.so.2: the header is source-compatible with what NCCL
# programs expect. The sources are copied to a temporary directory (never built in place).
# By default (CI: seconds) the files that call NCCL (common.cu and the tests named)
# are compiled for PTX only and every nccl* symbol they reference must be exported by
# libnccl.so.2. NCCL_TESTS_FULL=1 (and MPI=1, which implies it) builds the test binaries with
# nccl-tests' own Makefile and links them against libnccl.so.2 (minutes: their verifiable.cu
# alone takes about a minute of nvcc), then runs `-h` (MPI=0).
#   tests/nccl/nccl_tests_build.sh BUILD [TESTS...]   (default: all_reduce sendrecv)
# NCCL_TESTS_SRC: the nccl-tests tree (default: the copy bench/gpu-deps.sh makes in
# bench/gpu-deps/nccl-tests). MPI=1 builds with MPI (mpicc's include and lib).
# Skips (exit 77) without nvcc or without the sources.
set -u
BUILD=${1:?usage: nccl_tests_build.sh BUILD [TESTS...]}
shift
TESTS=("$@")
((${#TESTS[@]})) || TESTS=(all_reduce sendrecv)
here=$(cd "$(dirname "$0")/../.." && pwd)
src=${NCCL_TESTS_SRC:-}
if [[ -z $src ]]; then
    src=$here/bench/gpu-deps/nccl-tests
fi
NVCC=${NVCC:-nvcc}
if ! command -v "$NVCC" >/dev/null 2>&1; then
    echo "skip: nvcc is not installed (nccl-tests are CUDA sources)"
    exit 77
fi
if [[ -z $src || ! -f $src/src/common.h ]]; then
    echo "skip: no nccl-tests sources (set NCCL_TESTS_SRC)"
    exit 77
fi
lib=$(cd "$BUILD/lib/nccl" 2>/dev/null && pwd) || { echo "not ok - no $BUILD/lib/nccl (make nccl)"; exit 1; }
for f in libnccl.so.2 libnccl.so nccl.h; do
    [[ -e $lib/$f ]] || { echo "not ok - $lib/$f is missing (make nccl)"; exit 1; }
done
# NCCL_TESTS_WORK=DIR builds there and keeps it (bench/gpu_nccl.sh runs the binaries after).
if [[ -n ${NCCL_TESTS_WORK:-} ]]; then
    mkdir -p "$NCCL_TESTS_WORK" && work=$(cd "$NCCL_TESTS_WORK" && pwd)
    rm -rf "$work/nccl-tests"
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/weft-nccl-tests.XXXXXX")
    trap 'rm -rf "$work"' EXIT
fi
cp -rp "$src" "$work/nccl-tests" # -p: a rebuild in NCCL_TESTS_WORK is incremental
# An NCCL_HOME as nccl-tests expects it: include/ and lib/.
mkdir -p "$work/home/include" "$work/home/lib"
cp "$lib/nccl.h" "$work/home/include/"
cp -P "$lib/libnccl.so.2" "$lib/libnccl.so" "$work/home/lib/"
cuda_home=$(dirname "$(dirname "$(readlink -f "$(command -v "$NVCC")")")")
if [[ ${NCCL_TESTS_FULL:-0} != 1 && ${MPI:-0} != 1 ]]; then
    # Compile only, the way nccl-tests' Makefile does (its defines, C++ standard, lambdas).
    cd "$work/nccl-tests/src" || exit 1
    files=(common.cu)
    for t in "${TESTS[@]}"; do files+=("$t.cu"); done
    echo "# nvcc -c ${files[*]} against $lib/nccl.h (PTX only)"
    printf '%s\n' "${files[@]}" | xargs -P "${JOBS:-2}" -I{} "$NVCC" -std=c++17 \
        --extended-lambda -DNCCL_OS_LINUX -I"$work/home/include" -I../os -I../verifiable \
        -gencode arch=compute_80,code=compute_80 -c {} -o "$work/{}.o" >"$work/nvcc.log" 2>&1
    if ! grep -q . <(for f in "${files[@]}"; do [[ -f $work/$f.o ]] || echo "$f"; done) &&
        ! grep -q ' error' "$work/nvcc.log"; then
        echo "ok - ${files[*]} compile against Weft's nccl.h"
    else
        echo "not ok - nccl-tests sources do not compile against Weft's nccl.h:"
        grep -B2 -A3 ' error' "$work/nvcc.log" | head -40
        exit 1
    fi
    # nccl-tests' own names (ncclTest*, ncclVerifiable*) are theirs; the rest must be Weft's.
    wanted=$(for f in "${files[@]}"; do nm -u "$work/$f.o"; done | awk '{print $2}' |
        grep '^nccl' | grep -v '^ncclTest\|^ncclVerifiable' | sort -u)
    have=$(nm -D --defined-only "$lib/libnccl.so.2" | awk '{print $3}' | sort -u)
    missing=$(comm -23 <(echo "$wanted") <(echo "$have"))
    if [[ -z $missing ]]; then
        echo "ok - the $(wc -l <<<"$wanted") NCCL calls they make are exported by libnccl.so.2:" \
            "$(tr '\n' ' ' <<<"$wanted")"
        echo "nccl-tests compile: 2 passed, 0 failed"
        exit 0
    fi
    echo "not ok - called by nccl-tests but not in libnccl.so.2: $(tr '\n' ' ' <<<"$missing")"
    exit 1
fi
mpi_args=(MPI=0)
if [[ ${MPI:-0} == 1 ]]; then
    mpi_home=${MPI_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v mpicc)")")")}
    mpi_args=(MPI=1 "MPI_HOME=$mpi_home")
fi
targets=()
for t in "${TESTS[@]}"; do targets+=("$work/build/${t}_perf"); done
# One architecture keeps the compile short; the check is the API, not the code generated.
gencode=${NVCC_GENCODE:--gencode=arch=compute_80,code=sm_80}
echo "# nccl-tests from $src, against $lib (NCCL_HOME=$work/home), ${mpi_args[*]}"
if ! make -C "$work/nccl-tests/src" -j"${JOBS:-2}" "${mpi_args[@]}" NCCL_HOME="$work/home" \
    CUDA_HOME="$cuda_home" NVCC="$NVCC" NVCC_GENCODE="$gencode" BUILDDIR="$work/build" \
    "${targets[@]}"; then
    echo "not ok - nccl-tests do not build against Weft's nccl.h and libnccl.so.2"
    exit 1
fi
fail=0
for t in "${TESTS[@]}"; do
    bin=$work/build/${t}_perf
    # The binary must resolve libnccl.so.2 to Weft's (NEEDED, found through the path given).
    found=$(LD_LIBRARY_PATH="$work/home/lib" ldd "$bin" | awk '$1 == "libnccl.so.2" {print $3}')
    if [[ $found != "$work/home/lib/libnccl.so.2" ]]; then
        echo "not ok - ${t}_perf: libnccl.so.2 resolves to '$found', not Weft's"
        fail=1
        continue
    fi
    if [[ ${MPI:-0} == 1 ]]; then
        echo "ok - ${t}_perf builds (MPI=1) and links Weft's libnccl.so.2"
    elif LD_LIBRARY_PATH="$work/home/lib" timeout 30 "$bin" -h >"$work/$t.help" 2>&1 ||
        grep -q -- '--minbytes' "$work/$t.help"; then
        echo "ok - ${t}_perf builds, links Weft's libnccl.so.2 and runs -h"
    else
        echo "not ok - ${t}_perf -h failed:"
        tail -5 "$work/$t.help"
        fail=1
    fi
done
((fail == 0)) && echo "nccl-tests build: ${#TESTS[@]} passed, 0 failed"
exit $fail
