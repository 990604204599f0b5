#!/usr/bin/env bash
# run.sh - the bounded fuzzing run of `make fuzz`: each target under libFuzzer for SECONDS,
# from its seed corpus and kept crash inputs, then one line per target (executions, corpus
# size, crashes). Exits 1 if any target crashed or took over 60 s on one input (a hostlist
# near its 1M-host cap takes seconds under ASan on a loaded host); the input is then in
# DIR/crashes/<target>/.
#   tests/fuzz/run.sh DIR SECONDS TARGET...
set -u
dir=$1 secs=$2; shift 2
export WEFT_TIMEOUT=${WEFT_TIMEOUT:-5} WEFT_DEBUG=${WEFT_DEBUG:-NONE}
failed=() summary=()
for t in "$@"; do
    work=$dir/corpus/$t crashes=$dir/crashes/$t log=$dir/fuzz-$t.log
    mkdir -p "$work" "$crashes"
    seeds=(tests/fuzz/corpus/"$t")
    [[ -d tests/fuzz/regress/$t ]] && seeds+=(tests/fuzz/regress/"$t")
    echo "== fuzz $t: $secs s"
    "$dir/fuzz-$t" -max_total_time="$secs" -timeout=60 -rss_limit_mb=2048 -max_len=4096 \
        -print_final_stats=1 -artifact_prefix="$crashes/" "$work" "${seeds[@]}" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    corpus=$(find "$work" -type f | wc -l)
    ncrash=$(find "$crashes" -type f ! -name "slow-unit-*" | wc -l)
    summary+=("$(printf '%-12s %10s executions, corpus %5s inputs, %s crash inputs (exit %s)' \
        "$t" "${execs:-?}" "$corpus" "$ncrash" "$rc")")
    if [[ $rc -ne 0 ]]; then
        failed+=("$t")
        grep -m 5 -E 'ERROR|runtime error|invariant|SUMMARY' "$log" | sed 's/^/#   /'
        echo "#   log: $log; inputs: $crashes"
    fi
done
printf '%s\n' "${summary[@]}"
if (( ${#failed[@]} )); then
    echo "fuzz: crashes in: ${failed[*]}"
    exit 1
fi
echo "fuzz: ${#summary[@]} targets, no crash"
