#!/bin/sh
# install_check.sh - `make install` into a temporary prefix, then the README's example
# program builds with pkg-config against the installed library and runs on 3 ranks.
set -eu
BUILD=${1:-build}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
make --no-print-directory install PREFIX="$dir" BUILD="$BUILD" >"$dir/install.log" 2>&1 ||
    { cat "$dir/install.log"; exit 1; }
export PKG_CONFIG_PATH=$dir/lib/pkgconfig
# WEFT_TEST_CFLAGS: a sanitized library needs its runtime in the program (make test SAN=...).
cc -std=c11 -Wall -Wextra -Werror ${WEFT_TEST_CFLAGS:-} examples/allreduce.c -o "$dir/allreduce" \
    $(pkg-config --cflags --libs weft) -Wl,-rpath,"$dir/lib"
out=$(LD_LIBRARY_PATH=$dir/lib "$dir/bin/weft-run" -n 3 "$dir/allreduce")
echo "$out"
[ "$(echo "$out" | grep -c 'sum 3 (ok)')" -eq 3 ]
