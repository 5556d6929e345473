#!/usr/bin/env bash
# Pushes one large random layer (default 1 GiB, SIZE_MIB to change) to an oci
# repository with crane, pulls the layer blob back, checks it byte for byte,
# and prints push and pull throughput and the server's peak resident memory
# (VmHWM).
#
# The layer is a tar holding one random file. By default (PRECOMPRESS=1) it is
# gzipped before the clock starts, so that crane uploads the file as it is and
# the figures measure the transfer, not crane's own compression; with
# PRECOMPRESS=0 crane gets the plain tar and gzips it itself while pushing
# (it reads the layer twice: once for the digest, once for the upload).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
size_mib=${SIZE_MIB:-1024}
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
# crane's progress lines go to a log, shown when a command fails.
crane_log="$BENCH_TMP/crane.log"
crane_() { crane "$@" 2>>"$crane_log" || { echo "crane $1 failed:" >&2; cat "$crane_log" >&2; exit 1; }; }
crane_ auth login "$host" -u admin -p bench-secret

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
img="$host/containers/big"

t0=$(date +%s.%N)
crane_ append --insecure -f "$layer" -t "$img:1" >/dev/null
t1=$(date +%s.%N)

manifest=$(crane_ manifest --insecure "$img:1")
digest=$(jq -r '.layers[0].digest' <<<"$manifest")
blob_size=$(jq -r '.layers[0].size' <<<"$manifest")
t2=$(date +%s.%N)
crane_ blob --insecure "$img@$digest" >"$BENCH_TMP/back.bin"
t3=$(date +%s.%N)

back_sum=$(sha256sum "$BENCH_TMP/back.bin" | cut -d' ' -f1)
[ "sha256:$back_sum" = "$digest" ] || { echo "pulled layer has sha256:$back_sum, manifest says $digest"; exit 1; }
if [ "$precompress" = 1 ]; then
  cmp "$layer" "$BENCH_TMP/back.bin"
else
  gzip -dc "$BENCH_TMP/back.bin" | cmp "$layer" -
fi
echo "round trip: byte-identical (layer $digest, $blob_size bytes)"

hwm_kib=$(awk '/VmHWM/ {print $2}' "/proc/$ARCA_PID/status")
awk -v s="$size_mib" -v b="$blob_size" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v t3="$t3" -v hwm="$hwm_kib" 'BEGIN {
    mib = b / 1048576; up = t1 - t0; down = t3 - t2
    printf "push (crane append, %.0f MiB blob): %.1f s, %.0f MiB/s\n", mib, up, mib / up
    printf "pull (crane blob):                %.1f s, %.0f MiB/s\n", down, mib / down
    printf "server peak RSS: %.1f MiB (target: under 150 MiB)\n", hwm / 1024
  }'
