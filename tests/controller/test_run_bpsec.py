"""``hilnet run`` with BPSec on loopback, as a real subprocess: a stream with integrity and
confidentiality passes (the sink hashes the decrypted payload); a wrong key at the destination
drops every bundle with a ``security-failed`` event and the verdict names them."""

from __future__ import annotations

import os
import stat

import pytest
from run_e2e_harness import BACKENDS, LeakWatch, events, hilnet_run, summary, write_scenario

from hilnet.bundle.bpsec import KeyRing, format_keys, parse_keys

SCENARIO = """
    hilnet: 1
    name: e2e-bpsec
    seed: 5
    clock: {scale: 20, duration: 1m}
    nodes:
      a: {eid: ipn:1.0}
      b: {eid: ipn:2.0}
      c: {eid: ipn:3.0%s}
    links:
      a-b: {ends: [a, b], medium: ethernet, rate: 10Mbit/s, delay: 5ms}
      b-c: {ends: [b, c], medium: serial, baud: 115200, delay: 5ms}
    traffic:
      - name: secret
        from: a
        to: c
        start: 2s
        every: 2s
        count: 4
        size: 3KiB
        security: {integrity: hmac-sha384, confidentiality: aes256-gcm}
      - {name: plain, from: a, to: c, start: 3s, count: 1, size: 1KiB}
    expect: {delivered: all, duplicates: 0, intact: true, lost: 0}
"""


@pytest.fixture
def leaks():
    return LeakWatch()


@pytest.mark.parametrize("backend", BACKENDS)
def test_integrity_and_confidentiality_pass_end_to_end(tmp_path, backend, leaks):
    out = tmp_path / "run"
    p = hilnet_run(write_scenario(tmp_path, "bpsec", SCENARIO % ""), out, backend)
    assert p.returncode == 0, p.stdout + p.stderr
    s = summary(out)
    assert s["passed"] is True
    bundles = {b["tag"]: b for b in s["bundles"]}
    assert len(bundles) == 5 and all(b["deliveries"] == 1 and b["intact"] for b in bundles.values())
    # the run's keys: one file per node, 0600, every node's keys in each
    for node in "abc":
        path = out / "keys" / f"{node}.keys"
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        ring = parse_keys(path.read_text())
        assert set(ring.integrity) == set(ring.confidentiality) == {"ipn:1.0", "ipn:2.0", "ipn:3.0"}
    assert not [e for e in events(out) if e["event"] == "security-failed"]
    leaks.check(out)


def test_a_wrong_key_at_the_destination_drops_and_the_verdict_names_them(tmp_path, leaks):
    wrong = tmp_path / "c-wrong.keys"
    wrong.write_text(format_keys(KeyRing({"ipn:1.0": b"\x01" * 32}, {"ipn:1.0": b"\x02" * 32})))
    wrong.chmod(0o600)
    out = tmp_path / "run"
    p = hilnet_run(write_scenario(tmp_path, "bpsec-wrong", SCENARIO % f", keys: {wrong}"), out, "loopback")
    assert p.returncode == 1, p.stdout + p.stderr  # the checks failed; the run itself worked
    failed = [e for e in events(out) if e["event"] == "security-failed"]
    assert len(failed) == 4 and {e["node"] for e in failed} == {"c"}
    assert {e["check"] for e in failed} == {"key-unwrap-failed"} and all("ipn:1.0" in e["reason"] for e in failed)
    s = summary(out)
    bundles = {b["tag"]: b for b in s["bundles"]}
    assert bundles["plain#1"]["deliveries"] == 1  # unprotected traffic is not affected
    assert all(bundles[f"secret#{i}"]["deliveries"] == 0 for i in range(1, 5))
    delivered = next(r for r in s["results"] if r["name"] == "delivered")
    assert not delivered["passed"]
    named = "\n".join(delivered["failures"])
    for i in range(1, 5):
        assert f"secret#{i}" in named
    assert "dropped at c: failed its BPSec check (key-unwrap-failed)" in named
    assert all(b["fate"] == "dropped" for t, b in bundles.items() if t.startswith("secret#"))
    assert "failed its BPSec check" in p.stdout + p.stderr
    end = [e for e in events(out) if e["event"] == "run-end"]
    assert end[0]["reason"] == "settled"  # a bundle dropped for BPSec is final: the run does not wait it out
    leaks.check(out)
