"""One-way contacts: the contact plan that routing and the plan oracle share.

A contact says node ``frm`` can send to node ``to`` from ``start_ns`` to
``end_ns`` (scenario time) at ``rate`` bytes/s, each byte arriving ``owlt_ns``
after it was sent (one-way light time), like ION's ``a contact`` plus
``a range`` lines. Nodes are scenario node names.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Contact:
    frm: str
    to: str
    start_ns: int
    end_ns: int
    rate: int  # bytes per second the contact carries (after link framing overhead)
    owlt_ns: int  # one-way light time, ns

    @property
    def volume(self) -> int:
        """Bytes the whole contact can carry."""
        return self.rate * max(0, self.end_ns - self.start_ns) // 1_000_000_000
