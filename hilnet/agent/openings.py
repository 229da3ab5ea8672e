"""When the plan opens a contact with a peer: the instants an agent asks its CLAs to connect afresh.

A connector that tried while its link was down is waiting: in its backoff, or
in a connect whose SYN the kernel resends only a second or more later, and at a
scenario's time scale a wall second can be a scenario minute. The agent knows
the plan, so at each planned opening it tells its convergence layers
(``contact_started(peer)``: a connector not in a session drops its wait or its
pending connect and connects at once; one in a session ignores it). Until a
session with the peer is up it says so again every two round trips of the contact
plus a little: a SYN sent a moment before the link really opened (the emulator's
gate, or a real modem, late by a fraction of a second) is then resent by the
agent at once, not by the kernel a second later. Faults are not in the plan and
the agent is not told about them: after an unplanned cut the layers find out on
their own.

:func:`openings` is the pure core (contacts in, openings out);
:func:`kick_at_openings` the small driver that waits for them on a
:class:`~hilnet.clock.Clock`, and :class:`Kicks` what the agent holds: started at
configure, and again from the new plan time 0 when ``start`` moves it.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hilnet.clock import Clock
from hilnet.scenario.contact import Contact

if TYPE_CHECKING:
    from hilnet.agent.config import AgentConfig

# The first kick comes this long after the planned opening: the agent's clock and
# the link emulator's agree only to within their measured offset (tens of us), and a
# SYN sent a hair before the gate opens is dropped. 5 ms of wall time is 0.3 s of
# scenario time at scale 60.
GUARD_NS = 5_000_000
# Kicks again after two round trips of the contact plus this, while no session is up:
# long enough that a connect whose SYN got through has its SYN-ACK back before the next
# kick drops it, even on a loaded host; still well under the kernel's 1 s SYN resend.
RETRY_SLACK_NS = 100_000_000
MAX_KICKS = 10  # per opening; then the CLA's own backoff takes over
MAX_NAP_NS = 1_000_000_000  # the longest the agent's kicker sleeps before it reads its clock again


@dataclass(frozen=True, slots=True, order=True)
class Opening:
    """A contact with ``peer`` opens at ``t_ns`` (plan ns) and lasts until ``end_ns``; ``rtt_ns`` both ways."""

    t_ns: int
    peer: str
    end_ns: int
    rtt_ns: int


def openings(contacts: Iterable[Contact], node: str) -> tuple[Opening, ...]:
    """Each opening of a contact between ``node`` and a peer, in time order.

    Contacts in either direction count, and contacts that touch or overlap
    (a window split by a parameter change, or the two directions) are one
    opening: the link was up already at the later start. The round trip is
    the longest one-way time to the peer plus the longest back (0 for a
    direction the plan never opens).
    """
    spans: dict[str, list[tuple[int, int]]] = {}
    owlt: dict[tuple[str, bool], int] = {}  # (peer, outbound) -> longest one-way time
    for c in contacts:
        if node not in (c.frm, c.to) or c.frm == c.to or c.end_ns <= c.start_ns:
            continue
        out = c.frm == node
        peer = c.to if out else c.frm
        spans.setdefault(peer, []).append((c.start_ns, c.end_ns))
        owlt[peer, out] = max(owlt.get((peer, out), 0), c.owlt_ns)
    found = []
    for peer, list_ in spans.items():
        rtt = owlt.get((peer, True), 0) + owlt.get((peer, False), 0)
        merged: list[list[int]] = []
        for start, end in sorted(list_):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        found += [Opening(start, peer, end, rtt) for start, end in merged]
    return tuple(sorted(found))


async def kick_at_openings(
    clock: Clock,
    epoch_ns: int,
    plan: Iterable[Opening],
    kick: Callable[[str], None],
    ready: Callable[[str], bool] = lambda peer: False,
    wait: Callable[[int], Awaitable[None]] | None = None,
    catch_up: bool = False,
) -> None:
    """Call ``kick(peer)`` at each opening still ahead, ``GUARD_NS`` after it on ``clock`` (plan time 0 =
    ``epoch_ns``), then every two round trips + ``RETRY_SLACK_NS`` while ``ready(peer)`` is false, the contact
    lasts and fewer than ``MAX_KICKS`` were made. ``wait(deadline_ns)`` waits until the clock reads the
    deadline (default: the clock's own wait). ``catch_up``: plan time 0 was given late (a ``start``
    that came after it), so an opening already past whose contact lasts is kicked at once.
    """
    wait = wait or clock.wait_until_ns
    due: list[tuple[int, int, Opening]] = []  # (clock ns, kicks so far, opening)
    for o in plan:
        first = epoch_ns + o.t_ns + GUARD_NS
        now = clock.now_ns()
        if first >= now:  # one already open when the agent started (a restart) has new connectors
            heapq.heappush(due, (first, 0, o))
        elif catch_up and now < epoch_ns + o.end_ns:  # its connectors may be deep in their backoff
            heapq.heappush(due, (now, 0, o))
    while due:
        at, kicks, o = heapq.heappop(due)
        await wait(at)
        if kicks and ready(o.peer):
            continue
        kick(o.peer)
        again = at + 2 * o.rtt_ns + RETRY_SLACK_NS
        if kicks + 1 < MAX_KICKS and again < epoch_ns + o.end_ns:
            heapq.heappush(due, (again, kicks + 1, o))


def start_kicks(
    clock: Clock,
    cfg: AgentConfig,
    nodes: Mapping[str, str],
    clas: Sequence[object],
    ready: Callable[[str], bool],
    catch_up: bool = False,
) -> Callable[[], Awaitable[None]]:
    """Kick ``clas`` (those with ``contact_started``) at ``cfg``'s openings; returns what stops it.

    ``nodes`` maps scenario node names (the plan's) to the node ids the CLAs know
    peers by; ``ready(node_id)`` says whether a session with that peer is up.
    """

    def kick(peer: str) -> None:
        nid = nodes.get(peer)
        for cla in clas if nid is not None else ():
            started = getattr(cla, "contact_started", None)  # a CLA without connectors has nothing to do
            if started is not None:
                started(nid)

    def peer_ready(peer: str) -> bool:
        nid = nodes.get(peer)
        return nid is None or ready(nid)

    async def nap_until(deadline_ns: int) -> None:
        # As the forwarder waits: sleep on the loop and read the agent's clock again, so that a
        # virtual clock a test moves by hand is not jumped ahead by this task.
        while (left := deadline_ns - clock.now_ns()) > 0:
            await asyncio.sleep(min(left, MAX_NAP_NS) / 1e9)

    plan = openings(cfg.contacts, cfg.node)
    task = asyncio.create_task(
        kick_at_openings(clock, cfg.epoch_ns or 0, plan, kick, peer_ready, nap_until, catch_up=catch_up)
    )

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return stop


class Kicks:
    """:func:`start_kicks` for an agent, started afresh when its plan time 0 moves (``start``)."""

    def __init__(
        self,
        clock: Clock,
        cfg: AgentConfig,
        nodes: Mapping[str, str],
        clas: Sequence[object],
        ready: Callable[[str], bool],
    ):
        self._clas = clas
        self._again = lambda cfg, late: start_kicks(clock, cfg, nodes, clas, ready, catch_up=late)
        self._stop = self._again(cfg, False)

    async def restart(self, cfg: AgentConfig) -> None:
        """Stop the kicks of the old plan time and start those of ``cfg``'s ``epoch_ns``, kicking at
        once the contacts open now: a start that came late must not leave them to the backoff."""
        await self._stop()
        for cla in self._clas:  # a CLA that keeps the plan on its own clock (LTP's windows) follows it
            moved = getattr(cla, "plan_moved", None)
            if moved is not None:
                moved(cfg)
        self._stop = self._again(cfg, True)

    async def stop(self) -> None:
        await self._stop()
