"""What ``bplist`` says ION holds: the ids of the bundles in its queues. Pure.

``bplist`` (ION 4.1.3, ``bpv7/utils/bplist.c``) prints each bundle as a block::

    **** Bundle
    Source EID      'ipn:1.2'
    ...
    Creation msec   849262872616   count          1   frag offset          0
    ...
    **** End of bundle

and ends with ``Report count is N.``
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hilnet.stacks.ion.tracker import key_of

_SOURCE = re.compile(r"^Source EID\s+'([^']*)'", re.M)
_CREATION = re.compile(r"^Creation msec\s+(\d+)\s+count\s+(\d+)", re.M)
_COUNT = re.compile(r"^Report count is (\d+)\.", re.M)


@dataclass(frozen=True, slots=True)
class Listing:
    keys: frozenset[str]  # hilnet ids of the bundles listed
    count: int  # what bplist counted


def parse_bplist(text: str) -> Listing | None:
    """The bundles of a ``bplist`` (detail) report; None when it is not one (ION did not answer)."""
    total = _COUNT.search(text)
    if total is None:
        return None
    keys = set()
    for block in text.split("**** Bundle")[1:]:
        source, creation = _SOURCE.search(block), _CREATION.search(block)
        if source is not None and creation is not None:
            keys.add(key_of(source.group(1), int(creation.group(1)), int(creation.group(2))))
    return Listing(frozenset(keys), int(total.group(1)))
