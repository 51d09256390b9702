#!/usr/bin/env bash
# The demo command (README.md). For now: run the smoke stack through the real
# Pulumi engine against a fresh local backend, then destroy it. Later issues
# grow this into the lab + protection + failover drill.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$LIFEBOAT_ROOT"
bash scripts/build.sh

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PULUMI_BACKEND_URL="file://$work/state" PULUMI_HOME="$work/home" PULUMI_CONFIG_PASSPHRASE="lifeboat-demo"
mkdir -p "$work/state" "$work/home"
cfg="$work/Pulumi.demo.yaml"
cd test/e2e/stacks/smoke
p() { log "pulumi $*"; pulumi "$@" --non-interactive; }
p stack init demo
p config set message "hello from Lifeboat" --config-file "$cfg"
p up --yes --skip-preview --config-file "$cfg"
p stack output
p config set message "hello again" --config-file "$cfg"
p up --yes --config-file "$cfg"
p destroy --yes --skip-preview --config-file "$cfg"
p stack rm --yes demo
log "demo finished: the engine created, updated and destroyed a Lifeboat resource"
