"""The contact plan as the faults leave it: what the plan oracle judges deliveries against.

The contact plan (:mod:`hilnet.scenario.plan`) is what agents are told, and the
faults are not in it: they are unplanned. The oracle asks another question,
the earliest arrival the plan *and* the faults allow, so that a bundle held by
a cut is judged against the end of the cut, not against a path that was not
there. Here a fault closes contacts:

- a ``cut`` closes both directions of its link for its span;
- a ``crash`` closes every contact from and to its node until the restart (for
  good without one), a ``power-cut`` until the power comes back;
- an ``error-burst`` closes nothing (it corrupts, the convergence layer
  retransmits: that is the agents' work, measured against the plan).

Pure: plan and scenario in, contacts out. Times are those of the contacts
given (the checks use the plan's wall-time contacts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from hilnet.scenario.contact import Contact
from hilnet.scenario.model import Crash, Cut, PowerCut, Scenario


@dataclass(frozen=True, slots=True)
class Closure:
    """A span (scenario ns, end exclusive) in which a fault closes ``link``'s contacts, or ``node``'s."""

    start_ns: int
    end_ns: int
    link: str | None = None
    node: str | None = None

    def closes(self, link: str, contact: Contact) -> bool:
        """Whether this closure applies to ``contact`` of ``link`` at all (whatever the times)."""
        if self.link is not None:
            return self.link == link
        return self.node in (contact.frm, contact.to)


def closures(scenario: Scenario) -> tuple[Closure, ...]:
    """The spans the scenario's faults close, in scenario time."""
    forever = scenario.clock.duration_ns + 1
    out = []
    for f in scenario.faults:
        if isinstance(f, Cut):
            out.append(Closure(f.at_ns, f.at_ns + f.for_ns, link=f.link))
        elif isinstance(f, Crash):
            back = forever if f.restart_after_ns is None else f.at_ns + f.restart_after_ns
            out.append(Closure(f.at_ns, max(back, f.at_ns), node=f.node))
        elif isinstance(f, PowerCut):
            out.append(Closure(f.at_ns, f.at_ns + f.for_ns, node=f.node))
    return tuple(out)


def without_faults(
    contacts: Sequence[Contact],
    links: Sequence[str],
    shut: Iterable[Closure],
    to_contact_time: Callable[[int], int] = lambda t: t,
) -> tuple[Contact, ...]:
    """``contacts`` (``links[i]`` names the link of ``contacts[i]``) with each closure's span cut out.

    ``to_contact_time`` maps a closure's scenario ns onto the contacts' timebase
    (wall time for the plan's ``wall_contacts``). A contact a span splits becomes
    the pieces before and after it; one the span covers disappears.
    """
    if len(contacts) != len(links):
        raise ValueError(f"{len(contacts)} contacts but {len(links)} link names")
    shut = tuple(shut)
    out: list[Contact] = []
    for contact, link in zip(contacts, links, strict=True):
        pieces = [contact]
        for c in shut:
            if c.closes(link, contact):
                pieces = [
                    p for piece in pieces for p in _cut(piece, to_contact_time(c.start_ns), to_contact_time(c.end_ns))
                ]
        out += pieces
    return tuple(out)


def _cut(contact: Contact, start_ns: int, end_ns: int) -> list[Contact]:
    """What is left of ``contact`` outside ``[start_ns, end_ns)``."""
    if end_ns <= contact.start_ns or start_ns >= contact.end_ns:
        return [contact]
    left = []
    if start_ns > contact.start_ns:
        left.append(replace(contact, end_ns=start_ns))
    if end_ns < contact.end_ns:
        left.append(replace(contact, start_ns=end_ns))
    return left
