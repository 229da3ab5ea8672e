"""Two SerialCla over a pty link through the real link emulator (hilnet.link.engine).

The engine paces bytes at the baud, delays them and flips bits, as on a bench
UART; the CLAs open the pty symlinks as they would /dev/ttyUSB0.
"""

import asyncio
import random

from hilnet.agent.cla.serial import SerialCla
from hilnet.link.engine import Engine
from hilnet.link.shaper import DirectionConfig

MS = 1_000_000


class Sink:
    def __init__(self):
        self.bundles: list[bytes] = []

    async def bundle_received(self, data, cla, peer):
        self.bundles.append(data)

    def session_changed(self, cla, peer, up, detail):
        pass


async def until(cond, timeout_s):
    for _ in range(int(timeout_s * 100)):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


def test_bundles_cross_an_emulated_uart_with_bit_errors(tmp_path):
    engine = Engine()
    cfg = DirectionConfig(baud=115200, delay_ns=20 * MS, ber=1e-5)
    engine.add_link("uart", f"pty://{tmp_path}/iss", f"pty://{tmp_path}/tdrs", ab=cfg, seed=3)
    engine.start()

    async def main():
        ca = SerialCla("ipn:1.0", f"{tmp_path}/iss", 115200, peer="ipn:2.0", delay_hint_ns=20 * MS)
        cb = SerialCla("ipn:2.0", f"{tmp_path}/tdrs", 115200, peer="ipn:1.0", delay_hint_ns=20 * MS)
        sa, sb = Sink(), Sink()
        await ca.start(sa)
        await cb.start(sb)
        try:
            await until(lambda: ca.peers_up() and cb.peers_up(), 10)
            rng = random.Random(4)
            to_b = [rng.randbytes(n) for n in (12_000, 700)]
            to_a = [rng.randbytes(5000)]
            await asyncio.wait_for(
                asyncio.gather(*(ca.send("ipn:2.0", d) for d in to_b), *(cb.send("ipn:1.0", d) for d in to_a)), 30
            )
            assert sorted(sb.bundles) == sorted(to_b) and sa.bundles == to_a
        finally:
            await ca.stop()
            await cb.stop()

    try:
        asyncio.run(main())
    finally:
        engine.stop()
        engine.join(5)
        engine.close()
