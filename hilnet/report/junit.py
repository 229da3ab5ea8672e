"""``junit.xml``: one test case per expectation, so CI shows a run like a test suite.

The suite is named after the scenario and timed with the run's wall duration;
each failing expectation carries its one-line failures (in the ``message``
joined by "; ", and one per line in the element text). Seed, backend and end reason ride along
as suite properties. Built with ``xml.etree``, so names and messages are escaped.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from hilnet.report.atomic import write_bytes
from hilnet.report.meta import RunMeta
from hilnet.verdict import CheckReport

NS_PER_S = 1_000_000_000

# XML 1.0 cannot carry these even escaped; a tag from the log could hold one.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _x(text: object) -> str:
    return _NOT_XML.sub("\ufffd", str(text))


def build_junit(report: CheckReport, meta: RunMeta) -> ET.ElementTree[ET.Element]:
    """The junit.xml document (``<testsuites>`` with one ``<testsuite>``)."""
    failures = sum(1 for r in report.results if not r.passed)
    seconds = f"{meta.wall_duration_ns / NS_PER_S:.3f}"
    root = ET.Element(
        "testsuites", name="hilnet", tests=str(len(report.results)), failures=str(failures), errors="0", time=seconds
    )
    suite = ET.SubElement(
        root,
        "testsuite",
        name=_x(meta.scenario_name),
        tests=str(len(report.results)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=seconds,
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("seed", meta.seed),
        ("backend", meta.backend),
        ("end_reason", report.end_reason),
        ("run_dir", meta.run_dir),
        ("scale", f"{meta.scale:g}"),
    ):
        if value is not None:
            ET.SubElement(props, "property", name=name, value=_x(value))
    for r in report.results:
        case = ET.SubElement(suite, "testcase", classname=_x(f"hilnet.{meta.scenario_name}"), name=_x(r.name), time="0")
        if not r.passed:
            lines = list(r.failures) or [f"{r.name}: expected {r.expected}, got {r.actual}"]
            fail = ET.SubElement(case, "failure", type="expectation", message=_x("; ".join(lines)))
            fail.text = _x(f"expected {r.expected}, got {r.actual}\n" + "\n".join(lines))
        else:
            out = ET.SubElement(case, "system-out")
            out.text = _x(f"expected {r.expected}, got {r.actual}")
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(path: str | Path, report: CheckReport, meta: RunMeta) -> Path:
    """Write junit.xml at ``path``; returns the path."""
    data = ET.tostring(build_junit(report, meta).getroot(), encoding="utf-8", xml_declaration=True)
    return write_bytes(path, data + b"\n")
