#!/usr/bin/env bash
# gpu-deps.sh - run HERE (a machine with the Debian/Ubuntu mirrors), before a device call:
# fetches the .debs that the GPU machine (no network, no -dev packages) may lack into
# bench/gpu-deps/ (git ignores it; name it in the device call's carry). bench/gpu.sh unpacks
# them into its build folder, never into /, and only when the header is missing there:
# libsodium (Weft's one required library) and Open MPI's headers (nccl-tests with MPI=1,
# linked against the machine's own libmpi.so.40), and a copy of nccl-tests' sources.
#   bench/gpu-deps.sh
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p gpu-deps
cd gpu-deps
# apt-get download writes as the _apt user where it can; a root-owned folder is fine too.
apt-get download libsodium23 libsodium-dev libopenmpi-dev 2>&1 | grep -v '^W: Download is performed unsandboxed' || true
# nccl-tests' sources (NCCL_TESTS_SRC: a checkout of NVIDIA/nccl-tests), copied here so
# that the device call carries them.
src=${NCCL_TESTS_SRC:-}
if [[ -n $src && -f $src/src/common.h ]]; then
    rm -rf nccl-tests && cp -r "$src" nccl-tests && echo "nccl-tests from $src"
else
    echo "no nccl-tests sources found (NCCL_TESTS_SRC=...): bench/gpu_nccl.sh will say so"
fi
ls -l ./*.deb
du -sh .
