#!/usr/bin/env bash
# Idempotent set-up shared by the README's two commands (./run demo, ./run tests).
# Each step checks before it acts, so a second run costs seconds:
#   1. Debian packages the local regions need (iproute2, nftables, a JDK, Maven)
#   2. a Python 3.11 virtualenv in .venv with kdrill installed editable
#   3. the pinned Apache Kafka jars from Maven Central, cached outside the repo
# Other set-up steps (the Pulumi engine, toxiproxy, the JVMs' CDS archives) are added as tools/setup-*.sh
# and run from here in file-name order. The FOCUS validator (setup-focus-validator.sh:
# CPython 3.13 built from source) serves only the tests and `kdrill cost validate`, so it
# runs only with KDRILL_WITH_FOCUS_VALIDATOR=1 (./run tests sets it; ./run drill does not);
# the CDS archives (setup-kafka-cds.sh) only with KDRILL_WITH_CDS=1 (likewise).
#
# The Pulumi engine build (the longest step on a fresh machine: minutes of Go compiling)
# starts in the background right after the Debian packages, while the virtualenv, the
# Kafka jars and the other steps proceed; its output goes to $CACHE/logs/setup-pulumi-<checkout>.log.
# Before finishing, set-up waits for it; if it failed, set-up fails with its log's tail.
# KDRILL_SERIAL_SETUP=1 runs every step in the foreground, one after another.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${KDRILL_CACHE:-$HOME/.cache/kdrill}"
VENV="$ROOT/.venv"
say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

# --- 1. Debian packages -------------------------------------------------------
need_pkgs=()
command -v ip >/dev/null || need_pkgs+=(iproute2)
command -v nft >/dev/null || need_pkgs+=(nftables)
command -v java >/dev/null || need_pkgs+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need_pkgs+=(maven)
# Go lives outside the default PATH on some machines; the build steps need it.
if [[ -x /usr/local/go/bin/go ]]; then export PATH="$PATH:/usr/local/go/bin"; fi
command -v go >/dev/null || need_pkgs+=(golang-go)
if ((${#need_pkgs[@]})); then
  [[ $(id -u) -eq 0 ]] || die "missing ${need_pkgs[*]}; run as root or: sudo apt-get install ${need_pkgs[*]}"
  say "installing Debian packages: ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# --- background: the Pulumi engine build ----------------------------------------
# setup-pulumi.sh builds into the cache (it links into .venv/bin only if that exists by
# then); it is run once more in the foreground at the end, which finds the build in and
# links it (a fraction of a second).
# (one log per checkout: several checkouts may share the cache)
bg_pid=""; bg_log="$CACHE/logs/setup-pulumi-$(basename "$ROOT")-$(printf %s "$ROOT" | sha256sum | cut -c1-8).log"
stop_bg() {
  if [[ -n "$bg_pid" ]] && kill -0 "$bg_pid" 2>/dev/null; then
    say "stopping the background Pulumi engine build"
    kill -TERM -- "-$bg_pid" 2>/dev/null || kill -TERM "$bg_pid" 2>/dev/null || true
  fi
}
trap stop_bg EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if [[ "${KDRILL_SERIAL_SETUP:-0}" != 1 && -e "$ROOT/tools/setup-pulumi.sh" ]]; then
  mkdir -p "$(dirname "$bg_log")"
  bg_start=$SECONDS
  # its own session, so that stopping it (above) stops the go compilers it started too
  setsid -w bash "$ROOT/tools/setup-pulumi.sh" >"$bg_log" 2>&1 </dev/null &
  bg_pid=$!
fi

# --- 2. virtualenv -------------------------------------------------------------
PY="${KDRILL_PYTHON:-}"
if [[ -z "$PY" ]]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY="$cand"; break
    fi
  done
fi
[[ -n "$PY" ]] || die "Python 3.11 not found; install it or set KDRILL_PYTHON=/path/to/python3.11"
stamp="$VENV/.kdrill-deps-$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
if [[ ! -f "$stamp" ]]; then
  say "creating virtualenv and installing Python dependencies (first run: a few minutes)"
  [[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # --no-compile: no .pyc for every installed module up front (pulumi-aws alone is 271 MB of
  # Python): 28 s of CPU instead of 96 s on 2 cores, which a first drill's Pulumi build would
  # otherwise share; Python compiles what a drill or a test imports, once, when it imports it.
  "$VENV/bin/python" -m pip install -q --no-compile -e "$ROOT[dev]"
  rm -f "$VENV"/.kdrill-deps-*
  touch "$stamp"
fi

# --- 3. Kafka jars ---------------------------------------------------------------
if [[ -n "${KAFKA_HOME:-}" ]]; then
  [[ -d "$KAFKA_HOME/libs" ]] || die "KAFKA_HOME=$KAFKA_HOME has no libs/ directory; unset it or point it at a Kafka installation"
else
  kafka_version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/tools/kafka/pom.xml")"
  kdir="$CACHE/kafka-$kafka_version"
  pom_sum="$(sha256sum "$ROOT/tools/kafka/pom.xml" | cut -c1-16)"
  if [[ ! -f "$kdir/.complete-$pom_sum" ]]; then
    say "resolving Apache Kafka $kafka_version and MirrorMaker 2 jars from Maven Central"
    rm -rf "$kdir"
    mvn -q -B -f "$ROOT/tools/kafka/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$kdir/libs.partial" >&2
    # Verify before publishing: the jars holding the three main classes must be there.
    for jar in "kafka_2.13-$kafka_version.jar" "connect-mirror-$kafka_version.jar" log4j-core- log4j-slf4j2-impl-; do
      ls "$kdir/libs.partial" | grep -q "^$jar" || die "Kafka runtime incomplete: no $jar in $kdir/libs.partial"
    done
    mv "$kdir/libs.partial" "$kdir/libs"
    touch "$kdir/.complete-$pom_sum"
  fi
fi

# --- 4. further set-up steps (Pulumi engine, toxiproxy, ...) -------------------
for step in "$ROOT"/tools/setup-*.sh; do
  [[ -e "$step" ]] || continue
  case "$(basename "$step")" in
    setup-focus-validator.sh) [[ "${KDRILL_WITH_FOCUS_VALIDATOR:-0}" == 1 ]] || continue ;;
    # the JVMs' CDS archives pay off over the test suite's hundreds of JVM starts, not over
    # one drill's handful: `./run tests` builds them (about 60 s of CPU, which on a fresh
    # machine would slow the Pulumi build the first drill waits for); a drill uses one built
    setup-kafka-cds.sh) [[ "${KDRILL_WITH_CDS:-0}" == 1 ]] || continue ;;
    setup-pulumi.sh) [[ -z "$bg_pid" ]] || continue ;;  # building in the background; linked below
  esac
  bash "$step"
done

# --- 5. the background Pulumi engine build: wait, check, link -------------------
if [[ -n "$bg_pid" ]]; then
  if kill -0 "$bg_pid" 2>/dev/null; then
    say "waiting for the Pulumi engine build (running in the background for $((SECONDS - bg_start)) s; log: $bg_log)"
  fi
  bg_rc=0; wait "$bg_pid" || bg_rc=$?
  bg_pid=""
  if ((bg_rc != 0)); then
    printf 'setup: the Pulumi engine build (tools/setup-pulumi.sh) failed with exit status %s; last lines of %s:\n' "$bg_rc" "$bg_log" >&2
    tail -n 25 "$bg_log" | sed 's/^/  | /' >&2
    exit 1
  fi
  # its progress lines (what was built, how long it took), now that it is done; the
  # rest (go's download lines) stays in the log
  grep -a '\[setup\]' "$bg_log" | grep -v 'yet: not linking' | sed 's/^/  pulumi | /' >&2 || true
  bash "$ROOT/tools/setup-pulumi.sh"  # finds the build in the cache; links it into .venv/bin
fi
