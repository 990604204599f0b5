#!/usr/bin/env bash
# algo_random.sh - many random draws of tests/integration/algo_check (rank count, algorithm
# per collective, chunk size, collective, dtype, op, count, in place), checked exactly.
#   bench/algo_random.sh                 # 2000 draws up to 9 ranks over shm, seed from the clock
#   SEED=123 DRAWS=500 NP=6 TRANSPORT=tcp bench/algo_random.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
NP=${NP:-9}
DRAWS=${DRAWS:-2000}
SEED=${SEED:-0}
TRANSPORT=${TRANSPORT:-shm}
make -s -j2 BUILD="$BUILD" all "$BUILD/tests/algo_check" >&2
exec "$BUILD/bin/weft-run" -n "$NP" --transport "$TRANSPORT" "$BUILD/tests/algo_check" \
    --random "$SEED" "$DRAWS"
