#!/usr/bin/env bash
# run.sh - Weft on a real Slurm cluster of 4 nodes (tests/slurm/cluster.sh): srun plain, PMIx
# and PMI-2, sbatch, scancel, Open MPI mpirun and MPICH mpiexec across 2 nodes, bad input, the
# hierarchy under block and cyclic placement, weft-perf fabric over all 4 with one link slowed,
# and faults: loss and delay on the wire, a link taken down, a rank killed (net_faults.sh).
#   tests/slurm/run.sh BUILD_DIR [FILTER]    (root; FILTER keeps checks whose name has it;
#                                             "a|b" keeps those with a or b)
# Prints "ok - ..." / "not ok - ..." per check and ends with "N passed, M failed". The cluster
# is brought down at exit, whatever happens. Job output and logs: $WFT_CLUSTER_DIR/jobs/.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CL=$HERE/cluster.sh
BUILD=$(cd "${1:-build}" && pwd) || { echo "usage: run.sh BUILD_DIR [FILTER]" >&2; exit 2; }
FILTER=${2:-}
PERF=$BUILD/bin/weft-perf
# A cluster of its own per run: runs side by side (two checkouts, a developer's cluster.sh)
# each take a free slot, held by a lock for the whole run, with its own dir, subnet and names.
if [ -z "${WFT_CLUSTER_DIR:-}" ]; then
    for i in 0 1 2 3 4 5 6 7; do
        exec 8>"/tmp/weft-slurm-run$i.slot"
        if flock -n 8; then
            export WFT_CLUSTER_DIR=/tmp/weft-slurm-run$i WFT_CLUSTER_SUBNET=10.213.$((56 + i))
            export WFT_CLUSTER_PREFIX=wr$i
            break
        fi
        exec 8>&-
    done
    [ -n "${WFT_CLUSTER_DIR:-}" ] || { echo "not ok - no free cluster slot (8 runs at once?)"; echo "0 passed, 1 failed"; exit 1; }
fi
D=$WFT_CLUSTER_DIR
T=${WEFT_SLURM_TEST_TIMEOUT:-5} # WEFT_TIMEOUT of the bad-input checks: they must fail this fast

# Start clean of any launcher around us (a developer may run this inside an allocation or
# under weft-run): every rank's identity must come from the cluster below.
for v in $(env | sed -n 's/^\(\(SLURM\|OMPI\|PMIX\|PMI\|MPI\|HYDRA\)_[A-Za-z0-9_]*\)=.*/\1/p'); do
    unset "$v"
done
unset WEFT_RANK WEFT_NRANKS WEFT_LOCAL_RANK WEFT_ROOT WEFT_SECRET WEFT_TRANSPORT WEFT_DEBUG \
    WEFT_DEBUG_SUBSYS WEFT_DEBUG_FILE RANK WORLD_SIZE LOCAL_RANK MASTER_ADDR MASTER_PORT
export WEFT_TIMEOUT=30 # a stuck rendezvous fails well within each check's time limit
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "not ok - $*"; }
want() { # FILTER: substrings separated by |, any of them
    local f
    [[ -z $FILTER ]] && return 0
    IFS='|' read -ra fs <<<"$FILTER"
    for f in "${fs[@]}"; do [[ $1 == *"$f"* ]] && return 0; done
    return 1
}
# show FILE...: the last lines of what a failed check saw
show() { local f; for f in "$@"; do [ -s "$f" ] && tail -n 15 "$f" | sed "s|^|#   $(basename "$f"): |"; done; return 0; }

cleanup() {
    trap - EXIT INT TERM HUP
    cd /
    declare -F wire_off >/dev/null && wire_off >/dev/null 2>&1 # qdiscs, rules, wire_delay
    "$CL" down >"$D.down.log" 2>&1 || { echo "# cluster.sh down failed:"; sed 's/^/#   /' "$D.down.log"; }
}
trap cleanup EXIT
trap 'echo "# interrupted"; exit 130' INT TERM HUP

[ -x "$PERF" ] && [ -x "$BUILD/tests/coll_check" ] ||
    { echo "not ok - $PERF or $BUILD/tests/coll_check missing: build first"; echo "0 passed, 1 failed"; exit 1; }
# 4 nodes for weft-perf fabric's all-pairs check; every other check uses -N 2 (n1, n2).
NNODES=${WEFT_SLURM_NODES:-4}
if ! "$CL" up --nodes "$NNODES" --cpus 2 >"$D.up.log" 2>&1; then
    bad "cluster up"; sed 's/^/#   /' "$D.up.log"; echo "$pass passed, $fail failed"; exit 1
fi
ok "cluster up: $NNODES nodes x 2 CPUs"
eval "$("$CL" env)"
W=$D/jobs # on the shared filesystem: every node and the batch script see it
rm -rf "$W"
mkdir -p "$W"
cd "$W" || exit 1

# ---- result checks -------------------------------------------------------------------
# perf_ok OUT: weft-perf's table has rows, every #wrong column is 0 and the trailer says OK.
perf_ok() {
    grep -q '^# Out of bounds values : 0 OK' "$1" &&
        awk '/^ *[0-9]/ { rows++; if ($9 != 0 || $13 != 0) bad++ }
             END { exit !(rows > 0 && bad == 0) }' "$1"
}
# map_ok ERR: the NET log shows ranks 0,1 on one host with shm between them, tcp to 2,3.
map_ok() {
    local err=$1 h0 h2
    grep -Eq 'rank 0 of 4 on [^ ]+ \(host 0 of 2\): peers 0:self 1:shm 2:tcp 3:tcp$' "$err" &&
        grep -Eq 'rank 1 of 4 on [^ ]+ \(host 0 of 2\): peers 0:shm 1:self 2:tcp 3:tcp$' "$err" &&
        grep -Eq 'rank 2 of 4 on [^ ]+ \(host 1 of 2\): peers 0:tcp 1:tcp 2:self 3:shm$' "$err" &&
        grep -Eq 'rank 3 of 4 on [^ ]+ \(host 1 of 2\): peers 0:tcp 1:tcp 2:shm 3:self$' "$err" ||
        return 1
    h0=$(sed -n 's/.*rank 0 of 4 on \([^ ]*\) (host.*/\1/p' "$err" | head -1)
    h2=$(sed -n 's/.*rank 2 of 4 on \([^ ]*\) (host.*/\1/p' "$err" | head -1)
    [ "$h0" = n1 ] && [ "$h2" = n2 ]
}
# run_perf NAME LIMIT CMD...: a weft-perf allreduce sweep under a launcher, checked.
run_perf() {
    local name=$1 limit=$2 rc t0=$SECONDS
    shift 2
    want "$name" || return 0
    local f=$W/${name//[^A-Za-z0-9]/_}
    WEFT_DEBUG=INFO WEFT_DEBUG_SUBSYS=NET timeout -k 5 "$limit" "$@" \
        "$PERF" allreduce -b 8 -e 4M -f 8 -c 1 >"$f.out" 2>"$f.err"
    rc=$?
    if [ $rc -ne 0 ]; then
        bad "$name: exit $rc after $((SECONDS - t0)) s"; show "$f.out" "$f.err"
    elif ! perf_ok "$f.out"; then
        bad "$name: results not checked OK (#wrong, Out of bounds values)"; show "$f.out" "$f.err"
    elif ! map_ok "$f.err"; then
        bad "$name: NET log lacks the map 0,1 on n1 (shm) and 2,3 on n2, tcp between"
        grep 'peers' "$f.err" | sed 's/^/#   /'; show "$f.err"
    else
        ok "$name: #wrong 0, ranks 0,1 on n1 (shm), 2,3 on n2, tcp between ($((SECONDS - t0)) s)"
    fi
}

# ---- srun ----------------------------------------------------------------------------
if want "srun hostname"; then
    got=$(timeout 60 srun -N 2 -n 4 -l hostname 2>/dev/null | sort | tr '\n' ' ')
    [ "$got" = "0: n1 1: n1 2: n2 3: n2 " ] && ok "srun hostname: 2+2 tasks on n1, n2" ||
        bad "srun hostname: got '$got'"
fi
run_perf "srun -N 2 -n 4 weft-perf (plain, Slurm rendezvous)" 120 srun -N 2 -n 4
run_perf "srun --mpi=pmix -N 2 -n 4 weft-perf" 120 srun --mpi=pmix -N 2 -n 4
run_perf "srun --mpi=pmi2 -N 2 -n 4 weft-perf" 120 srun --mpi=pmi2 -N 2 -n 4

# weft-run inside an allocation starts its ranks through srun, with a fresh secret.
run_perf "weft-run -n 4 inside salloc -N 2 -n 4 (through srun)" 120 \
    salloc -N 2 -n 4 "$(dirname "$PERF")/weft-run" -n 4

# ---- Open MPI and MPICH across the namespace nodes, and inside an allocation -----------
RSH=$D/bin/rsh
if command -v mpirun.openmpi >/dev/null; then
    run_perf "Open MPI mpirun --host n1:2,n2:2 weft-perf (rsh agent)" 120 \
        mpirun.openmpi --allow-run-as-root --mca plm_rsh_agent "$RSH" --host n1:2,n2:2 -np 4 \
        -x WEFT_DEBUG -x WEFT_DEBUG_SUBSYS -x WEFT_TIMEOUT
    # Inside the allocation the ranks inherit SLURM_* of mpirun's orted step: PMIx must win.
    run_perf "Open MPI mpirun inside salloc -N 2 -n 4 weft-perf" 120 \
        salloc -N 2 -n 4 mpirun.openmpi --allow-run-as-root -np 4 \
        -x WEFT_DEBUG -x WEFT_DEBUG_SUBSYS -x WEFT_TIMEOUT
else
    bad "Open MPI: mpirun.openmpi not installed (tools/install-deps.sh --slurm)"
fi
if command -v mpiexec.mpich >/dev/null; then
    run_perf "MPICH mpiexec -hosts n1:2,n2:2 weft-perf (rsh launcher)" 120 \
        mpiexec.mpich -launcher rsh -launcher-exec "$RSH" -hosts n1:2,n2:2 -n 4
    run_perf "MPICH mpiexec inside salloc -N 2 -n 4 weft-perf" 120 \
        salloc -N 2 -n 4 mpiexec.mpich -n 4
else
    bad "MPICH: mpiexec.mpich not installed (tools/install-deps.sh --slurm)"
fi

# ---- Python (tests/python, docs/python.md): weft.Comm() from plain srun's variables across
# the nodes, and the torch backend "weft" with init_method="weft://" (DDP, one rank per node)
# where /usr/bin/python3 has torch. Skipped, and said so, without python3 (or torch).
SRC=$(cd "$HERE/../.." && pwd)
PY_ENV=(env WEFT_SO_PATH="$BUILD/lib/libweft.so" PYTHONPATH="$SRC/python" PYTHONDONTWRITEBYTECODE=1)
if want "srun python"; then
    name="srun -N 2 -n 4 python3 comm_check.py (weft.Comm, every collective)"
    f=$W/py_comm
    if ! command -v python3 >/dev/null; then
        echo "# skip - $name: python3 is not installed"
    elif timeout -k 5 120 srun -N 2 -n 4 -l "${PY_ENV[@]}" python3 \
        "$SRC/tests/python/comm_check.py" >"$f.out" 2>"$f.err" &&
        [ "$(grep -Ec 'comm_check .*, 4 ranks, .*: [0-9]+ checks passed$' "$f.out")" = 4 ]; then
        ok "$name: 4 ranks passed"
    else
        bad "$name"; show "$f.out" "$f.err"
    fi
    name="srun -N 2 -n 2 torch_ddp.py over \"weft\" (weft://, one rank per node)"
    f=$W/py_ddp
    if ! /usr/bin/python3 -c 'import torch.distributed' 2>/dev/null; then
        echo "# skip - $name: python3-torch is not installed for /usr/bin/python3"
    elif timeout -k 5 180 srun -N 2 -n 2 "${PY_ENV[@]}" /usr/bin/python3 \
        "$SRC/examples/torch_ddp.py" --steps 60 >"$f.out" 2>"$f.err" &&
        awk '/^weft, 2 ranks: loss [0-9.]+ -> [0-9.]+ over 60 steps/ { n++; if ($7 + 0 < $5 + 0) d++ }
             END { exit !(n == 1 && d == 1) }' "$f.out"; then
        ok "$name: $(head -n 1 "$f.out")"
    else
        bad "$name"; show "$f.out" "$f.err"
    fi
fi

# ---- sbatch, waited on with squeue ---------------------------------------------------
# wait_gone JOB SECONDS: until the job has left the queue.
wait_gone() {
    local end=$((SECONDS + $2))
    while [ $SECONDS -lt $end ]; do
        [ -z "$(squeue -h -j "$1" -o %T 2>/dev/null)" ] && return 0
        sleep 0.5
    done
    return 1
}
if want "sbatch"; then
    cat >"$W/coll.sbatch" <<EOF
#!/bin/bash
#SBATCH -N 2
#SBATCH -n 4
#SBATCH -J weft-coll
#SBATCH -o $W/sbatch-%j.out
echo "batch on \$(hostname): \$SLURM_JOB_NODELIST"
srun -l $BUILD/tests/coll_check --quick
echo "srun exit \$?"
EOF
    t0=$SECONDS
    jid=$(sbatch --parsable "$W/coll.sbatch" 2>"$W/sbatch.err")
    if [ -z "$jid" ]; then
        bad "sbatch: submit failed"; show "$W/sbatch.err"
    elif ! wait_gone "$jid" 180; then
        bad "sbatch: job $jid still in the queue after 180 s"; scancel "$jid"
    else
        out=$W/sbatch-$jid.out
        state=$(scontrol -o show job "$jid" 2>/dev/null | grep -o 'JobState=[A-Z]*\|ExitCode=[0-9:]*' |
            tr '\n' ' ' | sed 's/ $//')
        if grep -q '^srun exit 0$' "$out" && grep -Eq '^0: coll_check: 4 ranks: [0-9]+ checks passed, 0 failed$' "$out" &&
            ! grep -q 'not ok' "$out" && [ "$state" = "JobState=COMPLETED ExitCode=0:0" ]; then
            ok "sbatch -N 2 -n 4 coll_check --quick, waited on with squeue: $(grep -o '[0-9]* checks passed, 0 failed' "$out") ($((SECONDS - t0)) s)"
        else
            bad "sbatch: job $jid: $state"; show "$out"
        fi
    fi
fi

# ---- scancel of a running multi-node job ---------------------------------------------
# The nodes share one PID namespace, so a marker in the program's path finds the job's ranks
# wherever they run; each node has a private /dev/shm, looked at from inside it.
if want "scancel"; then
    marker=weftcancel$$
    ln -sf "$PERF" "$W/$marker"
    jid=$(sbatch --parsable -N 2 -n 4 -J weft-cancel -o "$W/cancel-%j.out" \
        --wrap "srun $W/$marker allreduce -b 8 -e 64M -f 2 -n 200 -c 1" 2>"$W/cancel.err")
    # Wait until the sweep is running on every rank: the table has its first row.
    running=0
    for _ in $(seq 240); do
        if [ "$(pgrep -fc "^$W/$marker allreduce")" -ge 4 ] &&
            grep -q '^ *[0-9]' "$W/cancel-$jid.out" 2>/dev/null; then
            running=1
            break
        fi
        [ -n "$(squeue -h -j "$jid" 2>/dev/null)" ] || break # it ended on its own
        sleep 0.5
    done
    if [ -z "$jid" ] || [ $running = 0 ]; then
        bad "scancel: the weft job never got to running on 4 ranks"; show "$W/cancel.err" "$W/cancel-$jid.out"
        [ -n "$jid" ] && scancel "$jid"
    else
        scancel "$jid"
        gone=0
        wait_gone "$jid" 60 && gone=1
        # Slurm reports the job gone once the step is reaped; give stragglers KillWait + 5 s.
        for _ in $(seq 20); do pgrep -f "$W/$marker" >/dev/null || break; sleep 0.5; done
        left=$(pgrep -af "$W/$marker")
        shm_left=""
        for n in n1 n2; do
            s=$("$CL" exec $n sh -c 'ls /dev/shm | grep "^weft-"')
            [ -n "$s" ] && shm_left="$shm_left $n:$(echo $s)"
        done
        state=$(scontrol show job "$jid" | grep -o 'JobState=[A-Z]*')
        if [ $gone = 1 ] && [ -z "$left" ] && [ -z "$shm_left" ] && [ "$state" = JobState=CANCELLED ]; then
            ok "scancel of a running 2-node weft job: CANCELLED, no rank left, no /dev/shm/weft-* on n1 or n2"
        else
            bad "scancel: $state, left in queue: $((1 - gone)), processes: ${left:-none}, shm:${shm_left:- none}"
        fi
    fi
fi

# ---- bad input, as a real launcher shows it ------------------------------------------
# bad_run NAME BOUND EXPECT-REGEX RANKS SCRIPT [SRUN-OPTION]: srun -N 2 -n 4 of SCRIPT (sh; $P
# is weft-perf) with WEFT_TIMEOUT=$T must fail within BOUND s, and each rank in RANKS must
# print an error matching EXPECT-REGEX.
bad_run() {
    local name=$1 bound=$2 expect=$3 ranks=$4 script=$5 opt=${6:---mpi=none} rc t0=$SECONDS el r
    local missing=""
    want "$name" || return 0
    local f=$W/${name//[^A-Za-z0-9]/_}
    WEFT_TIMEOUT=$T P=$PERF timeout -k 5 $((bound + 60)) srun "$opt" -N 2 -n 4 -l sh -c "$script" \
        >"$f.out" 2>"$f.err"
    rc=$?
    el=$((SECONDS - t0))
    for r in $ranks; do
        cat "$f.out" "$f.err" | grep -E "^ *$r: " | grep -Eq -- "$expect" || missing="$missing $r"
    done
    if [ $rc -eq 0 ]; then
        bad "$name: srun exited 0"; show "$f.out" "$f.err"
    elif [ $el -gt "$bound" ]; then
        bad "$name: took $el s, more than $bound s (WEFT_TIMEOUT=$T)"; show "$f.err"
    elif [ -n "$missing" ]; then
        bad "$name: no error matching /$expect/ from rank(s)$missing"; show "$f.err"
    else
        ok "$name: every rank fails in $el s (WEFT_TIMEOUT=$T): $(grep -E "^ *${ranks%% *}: " "$f.err" | grep -Eo -- "$expect" | head -1)"
    fi
}
PERFARGS="allreduce -b 8 -e 8 -n 1 -w 0 -c 1"
bad_run "missing rank: rank 3 exits before init (plain srun)" $((T + 10)) \
    'ranks? ([0-9]+, )*3( |,).*never' "0 1 2" \
    "[ \"\$SLURM_PROCID\" = 3 ] && exit 0; exec \"\$P\" $PERFARGS"
# Through a process manager the fence cannot say who is missing, but it must end in time.
for mpi in pmix pmi2; do
    bad_run "missing rank: rank 3 exits before init (srun --mpi=$mpi)" $((T + 10)) \
        'WEFT_TIMEOUT|rank 3' "0 1 2" \
        "[ \"\$SLURM_PROCID\" = 3 ] && exit 0; exec \"\$P\" $PERFARGS" --mpi=$mpi
done
# The root's host must be named, by name or by n1's address.
bad_run "missing root: rank 0 exits before init (plain srun)" $((T + 10)) \
    "root.*(n1|${WFT_CLUSTER_SUBNET//./\\.}\\.11)\\b" "1 2 3" \
    "[ \"\$SLURM_PROCID\" = 0 ] && exit 0; exec \"\$P\" $PERFARGS"
bad_run "size disagreement: rank 3 sees SLURM_NTASKS=5 (plain srun)" $((T + 10)) \
    'disagree' "0 1 2 3" \
    "[ \"\$SLURM_PROCID\" = 3 ] && export SLURM_NTASKS=5 SLURM_NPROCS=5 SLURM_STEP_NUM_TASKS=5; exec \"\$P\" $PERFARGS"
bad_run "bad nodelist: SLURM_STEP_NODELIST='n[1-' (plain srun)" $((T + 10)) \
    'SLURM_STEP_NODELIST' "0 1 2 3" \
    "export SLURM_STEP_NODELIST='n[1-' SLURM_NODELIST='n[1-' SLURM_JOB_NODELIST='n[1-'; exec \"\$P\" $PERFARGS"

# ---- weft-perf fabric: a slowed link is found, and cleared ----------------------------
# All pairs of the 4 nodes (3 rounds), healthy; then a tbf rate limit on both directions of
# n3's link (its eth0 and the bridge side of its veth): --check must flag exactly the 3 pairs
# with n3 and blame n3 alone; then, the limit removed, pass again.
fab_pairs() { sed -n 's/^SLOW pair \([^ ]*\) <-> \([^:]*\):.*/\1-\2/p' "$1" | sort | tr '\n' ' '; }
# Against a stated 1 Gb/s line, flagged below 25 %: this 2-CPU machine runs 4 nodes' ranks,
# so the median swings with the load (healthy pairs measured 1.7-15 Gb/s); the tbf'd link
# carries 0.05.
fab_run() { # OUT: rc
    timeout -k 5 120 srun -N 4 --ntasks-per-node=1 "$PERF" fabric -s 256K -n 8 --lat-iters 50 \
        --against line --line-rate 1 --threshold 25 --check --json "$1.json" >"$1" 2>"$1.err"
}
fab_tbf() { # add|del
    local pfx=${WFT_CLUSTER_PREFIX:-wft} rate=${WEFT_SLURM_FABRIC_RATE:-50mbit}
    if [ "$1" = add ]; then
        tc -n "$pfx-n3" qdisc replace dev eth0 root tbf rate "$rate" burst 32kbit latency 400ms &&
            tc qdisc replace dev "${pfx}v-n3" root tbf rate "$rate" burst 32kbit latency 400ms
    else
        tc -n "$pfx-n3" qdisc del dev eth0 root 2>/dev/null
        tc qdisc del dev "${pfx}v-n3" root 2>/dev/null
        ! tc qdisc show dev "${pfx}v-n3" | grep -q tbf
    fi
}
if want "fabric" && [ "$NNODES" -ge 4 ]; then
    F=$W/fabric
    t0=$SECONDS
    fab_run "$F-clean.out"; rc1=$?
    t1=$SECONDS
    if [ $rc1 -ne 0 ] || ! grep -q '^fabric: OK' "$F-clean.out"; then
        bad "fabric --check on 4 healthy nodes: exit $rc1"; show "$F-clean.out" "$F-clean.out.err"
    elif ! fab_tbf add; then
        bad "fabric: tc tbf on n3's link failed (sch_tbf missing?)"
    else
        fab_run "$F-slow.out"; rc2=$?
        fab_tbf del || bad "fabric: the tbf qdiscs on n3 could not be removed"
        fab_run "$F-again.out"; rc3=$?
        got=$(fab_pairs "$F-slow.out")
        if [ $rc2 -eq 1 ] && [ "$got" = "n1-n3 n2-n3 n3-n4 " ] &&
            grep -q '^fabric: BAD nodes: n3 (3 of 6 pairs flagged)' "$F-slow.out" &&
            [ $rc3 -eq 0 ] && grep -q '^fabric: OK' "$F-again.out"; then
            ok "fabric --check: 4 nodes in 3 rounds ($(sed -n 's/.* \([0-9.]*\) s in all$/\1/p' "$F-clean.out") s of tests, $((t1 - t0)) s with srun); tbf on n3 flags exactly n1-n3 n2-n3 n3-n4 and blames n3 (exit 1); removed, OK again"
        else
            bad "fabric --check with n3 slowed: exit $rc2, pairs '$got'; after removal exit $rc3"
            show "$F-slow.out" "$F-slow.out.err" "$F-again.out"
        fi
    fi
fi
# ---- hierarchy: block and cyclic placement (docs/topology.md) ------------------------
# allreduce, allgather and reduce_scatter of every dtype/op/awkward count with ranks placed
# block (0,1 on n1) and cyclic (0,2 on n1): the ring must be ordered by host (crossing the
# network twice, not at every hop) and allreduce from 4 KiB must be the two-level one.
for dist in block cyclic; do
    name="hier: srun -N 2 -n 4 --distribution=$dist coll_check: ring by host, two-level allreduce"
    want "$name" || continue
    f=$W/hier_$dist t0=$SECONDS
    [ $dist = block ] && ring="0 1 | 2 3" || ring="0 2 | 1 3"
    WEFT_DEBUG=INFO WEFT_DEBUG_SUBSYS=COLL WEFT_HIER_THRESHOLD=4K \
        COLL_CHECK_KINDS=allreduce,allgather,reduce_scatter timeout -k 5 180 \
        srun -N 2 -n 4 --distribution=$dist -l "$BUILD/tests/coll_check" --quick >"$f.out" 2>"$f.err"
    rc=$?
    nring=$(grep -c "ring order by host: $ring (2 of 4 hops cross hosts" "$f.err")
    if [ $rc -ne 0 ] || ! grep -Eq '^0: coll_check: 4 ranks: [0-9]+ checks passed, 0 failed$' "$f.out"; then
        bad "$name: exit $rc"; show "$f.out" "$f.err"
    elif [ "$nring" -ne 4 ]; then
        bad "$name: $nring of 4 ranks logged the ring '$ring' crossing hosts twice"
        grep 'ring order' "$f.err" | sed 's/^/#   /'
    elif ! grep -q 'allreduce .*: hierarchical' "$f.err"; then
        bad "$name: no allreduce plan says hierarchical"; show "$f.err"
    else
        ok "$name: $(grep -o '[0-9]* checks passed, 0 failed' "$f.out"), ring $ring" \
            "($((SECONDS - t0)) s)"
    fi
done

# ---- network faults and kill -9 between the nodes (net_faults.sh) ---------------------
. "$HERE/net_faults.sh"

echo "$pass passed, $fail failed, $nskip skipped"
[ $fail -eq 0 ]
