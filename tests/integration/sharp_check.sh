#!/usr/bin/env bash
# sharp_check.sh BUILD CASE NRANKS - SHARP offload against the fake switch (tests/fakesharp):
#   offload   WEFT_SHARP=1: exact results, every supported call counted by the fake, one INFO
#             line for a dtype the switch lacks (int8) and one for an op (prod)
#   missing   WEFT_SHARP=1 with no library: init fails on every rank naming the path tried;
#             WEFT_SHARP=auto: every rank says so in one INFO line and runs on the host
#   refused   WEFT_SHARP=auto, rank 1's library refuses the group: every rank falls back to
#             the host algorithms (one INFO line), results exact, the fake counts nothing
set -u
BUILD=$1 CASE=$2 N=$3
FAKE=$BUILD/fakesharp/libsharp_coll.so
[[ -f $FAKE ]] || { echo "$FAKE is missing: make tests (or make fakesharp) builds it"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
log=$tmp/log
export WEFT_DEBUG=INFO WEFT_DEBUG_SUBSYS=COLL WEFT_DEBUG_FILE=$tmp/weft-%p.log
bad=0
expect_log() { # expect_log COUNT PATTERN: lines matching PATTERN in the ranks' logs
    local got; got=$(cat "$tmp"/weft-*.log | grep -c -- "$2")
    if [[ $got -ne $1 ]]; then echo "not ok - $1 log lines like \"$2\" expected, got $got"; bad=1
    else echo "ok - $got log lines like \"$2\""; fi
}
case $CASE in
offload)
    WEFT_SHARP=1 WEFT_SHARP_LIB=$FAKE "$BUILD/bin/weft-run" -n "$N" "$BUILD/tests/sharp_check" \
        --stats "$tmp/stats" --expect offload || bad=1
    expect_log "$N" "SHARP on ($FAKE)"
    expect_log "$N" "SHARP does not support allreduce int8 sum"
    expect_log "$N" "SHARP does not support allreduce float32 prod"
    expect_log "$N" "allreduce int32 sum: SHARP offload"
    expect_log "$N" "barrier: SHARP offload" ;;
missing)
    WEFT_SHARP=1 WEFT_SHARP_LIB=$tmp/nowhere/libsharp_coll.so "$BUILD/bin/weft-run" -n "$N" \
        "$BUILD/tests/sharp_check" --expect-init-fail "dlopen(\"$tmp/nowhere/libsharp_coll.so\") failed" ||
        bad=1
    rm -f "$tmp"/weft-*.log
    WEFT_SHARP=auto WEFT_SHARP_LIB=$tmp/nowhere/libsharp_coll.so "$BUILD/bin/weft-run" -n "$N" \
        "$BUILD/tests/sharp_check" --stats "$tmp/stats" --expect host || bad=1
    expect_log "$N" "SHARP off: loading libsharp_coll: dlopen(\"$tmp/nowhere/libsharp_coll.so\") failed"
    expect_log 0 "SHARP offload" ;;
refused)
    FAKESHARP_REFUSE=comm FAKESHARP_REFUSE_RANK=1 WEFT_SHARP=auto WEFT_SHARP_LIB=$FAKE \
        "$BUILD/bin/weft-run" -n "$N" "$BUILD/tests/sharp_check" --stats "$tmp/stats" \
        --expect host || bad=1
    expect_log 1 "SHARP off: sharp_coll_comm_init: Operation not supported (fake SHARP)"
    expect_log $((N - 1)) "SHARP off: sharp_coll_comm_init failed on rank 1"
    expect_log 0 "SHARP offload" ;;
*) echo "sharp_check.sh: unknown case $CASE"; exit 2 ;;
esac
echo "sharp_check.sh $CASE: $((1 - bad)) checks passed, $bad failed"
exit $bad
