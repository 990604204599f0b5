#!/usr/bin/env bash
# vm.sh - run a command inside a throw-away QEMU VM that has real soft-RoCE
# (rdma_rxe) verbs devices, on a host whose own kernel has no RDMA support.
# Weft's copy of the rxe-vm recipe; tests/rxe/run.sh uses it to test verbs code.
#
#   tests/rxe/vm.sh [options] -- COMMAND [ARG...]
#
# The guest boots Debian's stock kernel (linux-image-*-amd64, which builds
# rdma_rxe as a module) with a tiny busybox initramfs, and uses the HOST's root
# filesystem, read-only over virtio-9p, with a tmpfs overlay on top so it looks
# writable (writes are thrown away). The current directory is shared
# read-write at the same path, so programs built on the host run in the guest
# and anything they write there lands on the host. Inside the guest:
#
#   veth0 10.77.0.1 <--veth--> veth1 10.77.0.2      (MTU 9000 -> RoCE MTU 4096)
#   rxe0 on veth0                rxe1 on veth1
#
# and COMMAND runs from the same working directory, with stdout/stderr streamed
# back to the host's stdout/stderr, and the script exits with COMMAND's status.
# Traffic between rxe0 and rxe1 really crosses the veth pair (RoCE v2, UDP
# 4791); the VM has no network card, so nothing leaves the guest.
#
# COMMAND's environment: the host's (minus a few host-only variables), plus
#   RXE_VM=1  RXE_DEV0=rxe0 RXE_DEV1=rxe1  RXE_NETDEV0=veth0 RXE_NETDEV1=veth1
#   RXE_IP0 / RXE_IP1          the two IPv4 addresses
#   RXE_GID_INDEX              RoCE v2 GID index of the IPv4 address (same on
#                              both devices; pass it to perftest's -x, to
#                              ibv_rc_pingpong's -g)
#   RXE_GID_INDEX_LL           RoCE v2 GID index of the IPv6 link-local address
# Out-of-band TCP (perftest, ibv_*_pingpong) can use 127.0.0.1 in the guest.
#
# Options (see usage() below). Exit status: COMMAND's; 124 on --timeout;
# 125 when the VM or the RDMA setup failed (the guest console is printed).
#
# First run: installs missing Debian packages, downloads the kernel .deb with
# apt-get download (never installs it), extracts it and builds the initramfs
# under the cache directory. Later runs reuse the cache.
#
# Needs root (apt-get, and qemu's 9p export of / must read every file).
set -euo pipefail

PROG=weft-rxe-vm
SELF_VERSION=3          # bump to force initramfs rebuilds when stage 1 changes

# ---------------------------------------------------------------- defaults
MEM=2G
SMP=$(nproc 2>/dev/null || echo 2); (( SMP > 4 )) && SMP=4
TIMEOUT=0
VERBOSE=0
INTERACTIVE=0
KEEP=0
CLEAN_ENV=0
NO_RXE=0
MTU=9000
SUBNET=${RXE_VM_SUBNET:-10.77.0}          # guest-internal only
ACCEL=auto
KPKG=${RXE_VM_KERNEL_PKG:-}
CACHE=${RXE_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/weft-rxe-vm}
declare -a SHARES=() ENVS=()

usage() {
  cat <<EOF
Usage: $PROG [options] -- COMMAND [ARG...]
       $PROG [options]                 (no COMMAND: interactive bash in the guest)

Runs COMMAND inside a QEMU VM with soft-RoCE devices rxe0 (veth0, $SUBNET.1) and
rxe1 (veth1, $SUBNET.2) up, from the current directory (shared read-write), and
exits with COMMAND's exit status.

Options:
  --mem SIZE         guest memory (default $MEM)
  --smp N            guest CPUs (default $SMP)
  --timeout SECS     kill the VM after SECS seconds and exit 124 (default: none)
  --rw DIR           also share DIR read-write at the same path (repeatable);
                     the current directory is always shared read-write
  -e, --env NAME[=VALUE]
                     set NAME in the guest (with --clean-env: the only way in)
  --clean-env        do not pass the host environment through
  --mtu N            veth MTU (default $MTU; 9000 gives RoCE active_mtu 4096)
  --no-rxe           boot without creating rxe devices/veths
  -i, --interactive  run COMMAND on the serial console with a terminal
                     (Ctrl-A x kills the VM)
  -v, --verbose      copy the guest console (kernel + setup log) to stderr
  --keep             keep the per-run directory (console.log, qemu.log)
  --accel tcg|kvm|auto   (default auto: kvm only if the CPU shows vmx/svm)
  --kernel-pkg PKG   Debian kernel package (default: what linux-image-amd64
                     depends on, resolved once, then pinned in the cache)
  --cache DIR        cache directory (default $CACHE)
  --prepare          install packages and build the cache, then exit
  -h, --help
Environment: RXE_VM_CACHE, RXE_VM_KERNEL_PKG, RXE_VM_SUBNET (default 10.77.0).
EOF
}

die() { echo "$PROG: $*" >&2; exit 125; }
note() { (( VERBOSE )) && echo "$PROG: $*" >&2; return 0; }
# single-quote a string for POSIX sh (busybox sh sources config.sh)
shq() { local s=${1//\'/\'\\\'\'}; printf "'%s'" "$s"; }
now() { date +%s.%N; }
T_START=$(now)
elapsed() { awk -v a="$T_START" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}'; }

# ---------------------------------------------------------------- arguments
PREPARE_ONLY=0
while (( $# )); do
  case $1 in
    --mem) MEM=$2; shift 2 ;;
    --smp) SMP=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --rw) d=$(realpath -e -- "$2") && [[ -d $d ]] || die "--rw: no such directory: $2"
          SHARES+=("$d"); shift 2 ;;
    -e|--env) ENVS+=("$2"); shift 2 ;;
    --clean-env) CLEAN_ENV=1; shift ;;
    --mtu) MTU=$2; shift 2 ;;
    --no-rxe) NO_RXE=1; shift ;;
    -i|--interactive) INTERACTIVE=1; shift ;;
    -v|--verbose) VERBOSE=1; shift ;;
    --keep) KEEP=1; shift ;;
    --accel) ACCEL=$2; shift 2 ;;
    --kernel-pkg) KPKG=$2; shift 2 ;;
    --cache) CACHE=$2; shift 2 ;;
    --prepare) PREPARE_ONLY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) echo "$PROG: unknown option: $1 (put the command after --)" >&2; usage >&2; exit 125 ;;
  esac
done
declare -a CMD=("$@")
if (( ${#CMD[@]} == 0 && ! PREPARE_ONLY )); then
  CMD=(bash -l); INTERACTIVE=1
fi
(( EUID == 0 )) || die "must run as root (apt-get, and qemu exports / to the guest)"
[[ $(uname -m) == x86_64 ]] || die "only x86_64 hosts are supported"

# ---------------------------------------------------------------- packages
# Host packages. The guest runs the host's own userspace, so everything the
# guest needs (rdma tool, verbs provider for rxe, perftest) is installed here.
# busybox-static is NOT installed (it would replace a dynamic busybox); its
# .deb is unpacked into the cache instead.
NEEDED_PKGS=(qemu-system-x86 cpio kmod xz-utils iproute2 ibverbs-providers
             ibverbs-utils perftest rdmacm-utils)
ensure_packages() {
  local p missing=()
  for p in "${NEEDED_PKGS[@]}"; do
    [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null) == ii* ]] || missing+=("$p")
  done
  (( ${#missing[@]} )) || return 0
  echo "$PROG: installing ${missing[*]}" >&2
  local apt=(apt-get -o DPkg::Lock::Timeout=900 -y -q --no-install-recommends install)
  if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" "${missing[@]}" >&2; then
    apt-get -o DPkg::Lock::Timeout=900 -q update >&2 || true
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" "${missing[@]}" >&2 \
      || die "apt-get install ${missing[*]} failed"
  fi
}

# apt-get download PKG into the current directory (updates lists once on failure)
apt_download() {
  apt-get -q -o APT::Sandbox::User=root download "$1" >&2 && return 0
  apt-get -o DPkg::Lock::Timeout=900 -q update >&2 || true
  apt-get -q -o APT::Sandbox::User=root download "$1" >&2
}

# ---------------------------------------------------------------- kernel cache
# $CACHE/kernels/<pkg>/ : vmlinux (PVH-bootable ELF, or vmlinuz), kver, config,
#                         modules/lib/modules/<kver>/ (pruned), initrd-<hash>.cpio
# $CACHE/default        : the package chosen the first time (pinned)
# $CACHE/busybox        : static busybox when the host's /bin/busybox is dynamic
KDIR='' KVER='' KIMG=''
# the versioned kernel package linux-image-amd64 currently points at
kernel_pkg() {
  apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}'
}
ensure_kernel() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9
  if [[ -z $KPKG && -s $CACHE/default ]]; then KPKG=$(<"$CACHE/default"); fi
  if [[ -z $KPKG ]]; then
    KPKG=$(kernel_pkg)
    if [[ -z $KPKG ]]; then
      apt-get -o DPkg::Lock::Timeout=900 -q update >&2 || true
      KPKG=$(kernel_pkg)
    fi
    [[ -n $KPKG ]] || die "cannot resolve linux-image-amd64 (apt-cache depends); use --kernel-pkg"
  fi
  KDIR=$CACHE/kernels/$KPKG
  if [[ ! -f $KDIR/.complete ]]; then
    echo "$PROG: preparing kernel $KPKG in $KDIR (once)" >&2
    local tmp; tmp=$(mktemp -d "$CACHE/.tmp.XXXXXX")
    ( cd "$tmp" && apt_download "$KPKG" ) || { rm -rf "$tmp"; die "apt-get download $KPKG failed"; }
    local deb; deb=$(ls "$tmp"/*.deb)
    mkdir "$tmp/x"
    # Unpack without installing. Skip module trees no VM can use (GPU, sound,
    # wireless, physical NICs and their RDMA drivers, USB, ...): 391M -> ~110M.
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/x" --wildcards \
      --exclude='*/kernel/sound' --exclude='*/kernel/drivers/gpu' \
      --exclude='*/kernel/drivers/media' --exclude='*/kernel/drivers/net/wireless' \
      --exclude='*/kernel/drivers/net/ethernet' --exclude='*/kernel/drivers/infiniband/hw' \
      --exclude='*/kernel/drivers/usb' --exclude='*/kernel/drivers/scsi' \
      --exclude='*/kernel/drivers/staging' --exclude='*/kernel/drivers/iio' \
      --exclude='*/kernel/drivers/hid' --exclude='*/kernel/drivers/input' \
      --exclude='*/kernel/drivers/bluetooth' --exclude='*/kernel/drivers/isdn' \
      --exclude='*/kernel/drivers/hwmon' --exclude='*/kernel/drivers/mtd' \
      --exclude='*/kernel/drivers/comedi' --exclude='*/kernel/drivers/platform' \
      --exclude='*/kernel/drivers/mmc' --exclude='*/kernel/drivers/video' \
      --exclude='./usr/share/doc' \
      || { rm -rf "$tmp"; die "cannot unpack $deb"; }
    local kver; kver=$(ls "$tmp/x/lib/modules")
    [[ -n $kver && -f $tmp/x/boot/vmlinuz-$kver ]] \
      || { rm -rf "$tmp"; die "unexpected layout in $deb"; }
    mkdir -p "$tmp/k/modules/lib/modules"
    mv "$tmp/x/lib/modules/$kver" "$tmp/k/modules/lib/modules/"
    depmod -b "$tmp/k/modules" "$kver" || { rm -rf "$tmp"; die "depmod failed"; }
    cp "$tmp/x/boot/config-$kver" "$tmp/k/config"
    # The bzImage's payload is an ELF vmlinux with a PVH entry note: QEMU can
    # boot it directly, skipping the in-guest xz decompression (~3 s under TCG).
    extract_vmlinux "$tmp/x/boot/vmlinuz-$kver" "$tmp/k/vmlinux" \
      || cp "$tmp/x/boot/vmlinuz-$kver" "$tmp/k/vmlinuz"
    echo "$kver" > "$tmp/k/kver"
    dpkg-deb -f "$deb" Version > "$tmp/k/version"
    touch "$tmp/k/.complete"
    rm -rf "$KDIR"; mkdir -p "$CACHE/kernels"; mv "$tmp/k" "$KDIR"; rm -rf "$tmp"
  fi
  [[ -s $CACHE/default ]] || echo "$KPKG" > "$CACHE/default"
  KVER=$(<"$KDIR/kver")
  if [[ -f $KDIR/vmlinux ]]; then KIMG=$KDIR/vmlinux; else KIMG=$KDIR/vmlinuz; fi
}

# extract_vmlinux BZIMAGE OUT: find the compressed payload by its magic and
# decompress it; keep the result only if it is an ELF with a Xen PVH note.
extract_vmlinux() {
  local img=$1 out=$2 magic tool off
  for magic in 'xz:\xFD7zXZ\x00' 'zstd:\x28\xB5\x2F\xFD' 'gzip:\x1F\x8B\x08'; do
    tool=${magic%%:*}
    command -v "$tool" >/dev/null || continue
    off=$(LC_ALL=C grep -obUaP -m1 "${magic#*:}" "$img" 2>/dev/null | head -1 | cut -d: -f1) || true
    [[ -n $off ]] || continue
    tail -c +$((off + 1)) "$img" | "$tool" -dc > "$out" 2>/dev/null || true
    if [[ $(head -c 4 "$out" 2>/dev/null | od -An -c | tr -d ' ') == 177ELF ]] \
       && LC_ALL=C grep -qa 'Xen' "$out"; then
      return 0
    fi
    rm -f "$out"
  done
  return 1
}

BUSYBOX=
ensure_busybox() {
  if [[ -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1; then   # static?
    BUSYBOX=/bin/busybox; return
  fi
  BUSYBOX=$CACHE/busybox/bin/busybox
  [[ -x $BUSYBOX ]] && return
  local tmp; tmp=$(mktemp -d "$CACHE/.tmp.XXXXXX")
  ( cd "$tmp" && apt_download busybox-static ) \
    || { rm -rf "$tmp"; die "apt-get download busybox-static failed"; }
  dpkg-deb -x "$tmp"/busybox-static_*.deb "$tmp/x"
  mkdir -p "$CACHE/busybox/bin"; cp "$tmp/x/bin/busybox" "$BUSYBOX"; rm -rf "$tmp"
}

# ---------------------------------------------------------------- stage 1 (initramfs /init)
# PID 1 in the guest, run by busybox sh. Loads the few modules needed to reach
# the host's files, builds the root (9p host / read-only + tmpfs overlay),
# mounts the shares, then chroots into it to run stage 2 (guest.sh, bash).
# When stage 2 returns it records the status and resets the VM (QEMU runs
# with -no-reboot, so a reset ends QEMU).
STAGE1=$(cat <<'STAGE1_EOF'
#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
R=/newroot
fatal() {
  echo "rxe-vm(stage1): $*"
  [ -d /ctl/. ] && echo 125 > /ctl/status 2>/dev/null
  sync; reboot -f; sleep 10
}
for m in $(cat /modules/order); do insmod "/modules/$m" || fatal "insmod $m failed"; done
O9="trans=virtio,version=9p2000.L,msize=512000"
mount -t 9p -o "$O9,cache=none" rxectl /ctl || fatal "cannot mount the control share"
. /ctl/config.sh
mount -t 9p -o "$O9,ro,cache=loose" rxeroot /lower || fatal "cannot mount the host root over 9p"
mount -t tmpfs -o mode=755 tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay $R \
  || fatal "cannot mount the overlay root"
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts $R/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $R/dev/shm
mount -t tmpfs -o mode=1777 tmpfs $R/tmp
mount -t tmpfs -o mode=755 tmpfs $R/run
mkdir -p $R/run/rxe-vm $R/run/lock "$R/usr/lib/modules/$RXE_VM_KVER"
mount --bind /ctl $R/run/rxe-vm
mount --bind "/lower$RXE_VM_MODDIR" "$R/usr/lib/modules/$RXE_VM_KVER" \
  || fatal "cannot bind the module tree"
i=0
while [ "$i" -lt "$RXE_VM_NSHARES" ]; do
  eval "d=\$RXE_VM_SHARE_$i"
  mkdir -p "$R$d" && mount -t 9p -o "$O9,cache=mmap" "rxes$i" "$R$d" \
    || fatal "cannot mount share $d"
  i=$((i + 1))
done
# Kernel-requested module loads (crypto crc32 for rxe, net-pf-*, ...) run
# /sbin/modprobe in the initramfs; it forwards to the host's kmod in the root.
echo /sbin/modprobe > /proc/sys/kernel/modprobe
echo "rxe-vm(stage1): root ready at $(cut -d' ' -f1 /proc/uptime)s"
chroot $R /bin/bash /run/rxe-vm/guest.sh
rc=$?
[ -s /ctl/status ] || echo "$rc" > /ctl/status
sync
reboot -f
sleep 10
STAGE1_EOF
)
MODPROBE_HELPER='#!/bin/sh
exec /bin/chroot /newroot /sbin/modprobe "$@"'
BOOT_MODULES=(virtio_pci virtio_console 9pnet_virtio 9p overlay)

INITRD=
ensure_initrd() {
  local mods
  mods=$(for m in "${BOOT_MODULES[@]}"; do
           modprobe -C /dev/null -d "$KDIR/modules" -S "$KVER" --show-depends "$m" \
             || die "module $m not found in $KPKG"
         done | awk '$1=="insmod"{print $2}' | awk '!seen[$0]++')
  local hash; hash=$( { echo "$SELF_VERSION"; echo "$STAGE1"; echo "$MODPROBE_HELPER";
                        echo "$mods"; cksum < "$BUSYBOX"; } | cksum | cut -d' ' -f1)
  INITRD=$KDIR/initrd-$hash.cpio
  [[ -f $INITRD ]] && return
  local tmp; tmp=$(mktemp -d "$CACHE/.tmp.XXXXXX")
  mkdir -p "$tmp"/{bin,sbin,proc,sys,dev,ctl,lower,rw,newroot,modules}
  cp "$BUSYBOX" "$tmp/bin/busybox"
  ln -s busybox "$tmp/bin/sh"
  printf '%s\n' "$STAGE1" > "$tmp/init"
  printf '%s\n' "$MODPROBE_HELPER" > "$tmp/sbin/modprobe"
  chmod 755 "$tmp/init" "$tmp/sbin/modprobe"
  local p
  while read -r p; do
    cp "$p" "$tmp/modules/"; basename "$p" >> "$tmp/modules/order"
  done <<< "$mods"
  ( cd "$tmp" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet ) > "$INITRD.tmp"
  mv "$INITRD.tmp" "$INITRD"
  rm -rf "$tmp"
  # drop initramfs images of older script versions
  find "$KDIR" -maxdepth 1 -name 'initrd-*.cpio' ! -path "$INITRD" -delete
}

# ---------------------------------------------------------------- stage 2 (guest.sh)
# Runs in the guest as root, chrooted into the overlay root, with bash from
# the host's filesystem. Sets up veth + rxe, then runs the command.
STAGE2=$(cat <<'STAGE2_EOF'
#!/bin/bash
set -u
. /run/rxe-vm/config.sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
exec </dev/null
up() { cut -d' ' -f1 /proc/uptime; }
say() { echo "rxe-vm(guest): $*"; }
fail() {
  say "SETUP FAILED: $*"
  dmesg | tail -n 20
  echo 125 > /run/rxe-vm/status
  exit 125
}
ulimit -l unlimited 2>/dev/null
ulimit -c 0
hostname rxe-vm   # the kernel's default "(none)" breaks Open MPI's node-name parser
: > /run/rxe-vm/rxe.env
if [ "$RXE_VM_NO_RXE" != 1 ]; then
  S=$RXE_VM_SUBNET; IP0=$S.1; IP1=$S.2
  modprobe -a rdma_rxe ib_uverbs rdma_ucm veth || fail "modprobe rdma_rxe ib_uverbs rdma_ucm veth"
  # Both veth ends live in one network namespace (6.1's rxe only listens in
  # the initial one). By default the kernel would deliver $IP0 -> $IP1 over
  # 'lo', which rxe cannot use for two different devices. Policy routing makes
  # packets sent by rxe0 (which routes with oif=veth0) leave through veth0 and
  # arrive on veth1, and vice versa; accept_local lets the receiver accept a
  # source address that is local.
  for k in all default; do
    echo 1 > /proc/sys/net/ipv4/conf/$k/accept_local
    echo 0 > /proc/sys/net/ipv4/conf/$k/rp_filter
    echo 0 > /proc/sys/net/ipv6/conf/$k/accept_dad
  done
  ip -batch - <<EOF || fail "ip setup"
link set lo up
link add veth0 mtu $RXE_VM_MTU type veth peer name veth1 mtu $RXE_VM_MTU
addr add $IP0/24 dev veth0
addr add $IP1/24 dev veth1
link set veth0 up
link set veth1 up
rule add pref 1000 lookup local
rule del pref 0
rule add pref 100 oif veth0 lookup 100
rule add pref 101 oif veth1 lookup 101
route add $IP1/32 dev veth0 src $IP0 table 100
route add $IP0/32 dev veth1 src $IP1 table 101
EOF
  rdma link add rxe0 type rxe netdev veth0 || fail "rdma link add rxe0"
  rdma link add rxe1 type rxe netdev veth1 || fail "rdma link add rxe1"
  # GIDs appear asynchronously; find the RoCE v2 entries for IPv4 and link-local.
  hex4() { local IFS=.; set -- $1; printf '%02x%02x:%02x%02x' "$1" "$2" "$3" "$4"; }
  gid_index() { # DEV GID-PATTERN -> index (bash builtins only: forks are slow under TCG)
    local i g t d=/sys/class/infiniband/$1/ports/1
    for i in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
      { read -r g < $d/gids/$i && read -r t < $d/gid_attrs/types/$i; } 2>/dev/null || continue
      [[ $t == "RoCE v2" && $g == $2 ]] && { echo $i; return 0; }
    done
    return 1
  }
  for n in $(seq 100); do
    G0=$(gid_index rxe0 "0000:0000:0000:0000:0000:ffff:$(hex4 $IP0)") &&
    G1=$(gid_index rxe1 "0000:0000:0000:0000:0000:ffff:$(hex4 $IP1)") &&
    L0=$(gid_index rxe0 'fe80:*') && L1=$(gid_index rxe1 'fe80:*') && break
    sleep 0.1
  done
  [ -n "${G1:-}" ] && [ -n "${L1:-}" ] || fail "rxe GIDs did not appear"
  [ "$G0" = "$G1" ] || say "warning: IPv4 GID index differs: rxe0 $G0, rxe1 $G1"
  cat > /run/rxe-vm/rxe.env <<EOF
export RXE_VM=1
export RXE_DEV0=rxe0 RXE_DEV1=rxe1 RXE_NETDEV0=veth0 RXE_NETDEV1=veth1
export RXE_IP0=$IP0 RXE_IP1=$IP1
export RXE_GID_INDEX=$G0 RXE_GID_INDEX_LL=$L0
EOF
  say "rxe0/veth0 $IP0, rxe1/veth1 $IP1, IPv4 GID index $G0," \
      "link-local GID index $L0; ready at $(up)s"
else
  ip link set lo up
  echo "export RXE_VM=1" > /run/rxe-vm/rxe.env
fi
# The command: environment and argv prepared by the host (bash printf %q).
. /run/rxe-vm/cmd.sh
. /run/rxe-vm/rxe.env
cd -- "$RXE_VM_CWD" || fail "cannot cd to $RXE_VM_CWD"
port() {
  local f
  for f in /sys/class/virtio-ports/*/name; do
    [ "$(cat "$f")" = "$1" ] && { f=${f%/name}; echo "/dev/${f##*/}"; return 0; }
  done
  return 1
}
if [ "$RXE_VM_INTERACTIVE" = 1 ]; then
  stty -F /dev/ttyS0 sane rows "$RXE_VM_ROWS" cols "$RXE_VM_COLS" 2>/dev/null
  setsid -w -c "${RXE_VM_ARGV[@]}" <>/dev/ttyS0 >&0 2>&0
  rc=$?
else
  OUT=$(port rxevm.out) && ERR=$(port rxevm.err) || fail "virtio-serial ports missing"
  "${RXE_VM_ARGV[@]}" >"$OUT" 2>"$ERR"
  rc=$?
fi
say "command exited with $rc at $(up)s"
echo "$rc" > /run/rxe-vm/status
exit "$rc"
STAGE2_EOF
)

# ---------------------------------------------------------------- run
ensure_packages
mkdir -p "$CACHE"
ensure_kernel
ensure_busybox
ensure_initrd
exec 9>&-               # release the cache lock taken in ensure_kernel
if (( PREPARE_ONLY )); then
  echo "$PROG: ready: kernel $KVER ($KPKG $(<"$KDIR/version")), image $KIMG, initrd $INITRD" >&2
  exit 0
fi
note "cache ready at $(elapsed)s (kernel $KVER)"

CWD=$(pwd -P)
RUN=$(mktemp -d "${TMPDIR:-/tmp}/rxe-vm.XXXXXX")
mkdir "$RUN/ctl"
declare -a PIDS=()
QPID=
cleanup() {
  local p
  [[ -n $QPID ]] && kill "$QPID" 2>/dev/null
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  if (( KEEP )); then echo "$PROG: kept $RUN" >&2; else rm -rf "$RUN"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# read-write shares: the working directory first, then --rw directories
declare -a ALLSHARES=()
[[ $CWD != / ]] && ALLSHARES+=("$CWD")
for d in "${SHARES[@]}"; do
  [[ $d == / ]] && die "--rw / is not supported"
  [[ " ${ALLSHARES[*]} " == *" $d "* ]] || ALLSHARES+=("$d")
done

ROWS=24 COLS=80
if (( INTERACTIVE )) && [[ -t 0 ]]; then
  read -r ROWS COLS < <(stty size 2>/dev/null || echo 24 80)
fi
{
  echo "RXE_VM_KVER=$(shq "$KVER")"
  echo "RXE_VM_MODDIR=$(shq "$(realpath "$KDIR/modules/lib/modules/$KVER")")"
  echo "RXE_VM_CWD=$(shq "$CWD")"
  echo "RXE_VM_SUBNET=$(shq "$SUBNET")"
  echo "RXE_VM_MTU=$(shq "$MTU")"
  echo "RXE_VM_NO_RXE=$NO_RXE"
  echo "RXE_VM_INTERACTIVE=$INTERACTIVE"
  echo "RXE_VM_ROWS=${ROWS:-24} RXE_VM_COLS=${COLS:-80}"
  echo "RXE_VM_NSHARES=${#ALLSHARES[@]}"
  for i in "${!ALLSHARES[@]}"; do echo "RXE_VM_SHARE_$i=$(shq "${ALLSHARES[$i]}")"; done
} > "$RUN/ctl/config.sh"
printf '%s\n' "$STAGE2" > "$RUN/ctl/guest.sh"

# cmd.sh: host environment (unless --clean-env), -e settings, and argv
{
  if (( ! CLEAN_ENV )); then
    while IFS= read -r name; do
      case $name in
        BASH*|SHELLOPTS|EUID|UID|PPID|PWD|OLDPWD|SHLVL|_|HOSTNAME|TMPDIR|\
        XDG_RUNTIME_DIR|DBUS_*|SSH_*|DISPLAY|WAYLAND_DISPLAY|COLUMNS|LINES|RXE_VM_*) continue ;;
      esac
      printf 'export %s=%q\n' "$name" "${!name}"
    done < <(compgen -e)
  fi
  for kv in "${ENVS[@]}"; do
    name=${kv%%=*}
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "bad --env name: $name"
    if [[ $kv == *=* ]]; then printf 'export %s=%q\n' "$name" "${kv#*=}"
    elif [[ -v $name ]]; then printf 'export %s=%q\n' "$name" "${!name}"
    fi
  done
  printf 'RXE_VM_ARGV=('; printf '%q ' "${CMD[@]}"; printf ')\n'
} > "$RUN/ctl/cmd.sh"

# accelerator: KVM only where the CPU advertises hardware virtualisation
# (on some nested setups /dev/kvm exists but cannot run a stock kernel)
if [[ $ACCEL == auto ]]; then
  ACCEL=tcg
  if [[ -w /dev/kvm ]] && grep -qwE 'vmx|svm' /proc/cpuinfo; then ACCEL=kvm; fi
fi
case $ACCEL in
  kvm) ACCEL_ARGS=(-accel kvm -cpu host) ;;
  tcg) ACCEL_ARGS=(-accel tcg,thread=multi -cpu max) ;;
  *) die "--accel must be tcg, kvm or auto" ;;
esac

KCMD="console=ttyS0 rdinit=/init panic=-1 pci=noacpi mitigations=off"
KCMD+=" cryptomgr.notests random.trust_cpu=on"
if (( VERBOSE )); then KCMD+=" loglevel=6"; else KCMD+=" quiet loglevel=3"; fi

QEMU=(qemu-system-x86_64 -nodefaults -no-user-config -display none -no-reboot
      -machine pc "${ACCEL_ARGS[@]}" -smp "$SMP" -m "$MEM" -nic none
      -kernel "$KIMG" -initrd "$INITRD" -append "$KCMD"
      -fsdev "local,id=fsroot,path=/,security_model=none,readonly=on,multidevs=remap"
      -device virtio-9p-pci,fsdev=fsroot,mount_tag=rxeroot
      -fsdev "local,id=fsctl,path=$RUN/ctl,security_model=none"
      -device virtio-9p-pci,fsdev=fsctl,mount_tag=rxectl)
for i in "${!ALLSHARES[@]}"; do
  # qemu's option parser splits on ','; a doubled ',,' is a literal comma
  QEMU+=(-fsdev "local,id=fs$i,path=${ALLSHARES[$i]//,/,,},security_model=none,multidevs=remap"
         -device "virtio-9p-pci,fsdev=fs$i,mount_tag=rxes$i")
done

if (( INTERACTIVE )); then
  QEMU+=(-serial mon:stdio)
  note "starting VM ($ACCEL, $SMP cpu, $MEM) at $(elapsed)s"
  set +e
  if (( TIMEOUT > 0 )); then timeout --foreground -k 5 "$TIMEOUT" "${QEMU[@]}" 2>"$RUN/qemu.log"
  else "${QEMU[@]}" 2>"$RUN/qemu.log"; fi
  qrc=$?
  set -e
else
  # Command stdout/stderr travel over two virtio-serial ports into FIFOs that
  # a cat copies to our own stdout/stderr; the serial console goes to
  # console.log (and to stderr with --verbose).
  mkfifo "$RUN/out" "$RUN/err" "$RUN/con"
  cat "$RUN/out" & PIDS+=($!)
  cat "$RUN/err" >&2 & PIDS+=($!)
  if (( VERBOSE )); then tee "$RUN/console.log" < "$RUN/con" >&2 & PIDS+=($!)
  else cat "$RUN/con" > "$RUN/console.log" & PIDS+=($!); fi
  QEMU+=(-device virtio-serial-pci,id=vser
         -chardev "file,id=cout,path=$RUN/out"
         -device virtserialport,bus=vser.0,chardev=cout,name=rxevm.out
         -chardev "file,id=cerr,path=$RUN/err"
         -device virtserialport,bus=vser.0,chardev=cerr,name=rxevm.err
         -serial "file:$RUN/con")
  note "starting VM ($ACCEL, $SMP cpu, $MEM) at $(elapsed)s"
  if (( TIMEOUT > 0 )); then
    timeout -k 5 "$TIMEOUT" "${QEMU[@]}" </dev/null 2>"$RUN/qemu.log" & QPID=$!
  else
    "${QEMU[@]}" </dev/null 2>"$RUN/qemu.log" & QPID=$!
  fi
  set +e; wait "$QPID"; qrc=$?; set -e
  QPID=
  # the readers see EOF when qemu exits; any still blocked in open() never
  # saw qemu open its FIFO: give them a moment, then stop them
  for _ in $(seq 20); do
    alive=0; for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    (( alive )) || break; sleep 0.1
  done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  PIDS=()
fi
note "VM exited (qemu status $qrc) at $(elapsed)s"

if (( TIMEOUT > 0 && (qrc == 124 || qrc == 137) )); then
  echo "$PROG: timed out after ${TIMEOUT}s" >&2
  [[ -f $RUN/console.log ]] && tail -n 20 "$RUN/console.log" >&2
  exit 124
fi
if [[ -s $RUN/ctl/status ]]; then
  rc=$(<"$RUN/ctl/status")
  if [[ $rc == 125 ]] && (( ! VERBOSE )); then
    echo "$PROG: guest setup failed; console:" >&2
    [[ -f $RUN/console.log ]] && tail -n 40 "$RUN/console.log" >&2
  fi
  exit "$rc"
fi
echo "$PROG: the VM stopped without a status (qemu exit $qrc)" >&2
cat "$RUN/qemu.log" >&2 2>/dev/null || true
[[ -f $RUN/console.log ]] && tail -n 40 "$RUN/console.log" >&2
exit 125
