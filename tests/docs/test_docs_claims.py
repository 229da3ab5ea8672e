"""Claims of the docs that no example shows, checked against a real agent process.

docs/control.md: an oversize line gets one ``error`` whose ``line`` is the
line's start (at most 200 characters), and the agent keeps reading.
docs/agent.md: without a ``store`` the store is ``NODE.store`` beside the node
file, with its ``-wal``, ``-shm`` and ``-lock`` files, and nothing lands in the
working directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from docs_markdown import ROOT

from hilnet.agent.protocol import LINE_EXCERPT, MAX_LINE


def _agent(
    *args: str, cwd: Path, stdin: bytes | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_RUNTIME_DIR=str(cwd))
    return subprocess.run(
        [sys.executable, "-m", "hilnet", "agent", *args],
        input=stdin,
        cwd=cwd,
        env=env,
        capture_output=True,
        timeout=timeout,
    )


def test_an_oversize_line_is_quoted_by_its_start_and_the_agent_reads_on(tmp_path: Path) -> None:
    head = '{"cmd":"inject","id":"big","dest":"ipn:4.1","payload_b64":"'
    big = head + "A" * (3 * MAX_LINE) + '"}'  # 3 MiB: more than one read buffer, one line
    stdin = (big + "\n" + '{"cmd":"hello","id":2}\n' + '{"cmd":"shutdown","id":3}\n').encode()
    proc = _agent("--stdio", cwd=tmp_path, stdin=stdin)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    errors = [e for e in events if e["event"] == "error"]
    assert len(errors) == 1, errors  # one error for the line, not one per chunk of it
    assert errors[0]["reason"] == f"line is longer than {MAX_LINE} bytes"
    line = errors[0]["line"]
    assert len(line) == LINE_EXCERPT and line.endswith("...")
    assert line[:-3] == big[: LINE_EXCERPT - 3]
    replies = [e["id"] for e in events if e["event"] == "reply"]
    assert replies == [2, 3], events
    assert proc.returncode == 0


def test_a_node_files_store_is_beside_it(tmp_path: Path) -> None:
    conf = tmp_path / "etc"
    conf.mkdir()
    node = conf / "node.yaml"
    node.write_text('node: n1\neid: ipn:7.0\nclas: [{type: tcpcl, listen: "127.0.0.1:0"}]\n')
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_RUNTIME_DIR=str(tmp_path))
    agent = subprocess.Popen(
        [sys.executable, "-m", "hilnet", "agent", "--config", str(node), "--socket", str(tmp_path / "n1.sock")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "n1.sock").exists():
            assert agent.poll() is None, agent.stderr.read().decode() if agent.stderr else ""
            assert time.monotonic() < deadline, "the agent did not open its socket"
            time.sleep(0.05)
        files = sorted(p.name for p in conf.iterdir())
        assert {"n1.store", "n1.store-wal", "n1.store-shm", "n1.store-lock"} <= set(files), files
        assert not list(tmp_path.glob("*.store")), "the store must not land in the working directory"
    finally:
        agent.terminate()
        agent.wait(timeout=15)


def _named_files() -> list[tuple[str, str]]:
    """(where, name) of every ``*.py``/``*.yaml``/``*.rules``/``*.service`` file the docs name in backticks."""
    import re

    from docs_markdown import doc_files, rel

    found = []
    for path in doc_files():
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for span in re.findall(r"`([^`\s]+)`", line):
                if re.fullmatch(r"[\w./-]+\.(py|yaml|rules|service|conf|sh|md)", span) and not span.startswith("/"):
                    found.append((f"{rel(path)}:{n}", span))
    return found


# Files the docs name that a user or a run writes, not the repository (a node
# file, a bench file, a run folder's copy of its scenario).
USER_FILES = {
    "scenario.yaml",
    "node.yaml",
    "bench.yaml",
    "a.yaml",
    "b.yaml",
    "broken.yaml",
    "broken-node.yaml",
    "nofile.yaml",
    "links.yaml",
    "bad.yaml",
}
# Pages another branch of work writes (the bench's reference); once they exist
# they are found like any other file, so this only ever excuses absence.
PENDING_FILES = {"docs/bench.md", "bench.md"}


def test_every_file_the_docs_name_exists() -> None:
    everything = [p for p in ROOT.rglob("*") if ".venv" not in p.parts and ".git" not in p.parts]
    by_name = {p.name for p in everything}
    missing = []
    for where, name in _named_files():
        if name in USER_FILES or Path(name).name in USER_FILES or name in PENDING_FILES:
            continue
        if "/" in name:
            ok = any(str(p).endswith("/" + name) for p in everything)
        else:
            ok = name in by_name
        if not ok:
            missing.append(f"{where}: `{name}`")
    assert not missing, "the docs name files that do not exist:\n" + "\n".join(missing)


def test_every_cla_module_is_in_cla_md() -> None:
    text = (ROOT / "docs" / "cla.md").read_text(encoding="utf-8")
    modules = sorted(p.name for p in (ROOT / "hilnet" / "agent" / "cla").glob("*.py") if p.name != "__init__.py")
    assert [m for m in modules if f"`{m}`" not in text] == []


def test_a_bundle_costs_what_the_plan_counts(tmp_path: Path) -> None:
    # docs/scenario.md: an agent's bundle with ipn EIDs and a 1,024-byte payload is
    # 1,111 bytes on the wire, with the agent's default lifetime and with a run's;
    # the plan's capacity counts the same overhead.
    from hilnet.scenario.overhead import BUNDLE_OVERHEAD

    configure = {
        "cmd": "configure",
        "id": "c",
        "node": "iss",
        "eid": "ipn:1.0",
        "store": {"path": str(tmp_path / "iss.store")},
        "routes": {"*": "ipn:2.0"},
    }
    injects = [
        {"cmd": "inject", "id": 1, "dest": "ipn:4.1", "size": 1024},
        {"cmd": "inject", "id": 2, "dest": "ipn:4.1", "size": 1024, "lifetime_ns": 95 * 10**9},
    ]
    lines = [configure, *injects, {"cmd": "shutdown", "id": 3}]
    proc = _agent("--stdio", cwd=tmp_path, stdin="".join(json.dumps(x) + "\n" for x in lines).encode())
    stored = [e for e in map(json.loads, proc.stdout.splitlines()) if e["event"] == "stored"]
    assert [e["size"] for e in stored] == [1111, 1111], proc.stdout
    assert 1024 + BUNDLE_OVERHEAD == 1111
