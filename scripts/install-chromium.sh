#!/usr/bin/env bash
# Ensures a headless Chromium is present for the page's browser tests (Debian's
# `chromium` package; test tools never download a browser of their own here).
# Prints the binary's path as the last stdout line; progress goes to stderr.
set -euo pipefail

log() { echo "[install-chromium] $*" >&2; }

find_bin() {
  if [[ -n "${CHROMIUM_BIN:-}" && -x "${CHROMIUM_BIN}" ]]; then
    echo "$CHROMIUM_BIN"; return 0
  fi
  local p
  for p in "$(command -v chromium 2>/dev/null || true)" /usr/bin/chromium; do
    if [[ -n "$p" && -x "$p" ]]; then echo "$p"; return 0; fi
  done
  return 1
}

if bin=$(find_bin); then
  echo "$bin"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive

policy=$(apt-cache policy chromium 2>/dev/null || true)
if ! [[ "$policy" =~ Candidate:\ [^\(] ]]; then
  log "apt-get update"
  $SUDO apt-get update -q >&2
fi
log "apt-get install chromium"
$SUDO apt-get install -y -q --no-install-recommends chromium >&2

bin=$(find_bin) || { log "chromium binary not found after install"; exit 1; }
"$bin" --version 2>/dev/null | head -1 >&2 || true
echo "$bin"
