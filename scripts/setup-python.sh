#!/usr/bin/env bash
# Create (or reuse) the virtualenv for examples/python, OUTSIDE the clone.
#
#   scripts/setup-python.sh            -> last stdout line: path of the venv's python
#
# Location: ${ROUTELENS_CACHE:-$HOME/.cache/routelens}/venv-<hash>, where <hash>
# covers examples/python/requirements.txt and the base interpreter's version, so
# editing the pins (or changing Python) makes a fresh venv and old ones stay usable.
# The interpreter is ${ROUTELENS_PYTHON:-python3}.
#
# A venv counts as ready only once pip has finished (marker file .routelens-ready);
# a rerun then returns at once. Concurrent runs are serialised with flock(1) when
# available. Progress goes to stderr; stdout carries only the python path.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
req="$root/examples/python/requirements.txt"
base_python="${ROUTELENS_PYTHON:-python3}"
cache="${ROUTELENS_CACHE:-$HOME/.cache/routelens}"

log() { printf 'setup-python: %s\n' "$*" >&2; }

[[ -f "$req" ]] || { log "missing $req"; exit 1; }
command -v "$base_python" >/dev/null 2>&1 || { log "no '$base_python' on PATH (set ROUTELENS_PYTHON)"; exit 1; }

py_version="$("$base_python" -c 'import sys; print(sys.version.split()[0])')"
case "$py_version" in
  3.9.*|3.[1-9][0-9].*) ;;
  *) log "need Python >= 3.9, '$base_python' is $py_version"; exit 1 ;;
esac

hash="$( { cat "$req"; printf 'python=%s\n' "$py_version"; } | sha256sum | cut -c1-16)"
venv="$cache/venv-$hash"
py="$venv/bin/python"
marker="$venv/.routelens-ready"

is_ready() { [[ -f "$marker" && -x "$py" ]] && "$py" -c 'import sys' >/dev/null 2>&1; }

if is_ready; then
  printf '%s\n' "$py"
  exit 0
fi

mkdir -p "$cache"
lock="$cache/venv-$hash.lock"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$lock"
  log "locking $lock"
  flock 9
fi

# Another run may have finished while we waited for the lock.
if ! is_ready; then
  log "creating $venv (Python $py_version) from $req"
  rm -rf "$venv"
  "$base_python" -m venv "$venv"
  export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
  "$py" -m pip install --quiet -r "$req" >&2
  "$py" -m pip check >&2
  printf '%s\n' "$hash" >"$marker"
  log "ready: $venv"
fi

printf '%s\n' "$py"
