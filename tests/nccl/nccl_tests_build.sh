#!/usr/bin/env bash
# nccl_tests_build.sh - nccl-tests' unmodified sources build against Weft's nccl.h and link
# against its libnccl.so.2: the header is source-compatible with what NCCL programs expect.
# The sources are copied to a temporary directory (never built in place). Compile and link
# only (no GPU needed); `<test>_perf -h` then runs to show the binary loads Weft's library.
#   tests/nccl/nccl_tests_build.sh BUILD [TESTS...]   (default: all_reduce sendrecv)
# NCCL_TESTS_SRC: the nccl-tests tree (default ../shared/third_party/nccl-tests, or
# /work/shared/third_party/nccl-tests). MPI=1 builds with MPI (mpicc's include and lib).
# Skips (exit 77) without nvcc or without the sources.
set -u
BUILD=${1:?usage: nccl_tests_build.sh BUILD [TESTS...]}
shift
TESTS=("$@")
((${#TESTS[@]})) || TESTS=(all_reduce sendrecv)
here=$(cd "$(dirname "$0")/../.." && pwd)
src=${NCCL_TESTS_SRC:-}
if [[ -z $src ]]; then
    for d in "$here/../shared/third_party/nccl-tests" /work/shared/third_party/nccl-tests; do
        [[ -f $d/src/common.h ]] && { src=$d; break; }
    done
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
lib=$BUILD/lib/nccl
for f in libnccl.so.2 libnccl.so nccl.h; do
    [[ -e $lib/$f ]] || { echo "not ok - $lib/$f is missing (make nccl)"; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/weft-nccl-tests.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -r "$src" "$work/nccl-tests"
# An NCCL_HOME as nccl-tests expects it: include/ and lib/.
mkdir -p "$work/home/include" "$work/home/lib"
cp "$lib/nccl.h" "$work/home/include/"
cp -P "$lib/libnccl.so.2" "$lib/libnccl.so" "$work/home/lib/"
cuda_home=$(dirname "$(dirname "$(readlink -f "$(command -v "$NVCC")")")")
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
    if LD_LIBRARY_PATH="$work/home/lib" timeout 30 "$bin" -h >"$work/$t.help" 2>&1 ||
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
