#!/usr/bin/env bash
# Runs arca's whole test suite on a Debian machine, installing first what the
# tests need: Debian packages with apt-get, Go tools with `go install` into a
# cache folder that later runs reuse. CI runs exactly this script.
#
# Steps: gofmt (no diff), go vet, staticcheck, unit tests with -race, then
# the end-to-end tests against a normal (non-race) build of the arca binary.
set -euo pipefail
cd "$(dirname "$0")/.."

tools="${ARCA_TOOLS_CACHE:-$HOME/.cache/arca-tools}"
export GOBIN="$tools/bin"
export PATH="$GOBIN:$PATH"
mkdir -p "$GOBIN"

# Debian packages: curl drives the raw end-to-end tests; maven brings the
# local Maven repository under /usr/share/maven-repo that they upload, and
# the Maven plugin packages fill it with the plugins the mvn tests build
# with, offline; skopeo is one of the OCI clients; twine and Python's build, setuptools,
# wheel, venv and pip drive the PyPI tests.
packages=()
command -v curl >/dev/null || packages+=(curl)
{ command -v mvn >/dev/null && [ -d /usr/share/maven-repo ]; } || packages+=(maven)
for plugin in deploy:libmaven-deploy-plugin-java jar:libmaven-jar-plugin-java \
  compiler:libmaven-compiler-plugin-java resources:libmaven-resources-plugin-java \
  install:libmaven-install-plugin-java surefire:libsurefire-java; do
  [ -d "/usr/share/maven-repo/org/apache/maven/plugins/maven-${plugin%%:*}-plugin" ] || packages+=("${plugin#*:}")
done
command -v skopeo >/dev/null || packages+=(skopeo)
command -v twine >/dev/null || packages+=(twine)
{ /usr/bin/python3 -c 'import build, setuptools, wheel, venv, pip' >/dev/null 2>&1 &&
  compgen -G '/usr/share/python-wheels/pip-*.whl' >/dev/null; } ||
  packages+=(python3-build python3-setuptools python3-wheel python3-venv python3-pip)
if [ ${#packages[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${packages[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}"
fi

# Go tools, pinned, installed once into the cache (helm takes minutes to
# build on two cores: the cache is what keeps later runs fast).
install() { # install NAME MODULE@VERSION
  [ -x "$GOBIN/$1" ] || { echo "== installing $1"; go install "$2"; }
}
install staticcheck honnef.co/go/tools/cmd/staticcheck@v0.8.2
install conformance github.com/opencontainers/distribution-spec/conformance@v0.0.0-20260831232431-97274622c111
install crane github.com/google/go-containerregistry/cmd/crane@v0.22.1
install oras oras.land/oras/cmd/oras@v1.3.6
install helm helm.sh/helm/v4/cmd/helm@v4.3.2

# npm clients besides the machine's npm, pinned, installed once into the
# cache with that npm (pnpm 11 does not run on Node 20).
export PATH="$tools/npm/node_modules/.bin:$PATH"
if command -v npm >/dev/null && ! { [ -x "$tools/npm/node_modules/.bin/yarn" ] &&
    [ -x "$tools/npm/node_modules/.bin/pnpm" ]; }; then
  echo "== installing yarn and pnpm"
  npm install --no-save --prefix "$tools/npm" yarn@1.22.22 pnpm@10.34.9
fi

echo "== gofmt"
unformatted=$(gofmt -l $(find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== staticcheck"
staticcheck ./...

echo "== unit tests (-race)"
go test -race -count=1 $(go list ./... | grep -v /e2e)

echo "== end-to-end tests"
bin="$(mktemp -d)/arca"
go build -o "$bin" ./cmd/arca
ARCA_BIN="$bin" go test -count=1 -timeout 10m ./e2e/...
