"""The evidence manifest: the sha256 of every file a run wrote, signed with Ed25519.

The signing key is generated once per installation and kept outside the repo,
mode 0600: `$KDRILL_KEY_DIR/signing-key.pem`, by default
`~/.config/kdrill/signing-key.pem`. `kdrill keys` prints its public key so an
auditor can pin it; `kdrill verify RUN_DIR` re-hashes the files and checks the
signature. The signature covers the canonical JSON of the manifest without its
"signature" field.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

MANIFEST = "manifest.json"
FORMAT = "kdrill-evidence-manifest"
VERSION = 1


def key_dir() -> Path:
    return Path(os.environ.get("KDRILL_KEY_DIR") or Path.home() / ".config" / "kdrill")


def key_path() -> Path:
    return key_dir() / "signing-key.pem"


def load_key(create: bool = True) -> Ed25519PrivateKey | None:
    path = key_path()
    if path.exists():
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.replace(tmp, path)
    return key


def public_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def fingerprint(public_b64: str) -> str:
    return "SHA256:" + hashlib.sha256(base64.b64decode(public_b64)).hexdigest()[:32]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _files(run_dir: Path) -> list[Path]:
    return sorted(
        p
        for p in run_dir.rglob("*")
        if p.is_file() and p.relative_to(run_dir).as_posix() != MANIFEST
    )


def _canonical(doc: dict[str, Any]) -> bytes:
    body = {k: v for k, v in doc.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def write_manifest(run_dir: Path, run_id: str | None = None) -> Path:
    """Hash every file under run_dir (but the manifest) and sign; written last, atomically."""
    key = load_key()
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "run_id": run_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "algorithm": "ed25519",
        "public_key": public_text(key.public_key()),
        "files": {
            p.relative_to(run_dir).as_posix(): {"sha256": _sha256(p), "bytes": p.stat().st_size}
            for p in _files(run_dir)
        },
    }
    doc["signature"] = base64.b64encode(key.sign(_canonical(doc))).decode()
    path = run_dir / MANIFEST
    tmp = run_dir / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, path)
    return path


@dataclass
class Verification:
    ok: bool
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: int = 0


def verify(run_dir: Path, trusted: str | None = None) -> Verification:
    """Check the signature and every listed file's hash; `trusted` pins the public key (base64)."""
    path = run_dir / MANIFEST
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return Verification(False, [f"{path}: no manifest"])
    except json.JSONDecodeError as e:
        return Verification(False, [f"{path}: not JSON ({e.msg})"])
    if doc.get("format") != FORMAT or doc.get("version") != VERSION:
        return Verification(False, [f"{path}: not a kdrill manifest of version {VERSION}"])
    v = Verification(True, files=len(doc.get("files") or {}))
    pub_b64 = doc.get("public_key", "")
    try:
        pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(pub_b64))
        pub.verify(base64.b64decode(doc.get("signature", "")), _canonical(doc))
    except (InvalidSignature, ValueError):
        v.problems.append("signature does not match the manifest (manifest altered or not signed)")
    if trusted is None:
        mine = load_key(create=False)
        trusted = public_text(mine.public_key()) if mine else None
        if trusted and trusted != pub_b64:
            v.notes.append(
                f"signed by key {fingerprint(pub_b64)}, not this installation's ({fingerprint(trusted)})"
            )
    elif trusted != pub_b64:
        v.problems.append(
            f"signed by key {fingerprint(pub_b64)}, not the trusted {fingerprint(trusted)}"
        )
    listed = doc.get("files") or {}
    for rel, meta in sorted(listed.items()):
        p = run_dir / rel
        if not p.is_file():
            v.problems.append(f"{rel}: missing")
        elif _sha256(p) != meta.get("sha256"):
            v.problems.append(f"{rel}: changed (sha256 differs)")
    for p in _files(run_dir):
        rel = p.relative_to(run_dir).as_posix()
        if rel not in listed and not rel.endswith(".tmp"):
            v.notes.append(f"{rel}: added after signing (not covered)")
    v.ok = not v.problems
    return v
