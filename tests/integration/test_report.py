"""The drill report of a real drill, rendered and photographed by headless Chromium.

One drill (module scope) on the session's pair; its run directory keeps
report.html, report.png beside it, and the signed manifest. Chromium is
Debian's `chromium`, installed here by the test set-up if missing (never by
`./run drill`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET

import pytest

from drills.report.manifest import verify

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed if missing (apt lists refreshed once if the install fails)."""
    path = shutil.which("chromium")
    if path is None:
        assert os.geteuid() == 0, "installing chromium for the screenshot test needs root"
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "chromium"]
        quiet = {"env": env, "stdout": subprocess.DEVNULL, "timeout": 900}
        if subprocess.run(install, **quiet).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], check=True, **quiet)
            subprocess.run(install, check=True, **quiet)
        path = shutil.which("chromium")
    assert path, "chromium is not installed"
    return path


@pytest.fixture(scope="module")
def drill(default_drill):
    """The session's default drill (conftest.default_drill): its report is what is judged."""
    assert default_drill.status == "completed", default_drill.evidence.get("journal")
    return default_drill


def test_the_drill_writes_a_signed_report(drill):
    d = drill.run_dir
    page = d / "report.html"
    text = page.read_text()
    assert page.stat().st_size < 5_000_000 and "http://" not in text and "https://" not in text
    for marker in ("t_fault", "t_detect", "t_decide", "t_fence", "t_cut"):
        assert f'id="marker-{marker}"' in text
    for layer in (
        "data freshness",
        "client behaviour",
        "control state",
        "capacity and cost",
        "operating model",
    ):
        assert f'data-layer="{layer}"' in text
    reset = {
        c["group"]
        for c in drill.evidence["measurements"]["continuity"]
        if c["role"] == "replicated" and c["resume_source"] == "reset"
    }
    assert ('data-rule="group-resumed-from-reset"' in text) == bool(reset)
    assert (d / "report.md").exists()
    v = verify(d)
    assert v.ok, v.problems
    assert {"evidence.json", "report.html", "report.md", "journal.json"} <= set(
        json.loads((d / "manifest.json").read_text())["files"]
    )
    svg = ET.fromstring(text[text.index("<svg") : text.index("</svg>") + 6])
    assert svg.find(".//*[@id='marker-t_cut']") is not None


def test_headless_chromium_screenshot_is_not_blank(drill, chromium):
    import matplotlib.image as mpimg

    page, png = drill.run_dir / "report.html", drill.run_dir / "report.png"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--window-size=1200,2000",
                f"--screenshot={png}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    pixels = mpimg.imread(png)[..., :3]
    assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 1000
    assert pixels.std() > 0.05, "the screenshot is blank"
    assert (pixels.mean(axis=2) < 0.5).mean() > 0.01, "no dark pixels: nothing rendered"
