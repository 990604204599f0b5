#!/usr/bin/env bash
# channels_check.sh BUILD N TRANSPORT - WEFT_NCHANNELS=2: allreduce, allgather and
# reduce_scatter of every dtype, op and awkward count (WEFT_ALGO=ring, so that small counts
# take the ring too) over N ranks, checked exactly by coll_check --quick, and the INFO log
# shows that each of the three ran two channels on every rank.
set -u
BUILD=$1 N=$2 TP=$3
log=$(mktemp)
trap 'rm -f "$log"' EXIT
COLL_CHECK_KINDS=allreduce,allgather,reduce_scatter WEFT_ALGO=ring WEFT_NCHANNELS=2 WEFT_DEBUG=INFO \
    WEFT_DEBUG_SUBSYS=COLL "$BUILD/bin/weft-run" -n "$N" --transport "$TP" \
    "$BUILD/tests/coll_check" --quick >"$log" 2>&1
rc=$?
grep -v 'WEFT INFO' "$log" | tail -n 20
pass=0 fail=0
if (( rc == 0 )); then echo "ok: coll_check passed"; pass=$((pass + 1));
else echo "FAIL: coll_check exited $rc"; fail=$((fail + 1)); fi
for call in allreduce allgather reduce_scatter; do
    ranks=$(grep -c "weft_$call ring: 2 channels" "$log")
    if (( ranks == N )); then echo "ok: all $N ranks ran $call over two channels"; pass=$((pass + 1));
    else echo "FAIL: $ranks of $N ranks logged $call over two channels"; fail=$((fail + 1)); fi
done
echo "$pass passed, $fail failed"
(( fail == 0 ))
