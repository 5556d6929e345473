#!/usr/bin/env bash
# 50 clients (CLIENTS to change) ask a raw proxy repository, at once, for
# one file (default 100 MiB, SIZE_MIB to change) that it has never cached;
# the upstream is a second arca serving it from a hosted raw repository.
# Every client must get the file byte for byte, and the upstream must have
# answered exactly one GET for it. Prints the timings, the number of
# upstream GETs and the proxy's peak RSS.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
size_mib=${SIZE_MIB:-100}
clients=${CLIENTS:-50}

bench_build
bench_start "$BENCH_TMP/up"
UP_PID=$ARCA_PID UP_URL=$ARCA_URL
trap 'kill "$UP_PID" 2>/dev/null || true; bench_stop; rm -rf "$BENCH_TMP"' EXIT
ARCA_PID=""
bench_start "$BENCH_TMP/down"

curl -fsS -u "$CRED" -X POST "$UP_URL/api/v1/repositories" \
  -d '{"name":"files","format":"raw","type":"hosted"}' >/dev/null
curl -fsS -u "$CRED" -X POST "$ARCA_URL/api/v1/repositories" \
  -d '{"name":"files-proxy","format":"raw","type":"proxy","proxy":{"url":"'"$UP_URL"'/repository/files/","username":"admin","password":"bench-secret"}}' >/dev/null

echo "uploading a ${size_mib} MiB random file to the upstream"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom >"$BENCH_TMP/big.bin"
want=$(sha256sum "$BENCH_TMP/big.bin" | cut -d' ' -f1)
curl -fsS -u "$CRED" -T "$BENCH_TMP/big.bin" "$UP_URL/repository/files/big.bin"
rm "$BENCH_TMP/big.bin"

echo "$clients clients ask the proxy at once"
t0=$(date +%s.%N)
pids=()
for i in $(seq 1 "$clients"); do
  (
    s=$(date +%s.%N)
    curl -fsS -u "$CRED" "$ARCA_URL/repository/files-proxy/big.bin" | sha256sum | cut -d' ' -f1 >"$BENCH_TMP/sum$i"
    echo "$s $(date +%s.%N)" >"$BENCH_TMP/time$i"
  ) &
  pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
t1=$(date +%s.%N)

wrong=0
for i in $(seq 1 "$clients"); do
  [ "$(cat "$BENCH_TMP/sum$i")" = "$want" ] || wrong=$((wrong + 1))
done
gets=$(grep -c '"method":"GET","path":"/repository/files/big.bin".*"status":200' "$BENCH_TMP/up.log" || true)
durations=$(for i in $(seq 1 "$clients"); do awk '{printf "%.2f\n", $2 - $1}' "$BENCH_TMP/time$i"; done | sort -n)
median=$(echo "$durations" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
rss=$(awk '/VmHWM/ {print $2}' "/proc/$ARCA_PID/status")

printf 'clients: %d, failed: %d, wrong bytes: %d\n' "$clients" "$failed" "$wrong"
printf 'upstream GETs of the file: %s (want 1)\n' "$gets"
printf 'wall time: %.2f s; per-client median %s s, slowest %s s\n' "$(echo "$t1 - $t0" | bc)" "$median" "$(echo "$durations" | tail -1)"
printf 'proxy peak RSS: %d KiB\n' "$rss"
[ "$failed" = 0 ] && [ "$wrong" = 0 ] && [ "$gets" = 1 ]
