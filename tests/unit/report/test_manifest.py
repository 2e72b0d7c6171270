"""The signed manifest: every file hashed, Ed25519 over the manifest, tampering found."""

from __future__ import annotations

import json
import stat

from drills.report.manifest import key_path, load_key, verify, write_manifest


def test_sign_and_verify(run_dir):
    d = run_dir("passing")
    write_manifest(d, "r1")
    doc = json.loads((d / "manifest.json").read_text())
    assert set(doc["files"]) == {
        "evidence.json",
        *(f"history/{p.name}" for p in (d / "history").iterdir()),
    }
    assert stat.S_IMODE(key_path().stat().st_mode) == 0o600
    v = verify(d)
    assert v.ok and v.files == len(doc["files"]) and not v.notes


def test_changed_missing_and_added_files(run_dir):
    d = run_dir("passing")
    write_manifest(d)
    (d / "evidence.json").write_text("{}")
    (d / "history" / "reads.parquet").unlink()
    (d / "report.png").write_bytes(b"x")
    v = verify(d)
    assert not v.ok
    assert "evidence.json: changed (sha256 differs)" in v.problems
    assert "history/reads.parquet: missing" in v.problems
    assert "report.png: added after signing (not covered)" in v.notes


def test_altered_manifest_breaks_the_signature(run_dir):
    d = run_dir("passing")
    (d / "evidence.json").write_text("{}")
    write_manifest(d)
    doc = json.loads((d / "manifest.json").read_text())
    doc["files"]["evidence.json"]["bytes"] = 3
    (d / "manifest.json").write_text(json.dumps(doc))
    assert "signature does not match" in verify(d).problems[0]


def test_pinned_key(run_dir, tmp_path, monkeypatch):
    d = run_dir("passing")
    write_manifest(d)
    monkeypatch.setenv("KDRILL_KEY_DIR", str(tmp_path / "other"))
    other = load_key()
    from drills.report.manifest import public_text

    v = verify(d, public_text(other.public_key()))
    assert not v.ok and "not the trusted" in v.problems[0]
    assert "not this installation's" in verify(d).notes[0]
