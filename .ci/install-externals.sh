#!/usr/bin/env bash
# Installs/builds the real external components the end-to-end tests use:
# Jaeger v2 (built from the Go module proxy), Prometheus (Debian package), and podman + runc + debootstrap
# (Debian packages) for the container image tests (the image itself is built by the tests, from the tree), helm
# (built from the Go module proxy) and the Kubernetes OpenAPI documents (module cache) for the chart tests,
# Chromium (Debian package) for the page's browser tests, and etcd and kube-apiserver (built from the Go module
# proxy) for the tests against a real API server. Versions: scripts/kube-versions.sh. kube-apiserver is the long
# one (a cold build is the biggest part of this script).
# Both are cached outside the clone (${ROUTELENS_CACHE:-$HOME/.cache/routelens}
# and /usr/bin), so a rerun takes well under a second.
# The custom OpenTelemetry Collector (scripts/build-otelcol.sh) is only for the
# benchmark and is not built here.
set -euo pipefail
cd "$(dirname "$0")/.."

t0=$(date +%s)
jaeger=$(bash scripts/build-jaeger.sh | tail -n 1)
[[ -x "$jaeger" ]] || { echo "install-externals: jaeger binary missing: $jaeger" >&2; exit 1; }
prometheus=$(bash scripts/install-prometheus.sh | tail -n 1)
[[ -x "$prometheus" ]] || { echo "install-externals: prometheus binary missing: $prometheus" >&2; exit 1; }

podman=$(bash scripts/install-podman.sh | tail -n 1)
[[ -x "$podman" ]] || { echo "install-externals: podman missing: $podman" >&2; exit 1; }
helm=$(bash scripts/build-helm.sh | tail -n 1)
[[ -x "$helm" ]] || { echo "install-externals: helm binary missing: $helm" >&2; exit 1; }
etcd=$(bash scripts/build-etcd.sh | tail -n 1)
[[ -x "$etcd" ]] || { echo "install-externals: etcd binary missing: $etcd" >&2; exit 1; }
kube_apiserver=$(bash scripts/build-kube-apiserver.sh | tail -n 1)
[[ -x "$kube_apiserver" ]] || { echo "install-externals: kube-apiserver binary missing: $kube_apiserver" >&2; exit 1; }
openapi=$(bash scripts/kube-openapi.sh | tail -n 1)
[[ -d "$openapi" ]] || { echo "install-externals: Kubernetes OpenAPI documents missing: $openapi" >&2; exit 1; }

chromium=$(bash scripts/install-chromium.sh | tail -n 1)
[[ -x "$chromium" ]] || { echo "install-externals: chromium binary missing: $chromium" >&2; exit 1; }

echo "jaeger:     $jaeger ($("$jaeger" version 2>/dev/null | grep -o '"gitVersion":"[^"]*"' || true))"
echo "prometheus: $prometheus ($("$prometheus" --version 2>&1 | head -n 1))"
echo "podman:     $podman ($("$podman" --version))"
echo "helm:       $helm ($("$helm" version --short))"
echo "etcd:       $etcd ($("$etcd" --version | head -n 1))"
echo "kube-apiserver: $kube_apiserver ($("$kube_apiserver" --version))"
echo "openapi:    $openapi"
echo "chromium:   $chromium ($("$chromium" --version 2>/dev/null | head -n 1))"
echo "externals ready in $(( $(date +%s) - t0 ))s"
