#!/usr/bin/env bash
# The FinOps Foundation's FOCUS validator (PyPI focus-validator 2.x) in its own virtualenv.
#
# It needs Python >= 3.12 and this machine's Debian 12 has 3.11, so this builds CPython
# 3.13 from Debian 13's (trixie) source package -- fetched with apt from Debian's archive
# through a private apt configuration under the cache, so the system's sources.list is
# never touched -- and installs it under ~/.cache/kdrill/python-3.13. The validator's venv
# is ~/.cache/kdrill/focus-validator. No Debian release here ships 3.12, and
# focus-validator pins numpy ^1.26, which has no wheels for 3.13: its dependencies are
# installed from the list below with numpy 2 instead (pandas 2 supports it).
#
# Idempotent: a stamp names the validator version and its dependencies; a second run
# only checks the stamp (seconds). Run the validator with tools/focus-validate (offline).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${KDRILL_CACHE:-$HOME/.cache/kdrill}"
PY_SERIES=3.13
PY_SUITE=trixie
PYDIR="$CACHE/python-$PY_SERIES"
FVENV="$CACHE/focus-validator"
FV_VERSION=2.2.1
# sha256 of the FOCUS 1.2 rule file the pinned validator ships (rules/model-1.2.0.1.json).
# drills/cost/checks.py reads that file to decide whether the InvoiceId-C-005-C allowance
# still applies; a different file is a different validator, so set-up refuses it.
FV_RULES=model-1.2.0.1.json
FV_RULES_SHA256=639b302ace9edd05922e3d15fcedf62723c92e7cf25e0a7a6684dd4fd4076fec
# focus-validator 2.2.1's own dependencies (pyproject), numpy moved to 2.x for Python 3.13.
FV_DEPS=(
  "pandas>=2,<3" tabulate pyarrow "pydantic>=2.12,<3" "pyyaml>=6.0.3,<7" requests
  "pandera>=0.26.1,<0.27" "multimethod>=2.0,<2.1" "sqlglot>=27.28.1,<28" "jsonschema>=4.25.1,<5"
  "numpy>=2,<3" "pytz>=2025.2" "pandasql>=0.7.3,<0.8" "polars>=1.34,<2" "ddt>=1.7.1,<2"
  "duckdb>=1.4.1,<2" "graphviz>=0.21,<0.22"
)
say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
die() { printf 'setup-focus-validator: %s\n' "$*" >&2; exit 1; }

# the stamp names what the venv holds: the validator version and its dependency list
stamp="$FVENV/.complete-$FV_VERSION-$(printf '%s\n' "$PY_SERIES" "${FV_DEPS[@]}" | sha256sum | cut -c1-12)"
rules_ok() {
  local f; f="$(ls "$FVENV"/lib/python*/site-packages/focus_validator/rules/"$FV_RULES" 2>/dev/null | head -1)"
  [[ -n "$f" ]] && [[ "$(sha256sum "$f" | cut -d' ' -f1)" == "$FV_RULES_SHA256" ]]
}
if [[ -f "$stamp" && -x "$FVENV/bin/python" ]] && "$FVENV/bin/python" -c 'import focus_validator' 2>/dev/null && rules_ok; then
  exit 0
fi

# --- 1. CPython 3.13 built from Debian's source package -------------------------------
if ! "$PYDIR/bin/python$PY_SERIES" -c 'import ssl, sqlite3, ctypes, lzma, bz2, zlib' 2>/dev/null; then
  need=()
  for p in gcc make pkg-config libssl-dev libffi-dev zlib1g-dev libbz2-dev liblzma-dev libsqlite3-dev uuid-dev; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
  if ((${#need[@]})); then
    [[ $(id -u) -eq 0 ]] || die "missing ${need[*]}; run as root or: sudo apt-get install ${need[*]}"
    say "installing build dependencies for Python $PY_SERIES: ${need[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  apt="$CACHE/apt-$PY_SUITE"
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/parts" "$apt/prefs" "$CACHE/src"
  printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian %s main\n' \
    "$PY_SUITE" >"$apt/sources.list"
  O=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o "Dir::Etc::sourceparts=$apt/parts"
     -o "Dir::Etc::preferencesparts=$apt/prefs" -o "Dir::State::Lists=$apt/lists"
     -o "Dir::Cache=$apt/cache" -o "APT::Sandbox::User=root")
  say "fetching the python$PY_SERIES source package from Debian $PY_SUITE"
  apt-get "${O[@]}" update -qq >/dev/null
  src="$CACHE/src/python$PY_SERIES"
  rm -rf "$src" && mkdir -p "$src"
  (cd "$src" && apt-get "${O[@]}" source --download-only -qq "python$PY_SERIES/$PY_SUITE" >/dev/null)
  orig="$(ls "$src"/python"$PY_SERIES"_*.orig.tar.xz)" || die "no upstream tarball in the python$PY_SERIES source package"
  tar -C "$src" -xJf "$orig"
  build="$(find "$src" -mindepth 1 -maxdepth 1 -type d -name 'Python-*' | head -1)"
  [[ -n "$build" ]] || die "the python$PY_SERIES tarball has no Python-* directory"
  say "building CPython $(basename "$build") into $PYDIR (first run only: a few minutes)"
  (
    cd "$build"
    nice -n 10 ./configure -q --prefix="$PYDIR" --with-ensurepip=install >"$src/configure.log" 2>&1 \
      || { tail -20 "$src/configure.log" >&2; exit 1; }
    nice -n 10 make -s -j"$(nproc)" >"$src/make.log" 2>&1 || { tail -30 "$src/make.log" >&2; exit 1; }
    make -s altinstall >"$src/install.log" 2>&1 || { tail -30 "$src/install.log" >&2; exit 1; }
  )
  "$PYDIR/bin/python$PY_SERIES" -c 'import ssl, sqlite3, ctypes, lzma, bz2, zlib' \
    || die "the Python $PY_SERIES build lacks a standard module (see $src/make.log)"
  rm -rf "$build"
fi

# --- 2. the validator's virtualenv ------------------------------------------------------
say "installing focus-validator $FV_VERSION into $FVENV"
rm -rf "$FVENV"
"$PYDIR/bin/python$PY_SERIES" -m venv "$FVENV"
"$FVENV/bin/python" -m pip install -q --upgrade pip
"$FVENV/bin/python" -m pip install -q "${FV_DEPS[@]}"
"$FVENV/bin/python" -m pip install -q --no-deps "focus-validator==$FV_VERSION"
"$FVENV/bin/python" -c 'import focus_validator.main' || die "focus-validator does not import"
rules_ok || die "focus-validator $FV_VERSION's $FV_RULES is not the pinned one (sha256 $FV_RULES_SHA256)"
touch "$stamp"
say "focus-validator $FV_VERSION ready: $ROOT/tools/focus-validate FILE"
