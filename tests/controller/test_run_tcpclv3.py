"""``hilnet run`` with a link's ``cl: tcpclv3``: the agents speak RFC 7242 on it, beside a TCPCLv4 link.

The relay b has one link of each version, so it runs both CLAs; a window gap on
the TCPCLv3 leg and a cut make bundles wait in stores and go on over the next
TCPCLv3 session.
"""

from __future__ import annotations

import pytest
from run_e2e_harness import BACKENDS, LeakWatch, events, hilnet_run, summary, write_scenario

MIXED = """
    hilnet: 1
    name: e2e-tcpclv3
    seed: 5
    clock: {scale: 20, duration: 2m}
    nodes:
      a: {eid: ipn:1.0}
      b: {eid: ipn:2.0}
      c: {eid: ipn:3.0}
    links:
      a-b: {ends: [a, b], medium: ethernet, cl: tcpclv3, rate: 10Mbit/s, delay: 20ms, up: [0s-40s, 55s-2m]}
      b-c: {ends: [b, c], medium: ethernet, rate: 10Mbit/s, delay: 10ms}
    traffic:
      - {name: msgs, from: a, to: c, start: 5s, every: 10s, count: 6, size: 20KiB}
    faults:
      - {at: 15s, cut: a-b, for: 10s}
    expect: {delivered: all, within: 90s, duplicates: 0, intact: true, lost: 0}
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_tcpclv3_leg_carries_bundles_through_a_gap_and_a_cut(tmp_path, backend):
    leaks = LeakWatch()
    sc = write_scenario(tmp_path, "v3", MIXED)
    out = tmp_path / "run"
    p = hilnet_run(sc, out, backend)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    s = summary(out)
    bundles = {b["tag"]: b for b in s["bundles"]}
    assert len(bundles) == 6 and all(b["deliveries"] == 1 and b["intact"] for b in bundles.values())
    assert bundles["msgs#5"]["delivered_ns"] >= 55e9  # injected at 45 s, in the a-b gap: a held it
    evs = events(out)
    ups = {(e["node"], e["cla"]) for e in evs if e.get("event") == "session-up"}
    assert {("a", "tcpclv3"), ("b", "tcpclv3"), ("b", "tcpcl"), ("c", "tcpcl")} <= ups
    assert ("a", "tcpcl") not in ups and ("c", "tcpclv3") not in ups
    acked = {(e["node"], e["cla"]) for e in evs if e.get("event") == "acked"}
    assert ("a", "tcpclv3") in acked and ("b", "tcpcl") in acked
    leaks.check(out)
