"""``hilnet link``: option parsing, a real short run with --stats, a scenario link, bad input -> exit 2."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time

import pytest
from link_endpoint_harness import UdpHarness

from hilnet.commands.link import parse_change, parse_windows, setup_from_options, setup_from_scenario
from hilnet.errors import InputError, SpecError
from hilnet.link.standalone import run_link

MS = 1_000_000
S = 1_000_000_000


def test_windows_and_changes_parse():
    assert parse_windows("0s-30s,45s-90s") == [(0, 30 * S), (45 * S, 90 * S)]
    assert parse_change("40s:rate=2Mbit/s,delay=250ms") == (40 * S, {"rate_bps": 2_000_000, "delay_ns": 250 * MS})
    for bad, part in (("0s-30", "0s-30"), ("30s-10s", "ends before"), ("abc", "START-END")):
        with pytest.raises(InputError, match=part):
            parse_windows(bad)
    with pytest.raises(InputError, match="speed=1"):
        parse_change("1s:speed=1")
    with pytest.raises(InputError, match="rate"):
        parse_change("1s:rate=fast")


def test_setup_schedule_from_up_windows():
    s = setup_from_options("pty:///tmp/a", "pty:///tmp/b", up="5s-10s", changes=["7s:delay=1ms"], baud="9600")
    assert s.ab.up is False and s.ab.baud == 9600
    assert [(e.at_ns, e.up, dict(e.changes)) for e in s.schedule_ab] == [
        (5 * S, True, {}),
        (7 * S, None, {"delay_ns": MS}),
        (10 * S, False, {}),
    ]
    with pytest.raises(SpecError):
        setup_from_options("pty:///tmp/a", "nope")
    with pytest.raises(InputError, match="--loss"):
        setup_from_options("pty:///tmp/a", "pty:///tmp/b", loss="150%")


def test_run_follows_windows_and_reports_stats():
    h = UdpHarness()
    a, b = h.specs()
    setup = setup_from_options(a, b, up="0s-300ms,600ms-2s", delay="5ms")
    out = []

    def traffic():
        time.sleep(0.1)
        h.send("a", b"in-window-1")
        time.sleep(0.3)  # t ~ 400 ms: down
        h.send("a", b"while-down")
        time.sleep(0.35)  # t ~ 750 ms: up again
        h.send("a", b"in-window-2")

    t = threading.Thread(target=traffic)
    t.start()

    class Out:
        def write(self, s):
            out.append(s)

        def flush(self):
            pass

    result = run_link(setup, duration_ns=1 * S, out=Out(), live_interval_s=0.25)
    t.join()
    got = []
    while True:
        c = h.recv("b", 1, 0.05)
        if not c:
            break
        got.append(c)
    h.close()
    assert got == [b"in-window-1", b"in-window-2"]
    ab = result["directions"]["a->b"]
    assert ab["units_in"] == 3 and ab["units_delivered"] == 2 and ab["drops"] == {"down": 1}
    tr = [(x["direction"], x["up"], x["intended_s"]) for x in result["transitions"]]
    assert ("a->b", False, 0.3) in tr and ("a->b", True, 0.6) in tr
    assert all(abs(x["late_us"]) < 1000 for x in result["transitions"])
    text = "".join(out)
    assert "a->b" in text and "DOWN" in text and "drops down=1" in text


def test_scenario_link(tmp_path):
    sc = tmp_path / "s.yaml"
    sc.write_text(
        "hilnet: 1\nname: t\nclock: {scale: 10, duration: 2m}\n"
        "nodes:\n  x: {eid: ipn:1.0}\n  y: {eid: ipn:2.0}\n"
        "links:\n  x-y: {ends: [x, y], medium: ethernet, rate: 10Mbit/s, delay: 20ms, up: [0s-10s, 20s-1m]}\n"
        "traffic:\n  - {name: t, from: x, to: y, start: 1s, count: 1, size: 1KiB}\n"
        "expect: {delivered: all, within: 1m}\n"
    )
    s = setup_from_scenario(
        "udp://127.0.0.1:1?peer=127.0.0.1:2", "udp://127.0.0.1:3?peer=127.0.0.1:4", str(sc), "x-y", None, None
    )
    assert s.ab.rate_bps == 10_000_000 and s.ab.delay_ns == 20 * MS
    # scale 10: scenario 10 s is 1 s of wall time
    assert [(e.at_ns, e.up) for e in s.schedule_ab if e.up is not None] == [
        (0, True),
        (1 * S, False),
        (2 * S, True),
        (6 * S, False),
    ]
    with pytest.raises(InputError, match="no link 'nope'"):
        setup_from_scenario(
            "udp://127.0.0.1:1?peer=127.0.0.1:2", "udp://127.0.0.1:3?peer=127.0.0.1:4", str(sc), "nope", None, None
        )


def _hilnet(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hilnet", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    "args, message",
    [
        (["link", "udp://127.0.0.1:5", "udp://127.0.0.1:6?peer=127.0.0.1:7"], "missing ?peer"),
        (["link", "pty:///tmp/h5x", "tcp://127.0.0.1:1?peer=127.0.0.1:2"], "cannot join serial"),
        (["link", "pty:///tmp/h5x", "pty:///tmp/h5y", "--rate", "10 Mbps?"], "--rate"),
        (
            ["link", "pty:///tmp/h5x", "pty:///tmp/h5y", "--scenario", "x.yaml", "--delay", "1ms"],
            "--delay cannot be combined",
        ),
        (["link", "eth://h5nosuch0", "eth://h5nosuch1"], "no such interface"),
    ],
)
def test_bad_input_exits_2_naming_the_part(args, message):
    r = _hilnet(*args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr


def test_subprocess_run_writes_stats(tmp_path):
    h = UdpHarness()
    a, b = h.specs()
    stats = tmp_path / "stats.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hilnet",
            "link",
            a,
            b,
            "--duration",
            "1.5s",
            "--stats",
            str(stats),
            "--rate",
            "1Mbit/s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        got = b""
        while not got and time.monotonic() < deadline:  # wait until the link is up and carrying
            h.send("a", b"x" * 100)
            got = h.recv("b", 100, 0.1)
        assert got == b"x" * 100
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
        h.close()
    assert proc.returncode == 0, err
    data = json.loads(stats.read_text())
    ab = data["directions"]["a->b"]
    assert ab["units_delivered"] >= 1 and ab["units_in"] == ab["units_delivered"] + ab["units_dropped"]
    assert "a->b" in out and "delivered" in out
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # its ports are free again
        s.bind(("127.0.0.1", int(a.split(":")[2].split("?")[0])))


def test_a_bug_is_not_reported_as_bad_input(monkeypatch):
    import hilnet.link.shaper

    def broken(**kw):
        raise TypeError("a bug, not a bad option")

    monkeypatch.setattr(hilnet.link.shaper, "DirectionConfig", broken)
    with pytest.raises(TypeError, match="a bug"):
        setup_from_options("pty:///tmp/a", "pty:///tmp/b", delay="1ms")
