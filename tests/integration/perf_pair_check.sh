#!/usr/bin/env bash
# perf_pair_check.sh - weft-perf's launcher-free start and its outputs on this host: a p2p
# server and client over shm and tcp (shared secret, its refusal, the unauthenticated warning),
# --json records side by side with links --compare, --plot, links --table, and fabric's
# all-pairs check over 4 and 3 ranks with its JSON and CSV.
#   tests/integration/perf_pair_check.sh BUILD_DIR
set -u
BUILD=${1:-build}
P=$BUILD/bin/weft-perf
R=$BUILD/bin/weft-run
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$dir"' EXIT
unset WEFT_RANK WEFT_NRANKS WEFT_ROOT WEFT_SECRET WEFT_LOCAL_RANK RANK WORLD_SIZE PMIX_RANK \
    PMI_RANK OMPI_COMM_WORLD_RANK SLURM_PROCID SLURM_JOB_ID
export WEFT_TIMEOUT=20
fails=0
ok() { echo "ok - $*"; }
no() { echo "not ok - $*"; fails=$((fails + 1)); }
port=$((20000 + RANDOM % 20000))

# pair NAME SERVER-ENV CLIENT-ENV ARGS...: server in the background, client to 127.0.0.1;
# both must exit 0 and print perftest's table with one row per size.
pair() {
    local name=$1 senv=$2 cenv=$3 rs rc
    shift 3
    port=$((port + 1))
    env $senv "$P" "$@" -p $port >"$dir/$name.srv" 2>&1 &
    local spid=$!
    env $cenv "$P" "$@" -p $port 127.0.0.1 >"$dir/$name.cli" 2>&1
    rc=$?
    wait $spid
    rs=$?
    if [ $rc -ne 0 ] || [ $rs -ne 0 ]; then
        no "$name: server exit $rs, client exit $rc"; tail -5 "$dir/$name.srv" "$dir/$name.cli"
        return 1
    fi
    for f in "$dir/$name.srv" "$dir/$name.cli"; do
        if ! grep -q '^ #bytes' "$f" || [ "$(grep -Ec '^ [0-9]+ +[0-9]+ ' "$f")" -lt 1 ]; then
            no "$name: no perftest table in $(basename "$f")"; cat "$f"; return 1
        fi
    done
    ok "$name: server and client print the table"
}

# 1. shm, unauthenticated: both warn; the server waited for the client.
if pair shm "" "" send_bw -a -n 8; then
    grep -q 'UNAUTHENTICATED' "$dir/shm.srv" && grep -q 'UNAUTHENTICATED' "$dir/shm.cli" &&
        grep -q 'Waiting for client' "$dir/shm.srv" && grep -q 'Transport      : shm' "$dir/shm.srv" &&
        [ "$(grep -Ec '^ [0-9]+ +8 ' "$dir/shm.srv")" -eq 23 ] &&
        ok "shm: 23 sizes, the unauthenticated warning on both sides" ||
        no "shm: warning, transport or the 23 rows missing"
fi
# 2. tcp with a shared secret file, a record and a plot from the client; latency too.
printf 'correct horse battery staple\n' >"$dir/secret"
if pair tcp "WEFT_TRANSPORT=tcp" "WEFT_TRANSPORT=tcp" write_bw -s 64K -n 64 \
    --secret-file "$dir/secret" --line-rate 10 --json "$dir/tcp.json"; then
    ! grep -q 'UNAUTHENTICATED' "$dir/tcp.srv" "$dir/tcp.cli" &&
        grep -q 'Transport      : tcp' "$dir/tcp.cli" && grep -q 'Efficiency\[%\]' "$dir/tcp.cli" &&
        grep -q '"efficiency_pct": [0-9]' "$dir/tcp.json" && grep -q '"line_rate_gbits": 10' "$dir/tcp.json" &&
        ok "tcp: authenticated by --secret-file, efficiency against --line-rate, record saved" ||
        no "tcp: warning printed, or transport, efficiency or record wrong"
fi
S=$(printf '%064x' 7)
pair lat "WEFT_SECRET=$S" "WEFT_SECRET=$S" send_lat -a -n 20 && ! grep -q UNAUTH "$dir/lat.cli" &&
    ok "send_lat with WEFT_SECRET: no warning"
# 3. a client with the wrong secret is refused, clearly; the server stays up for the right one.
port=$((port + 1))
WEFT_SECRET=$S "$P" send_lat -n 10 -p $port >"$dir/auth.srv" 2>&1 &
spid=$!
WEFT_SECRET=$(printf '%064x' 8) "$P" send_lat -n 10 -p $port 127.0.0.1 >"$dir/auth.cli" 2>&1
rc=$?
WEFT_SECRET=$S "$P" send_lat -n 10 -p $port 127.0.0.1 >"$dir/auth2.cli" 2>&1
rc2=$?
wait $spid
rs=$?
[ $rc -ne 0 ] && grep -q 'authentication failed' "$dir/auth.cli" && [ $rc2 -eq 0 ] && [ $rs -eq 0 ] &&
    ok "a wrong secret is refused (exit $rc), the right client then runs" ||
    { no "wrong secret: exit $rc, then $rc2, server $rs"; tail -3 "$dir/auth.cli" "$dir/auth.srv"; }
# 4. a second record, links --compare and plots.
pair cmp "" "" send_bw -a -n 8 --line-rate 25 --json "$dir/shm.json" >/dev/null
if "$P" links --compare "$dir/tcp.json" 2>&1 | grep -q 'libjansson, which this build lacks'; then
    echo "# links --compare not checked: this build has no libjansson (tools/install-deps.sh)"
elif "$P" links --compare "$dir/tcp.json" "$dir/shm.json" >"$dir/cmp.out" 2>&1 &&
    grep -q '^\[2\] .*shm send_bw (25 Gb/s)' "$dir/cmp.out" && grep -Eq '^ +65536 +[0-9.]+ +[0-9.]+% +[0-9.]+ +[0-9.]+%' "$dir/cmp.out"; then
    ok "links --compare lays the two records side by side"
else
    no "links --compare"; cat "$dir/cmp.out"
fi
if command -v gnuplot >/dev/null; then
    grep -q '^\[2\]' "$dir/cmp.out" 2>/dev/null && { "$P" links --compare "$dir/tcp.json" "$dir/shm.json" --plot "$dir/cmp.svg" >/dev/null 2>&1 &&
        grep -q '<svg' "$dir/cmp.svg" && grep -q 'shm send_bw' "$dir/cmp.svg" &&
        ok "links --compare --plot draws an SVG" || no "links --compare --plot"; }
    "$R" -n 2 "$P" send_lat -a -n 10 --plot "$dir/lat.png" >/dev/null 2>&1 &&
        [ "$(head -c 4 "$dir/lat.png" | od -An -c | tr -d ' ')" = '211PNG' ] &&
        ok "send_lat --plot under weft-run draws a PNG" || no "send_lat --plot"
else
    echo "# gnuplot missing: the plots are not checked (apt-get install gnuplot-nox)"
fi
# 5. links: the table, and this host's ports (none on a host without RDMA: said so).
"$P" links --table >"$dir/table" && grep -Eq '^XDR +256 +106.25 +212.5 +PAM4' "$dir/table" &&
    grep -Eq '^EDR +32 +25.78125 +25.78125 +NRZ +64b/66b' "$dir/table" &&
    ok "links --table: SDR..XDR" || no "links --table"
"$P" links >"$dir/links" 2>&1 && ok "links on this host: $(head -1 "$dir/links")" ||
    { no "links"; cat "$dir/links"; }
# links --check on a fake sysfs tree: a healthy 4X HDR port, then one slower than expected
# and one down (exit 1 naming them), and on a host without ports (exit 1).
fs=$dir/sys/class/infiniband
mkdir -p "$fs/mlx5_0/ports/1"
echo "200 Gb/sec (4X HDR)" >"$fs/mlx5_0/ports/1/rate"; echo "4: ACTIVE" >"$fs/mlx5_0/ports/1/state"
echo InfiniBand >"$fs/mlx5_0/ports/1/link_layer"
"$P" links --sysfs "$dir/sys" --check --expect 4XHDR >"$dir/lc1" 2>&1 &&
    grep -Eq '^mlx5_0 +1 ACTIVE +InfiniBand .* HDR +4X +26.5625 +53.125 +PAM4 +256b/257b +RS\(544,514\) +200 ' "$dir/lc1" &&
    grep -q '^links: OK (1 port as expected: 4XHDR)' "$dir/lc1" && ok "links --check --expect 4XHDR: OK" ||
    { no "links --check on a healthy HDR port"; cat "$dir/lc1"; }
mkdir -p "$fs/mlx5_1/ports/1"
echo "100 Gb/sec (4X EDR)" >"$fs/mlx5_1/ports/1/rate"; echo "1: DOWN" >"$fs/mlx5_1/ports/1/state"
"$P" links --sysfs "$dir/sys" --check --expect 4XHDR >"$dir/lc2" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q '^links: BAD port mlx5_1:1: not ACTIVE' "$dir/lc2" && ok "links --check: a port down, exit 1" ||
    { no "links --check with a port down: exit $rc"; cat "$dir/lc2"; }
echo "4: ACTIVE" >"$fs/mlx5_1/ports/1/state"
"$P" links --sysfs "$dir/sys" --check --expect 4XHDR >"$dir/lc3" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q '^links: BAD port mlx5_1:1: slower than expected (ACTIVE, 4X EDR)' "$dir/lc3" &&
    ok "links --check: an EDR port where HDR is expected, exit 1" || { no "links --expect: exit $rc"; cat "$dir/lc3"; }
# 6. fabric: all pairs of 4 ranks in 3 rounds and of 3 ranks in 3, healthy at a 1% threshold.
if "$R" -n 4 "$P" fabric -s 64K -n 4 --lat-iters 20 --threshold 1 --check \
    --json "$dir/fab.json" --csv "$dir/fab.csv" >"$dir/fab.out" 2>&1 &&
    grep -q '^weft-perf fabric: 4 nodes, 3 rounds' "$dir/fab.out" && grep -q '^fabric: OK' "$dir/fab.out" &&
    [ "$(grep -c '"flagged": false' "$dir/fab.json")" -eq 6 ] && [ "$(wc -l <"$dir/fab.csv")" -eq 7 ]; then
    ok "fabric --check over 4 ranks: 3 rounds, 6 pairs in JSON and CSV, OK"
else
    no "fabric over 4 ranks"; cat "$dir/fab.out"
fi
"$R" -n 3 "$P" fabric -s 64K -n 4 --lat-iters 20 --threshold 1 >"$dir/fab3.out" 2>&1 &&
    grep -q '^weft-perf fabric: 3 nodes, 3 rounds' "$dir/fab3.out" && ok "fabric over 3 ranks: 3 rounds" ||
    { no "fabric over 3 ranks"; cat "$dir/fab3.out"; }
# --hosts: started by hand, no launcher (both "hosts" are this one: --rank says which).
port=$((port + 1))
WEFT_SECRET=$S "$P" fabric --hosts 127.0.0.1,127.0.0.1 --rank 1 --port $port -s 64K -n 2 \
    --lat-iters 5 >"$dir/fh1.out" 2>&1 &
WEFT_SECRET=$S "$P" fabric --hosts 127.0.0.1,127.0.0.1 --rank 0 --port $port -s 64K -n 2 \
    --lat-iters 5 --threshold 1 --check >"$dir/fh0.out" 2>&1
rc=$?
wait $!
[ $rc -eq 0 ] && grep -q '^weft-perf fabric: 2 nodes, 1 rounds' "$dir/fh0.out" && ! grep -q UNAUTH "$dir/fh0.out" &&
    ok "fabric --hosts without a launcher, WEFT_SECRET shared" || { no "fabric --hosts: exit $rc"; cat "$dir/fh0.out"; }
# An impossible threshold (every pair below 100% of a 1000x line rate) must fail --check.
"$R" -n 2 "$P" fabric -s 64K -n 2 --lat-iters 5 --against line --line-rate 100000 --threshold 99 \
    --check >"$dir/fabbad.out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q '^fabric: BAD nodes: .*#0 .*#1 (1 of 1 pairs flagged)' "$dir/fabbad.out" &&
    ok "fabric --check exits 1 naming both nodes of a slow pair" ||
    { no "fabric --check on a slow pair: exit $rc"; cat "$dir/fabbad.out"; }
# weft-perf builds against an installed libweft from its own sources alone: weft.h and
# weft_tools.h, the shared library's exported symbols, nothing of core/ or transport/.
if make --no-print-directory install PREFIX="$dir/inst" BUILD="$BUILD" >"$dir/install.log" 2>&1; then
    mkdir -p "$dir/src/perftest"
    cp perftest/*.c perftest/*.h "$dir/src/perftest/"
    extra=""
    pkg-config --exists libibverbs && extra="-DWEFT_HAVE_VERBS $(pkg-config --cflags --libs libibverbs)"
    pkg-config --exists jansson && extra="$extra -DWEFT_HAVE_JANSSON $(pkg-config --cflags --libs jansson)"
    if cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror ${WEFT_TEST_CFLAGS:-} -I"$dir/src" \
        -I"$dir/inst/include" "$dir"/src/perftest/*.c -o "$dir/weft-perf" -L"$dir/inst/lib" -lweft \
        -Wl,-rpath,"$dir/inst/lib" $extra -lm >"$dir/cc.log" 2>&1 &&
        "$dir/weft-perf" links --table | grep -q '^NDR' &&
        "$R" -n 2 "$dir/weft-perf" send_lat -s 8 -n 10 >"$dir/inst.out" 2>&1; then
        ok "weft-perf builds from perftest/ against the installed weft.h, weft_tools.h and libweft.so, and runs"
    else
        no "weft-perf against the installed library"; tail -20 "$dir/cc.log" "$dir/inst.out" 2>/dev/null
    fi
else
    no "make install"; tail -5 "$dir/install.log"
fi
[ $fails -eq 0 ] && echo "perf_pair_check: all passed" || echo "perf_pair_check: $fails failed"
[ $fails -eq 0 ]
