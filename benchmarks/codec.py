"""BPv7 codec throughput: hilnet.bundle beside pyd3tn, measured in the same run.

    python benchmarks/codec.py [--seconds 0.3]

For payloads of 100 B, 64 KiB and 1 MiB and each CRC type (the same CRC on
every block), prints bundles/s for:

- hilnet encode, and hilnet decode (strict, every CRC verified);
- pyd3tn encode (``bytes(Bundle)``), pyd3tn parse (``Bundle.parse``, which
  does NOT verify CRCs), and pyd3tn parse + CRC verification (its own
  ``calculate_crc`` compared with the received CRC of every block) — the
  like-for-like baseline for a decode with CRCs checked.

The best of several rounds is kept (the machine is shared). Never asserts.
"""

from __future__ import annotations

import argparse
import platform
import time

from hilnet.bundle.codec import decode_bundle, encode_bundle
from hilnet.bundle.crc import CRC16_IMPLEMENTATION, CrcType
from hilnet.bundle.make import make_bundle

SIZES = [("100 B", 100), ("64 KiB", 64 * 1024), ("1 MiB", 1024 * 1024)]
DTN_EPOCH_UNIX_S = 946_684_800


def rate(fn, seconds: float, rounds: int = 3) -> float:
    """Best calls/s over ``rounds`` rounds of about ``seconds`` each."""
    n = 1
    while True:  # size a batch to ~seconds/10
        t = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t
        if dt > seconds / 10:
            break
        n *= 2
    best = 0.0
    for _ in range(rounds):
        done, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            for _ in range(n):
                fn()
            done += n
        best = max(best, done / (time.perf_counter() - t0))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=0.3, help="length of one measuring round")
    args = ap.parse_args()
    try:
        import pyd3tn.bundle7 as p7
    except ImportError:
        p7 = None
    print(
        f"python {platform.python_version()} on {platform.machine()}, CRC-16 via {CRC16_IMPLEMENTATION}, "
        f"best of 3 rounds of {args.seconds}s; rates in bundles/s"
    )
    head = f"{'payload':>8} {'crc':>6} | {'enc':>9} {'dec+crc':>9} | {'d3 enc':>9} {'d3 parse':>9} {'d3 p+crc':>9} | {'dec/d3p+crc':>11} {'dec/d3parse':>11}"
    print(head)
    print("-" * len(head))
    their_crc = {CrcType.NONE: "NONE", CrcType.CRC16: "CRC16", CrcType.CRC32C: "CRC32"}
    for label, size in SIZES:
        payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
        for crc in (CrcType.CRC16, CrcType.CRC32C, CrcType.NONE):
            bundle = make_bundle("ipn:1.0", "ipn:2.1", payload, 3_600_000, creation_ms=5000, seq=1, crc=crc)
            wire = encode_bundle(bundle)
            enc = rate(lambda: encode_bundle(bundle), args.seconds)
            dec = rate(lambda: decode_bundle(wire), args.seconds)
            row = f"{label:>8} {crc.name:>6} | {enc:>9.0f} {dec:>9.0f} |"
            if p7 is not None:
                theirs = p7.create_bundle7(
                    "ipn:1.0",
                    "ipn:2.1",
                    payload,
                    creation_timestamp=DTN_EPOCH_UNIX_S + 5,
                    sequence_number=1,
                    lifetime=3600,
                    crc_type_primary=getattr(p7.CRCType, their_crc[crc]),
                    crc_type_canonical=getattr(p7.CRCType, their_crc[crc]),
                )
                their_wire = bytes(theirs)
                if their_wire != wire:
                    print("  note: pyd3tn encodes this bundle differently from hilnet")

                def parse_and_check():
                    b = p7.Bundle.parse(their_wire)
                    if crc != CrcType.NONE:
                        for block in b:
                            if block.calculate_crc() != block.crc_provided:
                                raise RuntimeError("pyd3tn: CRC mismatch")
                    return b

                d3_enc = rate(lambda: bytes(theirs), args.seconds)
                d3_parse = rate(lambda: p7.Bundle.parse(their_wire), args.seconds)
                d3_check = rate(parse_and_check, args.seconds)
                row += (
                    f" {d3_enc:>9.0f} {d3_parse:>9.0f} {d3_check:>9.0f} |"
                    f" {dec / d3_check:>10.1f}x {dec / d3_parse:>10.1f}x"
                )
            else:
                row += " (pyd3tn not installed)"
            print(row, flush=True)
    print("target: hilnet decode with CRCs checked >= 3x pyd3tn decode with CRCs checked (column dec/d3p+crc)")


if __name__ == "__main__":
    main()
