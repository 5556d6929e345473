# Shared helpers for the bench scripts: build arca once, start it on a free
# loopback port with a temporary data folder, stop it.
# shellcheck shell=bash

bench_build() {
  BENCH_TMP=$(mktemp -d)
  trap 'bench_stop; rm -rf "$BENCH_TMP"' EXIT
  (cd "$(dirname "${BASH_SOURCE[0]}")/.." && go build -o "$BENCH_TMP/arca" ./cmd/arca)
  ARCA="$BENCH_TMP/arca"
}

# bench_start DATA_DIR: starts arca and sets ARCA_PID and ARCA_URL.
bench_start() {
  local data=$1 log=$1.log
  : >"$log" # exists before the server writes it, for the polling below
  ARCA_ADMIN_PASSWORD=bench-secret "$ARCA" serve --data "$data" --listen 127.0.0.1:0 \
    --log-format json 2>"$log" &
  ARCA_PID=$!
  local addr=""
  for _ in $(seq 1 200); do
    addr=$(sed -n 's/.*"msg":"arca ready".*"addr":"\([^"]*\)".*/\1/p' "$log")
    [ -n "$addr" ] && break
    sleep 0.05
  done
  [ -n "$addr" ] || { echo "arca did not start:"; cat "$log"; exit 1; }
  ARCA_URL="http://$addr"
  CRED="admin:bench-secret"
}

bench_stop() {
  if [ -n "${ARCA_PID:-}" ]; then
    kill "$ARCA_PID" 2>/dev/null || true
    wait "$ARCA_PID" 2>/dev/null || true
    ARCA_PID=""
  fi
}
