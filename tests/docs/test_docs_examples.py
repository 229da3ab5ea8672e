"""Every shell example the docs mark ``sh run`` runs, exits as documented and shows what it says.

Each page's examples run in order in one temporary folder of that page (an
example may use what an earlier one made: a run folder; a block tagged
``file=NAME``, such as a node file the page shows, is written there as NAME), with
``scenarios/`` beside them and ``hilnet`` on the PATH as this checkout. The
shell is ``bash -e -o pipefail``; processes an example leaves in the
background are killed with its process group when it ends.

A block tagged ``output`` right after an example is what the example shows:

- ``json output``: each line is a JSON object that some line the example
  printed must match: the same keys at every level (a renamed or missing field
  fails), the same strings, the same types of numbers (values vary by run). A
  string ending in ``…`` matches any string starting with what comes before it;
  an object with a ``"…"`` key may hold further fields (counters, which vary).
- ``text output``: each line must appear in what the example printed, in order,
  as written, except that ``…`` (or ``...``) stands for anything (a time, a
  count, an id that varies by run) and lines may be left out between them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from docs_markdown import ROOT, Block, rel, run_blocks

BLOCKS = run_blocks()
_dirs: dict[Path, Path] = {}


def _workdir(block: Block, factory: pytest.TempPathFactory) -> Path:
    if block.path not in _dirs:
        d = factory.mktemp(block.path.stem)
        (d / "scenarios").symlink_to(ROOT / "scenarios")
        (d / "xdg").mkdir(mode=0o700)
        (d / "bin").mkdir()
        shim = d / "bin" / "hilnet"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m hilnet "$@"\n')
        shim.chmod(0o755)
        _dirs[block.path] = d
    return _dirs[block.path]


def _run(block: Block, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        PATH=f"{cwd / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        PYTHONPATH=str(ROOT),
        XDG_RUNTIME_DIR=str(cwd / "xdg"),
        COLUMNS="120",
    )
    timeout = float(block.tag("timeout", "60") or 60)
    # Files, not pipes: agents an example leaves in the background keep its
    # pipes open, so reading them to EOF would wait for those agents.
    with open(cwd / ".stdout", "w+") as out_f, open(cwd / ".stderr", "w+") as err_f:
        proc = subprocess.Popen(
            ["bash", "-e", "-o", "pipefail", "-c", block.text],
            cwd=cwd,
            env=env,
            stdout=out_f,
            stderr=err_f,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _end_group(proc, timed_out)
        out_f.seek(0)
        err_f.seek(0)
        out, err = out_f.read(), err_f.read()
    if timed_out:
        pytest.fail(f"{block.where}: the example ran over {timeout:.0f} s\n--- stdout\n{out}\n--- stderr\n{err}")
    return subprocess.CompletedProcess(block.text, proc.returncode, out, err)


def _end_group(proc: subprocess.Popen[str], timed_out: bool) -> None:
    """Stop the example's shell and what it left in the background (agents started with &)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL if timed_out else signal.SIGTERM)
    except ProcessLookupError:
        pass
    proc.wait()
    # Give a terminated agent the moment it needs to close its store, then insist.
    # (A member that exited but was not reaped still answers signal 0: hence the bound.)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def shape_mismatch(doc: Any, got: Any, where: str = "") -> str | None:
    """Why ``got`` does not match the documented ``doc`` (None: it does)."""
    if isinstance(doc, dict):
        if not isinstance(got, dict):
            return f"{where or 'the line'} is {type(got).__name__}, documented as an object"
        open_ended = "…" in doc  # {"…": …}: further fields, which vary (counters), may follow
        doc = {k: v for k, v in doc.items() if k != "…"}
        missing = sorted(set(doc) - set(got))
        extra = [] if open_ended else sorted(set(got) - set(doc))
        if missing or extra:
            return f"{where or 'the object'}: documented fields {missing} not printed, printed fields {extra} not documented"
        for k in doc:
            why = shape_mismatch(doc[k], got[k], f"{where}.{k}" if where else k)
            if why:
                return why
        return None
    if isinstance(doc, list):
        if not isinstance(got, list) or len(got) < len(doc):
            return f"{where}: documented as a list of at least {len(doc)}, got {got!r}"
        for i, d in enumerate(doc):
            why = shape_mismatch(d, got[i], f"{where}[{i}]")
            if why:
                return why
        return None
    if isinstance(doc, str):
        if not isinstance(got, str):
            return f"{where}: documented as a string, got {got!r}"
        if doc.endswith("…"):
            return None if got.startswith(doc[:-1]) else f"{where}: {got!r} does not start with {doc[:-1]!r}"
        return None if got == doc else f"{where}: documented {doc!r}, printed {got!r}"
    if isinstance(doc, bool) or doc is None:
        return None if got is doc else f"{where}: documented {doc!r}, printed {got!r}"
    if isinstance(doc, (int, float)):
        ok = isinstance(got, (int, float)) and not isinstance(got, bool)
        return (
            None
            if ok and isinstance(got, int) == isinstance(doc, int)
            else f"{where}: documented {doc!r}, printed {got!r}"
        )
    return None


def _json_lines(text: str) -> list[Any]:
    objs = []
    for line in text.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, (dict, list)):  # a line of pretty-printed JSON may parse as a bare string
            objs.append(obj)
    if not objs:
        try:
            objs.append(json.loads(text))
        except ValueError:
            pass
    return objs


def check_json(doc_text: str, printed: str) -> list[str]:
    got = _json_lines(printed)
    problems = []
    for doc in _json_lines(doc_text):
        whys = [shape_mismatch(doc, g) for g in got]
        if all(whys):
            # Name the closest line: the same event/cmd if there is one.
            same = [
                w
                for g, w in zip(got, whys)
                if isinstance(g, dict)
                and isinstance(doc, dict)
                and g.get("event") == doc.get("event")
                and g.get("cmd") == doc.get("cmd")
            ]
            problems.append(
                f"no printed line matches {json.dumps(doc)[:160]}: {(same or whys or ['nothing printed'])[0]}"
            )
    return problems


def _line_pattern(line: str) -> re.Pattern[str]:
    """The line as written, except that runs of spaces match any spaces and ``…``/``...`` anything."""
    parts = []
    for word in line.split():
        pieces = re.split(r"…|\.\.\.", word)
        parts.append(".*?".join(re.escape(p) for p in pieces))
    return re.compile(r"\s+".join(parts))


def check_text(doc_text: str, printed: str) -> list[str]:
    got = printed.splitlines()
    at = 0
    for line in doc_text.splitlines():
        if not line.strip() or line.strip() in ("...", "…"):
            continue
        pattern = _line_pattern(line)
        for i in range(at, len(got)):
            if pattern.search(got[i]):
                at = i + 1
                break
        else:
            return [f"documented line {line.strip()!r} is not among the printed lines (in order)"]
    return []


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.where)
def test_example(block: Block, tmp_path_factory: pytest.TempPathFactory) -> None:
    cwd = _workdir(block, tmp_path_factory)
    name = block.tag("file")
    if name:  # a file the page shows (a node file, a scenario): the examples after it use it
        (cwd / name).write_text(block.text, encoding="utf-8")
        return
    proc = _run(block, cwd)
    want = int(block.tag("exit", "0") or 0)
    shown = f"\n--- example ({block.where})\n{block.text}--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
    assert proc.returncode == want, f"{block.where}: exit status {proc.returncode}, the docs say {want}{shown}"
    if block.output is not None:
        printed = proc.stdout + proc.stderr if "stderr" in block.output.tags else proc.stdout
        check = check_json if block.output.lang == "json" else check_text
        problems = check(block.output.text, printed)
        assert not problems, f"{block.output.where}: " + "\n".join(problems) + shown


def test_there_are_examples_to_run() -> None:
    # A guard on the guard: the marking must not silently stop matching.
    pages = {rel(b.path) for b in BLOCKS}
    assert {"README.md", "docs/control.md", "docs/run.md", "docs/link.md", "docs/scenario.md"} <= pages, pages
