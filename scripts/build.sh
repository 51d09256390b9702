#!/usr/bin/env bash
# Set-up if needed, then compile to dist/ (what `require('lifeboat')` loads).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$LIFEBOAT_ROOT"
bash scripts/setup.sh
tsc -p .
