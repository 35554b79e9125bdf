#!/usr/bin/env bash
# Builds helm (helm.sh/helm/v4/cmd/helm) from the Go module proxy, for the chart tests (test/k8s/chart.test.ts).
#
# Output: ${ROUTELENS_CACHE:-$HOME/.cache/routelens}/helm-<version>/helm
# The last line on stdout is the binary path. A rerun with the binary present exits at once. All progress goes to
# stderr.
set -euo pipefail

# shellcheck source=kube-versions.sh
source "$(dirname "${BASH_SOURCE[0]}")/kube-versions.sh"

CACHE="${ROUTELENS_CACHE:-$HOME/.cache/routelens}"
DIR="$CACHE/helm-$HELM_VERSION"
BIN="$DIR/helm"

BUILD_TAG=build-helm
# shellcheck source=go-build-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-build-common.sh"
cached_build_begin "$DIR" "$BIN"

log "building helm v$HELM_VERSION in $DIR (a few minutes on a cold cache)"

# helm's go.mod has no replace directives: `go install` builds it as released. Without the version ldflag it
# would call itself "v4.3"; metadata is cleared as a release build does.
GOBIN="$DIR/bin" go install -trimpath \
  -ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=v$HELM_VERSION -X helm.sh/helm/v4/internal/version.metadata=" \
  "helm.sh/helm/v4/cmd/helm@v$HELM_VERSION" >&2
mv -f "$DIR/bin/helm" "$BIN"
rmdir "$DIR/bin" 2>/dev/null || true

cached_build_done
echo "$BIN"
