"""Standalone ``hilnet link`` processes: SIGTERM ends one as Ctrl-C does, and two never share pcap files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

HILNET = [sys.executable, "-m", "hilnet"]


def start_link(tmp_path, tag: str, *extra: str) -> tuple[subprocess.Popen, str, str]:
    a, b = f"pty://{tmp_path}/{tag}-a", f"pty://{tmp_path}/{tag}-b"
    proc = subprocess.Popen(
        [*HILNET, "link", a, b, "--baud", "115200", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 20
    while not (os.path.exists(f"{tmp_path}/{tag}-a") and os.path.exists(f"{tmp_path}/{tag}-b")):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the link did not make its ptys"
        time.sleep(0.05)
    return proc, a, b


def carry(path_a: str, path_b: str, data: bytes) -> None:
    """Write ``data`` into end a's pty and read it at end b's (so the pcaps hold something)."""
    fa = os.open(path_a, os.O_RDWR | os.O_NOCTTY)
    fb = os.open(path_b, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        os.write(fa, data)
        got = b""
        deadline = time.monotonic() + 10
        while len(got) < len(data) and time.monotonic() < deadline:
            try:
                got += os.read(fb, 4096)
            except BlockingIOError:
                time.sleep(0.02)
        assert got == data
    finally:
        os.close(fa)
        os.close(fb)


def test_sigterm_writes_stats_and_exits_as_ctrl_c(tmp_path):
    stats = tmp_path / "stats.json"
    proc, a, b = start_link(tmp_path, "t", "--stats", str(stats))
    carry(a[len("pty://") :], b[len("pty://") :], b"hello")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err  # as after Ctrl-C, not 143
    data = json.loads(stats.read_text())
    assert data["directions"]["a->b"]["bytes_delivered"] == 5


def test_two_links_capture_into_one_folder_without_overwriting(tmp_path):
    caps = tmp_path / "caps"
    one, a1, b1 = start_link(tmp_path, "one", "--pcap", str(caps))
    two, a2, b2 = start_link(tmp_path, "two", "--pcap", str(caps))
    named, a3, b3 = start_link(tmp_path, "three", "--pcap", str(caps), "--name", "uart")
    try:
        carry(a1[len("pty://") :], b1[len("pty://") :], b"first link")
        carry(a2[len("pty://") :], b2[len("pty://") :], b"second link")
    finally:
        for p in (one, two, named):
            p.send_signal(signal.SIGTERM)
            p.communicate(timeout=20)
    names = sorted(os.listdir(caps))
    assert len(names) == 6 and {"uart.a.pcap", "uart.b.pcap"} <= set(names), names
    holding = {text: [n for n in names if text in (caps / n).read_bytes()] for text in (b"first link", b"second link")}
    # each link's traffic in its own pair of files, named after its endpoints
    assert [n.split(".")[-2] for n in holding[b"first link"]] == ["a", "b"] and "one-a_" in holding[b"first link"][0]
    assert [n.split(".")[-2] for n in holding[b"second link"]] == ["a", "b"] and "two-a_" in holding[b"second link"][0]
