"""Every event kind the code can write is documented, and every documented kind is written.

Three sources write records (docs/report.md): agents (their events are the
classes of ``hilnet.agent.events``, plus the socket's own lines), the
controller (``note(KIND, ...)`` calls) and the link engine (``{"event": KIND}``
dicts). The code is read statically; a real run of a scenario with every fault
adds the kinds the controller only knows at run time (``note(action.kind, ...)``).
The docs list each source's kinds in tables marked ``<!-- events: SOURCE -->``.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections import defaultdict

import pytest
from docs_markdown import ROOT, marked_tables, rel

from hilnet.agent.events import EVENTS

# Where each source's kinds must be documented (the tables marked for it).
HOME = {
    "agent": "docs/control.md",
    "controller": "docs/report.md",
    "link": "docs/link.md",
}


def _event_dict_kinds(node: ast.AST) -> set[str]:
    """Kinds of ``{"event": "x"}`` / ``{"event": "x" if c else "y"}`` dict literals under ``node``."""
    kinds: set[str] = set()
    for d in ast.walk(node):
        if not isinstance(d, ast.Dict):
            continue
        for k, v in zip(d.keys, d.values):
            if isinstance(k, ast.Constant) and k.value == "event":
                kinds |= _constants(v)
    return kinds


def _constants(v: ast.AST) -> set[str]:
    if isinstance(v, ast.Constant) and isinstance(v.value, str):
        return {v.value}
    if isinstance(v, ast.IfExp):
        return _constants(v.body) | _constants(v.orelse)
    return set()


def _note_kinds(node: ast.AST) -> set[str]:
    """First arguments of ``note("x", ...)`` / ``self.note("x", ...)`` calls, where constant."""
    kinds: set[str] = set()
    for c in ast.walk(node):
        if not isinstance(c, ast.Call) or not c.args:
            continue
        name = c.func.attr if isinstance(c.func, ast.Attribute) else getattr(c.func, "id", "")
        if name == "note":
            kinds |= _constants(c.args[0])
    return kinds


def _parse(folder: str) -> list[ast.Module]:
    return [ast.parse(p.read_text(encoding="utf-8")) for p in sorted((ROOT / "hilnet" / folder).rglob("*.py"))]


def static_kinds() -> dict[str, set[str]]:
    kinds: dict[str, set[str]] = defaultdict(set)
    kinds["agent"] |= set(EVENTS)
    for tree in _parse("agent"):
        kinds["agent"] |= _event_dict_kinds(tree)  # the socket's `bundle` lines
    for tree in _parse("link"):
        kinds["link"] |= _event_dict_kinds(tree)
    for tree in _parse("controller"):
        kinds["controller"] |= _note_kinds(tree)
    return kinds


def documented() -> dict[str, dict[str, str]]:
    """source -> kind -> where it is documented (FILE:LINE)."""
    docs: dict[str, dict[str, str]] = defaultdict(dict)
    for t in marked_tables("events"):
        for name, line in t.names.items():
            docs[t.value].setdefault(name, f"{rel(t.path)}:{line}")
    return docs


@pytest.fixture(scope="module")
def run_kinds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Kinds per source in the events.jsonl of a real loopback run of a scenario with every fault kind."""
    out = tmp_path_factory.mktemp("every-key") / "run"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "hilnet", "run", str(ROOT / "scenarios" / "every-key.yaml")]
        + ["--backend", "loopback", "--scale", "120", "--quiet", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode in (0, 1), f"the run broke (exit {proc.returncode}): {proc.stderr}"
    kinds: dict[str, set[str]] = defaultdict(set)
    with open(out / "events.jsonl", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            kinds[rec["src"]].add(rec["event"])
    return kinds


@pytest.mark.parametrize("source", sorted(HOME))
def test_every_kind_the_code_writes_is_documented(source: str, run_kinds: dict[str, set[str]]) -> None:
    written = static_kinds()[source] | run_kinds.get(source, set())
    listed = documented().get(source, {})
    missing = sorted(written - set(listed))
    assert not missing, (
        f"{source} records of kind {missing} are written by the code but not documented: "
        f"add a row for each to the table marked `<!-- events: {source} -->` in {HOME[source]} "
        f"(the kind in backticks in the first column, then its fields and when it is written)"
    )


@pytest.mark.parametrize("source", sorted(HOME))
def test_every_documented_kind_is_written(source: str, run_kinds: dict[str, set[str]]) -> None:
    written = static_kinds()[source] | run_kinds.get(source, set())
    listed = documented().get(source, {})
    ghosts = {k: w for k, w in listed.items() if k not in written}
    assert not ghosts, (
        "documented but never written by the code: "
        + ", ".join(f"{w}: `{k}`" for k, w in sorted(ghosts.items()))
        + f" — remove the row, or make the code write it (a {source} event)"
    )


def test_the_run_saw_every_source(run_kinds: dict[str, set[str]]) -> None:
    # A guard on the guard: the run must have produced each source's records, and the faults.
    assert {"controller", "agent", "link"} <= set(run_kinds)
    assert {"cut", "restore", "crash", "restart", "burst-start", "burst-end"} <= run_kinds["controller"]


def test_no_table_names_an_unknown_source() -> None:
    for t in marked_tables("events"):
        assert t.value in HOME, f"{t.where}: events table for unknown source {t.value!r}; one of {sorted(HOME)}"
        assert t.names, f"{t.where}: the events table lists no kind in backticks"


def test_static_scan_finds_what_it_must() -> None:
    kinds = static_kinds()
    assert {"up", "down", "drop", "endpoint-error"} <= kinds["link"]
    assert {"run-start", "inject", "run-end"} <= kinds["controller"]
    assert {"ready", "delivered", "bundle"} <= kinds["agent"]
