"""The scenario library cannot ship a broken or unrun row, and `kdrill scenarios` lists it.

Every drills/scenarios/*.yaml must validate (spec, faults against its target stack), carry
a header comment with a `# Seed situation:` line naming a situation of the seed text, and be
loaded by at least one integration test (its file name as a string literal in
tests/integration/*.py, not only mentioned in prose).
"""

from __future__ import annotations

import functools
import json
import re
import shutil
from pathlib import Path

import pytest

from drills import cli
from drills.library import (
    SCENARIOS_DIR,
    SEED_SITUATIONS,
    SUMMARY_WIDTH,
    header,
    known_situation,
    library,
)

REPO = Path(__file__).resolve().parents[3]
INTEGRATION = REPO / "tests" / "integration"
FILES = sorted(p.name for p in SCENARIOS_DIR.glob("*.yaml"))

# Rows another branch of issue 15 delivers (header and test): listed here until it lands.
# strict: once the row is complete this entry fails the suite and must be removed.
PENDING: dict[str, str] = {}  # file -> why it may not yet pass (strict xfail)


@functools.cache
def _rows() -> dict:
    return {r.file: r for r in library()}


def _files():
    return [
        pytest.param(f, marks=pytest.mark.xfail(reason=PENDING[f], strict=True))
        if f in PENDING
        else f
        for f in FILES
    ]


def test_the_library_is_not_empty_and_has_the_rows_of_this_branch():
    assert {
        "region-loss.yaml",
        "blackhole-endpoint.yaml",
        "peak-at-failover.yaml",
        "replication-stopped-then-region-loss.yaml",
        "standby-squeezed-then-failover.yaml",
        "failback-after-region-loss.yaml",
        "partial-region.yaml",
    } <= set(FILES)


@pytest.mark.parametrize("name", _files())
def test_every_scenario_validates_and_names_its_seed_situation(name):
    row = _rows()[name]
    assert row.error is None, row.error
    assert row.name == name.removesuffix(".yaml"), "a scenario's name is its file name"
    assert row.summary and len(row.summary) <= SUMMARY_WIDTH
    lines = header((SCENARIOS_DIR / name).read_text())
    assert len(lines) >= 3, "a header comment saying what the drill proves"
    assert known_situation(row.seed or "") in SEED_SITUATIONS


@pytest.mark.parametrize("name", _files())
def test_every_scenario_is_run_by_an_integration_test(name):
    literal = re.compile(rf"""["']{re.escape(name)}["']""")
    users = [p.name for p in INTEGRATION.glob("test_*.py") if literal.search(p.read_text())]
    assert users, f"no integration test loads {name}"


def test_known_situation_is_case_insensitive_and_needs_a_listed_phrase():
    assert known_situation("Partial Region Degradation -- one broker") == (
        "partial region degradation"
    )
    assert known_situation("a bad day") is None


# --- kdrill scenarios ---------------------------------------------------------------------


def _run(capsys, *argv: str) -> tuple[int, list[str], list[str]]:
    code = cli.main(["scenarios", *argv])
    cap = capsys.readouterr()
    return code, cap.out.splitlines(), [x for x in cap.err.splitlines() if x.strip()]


GOOD = """\
# A drill for the test.
# Seed situation: packet loss on the client link
version: 1
name: good
description: >-
  The first sentence is the summary. The rest is not shown.
workload: {topics: [{name: a}], groups: [{name: g}]}
fault: {kind: region-loss, region: east}
"""


def test_scenarios_lists_each_file_on_one_line(capsys, tmp_path):
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "other.yaml").write_text(GOOD.replace("name: good", "name: other"))
    code, out, err = _run(capsys, "--dir", str(tmp_path))
    assert code == 0, err
    assert out == [
        "good   The first sentence is the summary.",
        "other  The first sentence is the summary.",
    ]


def test_scenarios_lists_a_broken_spec_with_its_one_line_error_and_exits_2(capsys, tmp_path):
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "bad-region.yaml").write_text(GOOD.replace("region: east", "region: mars"))
    (tmp_path / "no-seed.yaml").write_text(GOOD.replace("# Seed situation: packet loss", "#"))
    (tmp_path / "odd-seed.yaml").write_text(GOOD.replace("packet loss", "a bad day"))
    (tmp_path / "not-yaml.yaml").write_text("version: [1\n")
    code, out, err = _run(capsys, "--dir", str(tmp_path))
    assert code == 2
    assert err == ["kdrill: scenarios: 4 of 5 invalid"]
    assert len(out) == 5 and "Traceback" not in "\n".join(out)
    bad = [line for line in out if "INVALID:" in line]
    assert len(bad) == 4
    assert any("bad-region.yaml: fault: unknown region 'mars'" in line for line in bad)
    assert any("no-seed.yaml: no '# Seed situation: ...' line" in line for line in bad)
    assert any(
        "odd-seed.yaml: seed situation 'a bad day on the client link' names none" in line
        for line in bad
    )
    assert any(line.startswith("not-yaml.yaml") and "not-yaml.yaml" in line for line in bad)
    (ok,) = [line for line in out if "INVALID" not in line]
    assert ok.split(None, 1) == ["good", "The first sentence is the summary."]


def test_scenarios_json(capsys, tmp_path):
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "no-seed.yaml").write_text(GOOD.replace("# Seed situation: packet loss", "#"))
    code, out, _ = _run(capsys, "--dir", str(tmp_path), "--json")
    assert code == 2
    rows = json.loads("\n".join(out))
    assert [(r["file"], r["name"], r["error"] is None) for r in rows] == [
        ("good.yaml", "good", True),
        ("no-seed.yaml", "good", False),
    ]
    assert rows[0]["seed"] == "packet loss on the client link" and rows[0]["stack"] == "local"


def test_scenarios_on_the_shipped_library_lists_every_file(capsys, tmp_path):
    for name in FILES:
        if name not in PENDING:
            shutil.copy(SCENARIOS_DIR / name, tmp_path / name)
    code, out, err = _run(capsys, "--dir", str(tmp_path))
    assert code == 0, err
    assert len(out) == len(FILES) - len(PENDING)
    assert {line.split()[0] for line in out} == {
        n.removesuffix(".yaml") for n in FILES if n not in PENDING
    }


def test_scenarios_bad_directory_is_one_line(capsys, tmp_path):
    code, out, err = _run(capsys, "--dir", str(tmp_path / "nope"))
    assert code == 2 and out == [] and len(err) == 1 and "no such directory" in err[0]
    code, out, err = _run(capsys, "--dir", str(tmp_path))
    assert code == 2 and err == [f"kdrill: scenarios: no *.yaml in {tmp_path}"]
