"""A bundle with no way out says so: one ``no-route`` event per bundle, and a warning at default verbosity."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

from hilnet.agent import protocol as ev

HILNET = [sys.executable, "-m", "hilnet"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(tmp_path, name: str, text: str) -> tuple[subprocess.Popen, str]:
    d = tmp_path / name
    d.mkdir()
    (d / "node.yaml").write_text(text)
    sock = str(d / "s.sock")
    log = open(d / "stderr", "wb")  # noqa: SIM115 - closed with the process below
    proc = subprocess.Popen(
        [*HILNET, "agent", "--config", str(d / "node.yaml"), "--socket", sock], stdout=subprocess.DEVNULL, stderr=log
    )
    proc.log_file = log  # type: ignore[attr-defined]
    return proc, sock


def lines(tmp_path, name: str) -> list[str]:
    return (tmp_path / name / "stderr").read_text().splitlines()


def wait_for(cond, what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_bundle_for_a_connected_mtcp_peer_without_a_route_is_reported_once(tmp_path):
    port = free_port()
    b, _ = start(tmp_path, "b", f"node: b\neid: ipn:2.0\nclas: [{{type: mtcp, listen: '127.0.0.1:{port}'}}]\n")
    a, a_sock = start(
        tmp_path, "a", f"node: a\neid: ipn:1.0\nclas: [{{type: mtcp, peers: {{'ipn:2.0': '127.0.0.1:{port}'}}}}]\n"
    )
    try:
        wait_for(lambda: any('"session-up"' in line for line in lines(tmp_path, "a")), "the MTCP connection")
        for payload in (b"one", b"two"):
            sent = subprocess.run([*HILNET, "send", "ipn:2.1", "-", "--socket", a_sock], input=payload, timeout=30)
            assert sent.returncode == 0
        wait_for(lambda: sum('"no-route"' in line for line in lines(tmp_path, "a")) >= 2, "no-route events")
        time.sleep(1.5)  # three idle rechecks (0.5 s each) route both bundles again: no new event
    finally:
        for p in (a, b):
            p.send_signal(signal.SIGTERM)
            p.wait(20)
            p.log_file.close()
    out = lines(tmp_path, "a")
    events = [json.loads(line) for line in out if line.startswith("{")]
    no_route = [e for e in events if e["event"] == "no-route"]
    stored = [e["bundle"] for e in events if e["event"] == "stored"]
    assert sorted(e["bundle"] for e in no_route) == sorted(stored) and len(stored) == 2
    for e in no_route:
        assert e["dest"] == "ipn:2.1"
        assert "no contact plan and no static route" in e["reason"]
        assert "a session to ipn:2.0 is up, but no route names it: add routes: {'ipn:2.0': 'ipn:2.0'}" in e["reason"]
    # and in words, without -v: one warning per bundle
    warnings = [line for line in out if "WARNING" in line and "no route for bundle" in line]
    assert len(warnings) == 2, out


def test_reported_again_only_after_the_bundle_had_a_route():
    from hilnet.agent.no_route import NoRouteReports

    emitted: list[dict] = []
    reports = NoRouteReports(lambda cls, **f: emitted.append({"kind": cls.kind, **f}), lambda peer: True, planned=True)
    reports.unrouted("k1", "ipn:2.1", "no route")
    reports.unrouted("k1", "ipn:2.1", "no route")
    reports.unrouted("k2", "ipn:3.1", "no route")
    assert [(e["kind"], e["bundle"]) for e in emitted] == [("no-route", "k1"), ("no-route", "k2")]
    reports.routed("k1")  # a link came up, a contact opened...
    reports.unrouted("k1", "ipn:2.1", "next hop ipn:2.0 is down")  # ...and went again
    assert [e["bundle"] for e in emitted] == ["k1", "k2", "k1"]
    # with a contact plan, the plan says when a peer is reachable: no hint to add a route
    assert all(e["reason"] in ("no route", "next hop ipn:2.0 is down") for e in emitted)
    assert ev.EVENTS["no-route"] is ev.NoRoute
