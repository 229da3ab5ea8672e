"""The loopback TCP relay never counts as delivered what it could not deliver.

An agent connects to its end of the relay while the far agent is not running:
the far end's connect is refused, so the bytes the near agent wrote reach no
one. They used to be counted delivered (``bytes_out``) with 0 drops; now they
are drops under ``undeliverable`` and the near agent's connection is closed.
Real sockets, the real engine.
"""

from __future__ import annotations

import socket
import time

import pytest

from hilnet.clock import MonotonicClock
from hilnet.link.engine import Engine
from hilnet.link.shaper import DirectionConfig

pytestmark = pytest.mark.timeout(30)
MS = 1_000_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bytes_for_a_peer_that_is_not_running_are_counted_dropped():
    la, lb, nobody = free_port(), free_port(), free_port()
    engine = Engine(MonotonicClock())
    handle = engine.add_link(
        "a-b",
        f"tcp://127.0.0.1:{la}?peer=127.0.0.1:{free_port()}",
        f"tcp://127.0.0.1:{lb}?peer=127.0.0.1:{nobody}",  # nothing listens there
        ab=DirectionConfig(delay_ns=20 * MS),
        ba=DirectionConfig(delay_ns=20 * MS),
    )
    engine.start()
    try:
        client = socket.create_connection(("127.0.0.1", la), timeout=5)
        payload = bytes(range(256)) * 40  # 10,240 bytes, in the link before the refusal comes back
        client.sendall(payload)
        client.settimeout(5)
        assert client.recv(100) == b"", "the relay should close a connection it cannot carry on"
        client.close()
        deadline = time.monotonic() + 5
        while True:
            st = handle.stats()["a->b"]
            if st["drop_bytes"].get("undeliverable", 0) >= len(payload) or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert st["bytes_in"] == len(payload)
        assert st["drop_bytes"].get("undeliverable") == len(payload)
        assert st["drops"].get("undeliverable", 0) >= 1
        assert st["bytes_out"] == 0, "nothing reached the far agent"
    finally:
        engine.stop()
        engine.join(5)
        engine.close()
