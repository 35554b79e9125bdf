#!/usr/bin/env bash
# Prints the directory of the Kubernetes OpenAPI v3 documents (api/openapi-spec/v3 of the k8s.io/kubernetes module
# at KUBE_VERSION), downloading the module through the Go module proxy into the module cache if needed; the chart
# tests validate rendered manifests against them. The last line on stdout is the directory.
set -euo pipefail
# shellcheck source=kube-versions.sh
source "$(dirname "${BASH_SOURCE[0]}")/kube-versions.sh"
command -v go >/dev/null || { echo "[kube-openapi] go is not installed" >&2; exit 1; }
export GOTOOLCHAIN=local
INFO=$(cd / && go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION")
DIR=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p' <<<"$INFO")
[[ -d "$DIR/api/openapi-spec/v3" ]] || { echo "[kube-openapi] no api/openapi-spec/v3 in k8s.io/kubernetes@v$KUBE_VERSION" >&2; exit 1; }
echo "$DIR/api/openapi-spec/v3"
