"""Real agent processes store and forward over real convergence layers.

(a) a TCPCLv4 chain A -> B -> C on loopback; (b) two agents on an emulated
UART (pty pair through the link engine) with an outage in the middle of a
bundle and bit errors; (c) ``kill -9`` of the relay in the middle of a burst,
then a restart on the same store. Every test ends on the same judgement as
``hilnet run``: each bundle delivered intact, exactly once, and no store holds
anything.
"""

from __future__ import annotations

from collections import Counter

import pytest
from agent_procs import MS, Procs, free_port

from hilnet.agent.payload import payload_sha256
from hilnet.clock import MonotonicClock
from hilnet.link.engine import Engine
from hilnet.link.shaper import DirectionConfig

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def procs(tmp_path):
    p = Procs(tmp_path)
    yield p
    p.stop_all()


def inject_all(procs: Procs, name: str, dest: str, sizes: list[int], seed0: int) -> dict[str, str]:
    """Inject one bundle per size; returns bundle key -> expected payload sha256."""
    expected = {}
    for i, size in enumerate(sizes):
        r = procs.call(
            name, {"cmd": "inject", "dest": dest, "size": size, "seed": seed0 + i, "lifetime_ns": 600_000 * MS}
        )
        expected[r["bundle"]] = payload_sha256(seed0 + i, size)
    return expected


def check_delivered_once(procs: Procs, sink: str, expected: dict[str, str]) -> None:
    delivered = procs.of(sink, "delivered")
    counts = Counter(e["bundle"] for e in delivered)
    assert counts == Counter(expected.keys()), f"delivered {counts} expected each of {sorted(expected)} once"
    assert {e["bundle"]: e["sha256"] for e in delivered} == expected  # intact


def check_stores_empty(procs: Procs, names) -> None:
    procs.wait(lambda: all(procs.status(n)["stored"] == 0 for n in names), 10, "every store empty")


def test_tcpcl_chain_of_three_delivers_intact(procs):
    pa, pb, pc = free_port(), free_port(), free_port()
    for name in "abc":
        procs.start(name)
    procs.configure("c", "ipn:3.0", [{"type": "tcpcl", "listen": f"127.0.0.1:{pc}"}])
    procs.configure(
        "b",
        "ipn:2.0",
        [{"type": "tcpcl", "listen": f"127.0.0.1:{pb}", "peers": {"ipn:3.0": f"127.0.0.1:{pc}"}}],
        routes={"ipn:3.0": "ipn:3.0"},
    )
    procs.configure(
        "a",
        "ipn:1.0",
        [{"type": "tcpcl", "listen": f"127.0.0.1:{pa}", "peers": {"ipn:2.0": f"127.0.0.1:{pb}"}}],
        routes={"*": "ipn:2.0"},
    )
    expected = inject_all(procs, "a", "ipn:3.0", [0, 1, 1000, 70_000, 300 * 1024], seed0=10)
    procs.wait(lambda: len(procs.of("c", "delivered")) >= len(expected), 20, "delivery at c")
    check_delivered_once(procs, "c", expected)
    check_stores_empty(procs, "abc")
    # the path really was a -> b -> c, each hop acknowledged
    assert {e["bundle"] for e in procs.of("a", "acked") if e["by"] == "ipn:2.0"} == set(expected)
    assert {e["bundle"] for e in procs.of("b", "acked") if e["by"] == "ipn:3.0"} == set(expected)


def test_serial_link_outage_mid_bundle_and_bit_errors(procs, tmp_path):
    engine = Engine(MonotonicClock())
    cfg = DirectionConfig(baud=115200, delay_ns=20 * MS, ber=1e-5)
    link = engine.add_link("uart", f"pty://{tmp_path}/a-uart", f"pty://{tmp_path}/b-uart", ab=cfg, seed=11)
    engine.start()
    try:
        procs.start("a")
        procs.start("b")
        procs.configure(
            "b",
            "ipn:2.0",
            [
                {
                    "type": "serial",
                    "port": str(tmp_path / "b-uart"),
                    "baud": 115200,
                    "peer": "ipn:1.0",
                    "delay_hint_ns": 20 * MS,
                }
            ],
        )
        procs.configure(
            "a",
            "ipn:1.0",
            [
                {
                    "type": "serial",
                    "port": str(tmp_path / "a-uart"),
                    "baud": 115200,
                    "peer": "ipn:2.0",
                    "delay_hint_ns": 20 * MS,
                }
            ],
            routes={"*": "ipn:2.0"},
        )
        procs.wait(lambda: procs.of("a", "session-up"), 10, "serial session up")
        # 12 KiB is about 1.1 s of line time at 115200 baud: cut the line 0.3 s into it for 1.5 s
        expected = inject_all(procs, "a", "ipn:2.0", [12 * 1024, 3000], seed0=20)
        procs.wait(lambda: procs.of("a", "forwarded"), 5, "first bundle on the line")
        now = engine.clock.now_ns()
        link.set_up(False, at_ns=now + 300 * MS)
        link.set_up(True, at_ns=now + 1800 * MS)
        procs.wait(lambda: len(procs.of("b", "delivered")) >= len(expected), 30, "delivery over the uart")
        check_delivered_once(procs, "b", expected)
        check_stores_empty(procs, "ab")
        stats = link.stats()
        down = [t for t in stats["a->b"]["transitions"] if t[0] is False]
        assert down, "the outage never happened"
        assert stats["a->b"]["drops"].get("down", 0) > 0 or stats["b->a"]["drops"].get("down", 0) > 0, (
            f"the outage cut nothing off: {stats}"
        )
    finally:
        engine.stop()
        engine.join(5)
        engine.close()


def test_kill_9_of_the_relay_loses_and_duplicates_nothing(procs, tmp_path):
    pa, pb, pc = free_port(), free_port(), free_port()
    la, lb = free_port(), free_port()  # the emulated link's ends between a and b
    engine = Engine(MonotonicClock())
    # 8 Mbit/s a -> b: 20 x 64 KiB take about 1.4 s, so the kill lands mid-burst
    engine.add_link(
        "a-b",
        f"tcp://127.0.0.1:{la}?peer=127.0.0.1:{pa}",
        f"tcp://127.0.0.1:{lb}?peer=127.0.0.1:{pb}",
        ab=DirectionConfig(rate_bps=8_000_000, delay_ns=2 * MS),
        ba=DirectionConfig(delay_ns=2 * MS),
    )
    engine.start()
    try:
        for name in "abc":
            procs.start(name)
        b_clas = [{"type": "tcpcl", "listen": f"127.0.0.1:{pb}", "peers": {"ipn:3.0": f"127.0.0.1:{pc}"}}]
        procs.configure("c", "ipn:3.0", [{"type": "tcpcl", "listen": f"127.0.0.1:{pc}"}])
        procs.configure("b", "ipn:2.0", b_clas, routes={"ipn:3.0": "ipn:3.0"})
        procs.configure(
            "a",
            "ipn:1.0",
            [{"type": "tcpcl", "listen": f"127.0.0.1:{pa}", "peers": {"ipn:2.0": f"127.0.0.1:{la}"}}],
            routes={"*": "ipn:2.0"},
        )
        expected = inject_all(procs, "a", "ipn:3.0", [64 * 1024] * 20, seed0=100)
        procs.wait(lambda: len(procs.of("b", "stored")) >= 4, 15, "relay b storing")
        procs.agents["b"].kill()
        at_kill = len(procs.of("c", "delivered")), len(procs.of("a", "acked"))
        assert at_kill[1] < 20, "the burst was over before the kill; the test proved nothing"

        procs.start("b")
        procs.configure("b", "ipn:2.0", b_clas, routes={"ipn:3.0": "ipn:3.0"})
        procs.wait(
            lambda: len(set(e["bundle"] for e in procs.of("c", "delivered"))) >= 20,
            40,
            "all delivered after the restart",
        )
        check_delivered_once(procs, "c", expected)
        check_stores_empty(procs, "abc")
    finally:
        engine.stop()
        engine.join(5)
        engine.close()
