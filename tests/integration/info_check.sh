#!/bin/sh
# info_check.sh - weft-info prints the version, both transports with their state, and every
# variable of core/config_table.h with its default. Usage: $0 BUILD_DIR
BUILD=${1:-build}
out=$("$BUILD/bin/weft-info") || { echo "weft-info failed"; exit 1; }
echo "$out"
status=0
for word in "weft 0." "build features:" "gpu: " "shm    usable" "tcp    usable" "socket interface:"; do
    echo "$out" | grep -qF "$word" || { echo "missing: $word"; status=1; }
done
for var in $(sed -n 's/^X(\([A-Z_0-9]*\),.*/WEFT_\1/p' core/config_table.h); do
    echo "$out" | grep -q "^$var " || { echo "missing variable: $var"; status=1; }
    grep -q "$var" docs/configuration.md || { echo "docs/configuration.md does not document $var"; status=1; }
done
WEFT_CHUNK_SIZE=12x "$BUILD/bin/weft-info" --config 2>&1 | grep -q 'WEFT_CHUNK_SIZE="12x" is not a valid size' \
    || { echo "a malformed variable is not reported"; status=1; }
exit $status
