#!/usr/bin/env bash
# The GitOps pipeline of this folder's protection (README.md):
#
#   pipeline.sh check    validate protection.yaml, then preview      (pull requests)
#   pipeline.sh deploy   validate, preview, up, then the drift check (the main branch; the default)
#   pipeline.sh drift    the drift check alone                       (a schedule)
#
# The drift check is `pulumi refresh --expect-no-changes`: it fails when the
# vault no longer matches the stack (an item deleted or a policy changed out
# of band), so someone looks before the next deploy puts it back.
#
# Environment: LIFEBOAT_VAULT_URL and LIFEBOAT_TOKEN (or LIFEBOAT_TOKEN_FILE)
# for the vault; PULUMI_BACKEND_URL and PULUMI_CONFIG_PASSPHRASE (or a Pulumi
# Cloud token) for the state; PIPELINE_STACK (default `dr`); LIFEBOAT, the
# lifeboat command (default `lifeboat` on PATH).
# Exit codes: 0 done; 1 invalid protection file, failed preview or up, or drift; 2 usage.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

mode="${1:-deploy}"
stack="${PIPELINE_STACK:-dr}"
lifeboat="${LIFEBOAT:-lifeboat}"
stage() { printf '\n=== %s\n' "$*"; }

case "$mode" in
  check|deploy|drift) ;;
  *) echo "usage: pipeline.sh [check|deploy|drift]" >&2; exit 2 ;;
esac

pulumi stack select --create "$stack" --non-interactive >/dev/null

if [ "$mode" != drift ]; then
  stage "validate protection.yaml"
  $lifeboat validate protection.yaml
  stage "preview (stack $stack)"
  pulumi preview --non-interactive --diff
fi

if [ "$mode" = deploy ]; then
  stage "up (stack $stack)"
  pulumi up --yes --skip-preview --non-interactive
fi

if [ "$mode" != check ]; then
  stage "drift check (stack $stack)"
  if ! pulumi refresh --expect-no-changes --yes --non-interactive; then
    echo "drift: the vault differs from stack $stack (see above); the next deploy puts back what protection.yaml declares" >&2
    exit 1
  fi
fi
stage "done ($mode)"
