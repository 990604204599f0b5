#!/usr/bin/env bash
# cma_vs_queue.sh - shm's single copy (WEFT_SHM_CMA=1: the receiver reads the sender's buffer
# with process_vm_readv) against its pipelined two-copy queue (the default), per collective:
# 2 ranks on this host, busbw GB/s of each, medians of ROUNDS interleaved rounds, and the
# ratio single copy / queue.
#   bench/cma_vs_queue.sh [BUILD]
#   COLLS="allgather broadcast" SIZES="1M 16M" ROUNDS=7 bench/cma_vs_queue.sh
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
BUILD=${1:-build}
COLLS=${COLLS:-allgather broadcast allreduce reduce_scatter}
SIZES=${SIZES:-256K 1M 4M 16M 64M}
ROUNDS=${ROUNDS:-5}
make -s -j"$(nproc)" BUILD="$BUILD" all >&2 || exit 1

# iterations by size: each run takes about 0.1-0.5 s
iters() { case $1 in 256K) echo 400 ;; 1M) echo 200 ;; 4M) echo 50 ;; 16M) echo 20 ;; *) echo 8 ;; esac; }
busbw() { # COLL SIZE CMA
    WEFT_TRANSPORT=shm WEFT_SHM_CMA=$3 "$BUILD/bin/weft-run" -n 2 "$BUILD/bin/weft-perf" "$1" \
        -b "$2" -e "$2" -n "$(iters "$2")" -w 3 -c 0 --csv 2>/dev/null |
        awk -F, '$2 ~ /^[0-9]+$/ { print $9 }'
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : 0 }'; }

printf "%-15s %6s %10s %12s %8s\n" collective size "queue GB/s" "single GB/s" ratio
for coll in $COLLS; do
    for size in $SIZES; do
        q="" c=""
        for ((r = 1; r <= ROUNDS; r++)); do
            q="$q $(busbw "$coll" "$size" 0)"
            c="$c $(busbw "$coll" "$size" 1)"
        done
        mq=$(echo "$q" | median) mc=$(echo "$c" | median)
        awk -v co="$coll" -v s="$size" -v q="$mq" -v c="$mc" -v rq="$q" -v rc="$c" 'BEGIN {
            ratio = q > 0 ? sprintf("%.2f", c / q) : "-"
            printf "%-15s %6s %10.2f %12.2f %8s   [%s] [%s]\n", co, s, q, c, ratio, rq, rc }'
    done
done
