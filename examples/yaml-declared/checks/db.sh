#!/usr/bin/env bash
# After-action of the recovery plan's first group (protection.yaml): the
# database VM must run at the recovery site before the web tier fails over.
# Reaches the vault as the lifeboat command does (LIFEBOAT_VAULT_URL and
# LIFEBOAT_TOKEN_FILE, or the lab in ./.lab). Exit 0 when db01 runs at dr.
set -euo pipefail
vm="${1:-db01}"
site="${2:-dr}"
lifeboat vms --output json | node -e '
  const [vm, site] = process.argv.slice(1);
  const vms = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
  const found = vms.find((v) => v.name.toLowerCase() === vm.toLowerCase() && v.site.toLowerCase() === site.toLowerCase());
  if (found === undefined || found.powerState !== "Running") {
    console.error(`${vm} is not running at site ${site} (${found === undefined ? "not reported" : found.powerState})`);
    process.exit(1);
  }
  console.log(`${vm} runs at site ${site} on host ${found.host}`);
' "$vm" "$site"
