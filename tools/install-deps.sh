#!/bin/sh
# install-deps.sh - installs the Debian/Ubuntu packages Weft needs to build and test, when
# they are missing. As root it runs apt-get; otherwise it says what to install.
#   tools/install-deps.sh [--ci]     (--ci adds clang, for the second compiler build)
set -eu
pkgs="make gcc pkg-config libsodium-dev libcmocka-dev libpmix-dev iproute2 procps"
[ "${1:-}" = --ci ] && pkgs="$pkgs clang"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "weft: missing packages:$missing" >&2
    echo "weft: install them with: sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "weft: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing >&2 || {
    apt-get -o DPkg::Lock::Timeout=600 update -q >&2
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing >&2
}
