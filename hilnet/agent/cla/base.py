"""The one interface every convergence layer adapter (CLA) offers the agent.

A CLA moves whole bundles (opaque bytes) to and from neighbours. The agent
owns the store; a CLA never keeps a bundle. The contract that makes "nothing
lost" hold end to end:

- On receive, the CLA calls :meth:`BundleSink.bundle_received` and only
  acknowledges the bundle to the peer (TCPCLv4's final XFER_ACK, the serial
  CLA's final ack) after that call returned, i.e. after the agent committed the
  bundle to its store. If it raises :class:`~hilnet.errors.StoreFullError` the
  CLA refuses the transfer (XFER_REFUSE) so the sender keeps its copy.
- On send, :meth:`ConvergenceLayer.send` returns only when the peer has
  acknowledged the whole bundle, and raises :class:`~hilnet.errors.ClaError`
  otherwise (session lost, refused, timed out). The agent deletes its copy only
  after a successful return.
- Malformed input from a peer is counted in ``stats`` under a reason and logged;
  it never raises out of the CLA's tasks.

Peers are named by their node id EID (``ipn:2.0``) as learned from the
session (TCPCLv4 SESS_INIT) or from configuration (serial).
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol


class BundleSink(Protocol):
    """What the agent gives each CLA."""

    async def bundle_received(self, data: bytes, cla: str, peer: str | None) -> None:
        """Commit a received bundle; returns once it is durable. Raises StoreFullError to refuse."""
        ...

    def session_changed(self, cla: str, peer: str, up: bool, detail: dict) -> None:
        """A session to ``peer`` came up or went down (``detail`` says why)."""
        ...


class ConvergenceLayer(Protocol):
    name: str
    stats: Counter  # reason -> count: rejected frames, retransmissions, sessions...

    async def start(self, sink: BundleSink) -> None:
        """Open ports / listen / connect; returns once running (sessions come later)."""
        ...

    def peers_up(self) -> set[str]:
        """Node ids with a session able to carry a bundle now."""
        ...

    async def send(self, peer: str, data: bytes) -> None:
        """Send one bundle; returns when ``peer`` acknowledged all of it, else raises ClaError."""
        ...

    async def stop(self) -> None:
        """Close sessions cleanly (SESS_TERM where the protocol has one) and ports."""
        ...
