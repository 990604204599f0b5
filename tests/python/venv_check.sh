#!/usr/bin/env bash
# venv_check.sh BUILD [PYTHON] - `pip install ./python` into a fresh virtual environment (in a
# temporary directory, offline: --no-index --no-build-isolation, so setuptools and wheel come
# from the system through --system-site-packages), then a 2-rank allreduce with the installed
# package under weft-run, from a directory where the source tree's package is not importable.
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
PY=${2:-/usr/bin/python3}
cd "$(dirname "$0")/../.."
if ! "$PY" -c 'import setuptools, wheel, venv' 2>/dev/null ||
    ! "$PY" -m pip --version >/dev/null 2>&1; then
    echo "skip: $PY lacks venv, pip, wheel or setuptools (Debian: python3-venv python3-pip"\
        "python3-wheel)"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# No pip of its own (ensurepip takes seconds): the system's pip installs into the venv.
"$PY" -m venv --without-pip --system-site-packages "$tmp/venv"
# The build directory of this run: setup.py records $BUILD/lib in the installed package.
cp -r python "$tmp/src"
BUILD=$BUILD "$tmp/venv/bin/python" -m pip install -q --no-index --no-build-isolation "$tmp/src" \
    2>&1 | grep -v -e '^$' -e 'BetaConfiguration' -e 'warnings.warn' || true
"$tmp/venv/bin/python" -c 'import weft' # fails the case if the install did not happen
cd "$tmp"
loc=$("$tmp/venv/bin/python" -c 'import weft; print(weft.__file__)')
case $loc in "$tmp/venv/"*) ;; *) echo "weft imported from $loc, not the venv"; exit 1 ;; esac
WEFT_SO_PATH= "$BUILD/bin/weft-run" -n 2 "$tmp/venv/bin/python" -c '
import array, weft
c = weft.Comm()
a = array.array("d", [c.rank + 1.0] * 1000)
c.allreduce(a)
assert list(a) == [3.0] * 1000, a[:4]
print("rank %d: allreduce from the venv install (%s, libweft %s): 1 checks passed" %
      (c.rank, weft.__file__, weft.library_path))
c.destroy()
'
