#!/usr/bin/env bash
# perf_gpu_check.sh - weft-perf's refusals of --gpu. On any host the point-to-point tests
# refuse it with their own line. Where there is no GPU (or no CUDA in the build) every
# collective stops at once, alone and under weft-run, with exit status 2 and one line that
# gives weft-info's reason; with a GPU that part is skipped (tests/run-all.sh runs the --gpu
# sweeps there instead).
#   tests/integration/perf_gpu_check.sh BUILD_DIR
set -u
BUILD=${1:?usage: perf_gpu_check.sh BUILD_DIR}
BIN=$BUILD/bin
fail=0

bad() {
    echo "not ok - $*"
    fail=1
}

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# With or without a GPU: the point-to-point tests refuse --gpu, and one memory at a time.
for c in send_bw write_lat; do
    "$BIN/weft-perf" "$c" --gpu >"$out/stdout" 2>"$out/stderr"
    rc=$?
    first=$(head -n 1 "$out/stderr")
    if [[ $rc -ne 2 ]]; then
        bad "weft-perf $c --gpu: exit status $rc, not 2"
    elif [[ $first != "weft-perf: $c: the point-to-point tests use host buffers only;"* ]]; then
        bad "weft-perf $c --gpu: said '$first'"
    else
        echo "ok - weft-perf $c --gpu is refused"
    fi
done

"$BIN/weft-perf" allreduce --gpu --fake-gpu >/dev/null 2>"$out/stderr"
rc=$?
if [[ $rc -ne 2 ]] || ! grep -q 'exclude each other' "$out/stderr"; then
    bad "weft-perf --gpu --fake-gpu: exit status $rc: $(head -n 1 "$out/stderr")"
else
    echo "ok - --gpu and --fake-gpu exclude each other"
fi

gpu=$("$BIN/weft-info" 2>/dev/null | sed -n 's/^gpu: //p')
if [[ -z $gpu ]]; then
    echo "not ok - weft-info prints no 'gpu:' line"
    exit 1
fi
if [[ $gpu != none:* ]]; then
    echo "# skip - the refusal: a GPU is here ($gpu), so --gpu runs"
    exit $fail
fi
want="weft-perf: --gpu needs a GPU, and there is none: ${gpu#none: }"

# check NAME LIMIT_S CMD...: exit status 2 within LIMIT_S seconds, nothing on stdout but
# weft-run's own lines, and exactly one weft-perf line on stderr: $want.
check() {
    local name=$1 limit=$2 t0=$SECONDS rc lines
    shift 2
    timeout 60 "$@" >"$out/stdout" 2>"$out/stderr"
    rc=$?
    lines=$(grep -c '^weft-perf:' "$out/stderr")
    if [[ $rc -ne 2 ]]; then
        bad "$name: exit status $rc, not 2"
    elif (( SECONDS - t0 > limit )); then
        bad "$name: took $((SECONDS - t0)) s to refuse"
    elif [[ -s $out/stdout ]]; then
        bad "$name: printed on stdout: $(head -n 3 "$out/stdout")"
    elif [[ $lines -ne 1 ]]; then
        bad "$name: $lines weft-perf lines on stderr, not 1"
    elif [[ $(grep '^weft-perf:' "$out/stderr") != "$want" ]]; then
        bad "$name: said '$(grep '^weft-perf:' "$out/stderr")', not '$want'"
    else
        echo "ok - $name"
        return
    fi
    sed 's/^/#   /' "$out/stderr"
}

for c in allreduce allgather reduce_scatter broadcast reduce alltoall sendrecv; do
    check "weft-perf $c --gpu, alone" 5 "$BIN/weft-perf" "$c" --gpu
done
for c in allreduce alltoall; do
    check "weft-run -n 2 weft-perf $c --gpu" 5 "$BIN/weft-run" -n 2 "$BIN/weft-perf" "$c" \
        --gpu -b 8 -e 1M -c 1
done
check "weft-run -n 4 weft-perf reduce_scatter --gpu --json" 5 "$BIN/weft-run" -n 4 \
    "$BIN/weft-perf" reduce_scatter --json --gpu

exit $fail
