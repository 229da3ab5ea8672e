"""SerialCla over real ptys: two agents' CLAs joined by a byte relay between pty masters.

Each CLA opens a symlink to its pty's slave side, as it would /dev/ttyUSB0
(and as the link emulator's pty endpoint lays it out). The relay in the test
only copies bytes, so timing is the CLAs' own pacing on the real clock.
"""

import asyncio
import os
import random

import pytest
from serial_ptys import Pty, Relay

from hilnet.agent.cla.serial import SerialCla
from hilnet.errors import ClaError, StoreFullError, TransferRefusedError

MS = 1_000_000
BAUD = 921600  # fast enough that real-time tests stay short


class Sink:
    def __init__(self):
        self.bundles: list[bytes] = []
        self.sessions: list[tuple[str, bool]] = []
        self.full = False

    async def bundle_received(self, data, cla, peer):
        if self.full:
            raise StoreFullError("quota")
        await asyncio.sleep(0)  # as a store commit would
        self.bundles.append(data)

    def session_changed(self, cla, peer, up, detail):
        self.sessions.append((peer, up))


async def until(cond, timeout_s=20.0):
    for _ in range(int(timeout_s * 100)):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


@pytest.fixture
def ptys(tmp_path):
    a, b = Pty(str(tmp_path / "a-uart")), Pty(str(tmp_path / "b-uart"))
    yield a, b
    for p in (a, b):
        try:
            p.close()
        except OSError:
            pass


def clas(a, b, **kw):
    ca = SerialCla("ipn:1.0", a.path, BAUD, peer="ipn:2.0", delay_hint_ns=0, **kw)
    cb = SerialCla("ipn:2.0", b.path, BAUD, peer="ipn:1.0", delay_hint_ns=0, name="uart0", **kw)
    return ca, cb


def test_two_clas_exchange_bundles_both_ways(ptys):
    async def main():
        a, b = ptys
        Relay(a, b)
        ca, cb = clas(a, b)
        sa, sb = Sink(), Sink()
        await ca.start(sa)
        await cb.start(sb)
        await until(lambda: ca.peers_up() == {"ipn:2.0"} and cb.peers_up() == {"ipn:1.0"})
        rng = random.Random(1)
        to_b = [rng.randbytes(n) for n in (1, 1500, 40_000, 3000)]
        to_a = [rng.randbytes(n) for n in (20_000, 7)]
        await asyncio.wait_for(
            asyncio.gather(*(ca.send("ipn:2.0", d) for d in to_b), *(cb.send("ipn:1.0", d) for d in to_a)), 30
        )
        assert sorted(sb.bundles) == sorted(to_b) and sorted(sa.bundles) == sorted(to_a)
        assert ("ipn:2.0", True) in sa.sessions
        assert ca.stats["bundles_sent"] == 4 and cb.stats["bundles_received"] == 4
        await ca.stop()
        await cb.stop()

    asyncio.run(main())


def test_send_without_a_session_raises_and_refusal_is_reported(ptys):
    async def main():
        a, b = ptys
        Relay(a, b)
        ca, cb = clas(a, b)
        sa, sb = Sink(), Sink()
        await ca.start(sa)
        with pytest.raises(ClaError):
            await ca.send("ipn:2.0", b"nobody there yet")
        await cb.start(sb)
        await until(lambda: ca.peers_up())
        sb.full = True
        with pytest.raises(TransferRefusedError):
            await asyncio.wait_for(ca.send("ipn:2.0", b"x" * 5000), 10)
        sb.full = False
        await asyncio.wait_for(ca.send("ipn:2.0", b"x" * 5000), 10)
        assert sb.bundles == [b"x" * 5000]
        await ca.stop()
        await cb.stop()

    asyncio.run(main())


def test_outage_then_port_replaced_resumes_the_transfer(ptys):
    async def main():
        a, b = ptys
        relay = Relay(a, b)
        ca, cb = clas(a, b, reopen_min_ns=20 * MS, reopen_max_ns=200 * MS)
        sa, sb = Sink(), Sink()
        await ca.start(sa)
        await cb.start(sb)
        await until(lambda: ca.peers_up())
        data = random.Random(2).randbytes(200_000)  # ~2.2 s at 921600 baud
        send = asyncio.ensure_future(ca.send("ipn:2.0", data))
        await until(lambda: ca.stats["data_frames_sent"] > 60)
        relay.cut = True
        await until(lambda: not ca.peers_up(), 10)
        # The far side's pty is torn down and made again (an emulator restart):
        # the CLA reads EIO, reopens the path with backoff, and the session lives on.
        relay.detach()
        b.close()
        b.open()
        relay.cut = False
        relay.attach()
        await until(lambda: cb.stats["port_reopened"] >= 1, 10)
        await asyncio.wait_for(send, 30)
        assert sb.bundles == [data]
        assert ca.stats["peer_restarts"] == 0 and ca.stats["peer_up"] >= 2
        assert ca.stats["bytes_resent"] < len(data) // 2
        await ca.stop()
        await cb.stop()

    asyncio.run(main())


def test_garbage_on_the_port_is_counted_not_fatal(ptys):
    async def main():
        a, b = ptys
        ca, cb = clas(a, b)
        sa, sb = Sink(), Sink()
        await ca.start(sa)
        rng = random.Random(3)
        for _ in range(50):
            os.write(a.master, rng.randbytes(200))
            await asyncio.sleep(0.002)
        await until(lambda: sum(v for k, v in ca.stats.items() if k.startswith("rejected:")) > 10, 5)
        Relay(a, b)
        await cb.start(sb)
        await until(lambda: ca.peers_up(), 10)
        await asyncio.wait_for(ca.send("ipn:2.0", b"still fine"), 10)
        assert sb.bundles == [b"still fine"]
        await ca.stop()
        await cb.stop()

    asyncio.run(main())


@pytest.mark.parametrize("rtscts", [False, True])
def test_the_port_is_opened_with_rts_cts_only_when_asked(rtscts: bool) -> None:
    """The UART's hardware flow control follows the CLA's setting (a pty keeps the flag as a UART does)."""
    import termios

    from hilnet.agent.cla.serial import open_port

    master, slave = os.openpty()
    try:
        fd = open_port(os.ttyname(slave), 115200, 10, rtscts=rtscts)
        try:
            assert bool(termios.tcgetattr(fd)[2] & termios.CRTSCTS) is rtscts
        finally:
            os.close(fd)
    finally:
        os.close(master)
        os.close(slave)
