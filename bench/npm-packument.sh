#!/usr/bin/env bash
# Publishes one npm package with many versions (default 500, VERSIONS to
# change) and measures with wrk, at 64 concurrent connections on loopback
# (CONNECTIONS, DURATION to change), both packument forms as npm asks them:
# full and abbreviated, gzip accepted, with an API token. Prints requests/s,
# p99 latency and the size of each document; then the same through a group
# of that repository and a second one holding two of the versions, whose
# merged document the group keeps between requests.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
versions=${VERSIONS:-500}
conns=${CONNECTIONS:-64}
duration=${DURATION:-5s}
pkg=bench-pkg

if ! command -v wrk >/dev/null; then
  echo "installing wrk"
  apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi

bench_build
bench_start "$BENCH_TMP/data"
curl -fsS -u "$CRED" -X POST "$ARCA_URL/api/v1/repositories" \
  -d '{"name":"npmbench","format":"npm","type":"hosted"}' >/dev/null
token=$(curl -fsS -u "$CRED" -X POST -H 'Content-Type: application/json' \
  -d '{"name":"bench"}' "$ARCA_URL/api/v1/tokens" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
registry="$ARCA_URL/repository/npmbench"

# Publishes the versions as npm does: one PUT per version with the tarball
# (a gzipped tar holding package/package.json) as a base64 attachment, over
# one kept-alive connection.
# publish REGISTRY COUNT: publishes the first COUNT versions.
publish() {
python3 - "$1" "$token" "$pkg" "$2" <<'EOF'
import base64, gzip, hashlib, http.client, io, json, sys, tarfile, urllib.parse

registry, token, name, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
u = urllib.parse.urlsplit(registry)
conn = http.client.HTTPConnection(u.hostname, u.port)

def tarball(manifest):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo("package/package.json")
        info.size, info.mode, info.mtime = len(data), 0o644, 0
        tf.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)

for i in range(count):
    version = f"{i // 100}.{i // 10 % 10}.{i % 10}"
    manifest = {"name": name, "version": version, "description": "a package with many versions",
                "main": "index.js", "license": "MIT", "keywords": ["bench"],
                "dependencies": {"left-pad": "^1.3.0"}, "scripts": {"test": "true"}}
    tgz = tarball(manifest)
    dist = {"integrity": "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode(),
            "shasum": hashlib.sha1(tgz).hexdigest(),
            "tarball": f"{registry}/{name}/-/{name}-{version}.tgz"}
    body = json.dumps({
        "_id": name, "name": name, "description": manifest["description"],
        "dist-tags": {"latest": version},
        "versions": {version: dict(manifest, _id=f"{name}@{version}", dist=dist)},
        "_attachments": {f"{name}-{version}.tgz": {"content_type": "application/octet-stream",
                                                   "data": base64.b64encode(tgz).decode(),
                                                   "length": len(tgz)}},
    }).encode()
    conn.request("PUT", f"{u.path}/{name}", body,
                 {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    resp = conn.getresponse()
    text = resp.read()
    if resp.status != 201:
        sys.exit(f"publish {version}: {resp.status} {text.decode()}")
EOF
}
echo "publishing $pkg with $versions versions"
t0=$(date +%s.%N)
publish "$registry" "$versions"
t1=$(date +%s.%N)
awk -v n="$versions" -v t0="$t0" -v t1="$t1" \
  'BEGIN { printf "published %d versions in %.1f s (%.0f/s)\n", n, t1 - t0, n / (t1 - t0) }'

abbrev='application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*'
full='application/json'
url="$registry/$pkg"

# doc_size ACCEPT: the document's size plain and gzip-compressed; checks the
# version count and that gzip is served.
doc_size() {
  local plain gz n
  plain=$(curl -fsS -H "Authorization: Bearer $token" -H "Accept: $1" "$url" -o "$BENCH_TMP/doc.json" -w '%{size_download}')
  n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["versions"]))' "$BENCH_TMP/doc.json")
  [ "$n" = "$versions" ] || { echo "document has $n versions, want $versions"; exit 1; }
  gz=$(curl -fsS -H "Authorization: Bearer $token" -H "Accept: $1" -H 'Accept-Encoding: gzip' \
    -D "$BENCH_TMP/headers" "$url" -o /dev/null -w '%{size_download}')
  grep -qi '^content-encoding: gzip' "$BENCH_TMP/headers" || { echo "no gzip served"; exit 1; }
  echo "$plain $gz"
}

# measure LABEL ACCEPT: wrk at $conns connections; prints a result line.
measure() {
  local label=$1 accept=$2 sizes out rps p99 non2xx
  sizes=$(doc_size "$accept")
  out=$(wrk -t "$(nproc | awk '{print ($1 < 8 ? $1 : 8)}')" -c "$conns" -d "$duration" --latency \
    -H "Authorization: Bearer $token" -H "Accept: $accept" -H 'Accept-Encoding: gzip' "$url")
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  [ -z "$non2xx" ] || { echo "$label: $non2xx non-2xx responses"; echo "$out"; exit 1; }
  read -r plain gz <<<"$sizes"
  printf '%-12s %10.0f req/s   p99 %8s   size %8d B plain, %7d B gzip\n' \
    "$label" "$rps" "$p99" "$plain" "$gz"
}

echo "wrk: $conns connections, $duration each, gzip accepted, Bearer token, $(nproc) CPUs"
measure full "$full"
measure abbreviated "$abbrev"

curl -fsS -u "$CRED" -X POST "$ARCA_URL/api/v1/repositories" \
  -d '{"name":"npmbench2","format":"npm","type":"hosted"}' >/dev/null
curl -fsS -u "$CRED" -X POST "$ARCA_URL/api/v1/repositories" \
  -d '{"name":"npmgroup","format":"npm","type":"group","group":{"members":["npmbench","npmbench2"]}}' >/dev/null
publish "$ARCA_URL/repository/npmbench2" 2
url="$ARCA_URL/repository/npmgroup/$pkg"
echo "through a group of npmbench and npmbench2 (merged view kept):"
measure "group full" "$full"
measure "group abbr." "$abbrev"
