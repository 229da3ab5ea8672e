"""Paths in the link graph, counted in hops: whether a stream can arrive, and its hop limit (pure).

A bundle carries a hop limit (RFC 9171 4.4.3, 1..255): every node that
receives it counts one hop, and the one that would count past the limit drops
it. A stream's bundles must therefore be allowed at least the hops of the
shortest path between its ends (``hilnet validate`` refuses less), and by
default get enough for the longest path a router could take: no simple path
between two nodes is longer than the nodes of their connected part minus one.
A margin on top covers a bundle that is routed back and forth while contacts
come and go. The graph is the scenario's links, each usable both ways.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from hilnet.scenario.model import Link, Traffic

MAX_HOP_LIMIT = 255  # the Hop Count block's limit is one byte's worth (RFC 9171 4.4.3)
Graph = dict[str, set[str]]


def link_graph(links: Iterable[Link]) -> Graph:
    """Node -> its neighbours over ``links``."""
    graph: Graph = {}
    for link in links:
        graph.setdefault(link.a, set()).add(link.b)
        graph.setdefault(link.b, set()).add(link.a)
    return graph


def hop_distances(graph: Graph, start: str) -> dict[str, int]:
    """Every node reachable from ``start`` -> the hops of its shortest path (``start`` itself 0)."""
    dist = {start: 0}
    todo = deque([start])
    while todo:
        here = todo.popleft()
        for nxt in graph.get(here, ()):
            if nxt not in dist:
                dist[nxt] = dist[here] + 1
                todo.append(nxt)
    return dist


def shortest_hops(graph: Graph, frm: str, to: str) -> int | None:
    """Hops of the shortest path from ``frm`` to ``to``; None when there is none."""
    return hop_distances(graph, frm).get(to)


def longest_hops(graph: Graph, frm: str, to: str) -> int | None:
    """An upper bound on the hops of any loop-free path from ``frm`` to ``to`` (exact on a chain)."""
    part = hop_distances(graph, frm)
    return len(part) - 1 if to in part else None


def default_hop_limit(graph: Graph, frm: str, to: str) -> int:
    """The hop limit a stream from ``frm`` to ``to`` gets when its traffic sets none:
    the longest path with a quarter (at least 2) more, at most :data:`MAX_HOP_LIMIT`."""
    longest = longest_hops(graph, frm, to) or 1
    return min(MAX_HOP_LIMIT, longest + max(2, longest // 4))


def stream_hop_limit(graph: Graph, traffic: Traffic) -> int:
    """The hop limit of ``traffic``'s bundles: its ``hop-limit``, or else the default."""
    if traffic.hop_limit is not None:
        return traffic.hop_limit
    return default_hop_limit(graph, traffic.frm, traffic.to)
