"""Deterministic bundle payloads: the same (seed, size) gives the same bytes everywhere.

The controller injects traffic as ``{"seed": s, "size": n}`` and the sink agent
reports the SHA-256 of what it delivered; the controller recomputes that digest
from (seed, size) alone, so a payload never has to travel back to be checked.

The bytes are SHAKE256 output (FIPS 202), not :mod:`random`: an agent on a board
and the controller on a laptop may run different Pythons, and only a standard
function is guaranteed to give both the same bytes. SHAKE256 is also fast (about
500 MB/s in C) and never repeats, so a fragment reassembled at the wrong offset
changes the digest. Its output for length ``n`` is a prefix of its output for any
longer length, hence ``payload_for(s, k) == payload_for(s, n)[:k]`` for ``k <= n``.
"""

from __future__ import annotations

import hashlib

# Domain separation: other SHAKE256 uses of the same seed never collide with payloads.
_DOMAIN = b"hilnet-payload-v1:"

#: Largest payload payload_for() makes, bytes (the digest is built in memory).
MAX_PAYLOAD = 1 << 31


def _check(seed: int, size: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_PAYLOAD:
        raise ValueError(f"size must be an integer in 0..{MAX_PAYLOAD} bytes, got {size!r}")


def payload_for(seed: int, size: int) -> bytes:
    """The ``size``-byte payload of ``seed`` (an int >= 0, any magnitude)."""
    _check(seed, size)
    return hashlib.shake_256(_DOMAIN + str(seed).encode("ascii")).digest(size)


def payload_sha256(seed: int, size: int) -> str:
    """Hex SHA-256 of :func:`payload_for` ``(seed, size)``: what a sink reports as ``sha256``."""
    return hashlib.sha256(payload_for(seed, size)).hexdigest()
