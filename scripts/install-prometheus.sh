#!/usr/bin/env bash
# Ensures a Prometheus server binary is present (Debian's `prometheus`
# package). Prints the binary's path as the last stdout line; progress goes to
# stderr. Does not start (or leave enabled) the Debian service: tests run their
# own instance with a temp config and storage dir.
set -euo pipefail

log() { echo "[install-prometheus] $*" >&2; }

find_bin() {
  if [[ -n "${PROMETHEUS_BIN:-}" && -x "${PROMETHEUS_BIN}" ]]; then
    echo "$PROMETHEUS_BIN"; return 0
  fi
  local p
  for p in "$(command -v prometheus 2>/dev/null || true)" /usr/bin/prometheus; do
    if [[ -n "$p" && -x "$p" ]]; then echo "$p"; return 0; fi
  done
  return 1
}

if bin=$(find_bin); then
  echo "$bin"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive

# Only refresh the package lists when apt does not know the package yet.
policy=$(apt-cache policy prometheus 2>/dev/null || true)
if ! [[ "$policy" =~ Candidate:\ [^\(] ]]; then
  log "apt-get update"
  $SUDO apt-get update -q >&2
fi

# Keep the package's maintainer scripts from starting the service. A
# policy-rc.d that exits 101 is Debian's documented way to say "don't start
# services" (honoured by invoke-rc.d and deb-systemd-invoke).
POLICY=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e "$POLICY" ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod 755 "$POLICY"
  created_policy=1
fi
cleanup() { if [[ $created_policy -eq 1 ]]; then $SUDO rm -f "$POLICY"; fi; }
trap cleanup EXIT

log "apt-get install prometheus"
$SUDO apt-get install -y -q --no-install-recommends prometheus >&2

# In case an init system did start it anyway, stop it (best effort): the
# tests never want a Prometheus on :9090 that they did not start.
if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi

bin=$(find_bin) || { log "prometheus binary not found after install"; exit 1; }
"$bin" --version 2>&1 | head -1 >&2 || true
echo "$bin"
