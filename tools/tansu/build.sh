#!/usr/bin/env bash
# Build Tansu (crates.io, Apache-2.0) with its S3 storage engine into ~/.cache/kdrill/tansu
# (KDRILL_TANSU_ROOT moves it): bin/tansu, the build log and how long it took.
# Low priority and one job, always: the machine's other drills keep their CPU.
# Idempotent: an existing binary of this version is kept (cargo install says so and stops).
set -euo pipefail
VERSION="${TANSU_VERSION:-0.6.0}"   # keep in step with components/local/tansu.py VERSION
FEATURES="${TANSU_FEATURES:-dynostore}"
ROOT="${KDRILL_TANSU_ROOT:-$HOME/.cache/kdrill/tansu}"
CARGO="${CARGO:-$(command -v cargo || echo "$HOME/.cargo/bin/cargo")}"
if [ ! -x "$CARGO" ]; then
  echo "tools/tansu/build.sh: cargo not found (looked on PATH and at $HOME/.cargo/bin/cargo); install rustup's stable toolchain" >&2
  exit 2
fi
mkdir -p "$ROOT"
if "$ROOT/bin/tansu" --version 2>/dev/null | grep -q " $VERSION"; then
  echo "tansu $VERSION already built: $ROOT/bin/tansu"
  exit 0
fi
start=$(date +%s)
echo "building tansu $VERSION (features: $FEATURES) into $ROOT; log: $ROOT/build.log"
# the target dir is kept: a second build (another version, a feature) reuses what it can
nice -n 19 "$CARGO" install --locked --root "$ROOT" --target-dir "$ROOT/target" \
  tansu --version "$VERSION" --features "$FEATURES" -j 1 >"$ROOT/build.log" 2>&1 || {
  echo "tools/tansu/build.sh: cargo install failed; the last lines of $ROOT/build.log:" >&2
  tail -n 20 "$ROOT/build.log" >&2
  exit 1
}
took=$(( $(date +%s) - start ))
echo "tansu $VERSION features=$FEATURES built in ${took}s on $(nproc) cores ($(uname -m)), $(date -u +%FT%TZ)" | tee "$ROOT/build.took"
