"""``hilnet run`` with ION nodes: a real ION over netns, a run built to fail, and the refusals before anything starts."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.controller.run_e2e_harness import (
    PYTHON,
    LeakWatch,
    events,
    hilnet_run,
    needs_netns,
    summary,
    write_scenario,
)
from tests.ion_support import ion_or_skip

ROOT = Path(__file__).resolve().parents[2]

TWO_ION = """
    hilnet: 1
    name: two-ion
    clock: {scale: 10, duration: 2m}
    nodes:
      a: {eid: ipn:1.0, stack: ion}
      b: {eid: ipn:2.0, stack: ion}
    links:
      a-b: {ends: [a, b], medium: ethernet, cl: %s, rate: 10Mbit/s, delay: 20ms, up: [0s-40s, 60s-2m]}
    traffic:
      - {name: t, from: a, to: b, start: 5s, every: 10s, count: 6, size: 30KiB}
    expect: {delivered: all, duplicates: 0, intact: true, lost: 0}
"""

# (b) built to fail: b-c is up for 2 s of scenario time (0.2 s of wall time at scale 10, less
# than the whole second ION's contact plan needs), so ION's plan has no contact to c at all.
# ION then abandons the bundles at a (a watch token "~": dropped), where hilnet's agent would
# keep them; either way the run fails on each bundle and says where it ended.
SHORT_WINDOW = """
    hilnet: 1
    name: short-window-ion
    clock: {scale: 10, duration: 1m}
    nodes:
      a: {eid: ipn:1.0, stack: ion}
      b: {eid: ipn:2.0, stack: ion}
      c: {eid: ipn:3.0, stack: ion}
    links:
      a-b: {ends: [a, b], medium: ethernet, cl: tcpclv3, rate: 10Mbit/s, delay: 5ms}
      b-c: {ends: [b, c], medium: ethernet, cl: tcpclv3, rate: 64kbit/s, delay: 5ms, up: [20s-22s]}
    traffic:
      - {name: big, from: a, to: c, start: 2s, count: 3, size: 4KiB}
    expect: {delivered: all, duplicates: 0, lost: 0}
"""


# (c) the ION relay is killed (kill -9 of its namespace) while it holds bundles, and started
# again on its SDR file: it delivers what it had, and nothing is lost or delivered twice.
RELAY_CRASH = """
    hilnet: 1
    name: ion-relay-crash
    clock: {scale: 10, duration: 3m}
    nodes:
      a: {eid: ipn:1.0, stack: ion}
      b: {eid: ipn:2.0, stack: ion}
      c: {eid: ipn:3.0, stack: ion}
    links:
      a-b: {ends: [a, b], medium: ethernet, cl: tcpclv3, rate: 10Mbit/s, delay: 5ms}
      b-c: {ends: [b, c], medium: ethernet, cl: tcpclv3, rate: 10Mbit/s, delay: 5ms, up: [1m30s-3m]}
    traffic:
      - {name: t, from: a, to: c, start: 5s, every: 5s, count: 4, size: 20KiB}
    faults:
      - {at: 1m, crash: b, restart-after: 10s}
    expect: {delivered: all, duplicates: 0, intact: true, lost: 0}
"""


# (d) the ION relay is killed mid-transfer both ways: ~13 s in, it has acknowledged big#1 (about
# 8 s on a-b at 200 kbit/s) and is sending it on to c (8 s more on b-c), while big#2 is arriving
# from a. Rates are physics (not scaled), so at scale 1 each transfer lasts its real 8 s. The
# bundles live 75 s, long enough for the others to arrive, and then ION's copy of big#1 expires.
MID_TRANSFER_CRASH = """
    hilnet: 1
    name: ion-relay-crash-mid-transfer
    clock: {scale: 1, duration: 1m30s}
    nodes:
      a: {eid: ipn:1.0}
      b: {eid: ipn:2.0, stack: ion}
      c: {eid: ipn:3.0}
    links:
      a-b: {ends: [a, b], medium: ethernet, cl: tcpclv3, rate: 200kbit/s, delay: 5ms}
      b-c: {ends: [b, c], medium: ethernet, cl: tcpclv3, rate: 200kbit/s, delay: 5ms}
    traffic:
      - {name: big, from: a, to: c, start: 1s, count: 4, size: 200KiB, lifetime: 75s}
    faults:
      - {at: 13s, crash: b, restart-after: 5s}
    expect: {delivered: all, duplicates: 0, intact: true, lost: 0}
"""


def _left_in(run_dir: Path) -> list[str]:
    """Processes whose working folder is in the run folder (ION's daemons run in their node's)."""
    needle = str(run_dir.resolve())
    left = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd").startswith(needle):
                    left.append(f"{entry} {Path(f'/proc/{entry}/comm').read_text().strip()}")
            except OSError:
                continue
    return left


@pytest.mark.netns
@pytest.mark.slow
@needs_netns
@pytest.mark.parametrize("cl", ["tcpclv3", "ltp"])
def test_two_ion_nodes_deliver_everything_across_an_outage(tmp_path, cl):
    ion_or_skip()
    leaks = LeakWatch()
    out = tmp_path / "run"
    p = hilnet_run(write_scenario(tmp_path, "two", TWO_ION % cl), out, "netns")
    assert p.returncode == 0, p.stdout + p.stderr
    s = summary(out)
    assert s["passed"] is True
    evs = events(out)
    start = next(e for e in evs if e.get("event") == "run-start")
    assert start["stacks"]["a"]["stack"] == "ion" and "acked" not in start["stacks"]["a"]["events"]
    delivered = [e for e in evs if e.get("src") == "agent" and e.get("event") == "delivered"]
    assert len(delivered) == 6 and {e["node"] for e in delivered} == {"b"}
    injected = {e["bundle"]: e["sha256"] for e in evs if e.get("event") == "inject"}
    assert all(injected[e["bundle"]] == e["sha256"] for e in delivered)  # ION's own bundle ids, end to end
    assert all(k.startswith("ipn:1.2/") for k in injected)
    for node in ("a", "b"):  # the run folder keeps each ION node's rc files and log
        for name in ("ion.cfg", "node.ionrc", "node.bprc", "contacts.ionrc", "ion.log"):
            assert (out / "stacks" / node / name).is_file(), (node, name)
        assert (out / "stacks" / node / "node.ltprc").is_file() == (cl == "ltp")
    leaks.check(out)
    assert _left_in(out) == []


@pytest.mark.netns
@pytest.mark.slow
@needs_netns
def test_too_short_a_window_fails_naming_each_bundle_and_where_it_waits(tmp_path):
    ion_or_skip()
    out = tmp_path / "run"
    p = hilnet_run(write_scenario(tmp_path, "short", SHORT_WINDOW), out, "netns")
    assert p.returncode == 1, p.stdout + p.stderr
    results = {r["name"]: r for r in summary(out)["results"]}
    assert not results["delivered"]["passed"] and results["lost"]["passed"]
    failures = results["delivered"]["failures"]
    assert len(failures) == 3
    for f in failures:  # each bundle, with where it ended: at a, in ION's store or dropped by it
        # "last stored at a at T", or where ION abandoned it "dropped at a: REASON (at T)"
        assert re.search(r"\(ipn:1\.0 -> ipn:3\.0\) (dropped at a: .+ \(at |last stored at a at )", f), f
    assert _left_in(out) == []


@pytest.mark.netns
@pytest.mark.slow
@needs_netns
def test_an_ion_relay_crashed_while_holding_bundles_delivers_them_after_its_restart(tmp_path):
    ion_or_skip()
    out = tmp_path / "run"
    p = hilnet_run(write_scenario(tmp_path, "crash", RELAY_CRASH), out, "netns")
    assert p.returncode == 0, p.stdout + p.stderr
    evs = events(out)
    crash = next(e for e in evs if e.get("src") == "controller" and e.get("event") == "crash")
    stored_before = {e["bundle"] for e in evs if e.get("event") == "stored" and e.get("node") == "b"}
    stored_before &= {e["bundle"] for e in evs if e.get("event") == "stored" and e["t_ns"] < crash["t_ns"]}
    assert len(stored_before) == 4  # b held all four when it was killed (b-c opens only at 1m30s)
    delivered = [e for e in evs if e.get("event") == "delivered" and e.get("node") == "c"]
    assert sorted(e["bundle"] for e in delivered) == sorted(stored_before)
    assert all(e["t_ns"] > crash["t_ns"] for e in delivered)
    assert (out / "stacks" / "b" / "inbox-2").is_dir()  # it was started a second time
    assert _left_in(out) == []


@pytest.mark.netns
@pytest.mark.slow
@needs_netns
def test_an_ion_relay_crashed_mid_transfer_strands_the_bundle_it_was_forwarding(tmp_path):
    """ION 4.1.3 loses a bundle it acknowledged when killed while forwarding it: the run says which.

    What a's agent had in flight to b is sent again and delivered; what b had acknowledged and was
    sending on to c stays in b's store after the restart and is never sent again (docs/stacks.md).
    """
    ion_or_skip()
    leaks = LeakWatch()
    out = tmp_path / "run"
    p = hilnet_run(write_scenario(tmp_path, "mid", MID_TRANSFER_CRASH), out, "netns", timeout=240)
    assert p.returncode == 1, p.stdout + p.stderr
    evs = events(out)
    tags = {e["bundle"]: e["tag"] for e in evs if e.get("event") == "inject"}
    crash = next(e["t_ns"] for e in evs if e.get("src") == "controller" and e.get("event") == "crash")
    restart = next(e["t_ns"] for e in evs if e.get("src") == "controller" and e.get("event") == "restart")

    def seen(event: str, node: str, before: bool) -> set[str]:
        return {
            tags[e["bundle"]]
            for e in evs
            if e.get("src") == "agent"
            and e.get("event") == event
            and e.get("node") == node
            and (e["t_ns"] < crash) == before
        }

    # Mid-transfer, both ways. Onward: b had taken big#1 (a's agent holds ION's ack of it) and
    # handed it to its TCPCLv3 outduct, c had received nothing, and b's session to c died at the crash.
    assert seen("acked", "a", before=True) == {"big#1"}
    assert seen("forwarded", "b", before=True) == {"big#1"}
    assert not seen("sent", "b", before=True) and not seen("received", "c", before=True)
    assert any(e.get("event") == "session-down" and e.get("node") == "c" and crash < e["t_ns"] < restart for e in evs)
    # Inward: big#2 was on the wire from a (its transfer failed as the session dropped, unacked).
    big2 = next(b for b, t in tags.items() if t == "big#2")
    assert any(
        e.get("event") == "log"
        and e.get("node") == "a"
        and crash < e["t_ns"] < restart
        and f"sending {big2} to ipn:2.0 failed" in e["message"]
        for e in evs
    )
    assert "big#2" in seen("acked", "a", before=False)  # sent again after the restart, ION acked it then

    # The outcome: everything but big#1 delivered once and intact, after the crash; big#1, which
    # ION acknowledged and was forwarding, stayed in b's store, never forwarded again, until it
    # expired there (at 1 s + 75 s).
    delivered = [e for e in evs if e.get("event") == "delivered" and e.get("node") == "c"]
    assert sorted(tags[e["bundle"]] for e in delivered) == ["big#2", "big#3", "big#4"]
    assert all(e["t_ns"] > restart for e in delivered)
    results = {r["name"]: r for r in summary(out)["results"]}
    assert results["intact"]["passed"] and results["duplicates"]["passed"] and results["lost"]["passed"]
    (failure,) = results["delivered"]["failures"]
    assert failure.startswith("big#1 ") and "expired at b" in failure, failure
    assert not seen("forwarded", "b", before=False) - {"big#2", "big#3", "big#4"}
    assert not {"big#1"} & (seen("sent", "b", before=False) | seen("dropped", "b", before=False))
    (expiry,) = [e for e in evs if e.get("event") == "expired"]
    assert (expiry["node"], tags[expiry["bundle"]]) == ("b", "big#1") and expiry["t_ns"] >= 75_000_000_000
    status = next(e for e in evs if e.get("event") == "agent-status" and e.get("node") == "b")
    assert status["status"]["bplist"] == 0
    ion_log = (out / "stacks" / "b" / "ion.log").read_text()
    assert ion_log.count("rfxclock is running.") == 2  # ION started twice on the same SDR
    leaks.check(out)
    assert _left_in(out) == []


def test_stack_ion_without_ion_is_refused_before_anything_starts(tmp_path):
    empty = tmp_path / "no-ion"
    empty.mkdir()
    out = tmp_path / "run"
    env = dict(os.environ, HILNET_ION_PREFIX=str(empty))
    sc = write_scenario(tmp_path, "two", TWO_ION % "tcpclv3")
    p = subprocess.run(
        [PYTHON, "-m", "hilnet", "run", str(sc), "--backend", "loopback", "--out", str(out), "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=ROOT,
    )
    assert p.returncode == 2, p.stdout + p.stderr
    assert "scripts/build-ion" in p.stderr and "nodes a, b run stack ion" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    assert not (out / "stacks").exists()  # nothing was started


def test_loopback_refuses_ion_nodes_with_the_reason(tmp_path):
    ion_or_skip()
    out = tmp_path / "run"
    p = hilnet_run(write_scenario(tmp_path, "two", TWO_ION % "tcpclv3"), out, "loopback", timeout=60)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "node a runs stack ion" in p.stderr and "expected --backend netns" in p.stderr, p.stderr
    assert not (out / "stacks").exists()
