"""No secret leaves (issue 16 item 5): a drill run through the command line, with the stack's
SCRAM passwords (generated per stack, known to this test through the 0600 file) and a planted
AWS-style secret key in the drill's environment, and every place a secret could land is
searched: the files the run wrote, the objects it uploaded, the state directory (the Pulumi
state holds the credentials as ciphertext), the command lines of the pair's processes and
the terminal output. A secret may appear only in the 0600 files meant to hold it."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import yaml

from components.local import cgroups, objectstore, security
from tests.integration.test_drill import DEFAULT

REPO = Path(__file__).resolve().parents[2]
PLANTED_AWS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYPLANTEDKEY"
HOLDERS = (security.CREDENTIALS_FILE, "mm2-secrets.properties", "admin-client.properties")


def _hits(data: bytes, secrets: list[str]) -> list[str]:
    text = data.decode(errors="replace")
    return [s[:6] + "..." for s in secrets if s in text]


def test_no_secret_leaves_a_drill_run(pair, tmp_path):
    creds = pair.credentials
    assert creds
    secrets = [*creds.values(), PLANTED_AWS_KEY]
    stack = tmp_path / f"Pulumi.{pair.cfg.stack}.yaml"  # the session pair, by its stack's name
    stack.write_text(yaml.safe_dump({"config": pair.cfg.raw}))
    out_dir = tmp_path / "out"
    env = {**os.environ, "AWS_SECRET_ACCESS_KEY": PLANTED_AWS_KEY, "AWS_ACCESS_KEY_ID": "AKIAPLANTED",
           "NO_COLOR": "1"}  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-m", "drills.cli", "run", str(DEFAULT), "--stack", str(stack),
         "--out", str(out_dir)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    terminal = run.stdout + run.stderr
    assert "evidence:" in terminal, terminal[-2000:]
    assert _hits(terminal.encode(), secrets) == [], "a secret in the terminal output"

    written = [f for f in out_dir.rglob("*") if f.is_file()]
    assert any(f.name == "evidence.json" for f in written) and len(written) > 5
    for f in written:
        assert _hits(f.read_bytes(), secrets) == [], f"a secret in {f}"

    s3 = objectstore.client(pair.standby.s3_endpoint, pair.standby.spec.aws_region)
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket="kdrill-west-evidence") for o in page.get("Contents", [])]  # fmt: skip
    assert keys
    for k in keys:
        body = s3.get_object(Bucket="kdrill-west-evidence", Key=k)["Body"].read()
        assert _hits(body, secrets) == [], f"a secret in s3://kdrill-west-evidence/{k}"

    # the state directory: Pulumi's backend and config (ciphertext only), logs, data, configs
    for f in pair.dir.rglob("*"):
        if not f.is_file() or f.suffix in (".index", ".timeindex"):
            continue
        if f.name in HOLDERS:
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
            continue
        assert _hits(f.read_bytes(), secrets) == [], f"a secret in {f}"

    pids = {p.pid for p in pair.procs}
    for r in pair.regions:
        pids.update(cgroups.procs(r.cgroup))
    assert len(pids) >= 5  # brokers, object stores, toxiproxy, MirrorMaker 2
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        assert _hits(cmdline, secrets) == [], f"a secret in the command line of pid {pid}"
