#!/usr/bin/env bash
# Builds etcd (the API server's store) from the Go module proxy, for the tests that run the Kubernetes code
# against a real API server (test/support/kube-apiserver.ts).
#
# Output: ${ROUTELENS_CACHE:-$HOME/.cache/routelens}/etcd-<version>/etcd
# The last line on stdout is the binary path. A rerun with the binary present exits at once. All progress goes to
# stderr.
#
# `go install go.etcd.io/etcd/server/v3@version` refuses the module (its go.mod replaces its sibling modules with
# ../ directories), so this builds from a throwaway wrapper module that requires the server module; the siblings
# resolve to the same published version.
set -euo pipefail

# shellcheck source=kube-versions.sh
source "$(dirname "${BASH_SOURCE[0]}")/kube-versions.sh"

CACHE="${ROUTELENS_CACHE:-$HOME/.cache/routelens}"
DIR="$CACHE/etcd-$ETCD_VERSION"
BIN="$DIR/etcd"

BUILD_TAG=build-etcd
# shellcheck source=go-build-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-build-common.sh"
cached_build_begin "$DIR" "$BIN"

log "building etcd v$ETCD_VERSION in $DIR (a few minutes on a cold cache)"

MOD=go.etcd.io/etcd/server/v3
INFO=$(go mod download -json "$MOD@v$ETCD_VERSION")
ETCD_GOMOD=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p' <<<"$INFO")
[[ -f "$ETCD_GOMOD" ]] || { log "could not download $MOD@v$ETCD_VERSION"; exit 1; }

W="$DIR/wrapper"
rm -rf "$W"
mkdir -p "$W"
{
  echo "module routelens.local/etcdbuild"
  echo
  grep -m1 '^go ' "$ETCD_GOMOD"
  echo
  echo "require $MOD v$ETCD_VERSION"
} >"$W/go.mod"

cd "$W"
go get "$MOD@v$ETCD_VERSION" >&2
go build -p 2 -trimpath -ldflags="-s -w" -o "$BIN.tmp" "$MOD" >&2
mv -f "$BIN.tmp" "$BIN"

cached_build_done
echo "$BIN"
