#!/usr/bin/env bash
# Builds, without any image registry, the base images that docker/Dockerfile and
# docker-compose.yml start from, tagged with exactly the names those files use:
#
#   node:20-bookworm-slim              Debian bookworm + Node 20 (official binaries, from the npm registry)
#   postgres:${POSTGRES_VERSION:-15}   Debian bookworm's postgresql-15
#   redis:${REDIS_VERSION:-7.0}        Debian bookworm's redis-server 7.0
#
# Everything comes from a Debian mirror (debootstrap, apt) and, for Node, from the npm registry
# that `npm ci` needs anyway. Each image is skipped when its tag already exists (`--force`
# rebuilds all). Needs: docker, debootstrap, npm, root (debootstrap). docs/operations.md explains.
#
#   scripts/build-base-images.sh [--force]
#
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian), XEROTIER_CA_BUNDLE (CA bundle
# the node image trusts for npm; default /etc/ssl/certs/ca-certificates.crt), POSTGRES_VERSION and
# REDIS_VERSION (else read from .env, else the compose defaults).
set -euo pipefail
cd "$(dirname "$0")/.."

force=false
[ "${1:-}" = --force ] && force=true

DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_IMAGE=xerotier/debian:bookworm-minbase
CA_BUNDLE=${XEROTIER_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

# Node 20: the official Linux build as published on the npm registry (package node-linux-<arch>,
# the binaries the `node` npm package installs) and the npm release that ships with it. Both are
# pinned by version and by the registry's sha512 integrity.
NODE_VERSION=20.20.2
NPM_VERSION=10.8.2
NPM_SHA512=x/AIjFIKRllrhcb48dqUNAAZl0ig9+qMuN91RpZo3Cb2+zuibfh+KISl6+kVVyktDz230JKc208UkQwwMqyB+w==
case "$(uname -m)" in
  x86_64) NODE_ARCH=x64; NODE_SHA512=PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ== ;;
  aarch64) NODE_ARCH=arm64; NODE_SHA512=LCXJnNTFiyGuYBw2gZSI5OBFMbkjAPt8sqD/NKrWoE2QmDgSubTqFng6GaNJ9EJ8HpxBMGcWWpbbcs4Vo+CnGg== ;;
  *) echo "build-base-images: unsupported architecture $(uname -m)" >&2; exit 1 ;;
esac

# Versions the compose file names: environment, else .env, else its defaults. Debian bookworm
# ships PostgreSQL 15 and Redis 7.0; other versions need a registry.
from_env_file() { [ -f .env ] && sed -n "s/^$1=//p" .env | tail -n 1; }
POSTGRES_VERSION=${POSTGRES_VERSION:-$(from_env_file POSTGRES_VERSION || true)}
POSTGRES_VERSION=${POSTGRES_VERSION:-15}
REDIS_VERSION=${REDIS_VERSION:-$(from_env_file REDIS_VERSION || true)}
REDIS_VERSION=${REDIS_VERSION:-7.0}
if [ "$POSTGRES_VERSION" != 15 ] || [ "$REDIS_VERSION" != 7.0 ]; then
  echo "build-base-images: Debian bookworm provides postgres 15 and redis 7.0;" \
       "set POSTGRES_VERSION=15 and REDIS_VERSION=7.0 (got $POSTGRES_VERSION, $REDIS_VERSION)" >&2
  exit 1
fi

work=$(mktemp -d /var/tmp/xerotier-base.XXXXXX)
trap 'rm -rf "$work"' EXIT

exists() { [ "$force" = false ] && docker image inspect "$1" >/dev/null 2>&1; }
step() { printf '[build-base-images] %s\n' "$*"; }
verify() { # file sha512-base64
  local got
  got=$(openssl dgst -sha512 -binary "$1" | base64 -w0)
  [ "$got" = "$2" ] || { echo "build-base-images: $1: sha512 $got, expected $2" >&2; exit 1; }
}

# ── Debian bookworm minbase: debootstrap → docker import, then the current security updates ────
if exists "$DEBIAN_IMAGE"; then
  step "$DEBIAN_IMAGE exists"
else
  step "debootstrap bookworm (minbase) from $DEBIAN_MIRROR"
  rootfs="$work/rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" "$DEBIAN_MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $DEBIAN_MIRROR bookworm main
deb $DEBIAN_MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
  # Like Debian's own container images: no apt caches, no recommends, no docs.
  cat >"$rootfs/etc/apt/apt.conf.d/90container" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
EOF
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import --change 'CMD ["bash"]' - "$DEBIAN_IMAGE-imported" >/dev/null
  mkdir -p "$work/debian"
  printf 'FROM %s\nRUN apt-get update && apt-get -y upgrade && rm -rf /var/lib/apt/lists/*\n' \
    "$DEBIAN_IMAGE-imported" >"$work/debian/Dockerfile"
  docker build -q -t "$DEBIAN_IMAGE" "$work/debian" >/dev/null
  docker image rm "$DEBIAN_IMAGE-imported" >/dev/null
  rm -rf "$rootfs"
fi

# ── node:20-bookworm-slim ───────────────────────────────────────────────────────────────────────
if exists node:20-bookworm-slim; then
  step "node:20-bookworm-slim exists"
else
  step "node:20-bookworm-slim (Node $NODE_VERSION, npm $NPM_VERSION)"
  ctx="$work/node"
  mkdir -p "$ctx/usr/local/lib/node_modules/npm" "$ctx/usr/local/bin"
  (cd "$work" && npm pack --silent "node-linux-$NODE_ARCH@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
  verify "$work/node-linux-$NODE_ARCH-$NODE_VERSION.tgz" "$NODE_SHA512"
  verify "$work/npm-$NPM_VERSION.tgz" "$NPM_SHA512"
  tar -xzf "$work/node-linux-$NODE_ARCH-$NODE_VERSION.tgz" -C "$ctx/usr/local" --strip-components=1 \
    package/bin package/include package/share
  tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$ctx/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ctx/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ctx/usr/local/bin/npx"
  if [ -f "$CA_BUNDLE" ]; then cp "$CA_BUNDLE" "$ctx/extra-ca.crt"; else : >"$ctx/extra-ca.crt"; fi
  docker build -q -f docker/base/node.Dockerfile --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" \
    -t node:20-bookworm-slim "$ctx" >/dev/null
fi

# ── postgres and redis ──────────────────────────────────────────────────────────────────────────
if exists "postgres:$POSTGRES_VERSION"; then
  step "postgres:$POSTGRES_VERSION exists"
else
  step "postgres:$POSTGRES_VERSION (Debian postgresql-$POSTGRES_VERSION)"
  docker build -q -f docker/base/postgres.Dockerfile --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" \
    --build-arg "PG_MAJOR=$POSTGRES_VERSION" -t "postgres:$POSTGRES_VERSION" docker/base >/dev/null
fi
if exists "redis:$REDIS_VERSION"; then
  step "redis:$REDIS_VERSION exists"
else
  step "redis:$REDIS_VERSION (Debian redis-server)"
  docker build -q -f docker/base/redis.Dockerfile --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" \
    -t "redis:$REDIS_VERSION" docker/base >/dev/null
fi
step "done"
