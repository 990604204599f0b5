#!/usr/bin/env bash
# lib_check.sh - Weft's libnccl.so.2 as a user gets it: it exports the NCCL API and nothing
# else (every call nccl.h declares, and nothing outside nccl*), nccl.h compiles as C and C++,
# nccl.pc points at it, `make install-nccl` lays out an NCCL_HOME, and tests/nccl/nccl_check.c
# built against the installed header and linked against the shared library (not libweft)
# runs at 2 ranks on host buffers.
#   tests/nccl/lib_check.sh BUILD
set -u
BUILD=${1:?usage: lib_check.sh BUILD}
here=$(cd "$(dirname "$0")/../.." && pwd)
lib=$BUILD/lib/nccl
CC=${CC:-cc}
pass=0 fail=0
ok() { echo "ok - $1"; pass=$((pass + 1)); }
bad() { echo "not ok - $1"; fail=$((fail + 1)); }
work=$(mktemp -d "${TMPDIR:-/tmp}/weft-nccl-lib.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Exports: only nccl*, and every function nccl.h declares.
exports=$(nm -D --defined-only "$lib/libnccl.so.2" | awk '$2 ~ /^[TWiV]$/ {print $3}' | sort)
others=$(grep -v '^nccl' <<<"$exports" || true)
if [[ -z $others ]]; then
    ok "libnccl.so.2 exports only nccl* ($(wc -l <<<"$exports") functions)"
else
    bad "libnccl.so.2 exports other symbols: $(tr '\n' ' ' <<<"$others")"
fi
declared=$(sed -nE 's/^(ncclResult_t|const char \*)[[:space:]]*(nccl[A-Za-z]+)\(.*/\2/p' \
    "$here/nccl/nccl.h" | sort -u)
missing=$(comm -23 <(echo "$declared") <(echo "$exports"))
if [[ -z $missing ]]; then
    ok "every call of nccl.h is exported ($(wc -l <<<"$declared"))"
else
    bad "declared in nccl.h but not exported: $(tr '\n' ' ' <<<"$missing")"
fi
soname=$(objdump -p "$lib/libnccl.so.2" | awk '$1 == "SONAME" {print $2}')
if [[ $soname == libnccl.so.2 ]]; then ok "SONAME libnccl.so.2"; else bad "SONAME is '$soname'"; fi
if [[ $(readlink "$lib/libnccl.so") == libnccl.so.2 ]]; then
    ok "libnccl.so -> libnccl.so.2"
else
    bad "libnccl.so is not a link to libnccl.so.2"
fi

# The header alone, as C (with and without the CUDA headers) and as C++.
printf '#include <nccl.h>\nint main(void) { ncclConfig_t c = NCCL_CONFIG_INITIALIZER;\n'\
'  return (int)sizeof(ncclUniqueId) - 128 + (c.magic != 0xcafebeef) + (NCCL_VERSION_CODE != 22105); }\n' \
    >"$work/h.c"
cp "$work/h.c" "$work/h.cc"
if $CC -std=c11 -Wall -Wextra -Werror -I"$lib" "$work/h.c" -o "$work/h" && "$work/h"; then
    ok "nccl.h compiles as C11 without the CUDA headers; NCCL_CONFIG_INITIALIZER, 128-byte id"
else
    bad "nccl.h as C11"
fi
cuda_inc=""
for d in ${CUDA_HOME:+$CUDA_HOME/include} /usr/local/cuda/include; do
    [[ -f $d/cuda_runtime.h ]] && { cuda_inc=$d; break; }
done
if [[ -n $cuda_inc ]]; then
    if $CC -std=c11 -Wall -Wextra -Werror -I"$lib" -isystem "$cuda_inc" "$work/h.c" -c \
        -o "$work/h.o"; then
        ok "nccl.h compiles as C11 with the CUDA headers ($cuda_inc)"
    else
        bad "nccl.h as C11 with the CUDA headers"
    fi
else
    echo "# skip - nccl.h with the CUDA headers: none installed"
fi
if command -v c++ >/dev/null 2>&1; then
    if c++ -std=c++11 -Wall -Wextra -Werror -I"$lib" "$work/h.cc" -o "$work/hxx" && "$work/hxx"; then
        ok "nccl.h compiles as C++11"
    else
        bad "nccl.h as C++11"
    fi
else
    echo "# skip - nccl.h as C++: no c++ compiler"
fi

# pkg-config, then an install into a staging root.
if command -v pkg-config >/dev/null 2>&1; then
    got="$(PKG_CONFIG_PATH=$lib pkg-config --modversion nccl) $(PKG_CONFIG_PATH=$lib pkg-config --libs nccl)"
    if [[ $got == "2.21.5 -L"*"-lnccl"* ]]; then ok "nccl.pc: $got"; else bad "nccl.pc says '$got'"; fi
fi
if make -C "$here" --no-print-directory -s BUILD="$BUILD" DESTDIR="$work/root" \
    NCCL_PREFIX=/opt/nccl-weft install-nccl >"$work/install.log" 2>&1 &&
    [[ -f $work/root/opt/nccl-weft/lib/libnccl.so.2 && -f $work/root/opt/nccl-weft/include/nccl.h &&
        -L $work/root/opt/nccl-weft/lib/libnccl.so &&
        -f $work/root/opt/nccl-weft/lib/pkgconfig/nccl.pc ]]; then
    ok "make install-nccl NCCL_PREFIX=/opt/nccl-weft: lib/libnccl.so.2, include/nccl.h, nccl.pc"
else
    bad "make install-nccl"
    tail -5 "$work/install.log"
fi

# nccl_check against the shared library: host buffers (no CUDA in this program).
# WEFT_TEST_CFLAGS: the sanitizer of a sanitized build, which the library's runtime needs.
# shellcheck disable=SC2086
if $CC -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror ${WEFT_TEST_CFLAGS:-} -I"$lib" \
    -o "$work/nccl_check" "$here/tests/nccl/nccl_check.c" -L"$lib" \
    -Wl,-rpath,"$(cd "$lib" && pwd)" -lnccl -pthread; then
    found=$(ldd "$work/nccl_check" | awk '$1 == "libnccl.so.2" {print $3}')
    if [[ $(readlink -f "$found") == $(readlink -f "$lib/libnccl.so.2") ]]; then
        ok "nccl_check links Weft's libnccl.so.2 ($found)"
    else
        bad "nccl_check's libnccl.so.2 resolves to '$found'"
    fi
    # Host buffers: the library must see no GPU (a real or a fake one), or it would take
    # stream NULL for CUDA's default stream and these buffers for device memory.
    if CUDA_VISIBLE_DEVICES="" FAKECUDA_DEVICES=0 NCCL_CHECK_ID_FILE=$work/id \
        "$BUILD/bin/weft-run" -n 2 "$work/nccl_check" >"$work/run.log" 2>&1; then
        ok "nccl_check through libnccl.so.2, 2 ranks: $(grep -c 'checks passed, 0 failed' \
            "$work/run.log") ranks clean"
    else
        bad "nccl_check through libnccl.so.2, 2 ranks:"
        grep -a 'not ok' "$work/run.log" | head -10
        tail -3 "$work/run.log"
    fi
else
    bad "nccl_check does not build against nccl.h and libnccl.so.2"
fi
echo "$pass passed, $fail failed"
((fail == 0))
