"""ION's watch characters, built with ``--enable-ewchar``: a stream of bundle sightings. Pure.

With watching on (``w 1`` in bpadmin), each ION process writes one token
per bundle event on its stdout, with no newline between tokens::

    (1,1,849262163033,0)a(1,1,0)b(1,1,0)c

``(NODE,SERVICE,MSEC,COUNT)X`` names the bundle's source ``ipn:NODE.SERVICE``
and its creation time (DTN milliseconds and sequence count); the shorter
``(NODE,SERVICE,COUNT)X`` leaves the milliseconds out (ION 4.1.3,
``bpv7/library/libbpP.c``). The letters this module reads:

====  ==========================================  ============  ===========
X     ION's meaning                               printed by    with msec
====  ==========================================  ============  ===========
a     a new bundle was sourced here               the sender    yes
b     queued for forwarding                       ipnfw         no
c     dequeued for transmission by its CL         bpclm         no
y     received from a convergence layer           the induct    yes
z     queued for delivery to a local endpoint     the forwarder yes
~     abandoned (transmission failed)             the CLO       no
!     expired                                     bpclock       no
#     queued again after a CL failure             the CLO       no
j, k  put in / taken out of limbo                 bpclm         no
====  ==========================================  ============  ===========

Anything else on the stream (an admin program's "Stopping bpadmin.") is
skipped. A token cut between two reads is kept until the rest arrives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(rb"\((\d+),(\d+),(\d+)(?:,(\d+))?\)([a-z~!#&])")
# The longest a token can be: four 20-digit numbers, commas, brackets, the letter.
_MAX_TOKEN = 90
LETTERS = "abcyz~!#jk"


@dataclass(frozen=True, slots=True)
class Sighting:
    """One watch token: ``letter`` for bundle ``(source, msec, count)``; ``msec`` None when ION left it out."""

    letter: str
    source: str  # "ipn:1.1"
    msec: int | None
    count: int


class WatchStream:
    """Feed it what ION's processes wrote; it hands back the tokens read so far."""

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, data: bytes) -> list[Sighting]:
        buf = self._rest + data
        out: list[Sighting] = []
        end = 0
        for m in _TOKEN.finditer(buf):
            node, service, third, fourth, letter = m.groups()
            if fourth is None:
                msec, count = None, int(third)
            else:
                msec, count = int(third), int(fourth)
            if letter.decode() in LETTERS:
                out.append(Sighting(letter.decode(), f"ipn:{int(node)}.{int(service)}", msec, count))
            end = m.end()
        tail = buf[end:]
        # Keep only what may be the start of a token cut by the read.
        start = tail.rfind(b"(")
        self._rest = tail[start:] if start >= 0 and len(tail) - start < _MAX_TOKEN else b""
        return out
