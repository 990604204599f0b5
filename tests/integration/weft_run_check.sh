#!/bin/sh
# weft_run_check.sh - checks of the weft-run launcher: environment, failure propagation,
# SIGINT forwarding, program-not-found, and that no rank outlives it. Usage: $0 [BUILD_DIR]
BUILD=${1:-build}
RUN=$BUILD/bin/weft-run
pass=0
fail=0
ok() { echo "ok - $1"; pass=$((pass + 1)); }
notok() { echo "not ok - $1: $2"; fail=$((fail + 1)); }
# A marker unique to this run, so pgrep finds only our own ranks.
MARK=weft_run_check_$$
# Our "sleep" under a unique name: pgrep -f finds only this run's ranks.
SLEEP=/tmp/$MARK
ln -sf "$(command -v sleep)" "$SLEEP" || exit 1
now_ms() { date +%s%3N; }

out=$($RUN -n 4 -- sh -c 'echo $WEFT_RANK $WEFT_NRANKS $WEFT_LOCAL_RANK $WEFT_ROOT $WEFT_SECRET' | sort)
rc=$?
lines=$(echo "$out" | grep -cE '^([0-3]) 4 \1 127\.0\.0\.1:[0-9]+ [0-9a-f]{64}$')
roots=$(echo "$out" | awk '{print $4 $5}' | sort -u | wc -l)
if [ $rc -eq 0 ] && [ "$lines" -eq 4 ] && [ "$roots" -eq 1 ]; then
    ok "4 ranks get WEFT_RANK/NRANKS/LOCAL_RANK/ROOT/SECRET"
else
    notok "4 ranks get WEFT_RANK/NRANKS/LOCAL_RANK/ROOT/SECRET" "rc=$rc output: $out"
fi

out=$($RUN -n 2 --transport tcp --timeout 7 -x FOO=bar -- sh -c 'echo $FOO $WEFT_TRANSPORT $WEFT_TIMEOUT')
if [ "$out" = "bar tcp 7
bar tcp 7" ]; then ok "-x, --transport, --timeout reach the ranks"
else notok "-x, --transport, --timeout reach the ranks" "output: $out"; fi

t0=$(now_ms)
$RUN -n 4 -- sh -c "if [ \$WEFT_RANK = 1 ]; then exit 3; fi; exec $SLEEP 100" 2>/tmp/$MARK.err
rc=$?
dt=$(( $(now_ms) - t0 ))
sleep 0.2
if [ $rc -eq 3 ] && [ $dt -lt 5000 ] && ! pgrep -f "$MARK" >/dev/null &&
   grep -q "weft-run: rank 1 (pid [0-9]*) exited with status 3" /tmp/$MARK.err; then
    ok "a rank exiting 3: weft-run returns 3 fast and kills the others"
else
    notok "a rank exiting 3: weft-run returns 3 fast and kills the others" \
        "rc=$rc after ${dt} ms, stderr: $(cat /tmp/$MARK.err)"
fi

$RUN -n 2 -- sh -c 'kill -9 $$' 2>/tmp/$MARK.err
rc=$?
if [ $rc -eq 137 ] && grep -q "was killed by signal SIGKILL" /tmp/$MARK.err; then
    ok "a rank killed by a signal: 128+signal and the signal named"
else notok "a rank killed by a signal: 128+signal and the signal named" "rc=$rc"; fi

$RUN -n 3 -- "$SLEEP" 100 &
pid=$!
# Until the ranks run: a SIGINT before weft-run takes it over is ignored (a background job's
# default), and a slow start (a sanitizer build on a loaded host) took over 0.5 s.
for _ in $(seq 100); do
    [ "$(pgrep -f "$SLEEP 100" | wc -l)" -ge 3 ] && break
    sleep 0.1
done
t0=$(now_ms)
kill -INT $pid
wait $pid
rc=$?
dt=$(( $(now_ms) - t0 ))
sleep 0.2
if [ $rc -eq 130 ] && [ $dt -lt 2000 ] && ! pgrep -f "$MARK" >/dev/null; then
    ok "SIGINT is forwarded to the ranks (exit 130, no orphans)"
else notok "SIGINT is forwarded to the ranks (exit 130, no orphans)" "rc=$rc after ${dt} ms"; fi

# A rank's background child (a grandchild of weft-run) must not outlive the job either.
$RUN -n 2 -- sh -c "$SLEEP 100 & exit 0"
rc=$?
sleep 0.2
if [ $rc -eq 0 ] && ! pgrep -f "$MARK" >/dev/null; then ok "no process outlives weft-run"
else notok "no process outlives weft-run" "rc=$rc, left: $(pgrep -f "$MARK" | tr '\n' ' ')"; fi

$RUN -n 2 -- /nonexistent/program 2>/tmp/$MARK.err
rc=$?
if [ $rc -eq 127 ] && grep -q "not found" /tmp/$MARK.err; then ok "program not found: exit 127"
else notok "program not found: exit 127" "rc=$rc"; fi

$RUN -n 2 -- sh -c ': > /dev/shm/weft-$$-0123456789abcdef-test; exit 0'
if ! ls /dev/shm 2>/dev/null | grep -q '^weft-.*-0123456789abcdef-test$'; then
    ok "stale /dev/shm/weft-<pid>-* segments are removed"
else
    notok "stale /dev/shm/weft-<pid>-* segments are removed" "$(ls /dev/shm | grep weft-)"
    rm -f /dev/shm/weft-*-0123456789abcdef-test
fi

$RUN --help | grep -q "usage: weft-run" && $RUN --version | grep -q "weft-run" &&
    ok "--help and --version" || notok "--help and --version" "missing output"

rm -f /tmp/$MARK.err "$SLEEP"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
