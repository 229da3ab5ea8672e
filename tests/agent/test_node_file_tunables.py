"""Node-file settings an operator wiring a third-party node needs, each shown to take effect.

TCPCL keepalive and segment MRU (read back from the agent's SESS_INIT on the
wire), redial backoff (counted connection attempts), MTCP send timeout (a peer
that never reads), and the CRC type of the bundles the agent makes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from agent_test_fakes import Node

from hilnet.agent.cla import build_cla
from hilnet.agent.cla.tcpcl_messages import SessInit
from hilnet.agent.cla.tcpcl_wire import encode_contact_header, encode_sess_init, parse_message
from hilnet.agent.config import AgentConfig
from hilnet.agent.protocol import HostPort
from hilnet.bundle.codec import DEFAULT_MAX_SIZE, decode_bundle
from hilnet.bundle.crc import CrcType
from hilnet.clock import MonotonicClock, VirtualClock
from hilnet.commands.agent import load_agent_config
from hilnet.errors import ClaError, InputError

HILNET = [sys.executable, "-m", "hilnet"]
T0 = 1_000 * 10**9  # the virtual clock's start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def agent(tmp_path, text: str) -> subprocess.Popen:
    (tmp_path / "node.yaml").write_text(text)
    return subprocess.Popen(
        [*HILNET, "agent", "--config", str(tmp_path / "node.yaml"), "--socket", str(tmp_path / "s.sock")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)


def connect_retrying(port: int) -> socket.socket:
    deadline = time.monotonic() + 20
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=10)
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, "the agent never listened"
            time.sleep(0.05)


def read_exactly(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        assert chunk, "the agent closed the connection"
        buf += chunk
    return buf


@pytest.mark.parametrize(
    ("given", "keepalive", "mru"), [("", 10, 4 << 20), (", keepalive_s: 7, segment_mru_bytes: 65536", 7, 65536)]
)
def test_keepalive_and_segment_mru_are_offered_in_sess_init(tmp_path, given, keepalive, mru):
    port = free_port()
    proc = agent(tmp_path, f"node: b\neid: ipn:2.0\nclas: [{{type: tcpcl, listen: '127.0.0.1:{port}'{given}}}]\n")
    try:
        with connect_retrying(port) as s:
            s.sendall(encode_contact_header())
            assert read_exactly(s, 6)[:4] == b"dtn!"
            s.sendall(encode_sess_init(SessInit(0, 1 << 20, 1 << 20, "ipn:1.0")))
            buf = b""
            while (got := parse_message(buf)) is None:
                chunk = s.recv(4096)
                assert chunk, "no SESS_INIT"
                buf += chunk
            theirs = got[0]
    finally:
        stop(proc)
    assert isinstance(theirs, SessInit) and theirs.node_id == "ipn:2.0"
    assert (theirs.keepalive_s, theirs.segment_mru) == (keepalive, mru)


def count_dials(tmp_path, extra: str, seconds: float) -> int:
    """Connections a dialling agent makes in ``seconds`` to a peer that hangs up at once."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted = []

    def hang_up() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(time.monotonic())
            conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    proc = agent(
        tmp_path, f"node: a\neid: ipn:1.0\nclas: [{{type: tcpcl, peers: {{'ipn:2.0': '127.0.0.1:{port}'}}{extra}}}]\n"
    )
    try:
        deadline = time.monotonic() + 20
        while not accepted:
            assert time.monotonic() < deadline and proc.poll() is None, "the agent never dialled"
            time.sleep(0.02)
        time.sleep(seconds)
        return sum(1 for t in accepted if t <= accepted[0] + seconds)
    finally:
        stop(proc)
        listener.close()


def test_reconnect_backoff_is_the_configured_one(tmp_path):
    (tmp_path / "fast").mkdir()
    (tmp_path / "default").mkdir()
    # Two connectors per peer (one for expedited bundles). Default backoff: 0.25, 0.5, 1 s... -> about 8 in 2 s.
    fast = count_dials(tmp_path / "fast", ", reconnect_min_ns: 50000000, reconnect_max_ns: 50000000", 2.0)
    default = count_dials(tmp_path / "default", "", 2.0)
    assert default <= 10 < 20 <= fast, (default, fast)


def test_mtcp_send_timeout_is_the_configured_one(tmp_path):
    """A peer that takes the connection and never reads: the send fails after send_timeout_ns, not 30 s."""
    cfg = load_agent_config(
        _write(
            tmp_path,
            "a.yaml",
            "node: a\neid: ipn:1.0\nclas: [{type: mtcp, peers: {'ipn:2.0': '127.0.0.1:1'}, send_timeout_ns: 500000000}]\n",
        ),
        None,
    )
    (spec,) = cfg.clas
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window, never opened
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    spec = dataclasses.replace(spec, peers={"ipn:2.0": HostPort("127.0.0.1", port)})  # the node file's, aimed here

    async def main() -> float:
        cla = build_cla(spec, node_id="ipn:1.0", clock=MonotonicClock(), max_bundle=DEFAULT_MAX_SIZE)
        sink = _Sink()
        await cla.start(sink)
        try:
            await asyncio.wait_for(sink.up.wait(), 10)
            started = time.monotonic()
            with pytest.raises(ClaError):
                await asyncio.wait_for(cla.send("ipn:2.0", b"x" * (16 << 20)), 20)
            return time.monotonic() - started
        finally:
            await cla.stop()

    try:
        took = asyncio.run(main())
    finally:
        listener.close()
    assert 0.4 <= took < 10, took


class _Sink:
    def __init__(self) -> None:
        self.up = asyncio.Event()

    async def bundle_received(self, data: bytes, cla: str, peer: str | None) -> None:
        raise AssertionError("nothing is sent to us")

    def session_changed(self, cla: str, peer: str, up: bool, detail: dict) -> None:
        if up:
            self.up.set()


def _write(tmp_path, name: str, text: str) -> str:
    (tmp_path / name).write_text(text)
    return str(tmp_path / name)


@pytest.mark.parametrize(
    ("name", "crc", "primary_items"),
    [("none", CrcType.NONE, 8), ("crc16", CrcType.CRC16, 9), ("crc32c", CrcType.CRC32C, 9)],
)
def test_bundles_the_agent_makes_carry_the_configured_crc(tmp_path, name, crc, primary_items):
    cfg = load_agent_config(_write(tmp_path, "a.yaml", f"node: a\neid: ipn:1.0\nbundle_crc: {name}\n"), None)
    assert cfg.bundle_crc == crc

    async def main() -> bytes:
        n = await Node(VirtualClock(T0), time.time_ns() - T0).configure(
            AgentConfig(
                node="a",
                eid="ipn:1.0",
                store_path=str(tmp_path / "a.sqlite"),
                routes={"*": "ipn:2.0"},
                bundle_crc=cfg.bundle_crc,
            )
        )
        try:
            key = await n.agent.submit("ipn:2.1", b"for a small stack", 3_600 * 10**9)
            data = n.agent.store.get(key)
            assert data is not None
            return data
        finally:
            await n.agent.stop()

    data = asyncio.run(main())
    assert data[0] == 0x9F and data[1] == 0x80 + primary_items  # the primary block: 8 items without a CRC
    bundle = decode_bundle(data)
    assert bundle.primary.crc_type == crc
    assert {b.crc_type for b in bundle.blocks} == {crc}  # payload, hop count, class of service
    assert bundle.payload_block.data == b"for a small stack"


@pytest.mark.parametrize(
    ("line", "where", "what"),
    [
        ("bundle_crc: crc64\n", ":3:13", "field 'bundle_crc' must be none or crc16 or crc32c"),
        ("clas: [{type: tcpcl, keepalive_s: 70000}]\n", ":3:", "keepalive_s' must be an integer from 0 to 65535"),
        (
            "clas: [{type: tcpcl, reconnect_min_ns: 5, reconnect_max_ns: 4}]\n",
            ":3:",
            "reconnect_max_ns' must be an integer >= reconnect_min_ns (5)",
        ),
        ("clas: [{type: mtcp, send_timeout_ns: 0}]\n", ":3:", "send_timeout_ns"),
        ("clas: [{type: mtcp, keepalive_s: 3}]\n", ":3:", "unknown field"),
    ],
)
def test_bad_tunables_name_their_place(tmp_path, line, where, what):
    path = _write(tmp_path, "bad.yaml", "node: a\neid: ipn:1.0\n" + line)
    with pytest.raises(InputError) as e:
        load_agent_config(path, None)
    assert f"bad.yaml{where}" in str(e.value) and what in str(e.value), str(e.value)
