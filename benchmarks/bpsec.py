"""BPSec cost per bundle: protect at the source and accept at the destination, beside the plain codec.

    python benchmarks/bpsec.py [--seconds 0.3]

For payloads of 100 B, 64 KiB and 1 MiB, prints bundles/s and payload MB/s of:

- plain: encode, and decode, of the unprotected bundle (what every hop pays), as the baseline;
- BIB (HMAC-SHA384, full scope): protect + encode, and decode + verify;
- BCB (AES-256-GCM, wrapped key): the same;
- BIB + BCB, as a scenario's ``security: {integrity, confidentiality}`` does.

The best of several rounds is kept (the machine is shared). Never asserts.
"""

from __future__ import annotations

import argparse
import os
import platform

from codec import rate

from hilnet.bundle.bpsec import KeyRing, Protection, accept, protect
from hilnet.bundle.codec import decode_bundle, encode_bundle
from hilnet.bundle.make import make_bundle

SIZES = [("100 B", 100), ("64 KiB", 64 * 1024), ("1 MiB", 1024 * 1024)]
KEYS = KeyRing({"ipn:1.0": os.urandom(32)}, {"ipn:1.0": os.urandom(32)})
CASES = [
    ("BIB", Protection.named("hmac-sha384", None)),
    ("BCB", Protection.named(None, "aes256-gcm")),
    ("BIB+BCB", Protection.named("hmac-sha384", "aes256-gcm")),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=0.3, help="length of one measuring round")
    args = ap.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, best of 3 rounds of {args.seconds}s")
    head = (
        f"{'payload':>8} {'service':>8} | {'protect+enc/s':>13} {'dec+accept/s':>13} | {'MB/s in':>8} {'MB/s out':>8}"
    )
    print(head)
    print("-" * len(head))
    for label, size in SIZES:
        payload = os.urandom(size)
        bundle = make_bundle("ipn:1.1", "ipn:2.1", payload, 3_600_000, creation_ms=5000)
        wire = encode_bundle(bundle)
        rows = [
            (
                "plain",
                rate(lambda: encode_bundle(bundle), args.seconds),
                rate(lambda: decode_bundle(wire), args.seconds),
            )
        ]
        for name, p in CASES:
            sealed = encode_bundle(protect(bundle, KEYS, p, os.urandom))
            out = rate(lambda p=p: encode_bundle(protect(bundle, KEYS, p, os.urandom)), args.seconds)
            back = rate(lambda s=sealed: accept(decode_bundle(s), KEYS), args.seconds)
            rows.append((name, out, back))
        for name, out, back in rows:
            print(
                f"{label:>8} {name:>8} | {out:>13.0f} {back:>13.0f} | {out * size / 1e6:>8.1f} {back * size / 1e6:>8.1f}"
            )


if __name__ == "__main__":
    main()
