"""The one interface every convergence layer adapter (CLA) offers the agent.

A CLA moves whole bundles (opaque bytes) to and from neighbours. The agent
owns the store; a CLA never keeps a bundle. The contract that makes "nothing
lost" hold end to end:

- On receive, the CLA hands the bundle over with :func:`deliver_to_sink`, the
  one path every CLA takes, and acknowledges it to the peer (TCPCLv4's final
  XFER_ACK, the serial CLA's final ack) only when that returned
  :attr:`SinkOutcome.ACCEPTED`, i.e. after the agent committed the bundle to its
  store. Any other outcome is answered with the protocol's refusal (XFER_REFUSE,
  the serial REFUSE) so the sender keeps its copy; MTCP cannot refuse and counts
  the bundle as dropped.
- On send, :meth:`ConvergenceLayer.send` returns only when the peer has
  acknowledged the whole bundle, and raises :class:`~hilnet.errors.ClaError`
  otherwise (session lost, refused, timed out). The agent deletes its copy only
  after a successful return. A CLA whose protocol has no acknowledgement (MTCP)
  says so with ``acknowledges = False``: its return means "sent", and the agent
  reports a ``sent`` event, not ``acked``.
- Malformed input from a peer is counted in ``stats`` under a reason and logged;
  it never raises out of the CLA's tasks.

Peers are named by their node id EID (``ipn:2.0``) as learned from the
session (TCPCLv4 SESS_INIT) or from configuration (serial).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from hilnet.bundle.cos import DEFAULT_RANK
from hilnet.errors import HilnetError

log = logging.getLogger(__name__)


class BundleSink(Protocol):
    """What the agent gives each CLA."""

    async def bundle_received(self, data: bytes, cla: str, peer: str | None) -> None:
        """Commit a received bundle; returns once it is durable. Raises StoreFullError to refuse."""
        ...

    def session_changed(self, cla: str, peer: str, up: bool, detail: dict[str, Any]) -> None:
        """A session to ``peer`` came up or went down (``detail`` says why)."""
        ...

    def tls_failed(self, cla: str, reason: str, peer: str | None, certified: str | None, address: str) -> None:
        """A session's TLS negotiation failed or was refused.

        ``peer`` is the node id claimed or meant; ``certified`` the certificate's node ids, comma separated.
        """
        ...


class ConvergenceLayer(Protocol):
    name: str
    stats: Counter[str]  # reason -> count: rejected frames, retransmissions, sessions...
    acknowledges: bool  # whether a returned send() means the peer committed the bundle

    async def start(self, sink: BundleSink) -> None:
        """Open ports / listen / connect; returns once running (sessions come later)."""
        ...

    def peers_up(self) -> set[str]:
        """Node ids with a session able to carry a bundle now."""
        ...

    async def send(self, peer: str, data: bytes, *, rank: int = DEFAULT_RANK) -> None:
        """Send one bundle; returns when ``peer`` acknowledged all of it, else raises ClaError.

        ``rank`` is the bundle's class-of-service rank (:mod:`hilnet.bundle.cos`,
        higher first): among the bundles it holds, a CLA sends the highest rank
        first, and where its protocol allows, ahead of a lower-ranked transfer
        already under way (docs/cla.md says how each CLA does it).
        """
        ...

    async def stop(self) -> None:
        """Close sessions cleanly (SESS_TERM where the protocol has one) and ports."""
        ...


class SinkOutcome(Enum):
    """What became of a bundle handed to the agent."""

    ACCEPTED = "accepted"  # committed to the store: acknowledge it
    REFUSED = "refused"  # the agent said no with a hilnet error (store full...): refuse it
    FAILED = "failed"  # the agent failed with a bug: logged with its traceback; refuse it, never ack


SINK_BUG = "sink_bug"  # the stats key of FAILED


@dataclass(frozen=True, slots=True)
class SinkResult:
    """The outcome of :func:`deliver_to_sink` and why.

    ``reason`` is the stats key part (``store_full`` for StoreFullError,
    ``sink_bug`` for a bug, "" when accepted); ``error`` is what the agent raised.
    """

    outcome: SinkOutcome
    reason: str = ""
    error: Exception | None = None

    @property
    def accepted(self) -> bool:
        return self.outcome is SinkOutcome.ACCEPTED


ACCEPTED = SinkResult(SinkOutcome.ACCEPTED)

# asyncio keeps only weak references to tasks: a commit whose caller was cancelled must not vanish.
_in_flight: set[asyncio.Task[SinkResult]] = set()


async def deliver_to_sink(sink: BundleSink, data: bytes, cla: str, peer: str | None, stats: Counter[str]) -> SinkResult:
    """Hand one received bundle (``data``, bytes) to the agent; every CLA's only way to do so.

    Decides for all CLAs alike, and counts in ``stats``:

    - the agent returned: ACCEPTED, counted ``bundles_received``. Only now may
      the CLA acknowledge the bundle, since only now is it durably stored.
    - the agent raised a :class:`~hilnet.errors.HilnetError` (store full, store
      failed): REFUSED, counted ``refused_<reason>`` (``refused_store_full``)
      and logged in one line; the CLA refuses the bundle and keeps running.
    - the agent raised anything else, a bug: FAILED, counted ``sink_bug`` and
      logged once with its traceback, here and nowhere else; the CLA refuses
      (never acknowledges) the bundle and keeps running.

    The agent's commit is shielded: a session torn down meanwhile cancels only
    the wait, not the commit half-way; the commit still counts and logs its
    outcome, and without an answer the sender keeps its copy.
    """
    task = asyncio.ensure_future(_hand_over(sink, data, cla, peer, stats))
    _in_flight.add(task)
    task.add_done_callback(_in_flight.discard)
    return await asyncio.shield(task)


async def _hand_over(sink: BundleSink, data: bytes, cla: str, peer: str | None, stats: Counter[str]) -> SinkResult:
    try:
        await sink.bundle_received(data, cla, peer)
    except HilnetError as exc:
        reason = refusal_reason(exc)
        stats["refused_" + reason] += 1
        log.info("%s %s: refused a bundle of %d bytes: %s", cla, peer or "?", len(data), exc)
        return SinkResult(SinkOutcome.REFUSED, reason, exc)
    except Exception as exc:  # a bug in the agent: not the peer's fault, so the link lives on
        stats[SINK_BUG] += 1
        log.exception("%s %s: the agent failed on a bundle of %d bytes; not acknowledged", cla, peer or "?", len(data))
        return SinkResult(SinkOutcome.FAILED, SINK_BUG, exc)
    stats["bundles_received"] += 1
    return ACCEPTED


def refusal_reason(exc: HilnetError) -> str:
    """The stats key part for a refusal: StoreFullError -> ``store_full``."""
    name = type(exc).__name__.removesuffix("Error")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
