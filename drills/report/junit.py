"""JUnit XML for pipelines: one testcase per objective; a missed one fails with value and bound."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any


def render(ev: dict[str, Any]) -> str:
    v = ev.get("verdict") or {}
    checks = v.get("checks") or []
    name = f"kdrill.{ev.get('drill')}"
    suite = ET.Element(
        "testsuite",
        name=name,
        tests=str(max(1, len(checks))),
        failures=str(sum(not c["met"] for c in checks)),
        errors="0" if ev.get("status") == "completed" and v else "1",
        time=str((ev.get("journal") or {}).get("duration") or 0),
    )
    if ev.get("status") != "completed" or not v:
        case = ET.SubElement(suite, "testcase", classname=name, name="drill ran")
        ET.SubElement(case, "error", message=f"drill {ev.get('status')}: no verdict").text = ev.get(
            "status"
        )
    for c in checks:
        case = ET.SubElement(suite, "testcase", classname=name, name=str(c["objective"]))
        if not c["met"]:
            msg = f"{c['objective']}: value {c['value']} exceeds bound {c['bound']}"
            ET.SubElement(case, "failure", message=msg, type="objective missed").text = msg
        else:
            ET.SubElement(case, "system-out").text = f"value {c['value']}, bound {c['bound']}"
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
