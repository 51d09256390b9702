#!/usr/bin/env bash
# Benchmarks (bench/*.bench.ts), each with its baseline in the same run.
# Usage: npm run bench [-- NAME...]   (NAME = file name without .bench.ts)
# Results print as markdown; JSON goes to bench/out/. Record them, with this
# command and the machine line, in docs/benchmarks.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$LIFEBOAT_ROOT"
bash scripts/build.sh
if ! command -v rsync >/dev/null; then
  log "installing rsync (a baseline of the benchmarks)"
  if [ "$(id -u)" = 0 ]; then
    (apt-get install -y rsync >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y rsync >/dev/null; }) || die "could not install rsync"
  else
    die "rsync is needed as a baseline: install it (apt-get install rsync)"
  fi
fi
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in bench/*.bench.ts; do names+=("$(basename "$f" .bench.ts)"); done
fi
for n in "${names[@]}"; do
  log "benchmark $n"
  node --expose-gc "dist/bench/$n.bench.js"
done
