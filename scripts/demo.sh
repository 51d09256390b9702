#!/usr/bin/env bash
# The demo command (README.md, "The demo"): start a lab shaped by the YAML
# example's protection file, `pulumi up` the example (initial replication
# progress in the engine's log), print the status table (state, health, RPO
# per VM), then `pulumi destroy` and stop the lab.
#
# Everything lives in .demo/ (ignored): the lab, the Pulumi state (file
# backend) and PULUMI_HOME. Idempotent: a lab or state left by an interrupted
# run is stopped and removed first; the lab is stopped on any exit.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$LIFEBOAT_ROOT"

log "building (set-up if needed, then tsc)"
bash scripts/build.sh >/dev/null

demo="$LIFEBOAT_ROOT/.demo"
lab="$demo/lab"
example="$LIFEBOAT_ROOT/examples/yaml-declared"
lifeboat() { node "$LIFEBOAT_ROOT/bin/lifeboat" "$@"; }

# A previous run that was interrupted: stop its lab, forget its state.
if [ -f "$lab/lab.json" ]; then
  log "stopping the lab a previous run left in $lab"
  lifeboat lab down --dir "$lab" --purge --timeout 10 >/dev/null || log "could not stop it cleanly (see $lab/logs); going on"
fi
rm -rf "$demo"
mkdir -p "$demo/state" "$demo/home"

lab_started=
cleanup() {
  local code=$?
  if [ -n "$lab_started" ] && [ -f "$lab/lab.json" ]; then
    log "stopping the lab"
    lifeboat lab down --dir "$lab" --timeout 10 >/dev/null || true
  fi
  [ $code -eq 0 ] || log "demo failed (exit $code); the lab's logs are in $lab/logs"
}
trap cleanup EXIT

started=$(date +%s)
log "lifeboat validate examples/yaml-declared/protection.yaml"
lifeboat validate examples/yaml-declared/protection.yaml

log "lifeboat lab up --protection examples/yaml-declared/protection.yaml"
lab_started=1
lifeboat lab up --protection "$example/protection.yaml" --dir "$lab"

export LIFEBOAT_VAULT_URL LIFEBOAT_TOKEN_FILE="$lab/vault/admin-token"
LIFEBOAT_VAULT_URL=$(node -p "require('$lab/lab.json').vaultUrl")
export PULUMI_BACKEND_URL="file://$demo/state" PULUMI_HOME="$demo/home" PULUMI_CONFIG_PASSPHRASE="lifeboat-demo"

cd "$example"
p() { log "pulumi $*"; pulumi "$@" --non-interactive; }
p stack init demo >/dev/null
# The stack's config stays in .demo/, not in the example's folder.
cfg="$demo/Pulumi.demo.yaml"
p up --yes --skip-preview --config-file "$cfg"

log "lifeboat jobs: the protection.enable jobs pulumi up started (initial replication is one of their steps)"
lifeboat jobs --limit 5
first_job=$(lifeboat jobs --output json | node -e 'const j = JSON.parse(require("node:fs").readFileSync(0, "utf8")).filter((x) => x.type === "protection.enable"); if (j.length > 0) console.log(j[j.length - 1].id)')
if [ -n "$first_job" ]; then
  log "lifeboat jobs $first_job"
  lifeboat jobs "$first_job"
fi
log "lifeboat status"
lifeboat status --lab-dir "$lab"
log "lifeboat vms"
lifeboat vms --lab-dir "$lab"

p destroy --yes --skip-preview --config-file "$cfg"
p stack rm --yes demo >/dev/null
cd "$LIFEBOAT_ROOT"

log "lifeboat lab down"
lifeboat lab down --dir "$lab" --purge
lab_started=
rm -rf "$demo"
log "demo finished in $(( $(date +%s) - started )) s: the lab's VMs were protected by pulumi up, replicated to dr, and unprotected by pulumi destroy"
