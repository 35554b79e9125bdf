#!/usr/bin/env bash
# Builds kube-apiserver (k8s.io/kubernetes/cmd/kube-apiserver) from the Go module proxy, for the tests that run
# the Kubernetes code against a real API server (test/support/kube-apiserver.ts).
#
# Output: ${ROUTELENS_CACHE:-$HOME/.cache/routelens}/kube-apiserver-<version>/kube-apiserver
# The last line on stdout is the binary path. A rerun with the binary present exits at once. All progress goes to
# stderr.
#
# Notes:
# - k8s.io/kubernetes requires its staging modules (k8s.io/api, k8s.io/apiserver, …) at v0.0.0 and replaces them
#   with ./staging directories that are not in its module zip, so `go install …@version` cannot build it. The
#   staging modules are published on their own as v0.<minor>.<patch>; this builds from a throwaway wrapper module
#   that requires k8s.io/kubernetes and replaces each staging module with its published version.
# - The module zip carries the OpenAPI documents the API server serves (api/openapi-spec); the chart tests read
#   them from the module cache (`go mod download -json`), so no download happens beyond this build.
set -euo pipefail

# shellcheck source=kube-versions.sh
source "$(dirname "${BASH_SOURCE[0]}")/kube-versions.sh"

CACHE="${ROUTELENS_CACHE:-$HOME/.cache/routelens}"
DIR="$CACHE/kube-apiserver-$KUBE_VERSION"
BIN="$DIR/kube-apiserver"

BUILD_TAG=build-kube-apiserver
# shellcheck source=go-build-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-build-common.sh"
cached_build_begin "$DIR" "$BIN"

log "building kube-apiserver v$KUBE_VERSION in $DIR (about 10 minutes of 2 cores on a cold cache)"

MOD=k8s.io/kubernetes
INFO=$(go mod download -json "$MOD@v$KUBE_VERSION")
KUBE_GOMOD=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p' <<<"$INFO")
[[ -f "$KUBE_GOMOD" ]] || { log "could not download $MOD@v$KUBE_VERSION"; exit 1; }
STAGING_VERSION="v0.${KUBE_VERSION#1.}"

W="$DIR/wrapper"
rm -rf "$W"
mkdir -p "$W"
{
  echo "module routelens.local/kubeapiserverbuild"
  echo
  grep -m1 '^go ' "$KUBE_GOMOD"
  grep -m1 '^godebug ' "$KUBE_GOMOD" || true
  echo
  echo "require $MOD v$KUBE_VERSION"
  echo
  echo "replace ("
  # Every staging module kubernetes requires at v0.0.0, at its published version.
  sed -n 's/^[[:space:]]*\(k8s\.io\/[a-z0-9.-]*\) v0\.0\.0$/\1/p' "$KUBE_GOMOD" | while read -r m; do
    echo "	$m => $m $STAGING_VERSION"
  done
  echo ")"
} >"$W/go.mod"

cd "$W"
# Resolve exactly what building cmd/kube-apiserver needs (not the tests' dependencies).
go get "$MOD/cmd/kube-apiserver@v$KUBE_VERSION" >&2
V=k8s.io/component-base/version
go build -p 2 -trimpath \
  -ldflags="-s -w -X $V.gitVersion=v$KUBE_VERSION -X $V.gitMajor=1 -X $V.gitMinor=$(cut -d. -f2 <<<"$KUBE_VERSION") -X $V.gitTreeState=clean" \
  -o "$BIN.tmp" "$MOD/cmd/kube-apiserver" >&2
mv -f "$BIN.tmp" "$BIN"

cached_build_done
echo "$BIN"
