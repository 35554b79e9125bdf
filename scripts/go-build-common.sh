# Sourced (not run) by build-jaeger.sh and build-otelcol.sh: what every cached Go build here starts with.

# Progress goes to stderr, prefixed with the script's name.
log() { echo "[${BUILD_TAG:-build}] $*" >&2; }

# cached_build_begin DIR BIN: print BIN and exit when it is already built. Otherwise take DIR's lock (tests and
# CI may run a build concurrently), check again, and set up Go for an offline, reproducible build.
cached_build_begin() {
  local dir=$1 bin=$2
  if [[ -x "$bin" ]]; then
    echo "$bin"
    exit 0
  fi
  command -v go >/dev/null || { log "go is not installed"; exit 1; }
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  flock 9
  if [[ -x "$bin" ]]; then
    echo "$bin"
    exit 0
  fi
  # 2 cores: keep the compiler from oversubscribing; keep a user's GOFLAGS (e.g. -mod=vendor) out but the module
  # cache/proxy settings in; never download a toolchain (only the module proxy is reachable), even when a go.mod
  # asks for a newer toolchain line than the installed one.
  export GOMAXPROCS="${GOMAXPROCS:-2}"
  export GOFLAGS="-buildvcs=false"
  export CGO_ENABLED=0
  export GOTOOLCHAIN=local
  BUILD_START=$(date +%s)
}

# cached_build_done: log the build's duration.
cached_build_done() {
  log "done in $(( $(date +%s) - BUILD_START ))s"
}
