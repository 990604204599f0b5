#!/usr/bin/env bash
# cluster.sh - a real multi-node Slurm 22.05 cluster on one Debian machine, for Weft's tests:
# one slurmctld and N slurmd, each in its own network, UTS and mount namespace.
#
#   tests/slurm/cluster.sh up [--nodes N] [--cpus C]   start (default 2 nodes x 2 CPUs)
#   tests/slurm/cluster.sh down                        stop everything up started, remove netns
#   tests/slurm/cluster.sh status                      daemons and sinfo (exit 3: not up)
#   tests/slurm/cluster.sh env                         prints `export SLURM_CONF=...`
#   tests/slurm/cluster.sh exec NODE CMD...            run CMD "on" NODE (its netns, hostname,
#                                                      /etc/hosts and /dev/shm); NODE ctl = slurmctld
#   tests/slurm/cluster.sh rsh NODE CMD...             the same, called like ssh: the rsh agent of
#                                                      Open MPI (plm_rsh_agent) and MPICH hydra
#                                                      ($WFT_CLUSTER_DIR/bin/rsh wraps it)
#
# Shape (N=2), all on this machine and never routed off it:
#   this netns = login node (srun, sbatch run here)       munged with its own key and socket
#     bridge <P>br0 <S>.1/24
#       |- veth - netns <P>-ctl <S>.2   hostname ctl  slurmctld
#       |- veth - netns <P>-n1  <S>.11  hostname n1   slurmd -N n1
#       `- veth - netns <P>-n2  <S>.12  hostname n2   slurmd -N n2
# Each daemon's mount namespace has the cluster's hosts file over /etc/hosts (node names
# resolve), a sysfs of its own netns on /sys (/sys/class/net shows eth0 and lo), the host's
# cgroup tree bound back (slurmd 22.05 refuses to start without it) and a private /dev/shm
# (shared memory does not leak between nodes). The rest of the filesystem is shared, like a
# cluster's home and scratch. Nodes share one PID namespace and one kernel.
#
# Nothing is written under /etc. Knobs (defaults chosen not to meet a developer's cluster):
#   WFT_CLUSTER_DIR (/tmp/weft-slurm), WFT_CLUSTER_SUBNET (10.213.48: first three octets),
#   WFT_CLUSTER_PREFIX (wft: netns and link names).
# Packages come from tools/install-deps.sh --slurm, which `up` runs (it installs only what is
# missing).
set -euo pipefail

D=${WFT_CLUSTER_DIR:-/tmp/weft-slurm}
D=${D%/}
case $D in /?*/?*) ;; *) echo "WFT_CLUSTER_DIR must be an absolute path two levels deep" >&2; exit 2 ;; esac
SUBNET=${WFT_CLUSTER_SUBNET:-10.213.48}
PFX=${WFT_CLUSTER_PREFIX:-wft}
BR=${PFX}br0
CONF=$D/etc/slurm.conf
CTL=ctl
SELF=$(readlink -f "$0")
REPO=$(cd "$(dirname "$SELF")/../.." && pwd)

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] error: %s\n' "$*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "must run as root (namespaces, mounts, daemons)"; }

# ---- state ---------------------------------------------------------------------------
# Daemon PID files hold the PID that exec'ed into the daemon, so the PID is the daemon's.
pid_alive() { # PIDFILE COMM
    local p
    [ -s "$1" ] || return 1
    p=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$p" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ]
}
load_state() { [ -f "$D/cluster.env" ] && . "$D/cluster.env"; }
node_names() { local i; for ((i = 1; i <= NODES; i++)); do echo "n$i"; done; }
node_ip() { echo "$SUBNET.$((10 + ${1#n}))"; }
our_netns() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$PFX-(ctl|n[0-9]+)$" || true; }

# ---- config --------------------------------------------------------------------------
write_config() {
    mkdir -p "$D/etc" "$D/log" "$D/run" "$D/ctld" "$D/mnt" "$D/bin"
    : >"$D/etc/plugstack.conf" # keeps /etc/slurm/plugstack.conf.d out of this cluster
    local n
    {
        echo "ClusterName=weft"
        echo "SlurmctldHost=$CTL($SUBNET.2)" # an address: the login node resolves no names
        echo "SlurmctldPort=6817"
        echo "SlurmdPort=6818"
        echo "AuthType=auth/munge"
        echo "CredType=cred/munge"
        echo "AuthInfo=socket=$D/munge/run/munge.socket.2"
        echo "SlurmUser=root"
        echo "SlurmdUser=root"
        echo "StateSaveLocation=$D/ctld"
        echo "SlurmdSpoolDir=$D/spool/%n"
        echo "SlurmctldPidFile=$D/run/slurmctld.daemon.pid"
        echo "SlurmdPidFile=$D/run/slurmd-%n.daemon.pid"
        echo "SlurmctldLogFile=$D/log/slurmctld.log"
        echo "SlurmdLogFile=$D/log/slurmd-%n.log"
        echo "SlurmctldDebug=info"
        echo "SlurmdDebug=info"
        # Per node: mpi/pmix creates spmix_appdir_<uid>_<job>.<step> in TmpFS, and nodes that
        # share /tmp fail the second mkdir ("File exists": task launch failed).
        echo "TmpFS=$D/nodes/%n/tmp"
        echo "MailProg=/bin/true"
        echo "ProctrackType=proctrack/linuxproc" # no cgroup enforcement: one kernel for all
        echo "TaskPlugin=task/none"
        echo "JobAcctGatherType=jobacct_gather/none"
        echo "AccountingStorageType=accounting_storage/none"
        echo "JobCompType=jobcomp/filetxt"
        echo "JobCompLoc=$D/log/jobcomp.txt"
        echo "MinJobAge=3600"
        echo "SelectType=select/cons_tres"
        echo "SelectTypeParameters=CR_CPU"
        echo "SchedulerType=sched/backfill"
        echo "MpiDefault=none"
        echo "ReturnToService=2"
        # Unsatisfiable requests fail at submit instead of pending for ever.
        echo "EnforcePartLimits=ALL"
        # Believe CPUs= below, not the hardware: every node shares the machine's cores.
        echo "SlurmdParameters=config_overrides"
        echo "KillWait=5"
        echo "InactiveLimit=0"
        echo "SlurmctldTimeout=30"
        echo "SlurmdTimeout=60"
        echo "PlugStackConfig=$D/etc/plugstack.conf"
        for n in $(node_names); do
            echo "NodeName=$n NodeAddr=$(node_ip "$n") NodeHostname=$n CPUs=$CPUS RealMemory=2048 State=UNKNOWN"
        done
        echo "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
    } >"$CONF"
    {
        echo "127.0.0.1 localhost"
        echo "::1 localhost ip6-localhost ip6-loopback"
        echo "$SUBNET.1 $(hostname) ${PFX}-gw"
        echo "$SUBNET.2 $CTL"
        for n in $(node_names); do echo "$(node_ip "$n") $n"; done
    } >"$D/etc/hosts"
    chmod 644 "$D/etc/hosts" "$CONF"
    # Launchers that want a program path for their rsh agent get this one-file wrapper.
    printf '#!/bin/sh\nexec "%s" rsh "$@"\n' "$SELF" >"$D/bin/rsh"
    chmod 755 "$D/bin/rsh"
}

# ---- network -------------------------------------------------------------------------
net_up() {
    ip -4 -o addr show | awk '{print $2, $4}' | grep -v "^$BR " | grep -q " ${SUBNET//./\\.}\." &&
        die "subnet $SUBNET.0/24 is in use on this machine; set WFT_CLUSTER_SUBNET"
    ip link add "$BR" type bridge || die "cannot create a bridge (needs CAP_NET_ADMIN)"
    ip addr add "$SUBNET.1/24" dev "$BR"
    ip link set "$BR" up
    local n ns veth addr
    for n in ctl $(node_names); do
        ns=$PFX-$n veth=${PFX}v-$n
        [ ${#veth} -le 15 ] || die "interface name $veth is too long; shorten WFT_CLUSTER_PREFIX"
        ip netns add "$ns"
        ip link add "$veth" type veth peer name eth0 netns "$ns"
        ip link set "$veth" master "$BR" up
        if [ "$n" = ctl ]; then addr=$SUBNET.2; else addr=$(node_ip "$n"); fi
        ip -n "$ns" addr add "$addr/24" dev eth0
        ip -n "$ns" link set lo up
        ip -n "$ns" link set eth0 up
        ip -n "$ns" route add default via "$SUBNET.1"
    done
    # A FORWARD DROP policy (Docker's) with br_netfilter would drop bridged traffic.
    if command -v iptables >/dev/null 2>&1 && iptables -S FORWARD 2>/dev/null | grep -q -- '-P FORWARD DROP'; then
        iptables -I FORWARD -i "$BR" -o "$BR" -j ACCEPT && echo 1 >"$D/run/iptables-rule"
    fi
}

net_down() {
    local ns
    for ns in $(our_netns); do
        ip link del "${PFX}v-${ns#"$PFX"-}" 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
    done
    ip link del "$BR" 2>/dev/null || true
    if [ -f "$D/run/iptables-rule" ]; then
        iptables -D FORWARD -i "$BR" -o "$BR" -j ACCEPT 2>/dev/null || true
        rm -f "$D/run/iptables-rule"
    fi
}

# ---- daemons -------------------------------------------------------------------------
# start_in_node NETNS TAG HOSTNAME CMD...: CMD in fresh UTS and mount namespaces, entered
# into netns $PFX-NETNS; $D/run/TAG.pid gets the daemon's PID. Output: $D/log/TAG.out.
# Closing fds 3-9 keeps the daemons off a caller's pipes and off the up/down lock.
start_in_node() {
    local netns=$1 tag=$2 host=$3
    shift 3
    setsid unshare --uts --mount --propagation private \
        "$SELF" _init "$netns" "$tag" "$host" "$@" >"$D/log/$tag.out" 2>&1 </dev/null \
        3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
}

# Stage 1, new UTS and mount namespaces, still in this machine's netns.
cmd__init() {
    local netns=$1 tag=$2 host=$3
    shift 3
    hostname "$host"
    mount --bind "$D/etc/hosts" /etc/hosts
    mount -t tmpfs -o size=25%,mode=1777 tmpfs /dev/shm
    # Keep a handle on the cgroup tree: remounting /sys in stage 2 hides it, and slurmd 22.05
    # exits with "No filesystem mounted on /sys/fs/cgroup" without it.
    mkdir -p "$D/mnt/$tag"
    mount --rbind /sys/fs/cgroup "$D/mnt/$tag"
    exec nsenter --net="/run/netns/$PFX-$netns" "$SELF" _init-net "$tag" "$@"
}

# Stage 2, inside the node's netns: a sysfs of this netns, the cgroup tree bound back.
cmd__init-net() {
    local tag=$1
    shift
    umount -l /sys
    mount -t sysfs sysfs /sys
    mount --rbind "$D/mnt/$tag" /sys/fs/cgroup
    umount -l "$D/mnt/$tag"
    echo $$ >"$D/run/$tag.pid"
    exec "$@"
}

start_munge() {
    mkdir -p "$D/munge/run"
    # munged refuses a socket directory without execute permission for all.
    chmod 711 "$D/munge"
    chmod 755 "$D/munge/run"
    [ -s "$D/munge/munge.key" ] || mungekey --create --keyfile="$D/munge/munge.key" --force
    chmod 600 "$D/munge/munge.key"
    munged --socket="$D/munge/run/munge.socket.2" --key-file="$D/munge/munge.key" \
        --pid-file="$D/munge/run/munged.pid" --log-file="$D/log/munged.log" \
        --seed-file="$D/munge/munged.seed" 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- ||
        die "munged failed to start; see $D/log/munged.log"
}

# wait_for SECONDS PIDFILES CMD...: until CMD succeeds; fails early when a daemon has died.
wait_for() {
    local end=$((SECONDS + $1)) pidfiles=$2 f p
    shift 2
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $end ] || return 1
        for f in $pidfiles; do
            p=$(cat "$f" 2>/dev/null) || continue
            [ -n "$p" ] && [ ! -d "/proc/$p" ] && { log "$(basename "$f" .pid) exited"; return 1; }
        done
        sleep 0.2
    done
}
ctld_up() { scontrol ping 2>/dev/null | grep -q 'is UP'; }
nodes_in() { # STATE-REGEX: every node is in one of these states
    [ "$(sinfo -h -N -o '%N %T' 2>/dev/null | awk -v re="^($1)\$" '$2 ~ re' | wc -l)" -eq "$NODES" ]
}
nodes_idle() { nodes_in idle; }

all_alive() {
    local n
    pid_alive "$D/munge/run/munged.pid" munged || return 1
    pid_alive "$D/run/slurmctld.pid" slurmctld || return 1
    for n in $(node_names); do pid_alive "$D/run/$n.pid" slurmd || return 1; done
}

# ---- commands ------------------------------------------------------------------------
cmd_up() {
    local want_nodes=2 want_cpus=2
    while [ $# -gt 0 ]; do
        case $1 in
        --nodes) want_nodes=$2; shift 2 ;;
        --cpus) want_cpus=$2; shift 2 ;;
        *) die "unknown option for up: $1" ;;
        esac
    done
    [[ $want_nodes =~ ^[1-9][0-9]?$ ]] || die "--nodes 1..99"
    [[ $want_cpus =~ ^[1-9][0-9]*$ ]] || die "--cpus must be a positive integer"
    if load_state && [ "$NODES" = "$want_nodes" ] && [ "$CPUS" = "$want_cpus" ] && all_alive; then
        export SLURM_CONF=$CONF
        if ctld_up && nodes_in 'idle|mixed|allocated|completing'; then
            log "already up ($NODES nodes)"
            cmd_env
            return 0
        fi
    fi
    if [ -f "$D/cluster.env" ] || [ -n "$(our_netns)" ]; then
        log "tearing down the previous cluster first"
        cmd_down
    fi
    "$REPO/tools/install-deps.sh" --slurm >&2 || die "packages missing (tools/install-deps.sh --slurm)"
    local b t0=$SECONDS
    for b in slurmctld slurmd munged scontrol sinfo unshare nsenter ip; do
        command -v $b >/dev/null || die "$b not found"
    done
    NODES=$want_nodes CPUS=$want_cpus
    # Fresh state every time: job ids restart at 1.
    rm -rf "${D:?}/ctld" "${D:?}/spool" "${D:?}/nodes" "${D:?}/run" "${D:?}/mnt" "${D:?}/log"
    mkdir -p "$D/run" "$D/log"
    printf 'NODES=%s\nCPUS=%s\n' "$NODES" "$CPUS" >"$D/cluster.env"
    trap 'log "up failed: stopping what was started (logs: $D/log)"; cmd_down' EXIT
    write_config
    local n
    for n in $(node_names); do mkdir -p "$D/spool/$n" "$D/nodes/$n/tmp"; done
    export SLURM_CONF=$CONF
    net_up
    start_munge
    start_in_node ctl slurmctld "$CTL" slurmctld -D -i -f "$CONF"
    wait_for 30 "$D/run/slurmctld.pid" ctld_up ||
        { tail -20 "$D/log/slurmctld.log" >&2 || true; die "slurmctld did not come up"; }
    for n in $(node_names); do start_in_node "$n" "$n" "$n" slurmd -D -N "$n" -f "$CONF"; done
    if ! wait_for 60 "$(for n in $(node_names); do echo "$D/run/$n.pid"; done)" nodes_idle; then
        sinfo -N >&2 || true
        tail -5 "$D"/log/slurmd-*.log >&2 || true
        die "nodes did not become idle (a firewall on the bridge? logs in $D/log)"
    fi
    trap - EXIT
    log "up in $((SECONDS - t0)) s: $NODES nodes x $CPUS CPUs on $SUBNET.0/24, state in $D"
    cmd_env
}

# group_pids PIDFILE COMM: the daemon and every process in its mount namespace (slurmstepd,
# the tasks, exec/rsh sessions): all started through this script.
group_pids() {
    local p mnt
    pid_alive "$1" "$2" || return 0
    p=$(cat "$1")
    mnt=$(stat -L -c %i "/proc/$p/ns/mnt" 2>/dev/null || true)
    if [ -z "$mnt" ] || [ "$mnt" = "$(stat -L -c %i /proc/$$/ns/mnt)" ]; then
        echo "$p"
        return 0
    fi
    ps -e -o pid=,mntns= | awk -v m="$mnt" '$2 == m {print $1}'
}

# terminate PID...: SIGTERM, up to 10 s (daemons take 1-2 s each), then SIGKILL.
terminate() {
    [ $# -gt 0 ] || return 0
    local q left
    kill -TERM "$@" 2>/dev/null || true
    for _ in $(seq 100); do
        left=0
        for q in "$@"; do [ -d "/proc/$q" ] && { left=1; break; }; done
        [ $left = 0 ] && return 0
        sleep 0.1
    done
    for q in "$@"; do kill -KILL "$q" 2>/dev/null || true; done
}

cmd_down() {
    local n ns p pids=()
    if load_state; then
        export SLURM_CONF=$CONF
        if pid_alive "$D/run/slurmctld.pid" slurmctld; then
            timeout 10 scancel --quiet -u root 2>/dev/null || true
        fi
        # shellcheck disable=SC2207 # PIDs: plain words
        for n in $(node_names); do pids+=($(group_pids "$D/run/$n.pid" slurmd)); done
        # shellcheck disable=SC2207
        pids+=($(group_pids "$D/run/slurmctld.pid" slurmctld))
        pid_alive "$D/munge/run/munged.pid" munged && pids+=("$(cat "$D/munge/run/munged.pid")")
        terminate "${pids[@]}"
        rm -f "$D"/run/*.pid
    fi
    # Anything still inside our namespaces was started through this script.
    for ns in $(our_netns); do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    done
    net_down
    rm -f "$D/cluster.env"
    log "down (logs kept in $D/log)"
}

cmd_status() {
    load_state || { echo "cluster: not up (no $D/cluster.env)"; return 3; }
    export SLURM_CONF=$CONF
    local rc=0 n
    echo "cluster: $NODES nodes x $CPUS CPUs on $SUBNET.0/24, state in $D"
    pid_alive "$D/munge/run/munged.pid" munged && echo "munged     pid $(cat "$D/munge/run/munged.pid")" ||
        { echo "munged     DEAD"; rc=1; }
    pid_alive "$D/run/slurmctld.pid" slurmctld && echo "slurmctld  pid $(cat "$D/run/slurmctld.pid") on $SUBNET.2" ||
        { echo "slurmctld  DEAD"; rc=1; }
    for n in $(node_names); do
        pid_alive "$D/run/$n.pid" slurmd && echo "slurmd $n  pid $(cat "$D/run/$n.pid") on $(node_ip "$n")" ||
            { echo "slurmd $n  DEAD"; rc=1; }
    done
    sinfo 2>&1 || rc=1
    return $rc
}

cmd_env() { echo "export SLURM_CONF=$CONF"; }

cmd_exec() {
    need_root
    [ $# -ge 2 ] || die "usage: exec NODE CMD..."
    load_state || die "not up"
    local node=$1 f
    shift
    f=$D/run/$node.pid
    [ "$node" = ctl ] && f=$D/run/slurmctld.pid
    [ -s "$f" ] || die "no such node: $node"
    # Entering a mount namespace resets the cwd to /: go back to it (the filesystem is shared).
    SLURM_CONF=$CONF exec nsenter -t "$(cat "$f")" -u -m -n -- \
        sh -c 'cd "$1" 2>/dev/null || cd /; shift; exec "$@"' sh "$PWD" "$@"
}

# rsh [-opts] NODE CMD...: like ssh, the words form one shell command line. Open MPI and
# hydra may put ssh-style options before the host: skip them.
cmd_rsh() {
    [ $# -ge 1 ] || die "usage: rsh NODE CMD..."
    local node=$1
    shift
    while [[ $node == -* ]]; do node=$1; shift; done
    cmd_exec "$node" /bin/sh -c "$*"
}

main() {
    local c=${1:-}
    shift || true
    case $c in
    up | down)
        need_root
        mkdir -p "$(dirname "$D")"
        exec 9>"$D.lock" # one up/down at a time
        flock -w 300 9 || die "another up/down holds $D.lock"
        if [ "$c" = up ]; then cmd_up "$@"; else cmd_down; fi
        ;;
    status) cmd_status ;;
    env) cmd_env ;;
    exec) cmd_exec "$@" ;;
    rsh) cmd_rsh "$@" ;;
    _init) load_state; cmd__init "$@" ;;
    _init-net) load_state; cmd__init-net "$@" ;;
    *)
        sed -n '2,14p' "$SELF" | sed 's/^# \{0,1\}//'
        [ -z "$c" ] || [ "$c" = -h ] || [ "$c" = --help ] || exit 2
        ;;
    esac
}
main "$@"
