#!/usr/bin/env bash
# Toxiproxy, built from the Go module proxy: the latency (and jitter) on the
# replication path between local regions (tc netem does not exist on these kernels).
# Builds once into ~/.cache/kdrill/toxiproxy-<version>/bin and links it into .venv/bin.
set -euo pipefail
VERSION=v2.5.0
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${KDRILL_CACHE:-$HOME/.cache/kdrill}"
BIN="$CACHE/toxiproxy-$VERSION/bin"

if [[ ! -x "$BIN/toxiproxy-server" ]]; then
  command -v go >/dev/null || { echo "setup: go not found; install Go 1.22+ (needed to build toxiproxy)" >&2; exit 1; }
  echo "[setup] building toxiproxy $VERSION from the Go module proxy" >&2
  mkdir -p "$BIN.partial"
  source "$ROOT/tools/go-build-env.sh"  # GOGC, GOMEMLIMIT, no DWARF: why there
  GOBIN="$BIN.partial" go_env nice -n 15 go install -trimpath -gcflags="$GO_GCFLAGS" -ldflags="$GO_LDFLAGS" \
    "github.com/Shopify/toxiproxy/v2/cmd/server@$VERSION"
  mv "$BIN.partial/server" "$BIN.partial/toxiproxy-server"
  rm -rf "$BIN" && mv "$BIN.partial" "$BIN"
fi
ln -sf "$BIN/toxiproxy-server" "$ROOT/.venv/bin/toxiproxy-server"
