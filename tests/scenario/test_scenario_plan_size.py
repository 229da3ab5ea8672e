"""A runaway traffic entry is refused by the loader, fast and in little memory, not built into a plan."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from hilnet.errors import ScenarioError
from hilnet.scenario.load import load_scenario
from hilnet.scenario.load_events import MAX_INJECTIONS

HEAD = """hilnet: 1
name: flood
clock: {scale: 1, duration: 365d}
nodes: {a: {eid: ipn:1.0}, b: {eid: ipn:2.0}}
links: {ab: {ends: [a, b], medium: ethernet, rate: 10Mbit/s, delay: 1ms}}
traffic:
"""


def scenario(tmp_path, *entries: str):
    path = tmp_path / "flood.yaml"
    path.write_text(HEAD + "".join(f"  - {e}\n" for e in entries))
    return path


def test_ten_million_bundles_are_refused_at_the_count_with_the_numbers(tmp_path):
    path = scenario(tmp_path, "{name: flood, from: a, to: b, every: 1ms, count: 10000000, size: 100}")
    with pytest.raises(ScenarioError) as e:
        load_scenario(str(path))
    assert f"{path}:7:54: traffic 'flood' injects 10,000,000 bundles; expected at most 100,000" in str(e.value)


def test_an_implied_count_is_refused_at_every_and_entries_add_up(tmp_path):
    path = scenario(
        tmp_path,
        "{name: small, from: a, to: b, count: 60000, size: 1}",
        "{name: more, from: a, to: b, count: 50000, size: 1}",
        "{name: forever, from: a, to: b, every: 1s, size: 1}",
    )
    with pytest.raises(ScenarioError) as e:
        load_scenario(str(path))
    text = str(e.value)
    assert f"{path}:8:" in text and "'more' injects 50,000 bundles (110,000 with the entries before it)" in text
    assert "forever" not in text  # one error says it


def test_the_limit_itself_loads(tmp_path):
    path = scenario(tmp_path, f"{{from: a, to: b, every: 1ms, count: {MAX_INJECTIONS}, size: 1}}")
    assert load_scenario(str(path)).traffic[0].count == MAX_INJECTIONS


def test_hilnet_plan_answers_fast_in_bounded_memory(tmp_path):
    """On main this grew past 6 GB; now it is one error, well under a second of CPU and 200 MB."""
    path = scenario(tmp_path, "{name: flood, from: a, to: b, every: 1ms, count: 10000000, size: 100}")
    code = (
        "import re, resource, sys\n"
        "from hilnet.cli import main\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"  # a runaway plan dies, it cannot swap
        f"sys.argv = ['hilnet', 'plan', {str(path)!r}]\n"
        "try:\n"
        "    main()\n"
        "finally:\n"  # the peak of this process's own memory since exec (rusage would count the parent's)
        "    print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1])\n"
    )
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "expected at most 100,000" in proc.stderr and "Traceback" not in proc.stderr
    peak_kb = int(proc.stdout.split()[-1])
    assert peak_kb < 200_000, peak_kb
    assert elapsed < 60  # the machine is shared and slow; a plan of 10 million took minutes
