#!/usr/bin/env bash
# Class-data-sharing archives of the Kafka classes (components/local/jvmcds.py): every
# broker, MirrorMaker 2 and Kafka tool JVM maps them and starts on about a third less CPU.
# Built once per Java and jar set into ~/.cache/kdrill/cds/<fingerprint>/ from the class
# lists of a throwaway broker and MirrorMaker 2 on 127.0.0.1 (about 40 s of CPU, in the
# shadow of the Pulumi engine build on a fresh machine). Never fails set-up: without an
# archive the JVMs start as they always did.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ -n "${KAFKA_HOME:-}" ]] && exit 0  # someone else's Kafka install: leave its JVMs alone
nice "$ROOT/.venv/bin/python" -m components.local.jvmcds
