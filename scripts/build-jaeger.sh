#!/usr/bin/env bash
# Builds the Jaeger v2 binary (cmd/jaeger) from the Go module proxy.
#
# Output: ${ROUTELENS_CACHE:-$HOME/.cache/routelens}/jaeger-<version>/jaeger
# The last line on stdout is the binary path. A rerun with the binary present
# exits at once. All progress goes to stderr.
#
# Notes:
# - Jaeger v2 is published in the Go module github.com/jaegertracing/jaeger
#   under v1.x tags (the v2.x git tags are not valid versions of that module
#   path). v1.76.0 is Jaeger v2.13.0.
# - `go install pkg@version` refuses modules whose go.mod has replace
#   directives (Jaeger's has one), so this builds from a throwaway wrapper
#   module that requires Jaeger and re-declares Jaeger's replace directives.
# - The UI assets live in a git submodule that is not in the module zip; built
#   without the `ui` tag Jaeger serves a placeholder page. The HTTP API
#   (/api/services, /api/traces, /api/metrics/*, /api/v3/*) is complete.
set -euo pipefail

# Module version (v1.x) of the Jaeger v2 release to build.
JAEGER_MODULE_VERSION="${JAEGER_MODULE_VERSION:-1.76.0}"

CACHE="${ROUTELENS_CACHE:-$HOME/.cache/routelens}"
DIR="$CACHE/jaeger-$JAEGER_MODULE_VERSION"
BIN="$DIR/jaeger"

BUILD_TAG=build-jaeger
# shellcheck source=go-build-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-build-common.sh"
cached_build_begin "$DIR" "$BIN"

log "building jaeger (module v$JAEGER_MODULE_VERSION) in $DIR (takes several minutes on a cold cache)"

MOD=github.com/jaegertracing/jaeger
INFO=$(go mod download -json "$MOD@v$JAEGER_MODULE_VERSION")
JAEGER_GOMOD=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p' <<<"$INFO")
JAEGER_DIR=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p' <<<"$INFO")
[[ -f "$JAEGER_GOMOD" ]] || { log "could not download $MOD@v$JAEGER_MODULE_VERSION"; exit 1; }

W="$DIR/wrapper"
rm -rf "$W"
mkdir -p "$W"
{
  echo "module routelens.local/jaegerbuild"
  echo
  # Same language version as Jaeger itself.
  grep -m1 '^go ' "$JAEGER_GOMOD"
  echo
  echo "require $MOD v$JAEGER_MODULE_VERSION"
  echo
  # Re-declare the main module's replace directives (ignored in dependencies).
  sed -n '/^replace [^(]/p' "$JAEGER_GOMOD"
  awk '/^replace \($/{f=1; print; next} f{print} f&&/^\)$/{f=0}' "$JAEGER_GOMOD"
} >"$W/go.mod"

# The Jaeger v2 release name of this module version, e.g. v2.13.0 for
# v1.76.0 (from the CHANGELOG heading "v1.76.0 / v2.13.0 (date)").
V2=$(sed -n "s/^v$JAEGER_MODULE_VERSION \/ \(v2[^ ]*\) .*/\1/p" "$JAEGER_DIR/CHANGELOG.md" 2>/dev/null | head -1)
V2=${V2:-v$JAEGER_MODULE_VERSION}
log "module v$JAEGER_MODULE_VERSION is Jaeger $V2"

cd "$W"
# Resolve exactly what building cmd/jaeger needs (not Jaeger's test deps).
go get "$MOD/cmd/jaeger@v$JAEGER_MODULE_VERSION" >&2
go build -p 2 -trimpath \
  -ldflags="-s -w -X $MOD/internal/version.latestVersion=$V2" \
  -o "$BIN.tmp" "$MOD/cmd/jaeger" >&2
mv -f "$BIN.tmp" "$BIN"

cached_build_done
echo "$BIN"
