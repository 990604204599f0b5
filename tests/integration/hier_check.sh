#!/usr/bin/env bash
# hier_check.sh BUILD N PLACEMENT [ALGO [KINDS]] - ranks on fake hosts of one machine
# (WEFT_HOST_ID): PLACEMENT cyclic:H (rank r on host r % H), block:P (P ranks per host) or
# list:h0,h1,... (rank r on host h_r). Runs KINDS (default allreduce,allgather,reduce_scatter)
# of every dtype, op and awkward count (coll_check --quick) with WEFT_ALGO=ALGO (default auto,
# with WEFT_HIER_THRESHOLD=4K so that auto picks the two-level allreduce from 4 KiB), and
# checks from the INFO log that the ring is ordered by host (it crosses hosts once per host)
# and which allreduce ran: hierarchical when hosts have the same number of ranks, else the
# ring (forced hier says it falls back).
set -u
if [[ ${1-} == --as-rank ]]; then
    # one rank: its fake host from its rank
    shift
    place=$1; shift
    case $place in
        cyclic:*) h=$((WEFT_RANK % ${place#cyclic:})) ;;
        block:*) h=$((WEFT_RANK / ${place#block:})) ;;
        list:*) IFS=, read -ra hs <<<"${place#list:}"; h=${hs[$WEFT_RANK]} ;;
    esac
    export WEFT_HOST_ID=fake$h
    exec "$@"
fi
BUILD=$1 N=$2 PLACE=$3 ALGO=${4:-auto} KINDS=${5:-allreduce,allgather,reduce_scatter}
hosts=()
for ((r = 0; r < N; r++)); do
    case $PLACE in
        cyclic:*) hosts+=($((r % ${PLACE#cyclic:}))) ;;
        block:*) hosts+=($((r / ${PLACE#block:}))) ;;
        list:*) IFS=, read -ra hs <<<"${PLACE#list:}"; hosts+=("${hs[$r]}") ;;
    esac
done
# the expected ring: hosts in order of first appearance, ranks in order within each
order=() seen=" " uniform=1 first=""
for h in "${hosts[@]}"; do
    [[ $seen == *" $h "* ]] && continue
    seen+="$h "
    cnt=0
    for ((r = 0; r < N; r++)); do
        [[ ${hosts[$r]} == "$h" ]] && { order+=("$r"); cnt=$((cnt + 1)); }
    done
    [[ -z $first ]] && first=$cnt
    (( cnt != first )) && uniform=0
done
nhosts=$(wc -w <<<"$seen")
log=$(mktemp)
trap 'rm -f "$log"' EXIT
COLL_CHECK_KINDS=$KINDS WEFT_ALGO=$ALGO WEFT_HIER_THRESHOLD=4K \
    WEFT_DEBUG=INFO WEFT_DEBUG_SUBSYS=COLL "$BUILD/bin/weft-run" -n "$N" "$0" --as-rank "$PLACE" \
    "$BUILD/tests/coll_check" --quick >"$log" 2>&1
rc=$?
grep -v 'WEFT INFO' "$log" | tail -n 20
pass=0 fail=0
ok() { echo "ok: $1"; pass=$((pass + 1)); }
bad() { echo "FAIL: $1"; fail=$((fail + 1)); }
(( rc == 0 )) && ok "coll_check passed" || bad "coll_check exited $rc"
# "ring order by host: 0 2 | 1 3 (2 of 4 hops cross hosts; ...": bars dropped, crossings
line=$(grep -m1 'ring order by host:' "$log" | sed 's/.*ring order by host: //')
got=$(sed 's/ (.*//; s/| //g' <<<"$line")
crossings=$(sed -n 's/.*(\([0-9]*\) of [0-9]* hops cross hosts.*/\1/p' <<<"$line")
want_cross=$(( nhosts > 1 ? nhosts : 0 ))
[[ $got == "${order[*]}" ]] && ok "ring order $got" ||
    bad "ring order '$got', expected '${order[*]}'"
[[ $crossings == "$want_cross" ]] && ok "ring crosses hosts $crossings times" ||
    bad "ring crosses hosts '$crossings' times, expected $want_cross"
if [[ $ALGO == ring ]]; then
    grep -q 'allreduce .*: hierarchical' "$log" && bad "hierarchical ran with WEFT_ALGO=ring" ||
        ok "WEFT_ALGO=ring keeps the ring"
elif (( uniform )) && [[ $ALGO == hier || $nhosts -gt 1 ]]; then
    grep -q 'allreduce .*: hierarchical' "$log" && ok "the two-level allreduce ran" ||
        bad "no allreduce plan says hierarchical"
elif [[ $ALGO == hier ]]; then
    grep -q 'hosts have different numbers of ranks; using the host-ordered ring' "$log" &&
        ok "uneven hosts: forced hier falls back to the ring, and says so" ||
        bad "uneven hosts: no fallback line"
else
    grep -q 'allreduce .*: hierarchical' "$log" && bad "hierarchical ran on uneven hosts" ||
        ok "auto on uneven hosts keeps the ring"
fi
echo "$pass passed, $fail failed"
(( fail == 0 ))
