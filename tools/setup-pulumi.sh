#!/usr/bin/env bash
# The Pulumi engine kdrill drives through the Automation API: the `pulumi` CLI, a Python
# language host and the launchers the engine starts for Python programs and Python dynamic
# providers. Run by tools/bootstrap.sh; safe to run again (a second run costs a second).
#
#   - A `pulumi` already on PATH is used when `pulumi version` is the pinned one.
#   - Otherwise the CLI is built from the pinned Go modules (tools/pulumi/go.mod) into
#     $KDRILL_CACHE/pulumi-<version>/bin (default ~/.cache/kdrill), together with
#     kdrill's Python language host (tools/pulumi/cmd/pulumi-language-python: runs programs
#     and, through RunPlugin, Python plugins such as the policies/ CrossGuard pack), the
#     pulumi-language-python-exec shim shipped in the pinned sdk/v3 module, and
#     pulumi-resource-pulumi-python (runs `python -m pulumi.dynamic`).
#   - Everything is symlinked into .venv/bin, which ./run puts first on PATH.
#
# Knobs: KDRILL_CACHE, KDRILL_GO_PROCS (parallel compile jobs, default 2), KDRILL_GO_GC and
# KDRILL_GO_MEMLIMIT (the compiler's GOGC and GOMEMLIMIT, default off and 1GiB), GO (go binary).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${KDRILL_CACHE:-$HOME/.cache/kdrill}"
VENV="$ROOT/.venv"
MOD="$ROOT/tools/pulumi"
say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
die() { printf 'setup-pulumi: %s\n' "$*" >&2; exit 1; }

version="$(sed -n 's:^[[:space:]]*github.com/pulumi/pulumi/pkg/v3 v\([0-9][^ ]*\).*:\1:p' "$MOD/go.mod")"
[[ -n "$version" ]] || die "cannot read the pinned pulumi version from $MOD/go.mod"
dir="$CACHE/pulumi-$version"
bin="$dir/bin"

# The inputs of the build: a change to any of them rebuilds (the language host's source is
# hashed file by file, so a new or changed file under cmd/ rebuilds it on the next bootstrap).
# The CLI depends only on the pinned modules: when only kdrill's sources (the language host,
# this script) changed, the CLI already in the cache is kept and only the host is rebuilt.
# Hashed by path relative to the checkout, so checkouts sharing the cache agree.
inputs_sum="$(cd "$ROOT" && {
  printf '%s\n' tools/pulumi/go.mod tools/pulumi/go.sum tools/setup-pulumi.sh
  find tools/pulumi/cmd -type f -name '*.go'
} | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)"
stamp="$dir/.complete-$inputs_sum"
cli_sum="$(cat "$MOD/go.mod" "$MOD/go.sum" | sha256sum | cut -c1-16)"
cli_stamp="$dir/.cli-$cli_sum"

# Launcher for Python dynamic providers. The engine starts `pulumi-resource-pulumi-python`
# (found on PATH, or beside the pulumi binary) when a program registers a dynamic resource.
write_dynamic_launcher() {
  cat >"$1" <<'EOF'
#!/bin/sh
# Pulumi's Python dynamic provider, started by the engine as a resource plugin.
# Interpreter: the project's virtualenv (runtime.options.virtualenv in Pulumi.yaml, passed
# by the engine as PULUMI_RUNTIME_VIRTUALENV, relative to the project directory), else
# $PULUMI_PYTHON_CMD, else the python beside this launcher (.venv/bin), else python3.
if [ -n "${PULUMI_RUNTIME_VIRTUALENV:-}" ]; then
  venv=${PULUMI_RUNTIME_VIRTUALENV%/}
  case $venv in /*) ;; *) venv=$PWD/$venv ;; esac
  if [ ! -x "$venv/bin/python" ]; then
    echo "pulumi-resource-pulumi-python: virtualenv $venv has no bin/python (run tools/bootstrap.sh)" >&2
    exit 1
  fi
  PATH="$venv/bin:$PATH"; export PATH
  py=$venv/bin/python
elif [ -n "${PULUMI_PYTHON_CMD:-}" ]; then
  py=$PULUMI_PYTHON_CMD
elif [ -x "$(dirname "$0")/python" ]; then
  py=$(dirname "$0")/python
else
  py=python3
fi
exec "$py" -u -m pulumi.dynamic "$@"
EOF
  chmod 755 "$1"
}

GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
# How Go compiles here (GOGC, GOMEMLIMIT, no DWARF): tools/go-build-env.sh
source "$ROOT/tools/go-build-env.sh"
go_build() { # go_build OUT PACKAGE
  (cd "$MOD" && GOFLAGS="-mod=readonly -buildvcs=false" go_env nice -n 10 "$GO" build \
    -p "${KDRILL_GO_PROCS:-2}" -trimpath -gcflags="$GO_GCFLAGS" \
    -ldflags "$GO_LDFLAGS -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$version" \
    -o "$1" "$2")
}
sdk_dir() { (cd "$MOD" && GOFLAGS=-mod=readonly "$GO" list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3); }

# --- 1. a pulumi on PATH with the pinned version? -----------------------------------
ambient=""
if cand="$(PATH="${PATH//$VENV\/bin:/}" command -v pulumi)"; then
  if [[ "$("$cand" version 2>/dev/null)" == "v$version" ]]; then
    ambient="$cand"
  else
    say "ignoring $cand: version $("$cand" version 2>/dev/null || echo '?'), kdrill pins v$version"
  fi
fi

# --- 2. build into the cache unless already there -----------------------------------
# With a matching pulumi on PATH only the (small) language host and launchers are built.
needs_build() { [[ ! -f "$stamp" ]] || [[ -z "$ambient" && ! -x "$bin/pulumi" ]]; }
if needs_build; then
  # One build at a time per cache (parallel bootstraps wait here, then find it built).
  mkdir -p "$CACHE"
  exec 9>"$dir.lock"
  flock 9
fi
if needs_build; then
  command -v "$GO" >/dev/null || die "Go not found (set GO=/path/to/go); it builds the Pulumi engine"
  rm -rf "$dir/bin.partial"
  mkdir -p "$dir/bin.partial"
  start=$SECONDS
  if [[ -z "$ambient" ]]; then
    if [[ -f "$cli_stamp" && -x "$bin/pulumi" ]]; then
      say "keeping the Pulumi CLI v$version built from the same go.mod/go.sum"
      cp -p "$bin/pulumi" "$dir/bin.partial/pulumi"
    else
      say "building the Pulumi CLI v$version from the Go module proxy (first run: about 5 min on 2 idle cores, longer when busy)"
      go_build "$dir/bin.partial/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
    fi
  fi
  say "building kdrill's Python language host for Pulumi v$version"
  go_build "$dir/bin.partial/pulumi-language-python" ./cmd/pulumi-language-python
  sdk="$(sdk_dir)"
  install -m 755 "$sdk/python/cmd/pulumi-language-python-exec" "$dir/bin.partial/pulumi-language-python-exec"
  write_dynamic_launcher "$dir/bin.partial/pulumi-resource-pulumi-python"
  if [[ -z "$ambient" ]]; then
    got="$("$dir/bin.partial/pulumi" version)"
    [[ "$got" == "v$version" ]] || die "built pulumi reports version '$got', expected v$version"
  fi
  rm -rf "$bin"
  mv "$dir/bin.partial" "$bin"
  rm -f "$dir"/.complete-* "$dir"/.cli-*
  touch "$stamp"
  [[ -n "$ambient" ]] || touch "$cli_stamp"
  say "Pulumi engine v$version ready in $bin ($((SECONDS - start)) s)"
fi

# --- 3. make it reachable through .venv/bin ------------------------------------------
if [[ ! -d "$VENV/bin" ]]; then
  say "no $VENV yet: not linking the Pulumi engine into it (tools/bootstrap.sh creates it first)"
  exit 0
fi
link() { ln -sfn "$1" "$VENV/bin/$(basename "$1")"; }
host_dir="$bin"
if [[ -n "$ambient" ]]; then
  link "$ambient"
  # Prefer the language host that came with that pulumi, with its own exec shim.
  [[ -x "$(dirname "$ambient")/pulumi-language-python" ]] && host_dir="$(dirname "$ambient")"
else
  link "$bin/pulumi"
fi
for f in pulumi-language-python pulumi-language-python-exec; do
  [[ -e "$host_dir/$f" ]] && link "$host_dir/$f"
done
if [[ -x "$host_dir/pulumi-resource-pulumi-python" ]]; then
  link "$host_dir/pulumi-resource-pulumi-python"
else
  link "$bin/pulumi-resource-pulumi-python"
fi

# The Python SDK in .venv must be the engine's release (pyproject.toml pins it).
sdk_version="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("pulumi"))' 2>/dev/null || true)"
if [[ -n "$sdk_version" && "$sdk_version" != "$version" ]]; then
  say "warning: .venv has the pulumi Python SDK $sdk_version but the engine is v$version;" \
    "pin pulumi==$version in pyproject.toml or move tools/pulumi/go.mod to a release the Go proxy serves"
fi
