"""`hilnet run` with TLS on every node, on the netns backend, and what its capture shows.

One run of scenarios/iss-tdrs-ground-tls.yaml (`tls: require` on every node,
20 s of wall time) with --pcap; the tests read its run folder. tshark reads the
capture as Wireshark would: each TCPCLv4 session opens with the two contact
headers in the clear (CAN_TLS set), then TLS 1.3, and no node id (what
SESS_INIT and the certificates carry) is ever seen in the clear.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from tests.controller.run_e2e_harness import LeakWatch, events, hilnet_run, needs_netns

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "iss-tdrs-ground-tls.yaml"
TSHARK = shutil.which("tshark")


@pytest.fixture(scope="module")
def tls_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tls") / "run"
    leaks = LeakWatch()
    p = hilnet_run(SCENARIO, out, "netns", "--pcap")
    leaks.check(out)
    return p, out


@pytest.mark.netns
@needs_netns
def test_tls_require_everywhere_passes_on_netns(tls_run):
    p, out = tls_run
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    evs = events(out)
    ups = [e for e in evs if e.get("event") == "session-up" and e.get("cla") == "tcpcl"]
    assert ups and all(e["detail"]["tls"] is True for e in ups)
    assert {e["node"] for e in ups} == {"iss", "tdrs-w", "wsc"}
    assert not [e for e in evs if e.get("event") == "tls-failed"]
    # the run's own CA, a key and certificate per node; keys readable by their owner only
    pki = out / "pki"
    for name in ("ca", "iss", "tdrs-w", "wsc"):
        assert (pki / f"{name}.crt").is_file()
        assert (pki / f"{name}.key").stat().st_mode & 0o777 == 0o600


def _tshark(pcap: Path, fields: list[str], display: str) -> list[list[str]]:
    cmd = [TSHARK, "-r", str(pcap), "-Y", display, "-T", "fields", "-E", "separator=|"]
    for f in fields:
        cmd += ["-e", f]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return [line.split("|") for line in p.stdout.splitlines() if line]


@pytest.mark.netns
@needs_netns
@pytest.mark.skipif(TSHARK is None, reason="tshark not installed (apt-get install tshark)")
def test_capture_shows_contact_headers_in_the_clear_then_tls13(tls_run):
    _, out = tls_run
    pcaps = sorted((out / "pcap").glob("*.pcap"))
    assert pcaps, "the run wrote no capture"
    for pcap in pcaps:
        # contact headers, by TCP stream and frame: Wireshark's TCPCLv4 dissector reads them
        chdr = _tshark(pcap, ["tcp.stream", "frame.number", "tcpcl.v4.chdr.flags.can_tls"], "tcpcl.v4.chdr.flags")
        hello = _tshark(
            pcap,
            ["tcp.stream", "frame.number", "tls.handshake.type", "tls.handshake.extensions.supported_version"],
            "tls.handshake.type == 1 || tls.handshake.type == 2",
        )
        assert chdr, f"{pcap.name}: no TCPCLv4 contact header"
        assert all(can_tls in ("1", "True") for _, _, can_tls in chdr), chdr
        first_chdr: dict[str, int] = {}
        for stream, frame, _ in chdr:
            first_chdr.setdefault(stream, int(frame))
        server_hellos = defaultdict(list)
        for stream, frame, htype, versions in hello:
            # TLS begins after the contact headers of its own connection
            assert stream in first_chdr and int(frame) > first_chdr[stream], (pcap.name, stream, frame)
            if htype == "2":
                server_hellos[stream].append(versions)
        assert server_hellos, f"{pcap.name}: no TLS ServerHello"
        for versions in (v for vs in server_hellos.values() for v in vs):
            assert versions == "0x0304", f"{pcap.name}: ServerHello chose {versions}, not TLS 1.3"
        # Nothing after the contact headers is readable: SESS_INIT carries the node id as text
        # ("ipn:3.0") and TLS 1.3 encrypts even the certificates, which carry it too; in the
        # clear it would show in some TCP payload. (Not Wireshark's TCPCL decode: where the
        # link lost a segment, it reads ciphertext as made-up TCPCL messages.)
        clear = _tshark(pcap, ["frame.number"], 'tcp.payload contains "ipn:"')
        assert not clear, f"{pcap.name}: a node id in the clear in frames {clear[:5]}"


def test_tls_require_everywhere_passes_on_loopback_through_the_tcp_relays(tmp_path):
    out = tmp_path / "run"
    leaks = LeakWatch()
    p = hilnet_run(SCENARIO, out, "loopback")
    leaks.check(out)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    ups = [e for e in events(out) if e.get("event") == "session-up" and e.get("cla") == "tcpcl"]
    assert {e["node"] for e in ups} == {"iss", "tdrs-w", "wsc"}
    assert all(e["detail"]["tls"] is True for e in ups)
