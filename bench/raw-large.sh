#!/usr/bin/env bash
# Uploads and downloads one large file (default 2 GiB, SIZE_MIB to change)
# through a raw repository, checks it byte for byte and a Range slice, and
# prints throughput and the server's peak resident memory (VmHWM).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
size_mib=${SIZE_MIB:-2048}

bench_build
bench_start "$BENCH_TMP/data"
curl -fsS -u "$CRED" -X POST "$ARCA_URL/api/v1/repositories" \
  -d '{"name":"bench","format":"raw","type":"hosted"}' >/dev/null

src="$BENCH_TMP/src.bin"
echo "generating ${size_mib} MiB of random data"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom >"$src"
url="$ARCA_URL/repository/bench/large/src.bin"

t0=$(date +%s.%N)
curl -fsS -u "$CRED" -T "$src" "$url"
t1=$(date +%s.%N)
curl -fsS -u "$CRED" -o "$BENCH_TMP/back.bin" "$url"
t2=$(date +%s.%N)

cmp "$src" "$BENCH_TMP/back.bin" && echo "round trip: byte-identical"
offset=$((size_mib * 1024 * 1024 / 2 + 12345))
curl -fsS -u "$CRED" -r "$offset-$((offset + 999999))" -o "$BENCH_TMP/slice.bin" \
  -w 'range status: %{http_code}\n' "$url"
tail -c +"$((offset + 1))" "$src" | head -c 1000000 | cmp - "$BENCH_TMP/slice.bin" \
  && echo "range slice: identical"

hwm_kib=$(awk '/VmHWM/ {print $2}' "/proc/$ARCA_PID/status")
awk -v s="$size_mib" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v hwm="$hwm_kib" 'BEGIN {
    up = t1 - t0; down = t2 - t1
    printf "upload:   %.1f s, %.0f MiB/s\n", up, s / up
    printf "download: %.1f s, %.0f MiB/s\n", down, s / down
    printf "server peak RSS: %.1f MiB (target: under 100 MiB)\n", hwm / 1024
  }'
