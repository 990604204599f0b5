#!/usr/bin/env bash
# slurm_faults.sh - the full counts of the multi-node fault cases of tests/slurm/run.sh, on one
# 2-node Slurm cluster in network namespaces: kill -9 of a rank under srun mid 256 MiB
# allreduce (20 times, the victim rotating over the 4 ranks), a veth taken down mid-run over
# tcp and UCX's tcp (3 times each), collectives through 1% loss + 20 ms delay.
#   bench/slurm_faults.sh      (root; BUILD=build KILLS=20 LINKS=3; about 10 minutes on 2 cores)
# Strict: the 5 s of issue 12 (CI allows 10 on a loaded machine). Prints each check, then a
# summary with the times measured.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
[ "$(id -u)" = 0 ] || { echo "slurm_faults.sh: needs root (network namespaces, daemons)" >&2; exit 1; }
tools/install-deps.sh --slurm || exit 1
make -s -j2 BUILD="$BUILD" all tests >&2 || exit 1
out=$BUILD/bench/slurm_faults.log
mkdir -p "$BUILD/bench"
WEFT_SLURM_KILL_REPS=${KILLS:-20} WEFT_SLURM_LINK_REPS=${LINKS:-3} \
    WEFT_SLURM_KILL_BOUND=${KILL_BOUND:-5} \
    tests/slurm/run.sh "$BUILD" "kill -9|link down|netem" | tee "$out"
rc=${PIPESTATUS[0]}
echo "== summary (full log: $out)"
# Seconds from the strike to each surviving rank's error line, over every repetition.
for kind in "kill -9 rank [0-9] of" "link down tcp" "link down ucx"; do
    grep -E "^(ok|not ok) - $kind" "$out" | grep -o 'r[0-3]:[0-9.]*/' | tr -d 'r/' | cut -d: -f2 |
        sort -n | awk -v k="$kind" '{ v[NR] = $1 } END {
            if (NR) printf "%-22s %3d rank errors: min %.1f s, median %.1f s, max %.1f s\n",
                k, NR, v[1], v[int((NR + 1) / 2)], v[NR] }'
    printf '%-22s %3d of %d repetitions passed\n' "$kind" \
        "$(grep -cE "^ok - $kind" "$out")" "$(grep -cE "^(ok|not ok) - $kind" "$out")"
done
printf '%-22s %3d of %d repetitions\n' "names the dead rank" \
    "$(grep -cE '^ok - kill -9 rank [0-9]: every' "$out")" "$(grep -cE '^(ok|not ok) - kill -9 rank [0-9]: every' "$out")"
exit "$rc"
