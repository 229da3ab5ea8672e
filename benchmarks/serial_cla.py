"""Serial CLA goodput as a fraction of the UART's line rate, in virtual time.

Two real SerialSessions run over hilnet.agent.cla.serial_sim's channel model
(byte pacing at the baud with 10 bits per byte, one-way delay, seeded bit
errors). Baseline, measured in the same run: the most the framing allows,
payload / (payload + DATA header + CRC + SLIP ENDs and escapes of that very
data), i.e. a sender that never waits for an ack and never loses a frame.

Then, unless ``--no-pty``, the same over a real pty link through the link
emulator (hilnet.link.engine paces at the baud and delays), with two
SerialCla drivers on the host's clock: what asyncio, ptys and the OS add.

    python benchmarks/serial_cla.py [--size 300KiB] [--delay 120ms] [--seed 1] [--pty-size 100KiB]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time

from hilnet.agent.cla.serial_frame import DATA_OVERHEAD
from hilnet.agent.cla.serial_proto import SerialConfig
from hilnet.agent.cla.serial_sim import SimLink
from hilnet.agent.cla.slip import slip_overhead
from hilnet.units import parse_duration, parse_size

NS_PER_S = 1_000_000_000


def framing_bound(data: bytes, segment_size: int) -> float:
    """Payload bytes / wire bytes if every segment went once, back to back."""
    wire = 0
    for off in range(0, len(data), segment_size):
        seg = data[off : off + segment_size]
        # The header and CRC bytes are escaped too; count them as average bytes.
        wire += len(seg) + DATA_OVERHEAD + slip_overhead(seg) + DATA_OVERHEAD * 2 / 256
    return len(data) / wire


def run(baud: int, delay_ns: int, ber: float, data: bytes, seed: int, segment_size: int) -> dict:
    a = SerialConfig("ipn:1.0", baud, delay_ns=delay_ns, segment_size=segment_size)
    b = SerialConfig("ipn:2.0", baud, delay_ns=delay_ns, segment_size=segment_size)
    link = SimLink(a, b, delay_ns=delay_ns, ber=ber, seed=seed)
    link.run(60 * NS_PER_S, stop=lambda: link.a.session.up and link.b.session.up)
    t0 = link.now_ns
    wall = time.perf_counter()
    link.a.session.send_bundle("bundle", data)
    link.run(t0 + 3600 * NS_PER_S, stop=lambda: "bundle" in link.a.acked)
    wall = time.perf_counter() - wall
    if "bundle" not in link.a.acked or link.b.received != [data]:
        raise SystemExit(f"bundle not delivered intact at {baud} baud, BER {ber}")
    seconds = (link.a.acked["bundle"] - t0) / NS_PER_S
    line = baud / 10
    st = link.a.session.stats
    return {
        "goodput": len(data) / seconds / line,
        "bound": framing_bound(data, segment_size),
        "seconds": seconds,
        "resent": st["retransmissions"],
        "frames": st["data_frames_sent"],
        "ack_bytes": link.b.session.stats["bytes_sent"],
        "wall": wall,
    }


def run_emulated(baud: int, delay_ns: int, data: bytes) -> tuple[float, float]:
    """Goodput fraction and seconds for one bundle over an emulated pty UART, real time."""
    from hilnet.agent.cla.serial import SerialCla
    from hilnet.link.engine import Engine
    from hilnet.link.shaper import DirectionConfig

    class Sink:
        def __init__(self):
            self.got: list[bytes] = []

        async def bundle_received(self, data, cla, peer):
            self.got.append(data)

        def session_changed(self, cla, peer, up, detail):
            pass

    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine()
        engine.add_link("uart", f"pty://{tmp}/a", f"pty://{tmp}/b", ab=DirectionConfig(baud=baud, delay_ns=delay_ns))
        engine.start()

        async def main() -> float:
            ca = SerialCla("ipn:1.0", f"{tmp}/a", baud, peer="ipn:2.0", delay_hint_ns=delay_ns)
            cb = SerialCla("ipn:2.0", f"{tmp}/b", baud, peer="ipn:1.0", delay_hint_ns=delay_ns)
            sink = Sink()
            await ca.start(Sink())
            await cb.start(sink)
            try:
                while not ca.peers_up():
                    await asyncio.sleep(0.01)
                t0 = time.perf_counter()
                await asyncio.wait_for(ca.send("ipn:2.0", data), 600)
                seconds = time.perf_counter() - t0
                if sink.got != [data]:
                    raise SystemExit("emulated link: bundle not delivered intact")
                return seconds
            finally:
                await ca.stop()
                await cb.stop()

        try:
            seconds = asyncio.run(main())
        finally:
            engine.stop()
            engine.join(5)
            engine.close()
    return len(data) / seconds / (baud / 10), seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="300KiB")
    p.add_argument("--delay", default="120ms")
    p.add_argument("--segment", type=int, default=1024)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--pty-size", default="100KiB", help="bundle size over the emulated pty link")
    p.add_argument("--no-pty", action="store_true", help="skip the real-time emulated link")
    args = p.parse_args()
    size, delay = parse_size(args.size), parse_duration(args.delay)
    data = random.Random(args.seed).randbytes(size)
    print(
        f"serial CLA goodput, virtual time: bundle {size} B random, one-way delay {delay / 1e6:g} ms, "
        f"segment {args.segment} B, 8N1 (10 bits/byte), seed {args.seed}"
    )
    print(
        f"{'baud':>7} {'BER':>6} {'goodput':>8} {'framing max':>11} {'of max':>7} {'time s':>8} "
        f"{'frames':>6} {'resent':>6} {'ack B':>6} {'real s':>6}"
    )
    for baud in (115200, 921600):
        for ber in (0.0, 1e-5, 1e-4):
            r = run(baud, delay, ber, data, args.seed, args.segment)
            print(
                f"{baud:>7} {ber:>6g} {r['goodput']:>8.1%} {r['bound']:>11.1%} {r['goodput'] / r['bound']:>7.1%} "
                f"{r['seconds']:>8.2f} {r['frames']:>6} {r['resent']:>6} {r['ack_bytes']:>6} {r['wall']:>6.2f}"
            )
    if not args.no_pty:
        pdata = random.Random(args.seed).randbytes(parse_size(args.pty_size))
        print(f"over the link emulator (pty pair, real time), bundle {len(pdata)} B, delay {delay / 1e6:g} ms, BER 0:")
        for baud in (115200, 921600):
            frac, seconds = run_emulated(baud, delay, pdata)
            print(
                f"{baud:>7} {0:>6g} {frac:>8.1%} {framing_bound(pdata, args.segment):>11.1%} "
                f"{frac / framing_bound(pdata, args.segment):>7.1%} {seconds:>8.2f}"
            )
    print("target: goodput >= 90.0% of the line at 115200 baud and BER 0; every bundle intact at any BER")


if __name__ == "__main__":
    main()
