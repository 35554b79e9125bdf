#!/usr/bin/env bash
# Ensures podman, runc and debootstrap are installed (Debian packages), for the container image build
# (scripts/build-image.sh) and its tests. Prints podman's path as the last stdout line; progress goes to stderr.
#
# runc rather than Debian's default crun: crun fails on hosts with hybrid cgroups ("cgroups in hybrid mode not
# supported"); the scripts and tests pass `--runtime /usr/sbin/runc`. iptables: port publishing.
set -euo pipefail

log() { echo "[install-podman] $*" >&2; }

PACKAGES=(podman runc debootstrap iptables)
missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
[[ -x /usr/sbin/runc ]] || missing+=(runc)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v iptables >/dev/null 2>&1 || [[ -x /usr/sbin/iptables ]] || missing+=(iptables)

if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  policy=$(apt-cache policy podman 2>/dev/null || true)
  if ! [[ "$policy" =~ Candidate:\ [^\(] ]]; then
    log "apt-get update"
    $SUDO apt-get update -q >&2
  fi
  log "apt-get install ${PACKAGES[*]} (missing: ${missing[*]})"
  $SUDO apt-get install -y -q "${PACKAGES[@]}" >&2
fi

podman --version >&2
command -v podman
