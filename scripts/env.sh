# Sourced by every entry script: pinned tool versions, cache locations and the
# PATH that puts the project's Node and Pulumi engine first.
#
# Two cache levels:
#   .tools/            ignored folder in the work tree: links to what this clone uses
#   $LIFEBOAT_CACHE    per-user cache (default ~/.cache/lifeboat), keyed by version,
#                      so a fresh clone on the same machine rebuilds nothing.

LIFEBOAT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export LIFEBOAT_ROOT

# Node 24 LTS, from the npm package that ships the official binary.
LIFEBOAT_NODE_VERSION="24.21.0"
# One Pulumi release for the CLI (Go module proxy) and @pulumi/pulumi (npm).
# 3.259.0 is the newest release whose pkg/v3 module the proxy serves here.
LIFEBOAT_PULUMI_VERSION="3.259.0"

LIFEBOAT_CACHE="${LIFEBOAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lifeboat}"
LIFEBOAT_TOOLS="$LIFEBOAT_ROOT/.tools"
export LIFEBOAT_NODE_VERSION LIFEBOAT_PULUMI_VERSION LIFEBOAT_CACHE LIFEBOAT_TOOLS

# Pulumi runs offline and never phones home.
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK="${PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK:-false}"

case ":$PATH:" in
  *":$LIFEBOAT_TOOLS/bin:"*) ;;
  *) export PATH="$LIFEBOAT_TOOLS/bin:$LIFEBOAT_ROOT/node_modules/.bin:$PATH" ;;
esac

log() { printf '[lifeboat] %s\n' "$*" >&2; }
die() { printf '[lifeboat] error: %s\n' "$*" >&2; exit 1; }
