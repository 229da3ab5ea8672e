"""Rate-limited logging: identical errors collapse into a count, in a filter and in a real agent."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time

from hilnet.agent.log_rate import RateLimitFilter
from tests.agent.agent_procs import free_port


def record(msg: str, at: float, args: tuple = (), level: int = logging.WARNING) -> logging.LogRecord:
    r = logging.LogRecord("hilnet.agent.cla.mtcp", level, __file__, 1, msg, args, None)
    r.created = at
    return r


def test_identical_records_collapse_into_a_count_after_the_burst():
    f = RateLimitFilter(window_s=10, burst=3)
    passed = [f.filter(record("mtcp %s: junk; closing", 100 + i / 100, (f"10.0.0.1:{i}",))) for i in range(500)]
    assert passed.count(True) == 3 and passed[:3] == [True] * 3
    later = record("mtcp %s: junk; closing", 111, ("10.0.0.1:9",))
    assert f.filter(later)
    assert later.getMessage() == "mtcp 10.0.0.1:9: junk; closing [497 more like this in the last 10 s]"


def test_different_messages_and_levels_are_counted_apart():
    f = RateLimitFilter(window_s=10, burst=1)
    assert f.filter(record("a %s", 0, (1,)))
    assert f.filter(record("b %s", 0, (1,)))
    assert f.filter(record("a %s", 0, (1,), logging.ERROR))
    assert not f.filter(record("a %s", 1, (2,)))


def test_a_flood_of_junk_connections_costs_the_agent_a_few_log_lines(tmp_path):
    port = free_port()
    node = tmp_path / "node.yaml"
    node.write_text(f'node: a\neid: ipn:1.0\nclas:\n  - {{type: mtcp, listen: "127.0.0.1:{port}"}}\n')
    env = dict(os.environ, PYTHONUNBUFFERED="1", XDG_RUNTIME_DIR=str(tmp_path))
    err = tmp_path / "stderr"
    with open(err, "wb") as out:
        p = subprocess.Popen([sys.executable, "-m", "hilnet", "agent", "--config", str(node)], stderr=out, env=env)
        try:
            deadline = time.monotonic() + 30
            while b'"ready"' not in err.read_bytes() and time.monotonic() < deadline:
                time.sleep(0.05)
            for _ in range(300):
                with socket.create_connection(("127.0.0.1", port)) as s:
                    s.sendall(b"\xff junk that is not CBOR")
            time.sleep(0.5)
        finally:
            p.terminate()
            p.wait(timeout=30)
    lines = [ln for ln in err.read_text().splitlines() if "closing" in ln]
    assert 1 <= len(lines) <= 10, lines[:20]
