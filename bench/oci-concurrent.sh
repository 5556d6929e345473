#!/usr/bin/env bash
# Eight crane clients (CLIENTS to change) push the same random layer (default
# 100 MiB, SIZE_MIB to change) at once, each to its own image and tag in one
# oci repository. All must succeed, every tag must name that layer, and the
# data folder must hold exactly one blob file of the layer's size. Prints the
# timings and the result.
#
# As in oci-large.sh, the layer is gzipped beforehand (PRECOMPRESS=1) so
# that every client uploads the same bytes without compressing them itself;
# with PRECOMPRESS=0 each crane gzips the plain tar (deterministically, so
# the digest is still the same).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
size_mib=${SIZE_MIB:-100}
clients=${CLIENTS:-8}
precompress=${PRECOMPRESS:-1}

command -v crane >/dev/null || PATH=/root/.cache/arca-tools/bin:$PATH
command -v crane >/dev/null || { echo "crane is missing: scripts/test.sh installs it"; exit 1; }

bench_build
# The log must exist before bench_start reads it: under set -e its first
# sed would otherwise end the script when arca has not created it yet.
: >"$BENCH_TMP/data.log"
bench_start "$BENCH_TMP/data"
curl -fsS -u "$CRED" -X POST "$ARCA_URL/api/v1/repositories" \
  -d '{"name":"containers","format":"oci","type":"hosted"}' >/dev/null
host=${ARCA_URL#http://}
export DOCKER_CONFIG="$BENCH_TMP/docker"
crane auth login "$host" -u admin -p bench-secret 2>/dev/null

echo "generating a ${size_mib} MiB random layer"
mkdir "$BENCH_TMP/layer"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom >"$BENCH_TMP/layer/payload.bin"
tar -cf "$BENCH_TMP/layer.tar" -C "$BENCH_TMP/layer" payload.bin
rm "$BENCH_TMP/layer/payload.bin"
layer="$BENCH_TMP/layer.tar"
if [ "$precompress" = 1 ]; then
  gzip -1 -c "$layer" >"$layer.gz"
  rm "$layer"
  layer="$layer.gz"
fi

echo "pushing with $clients crane clients at once"
t0=$(date +%s.%N)
pids=()
for i in $(seq 1 "$clients"); do
  (
    s=$(date +%s.%N)
    crane append --insecure -f "$layer" -t "$host/containers/app$i:v$i" \
      >/dev/null 2>"$BENCH_TMP/client$i.log"
    echo "$s $(date +%s.%N)" >"$BENCH_TMP/client$i.time"
  ) &
  pids+=($!)
done
failed=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    failed=$((failed + 1))
    echo "client $((i + 1)) failed:"
    cat "$BENCH_TMP/client$((i + 1)).log"
  fi
done
t1=$(date +%s.%N)

for i in $(seq 1 "$clients"); do
  [ -f "$BENCH_TMP/client$i.time" ] || continue
  awk -v i="$i" -v t0="$t0" '{ printf "client %d: %.2f s (started at +%.2f s)\n", i, $2 - $1, $1 - t0 }' \
    "$BENCH_TMP/client$i.time"
done
awk -v t0="$t0" -v t1="$t1" -v n="$clients" -v s="$size_mib" 'BEGIN {
    printf "all %d pushes: %.2f s wall clock (%.0f MiB/s of layer bytes offered)\n", n, t1 - t0, n * s / (t1 - t0)
  }'

layer_sum=$(sha256sum "$layer" | cut -d' ' -f1)
uploaded=$(cat "$BENCH_TMP"/client*.log | grep -c "pushed blob: sha256:$layer_sum" || true)
existing=$(cat "$BENCH_TMP"/client*.log | grep -c "existing blob: sha256:$layer_sum" || true)
if [ "$precompress" = 1 ]; then
  echo "clients that uploaded the layer: $uploaded; that found it already stored: $existing"
fi

digests=""
size=""
for i in $(seq 1 "$clients"); do
  m=$(crane manifest --insecure "$host/containers/app$i:v$i" 2>/dev/null) || {
    echo "tag app$i:v$i does not pull"
    failed=$((failed + 1))
    continue
  }
  digests+="$(jq -r '.layers[0].digest' <<<"$m")"$'\n'
  size=$(jq -r '.layers[0].size' <<<"$m")
done
distinct=$(sort -u <<<"$digests" | grep -c . || true)
layer_digest=$(sort -u <<<"$digests" | grep . | head -1)
crane blob --insecure "$host/containers/app1@$layer_digest" 2>/dev/null |
  sha256sum | grep -q "${layer_digest#sha256:}" && echo "layer pulls back intact: $layer_digest"

blob_files=$(find "$BENCH_TMP/data/blobs/blobs" -type f -size "${size:-0}c" | wc -l)
hwm_kib=$(awk '/VmHWM/ {print $2}' "/proc/$ARCA_PID/status")
echo "layer: $size bytes; distinct layer digests across the $clients tags: $distinct"
echo "blob files of that size in the data folder: $blob_files (want exactly 1)"
echo "files left in upload areas: $(find "$BENCH_TMP/data/blobs" -path "$BENCH_TMP/data/blobs/blobs" -prune -o -type f -print | wc -l)"
awk -v hwm="$hwm_kib" 'BEGIN { printf "server peak RSS: %.1f MiB\n", hwm / 1024 }'
if [ "$failed" -eq 0 ] && [ "$distinct" -eq 1 ] && [ "$blob_files" -eq 1 ]; then
  echo "result: OK, $clients of $clients pushes succeeded, one blob stored"
else
  echo "result: FAILED ($failed failures, $distinct digests, $blob_files blob files)"
  exit 1
fi
