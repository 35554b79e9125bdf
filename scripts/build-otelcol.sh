#!/usr/bin/env bash
# Builds a custom OpenTelemetry Collector ("otelcol-routelens") with the
# OpenTelemetry Collector Builder (ocb), for the benchmark and interop checks.
#
# Output: ${ROUTELENS_CACHE:-$HOME/.cache/routelens}/otelcol-<version>-<hash of the components>/otelcol-routelens
# The last line on stdout is the binary path. A rerun with the binary present
# exits at once. All progress goes to stderr.
#
# Why not plain `ocb --config ...`: ocb's "get modules" step runs `go mod tidy`,
# which also fetches the *test* dependencies of every component. The module
# proxy reachable here refuses some of those zips (403 "This module version is
# not available"), e.g. contrib pkg/semconvtest, which k8sattributes only uses
# in its tests. So ocb is run with --skip-compilation; when its tidy fails
# after writing the sources, this script runs `go mod tidy -e` (tolerates the
# missing test-only modules), checks the component versions itself, and runs
# `go build`.
set -euo pipefail

# One release of core + contrib. All components must come from the same
# release. v0.161.0 is the newest release whose component zips the proxy here
# serves for all its components (0.162-0.165 prometheusexporter: 403).
# k8sattributesprocessor went 1.x at this release: v1.0.0 == contrib v0.161.0.
OTELCOL_VERSION="${OTELCOL_VERSION:-0.161.0}"
K8SATTR_VERSION="${K8SATTR_VERSION:-1.0.0}"

CORE=go.opentelemetry.io/collector
CONTRIB=github.com/open-telemetry/opentelemetry-collector-contrib

# The components. The cache directory is named by a hash of this list, so a changed list builds into a new
# directory (CI and every checkout rebuild) and never over a binary another checkout may be running.
COMPONENTS=$(cat <<EOF
receivers:
  - gomod: $CORE/receiver/otlpreceiver v$OTELCOL_VERSION
processors:
  - gomod: $CORE/processor/batchprocessor v$OTELCOL_VERSION
  - gomod: $CORE/processor/memorylimiterprocessor v$OTELCOL_VERSION
  - gomod: $CONTRIB/processor/k8sattributesprocessor v$K8SATTR_VERSION
  - gomod: $CONTRIB/processor/tailsamplingprocessor v$OTELCOL_VERSION
connectors:
  - gomod: $CONTRIB/connector/spanmetricsconnector v$OTELCOL_VERSION
  - gomod: $CORE/connector/forwardconnector v$OTELCOL_VERSION
exporters:
  - gomod: $CORE/exporter/otlpexporter v$OTELCOL_VERSION
  - gomod: $CORE/exporter/debugexporter v$OTELCOL_VERSION
  - gomod: $CONTRIB/exporter/prometheusexporter v$OTELCOL_VERSION
  - gomod: $CONTRIB/exporter/loadbalancingexporter v$OTELCOL_VERSION
EOF
)
KEY=$(printf '%s\n' "$COMPONENTS" | sha256sum | cut -c1-10)

CACHE="${ROUTELENS_CACHE:-$HOME/.cache/routelens}"
DIR="$CACHE/otelcol-$OTELCOL_VERSION-$KEY"
BIN="$DIR/otelcol-routelens"

BUILD_TAG=build-otelcol
# shellcheck source=go-build-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-build-common.sh"
cached_build_begin "$DIR" "$BIN"

log "building otelcol-routelens v$OTELCOL_VERSION in $DIR (takes a few minutes on a cold cache)"

GOBIN="$DIR/bin" go install "go.opentelemetry.io/collector/cmd/builder@v$OTELCOL_VERSION" >&2
OCB="$DIR/bin/builder"

SRC="$DIR/src"
rm -rf "$SRC"

cat >"$DIR/manifest.yaml" <<EOF
dist:
  name: otelcol-routelens
  module: routelens.local/otelcol
  description: OpenTelemetry Collector for routelens benchmarks and interop tests
  version: "$OTELCOL_VERSION-routelens"
  output_path: $SRC
$COMPONENTS
EOF

# ocb writes main.go, components.go and go.mod, then runs `go mod tidy`.
# If only that tidy fails (see top), fall back to `go mod tidy -e`.
if ! "$OCB" --config "$DIR/manifest.yaml" --skip-compilation >"$DIR/ocb.log" 2>&1; then
  if [[ ! -f "$SRC/go.mod" || ! -f "$SRC/components.go" ]]; then
    cat "$DIR/ocb.log" >&2
    log "ocb failed before generating sources"
    exit 1
  fi
  log "ocb's 'go mod tidy' failed; retrying with 'go mod tidy -e'. ocb said:"
  grep -v '^go: downloading' "$DIR/ocb.log" | tail -4 >&2
  # The loadbalancing exporter's AWS Cloud Map resolver imports aws-sdk-go-v2/service/servicediscovery, whose
  # v1.48.0 zip the proxy refuses (403); v1.40.2 is served and has the API the resolver uses.
  (cd "$SRC" && go mod edit -replace github.com/aws/aws-sdk-go-v2/service/servicediscovery=github.com/aws/aws-sdk-go-v2/service/servicediscovery@v1.40.2)
  (cd "$SRC" && go mod tidy -e) >"$DIR/tidy.log" 2>&1 || true
fi

cd "$SRC"
# Every component must resolve to exactly the pinned version (ocb's strict
# versioning check, which the fallback path skips).
while read -r mod ver; do
  got=$(go list -m -f '{{.Version}}' "$mod")
  if [[ "$got" != "$ver" ]]; then
    log "version mismatch: $mod resolved to $got, pinned $ver"
    exit 1
  fi
done < <(sed -n 's/^ *- gomod: \([^ ]*\) \(v[^ ]*\)$/\1 \2/p' "$DIR/manifest.yaml")

go build -p 2 -trimpath -ldflags='-s -w' -o "$BIN.tmp" . >&2
"$BIN.tmp" --version >&2
mv -f "$BIN.tmp" "$BIN"

cached_build_done
echo "$BIN"
