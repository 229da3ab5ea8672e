"""Node identity: scenario node names <-> node-id EIDs.

The contact plan and the router speak scenario node names (``iss``,
``tdrs-w``); bundles and convergence layers speak endpoint ids (``ipn:2.0``).
A node's id is its EID with the service part cleared: ``ipn:2.7`` and
``ipn:2.0`` are the same node, as are ``dtn://gs/photos`` and ``dtn://gs/``
(RFC 9171 section 4.2.5.2 and 4.2.5.1.1).

This is only the mapping; EID text is read by :func:`hilnet.bundle.eid.parse_eid`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache
from types import MappingProxyType

from hilnet.bundle.eid import parse_eid
from hilnet.errors import InputError


# Agents look up the same few EIDs for every bundle (source, destination,
# previous node); a bounded cache keeps the full parse off that path.
@lru_cache(maxsize=4096)
def node_id(eid: str) -> str:
    """The node id of ``eid``: ``ipn:N.S`` -> ``ipn:N.0``, ``dtn://n/...`` -> ``dtn://n/``.

    Raises :class:`~hilnet.errors.InputError` for anything that is not an
    ``ipn:`` or ``dtn:`` EID (``dtn:none`` names no node).
    """
    if not isinstance(eid, str):
        raise InputError(f"an EID must be a string, got {type(eid).__name__}")
    parsed = parse_eid(eid)
    if parsed.is_null:
        raise InputError(f"{eid!r} is not an ipn:N.S or dtn://node/ EID")
    return str(parsed.node_id)


class NodeMap(Mapping[str, str]):
    """Scenario node names to node-id EIDs, one to one, and back.

    ``NodeMap({"iss": "ipn:1.0", "tdrs-w": "ipn:2.0"})``. As a mapping it is
    name -> node id; :meth:`name_of` goes back from any EID of the node.
    """

    def __init__(self, names: Mapping[str, str] | None = None):
        by_name: dict[str, str] = {}
        by_id: dict[str, str] = {}
        for name, eid in (names or {}).items():
            if not isinstance(name, str) or not name:
                raise InputError(f"node name must be a non-empty string, got {name!r}")
            nid = node_id(eid)
            if nid in by_id:
                raise InputError(f"nodes {by_id[nid]!r} and {name!r} share the node id {nid}")
            by_name[name] = nid
            by_id[nid] = name
        self._by_name = MappingProxyType(by_name)
        self._by_id = MappingProxyType(by_id)

    def __getitem__(self, name: str) -> str:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def __repr__(self) -> str:
        return f"NodeMap({dict(self._by_name)!r})"

    def eid_of(self, name: str) -> str:
        """Node-id EID of scenario node ``name``; KeyError if unknown."""
        return self._by_name[name]

    def name_of(self, eid: str) -> str:
        """Scenario name of the node ``eid`` belongs to (any service); KeyError if unknown."""
        return self._by_id[node_id(eid)]

    def name_or_eid(self, eid: str) -> str:
        """Like :meth:`name_of`, but an unknown node is named by its node id.

        Lets an agent with static routes keyed by EIDs and no plan use the same
        router as one with a full plan.
        """
        nid = node_id(eid)
        return self._by_id.get(nid, nid)

    def eid_or_name(self, name: str) -> str:
        """The node-id EID of scenario node ``name``, or ``name`` itself when it is no node's name.

        The inverse of :meth:`name_or_eid`: a router fed EIDs hands them back as they are.
        """
        return self._by_name.get(name, name)
