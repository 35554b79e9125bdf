#!/usr/bin/env bash
# Builds telemetrygen, the OpenTelemetry Collector's own load generator (contrib cmd/telemetrygen), from the Go
# module proxy. The benchmark uses it as a second load source, independent of bench/loadgen.ts.
#
# Output: ${ROUTELENS_CACHE:-$HOME/.cache/routelens}/telemetrygen-<version>/telemetrygen
# The last line on stdout is the binary path. A rerun with the binary present exits at once. All progress goes to
# stderr.
#
# The version is the Collector's release (scripts/build-otelcol.sh), so both sides speak the same OTLP.
set -euo pipefail

TELEMETRYGEN_VERSION="${TELEMETRYGEN_VERSION:-0.161.0}"

CACHE="${ROUTELENS_CACHE:-$HOME/.cache/routelens}"
DIR="$CACHE/telemetrygen-$TELEMETRYGEN_VERSION"
BIN="$DIR/telemetrygen"

BUILD_TAG=build-telemetrygen
# shellcheck source=go-build-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-build-common.sh"
cached_build_begin "$DIR" "$BIN"

log "building telemetrygen v$TELEMETRYGEN_VERSION in $DIR (takes a few minutes on a cold cache)"

# `go install pkg@version` builds the module's own go.mod (telemetrygen has no replace directives) and nothing else.
GOBIN="$DIR/bin" go install -p 2 -trimpath -ldflags='-s -w' \
  "github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@v$TELEMETRYGEN_VERSION" >&2
"$DIR/bin/telemetrygen" --help >/dev/null
mv -f "$DIR/bin/telemetrygen" "$BIN"

cached_build_done
echo "$BIN"
