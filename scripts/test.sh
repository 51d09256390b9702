#!/usr/bin/env bash
# The test command (README.md): set-up if needed, then type-check and build,
# lint, and every mocha suite (unit, integration, e2e with the real engine).
# Arguments replace the default spec (e.g. one test file); options pass to mocha.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$LIFEBOAT_ROOT"
bash scripts/setup.sh
log "type-check and build (tsc)"
tsc -p .
log "lint (eslint)"
eslint --max-warnings 0 .
log "tests (mocha)"
if [ $# -eq 0 ]; then
  set -- 'test/unit/**/*.test.ts' 'test/integration/**/*.test.ts' 'test/e2e/**/*.test.ts'
fi
mocha "$@"
