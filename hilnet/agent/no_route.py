"""Saying that a stored bundle has no way out: one ``no-route`` event per bundle, and a warning.

A bundle nobody routes stays stored (the router never drops one), which is
right, but silent: an operator wiring a peer by hand saw a bundle sit in the
store with no sign of why. Each bundle is reported once when it finds no next
hop, and once more if it later had a route and lost it again; the log line is
a warning, so the default verbosity shows it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from hilnet.agent import protocol as ev
from hilnet.agent.nodes import node_id

log = logging.getLogger("hilnet.agent")


class NoRouteReports:
    """Which bundles were reported as unroutable; ``emit`` is the agent's, ``session_up(peer)`` its CLAs'.

    ``planned``: the node routes by a contact plan, which decides when a peer is
    reachable whatever its session says, so a missing ``routes`` entry is no hint then.
    """

    def __init__(self, emit: Callable[..., None], session_up: Callable[[str], bool], *, planned: bool):
        self._emit = emit
        self._session_up = session_up
        self._planned = planned
        self._reported: set[str] = set()

    def unrouted(self, key: str, dest: str, reason: str) -> None:
        """Bundle ``key`` for ``dest`` found no next hop for ``reason``: report it, once."""
        if key in self._reported:
            return
        self._reported.add(key)
        peer = node_id(dest)
        if not self._planned and self._session_up(
            peer
        ):  # the usual slip: a directly connected peer that no route names
            reason += f"; a session to {peer} is up, but no route names it: add routes: {{'{peer}': '{peer}'}}"
        self._emit(ev.NoRoute, bundle=key, dest=dest, reason=reason)
        log.warning("no route for bundle %s to %s: %s (it stays stored)", key, dest, reason)

    def routed(self, key: str) -> None:
        """Bundle ``key`` has a route again, or left the store: report it anew if it loses one."""
        self._reported.discard(key)
