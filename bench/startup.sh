#!/usr/bin/env bash
# Prints the median, minimum and maximum time from process start to the
# "arca ready" log line over RUNS starts (default 11), each on an empty data
# folder.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
runs=${RUNS:-11}

bench_build
times=()
for i in $(seq 1 "$runs"); do
  t0=$(date +%s%N)
  bench_start "$BENCH_TMP/data$i"
  t1=$(date +%s%N)
  bench_stop
  times+=("$(( (t1 - t0) / 1000000 ))")
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {
  printf "start to ready over %d runs: median %d ms, min %d ms, max %d ms\n", NR, a[int((NR+1)/2)], a[1], a[NR]
}'
