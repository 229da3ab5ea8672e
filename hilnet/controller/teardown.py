"""Take a run's testbed down: ask each node's stack its status, stop them, record link statistics, stop links.

Everything is attempted whatever fails before it (Ctrl-C, a dead node, a
broken link): what could not be cleaned up comes back as a list of lines
for the run's verdict, and nothing here raises.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hilnet.errors import LinkError
from hilnet.stacks.base import DRIVER_ERRORS, StackDriver

STATUS_WAIT_S = 3.0  # all nodes together: each is asked in its own thread; a silent one is not waited for longer

Note = Callable[..., None]  # records a controller event: note(kind, **fields)


def tear_down(
    stacks: Mapping[str, StackDriver],
    engine: Any,
    handles: Mapping[str, Any],
    testbed: Any,
    note: Note,
) -> list[str]:
    """Stop everything of one run; returns the problems left behind (empty when clean)."""
    problems: list[str] = []
    _record_status(stacks, note)
    _stop_stacks(stacks, problems)
    if engine is not None:
        for name, h in handles.items():
            try:
                note("link-stats", link=name, stats=h.stats())
            except LinkError as e:
                problems.append(f"link {name} stats: {e}")
        try:
            engine.stop()
            engine.join(5)
            engine.close()
        except Exception as e:  # keep tearing down the rest
            problems.append(f"engine: {e}")
    if testbed is not None:
        problems += testbed.teardown()
    return problems


def _record_status(stacks: Mapping[str, StackDriver], note: Note) -> None:
    """Ask every live node's stack for its status at once, and record the answers that come in time."""
    answers: dict[str, dict[str, Any]] = {}

    def ask(name: str, driver: StackDriver) -> None:
        try:
            st = driver.status(STATUS_WAIT_S)
        except DRIVER_ERRORS:
            return
        # hilnet's agent: its status reply; another stack: what it could tell (None: not observable)
        answers[name] = dict(st.detail) or {"stored": st.stored_bundles, "bytes": st.stored_bytes}

    _each(stacks, ask, (name for name, d in stacks.items() if d.alive()))
    for name in stacks:
        if name in answers:
            note("agent-status", node=name, stack=stacks[name].stack, status=answers[name])


def _stop_stacks(stacks: Mapping[str, StackDriver], problems: list[str]) -> None:
    # All nodes at once: an agent whose shutdown waits on a session over a link
    # that is down takes seconds to give up, and 50 of them in a row took minutes.
    def stop(name: str, driver: StackDriver) -> None:
        try:
            driver.stop()
        except Exception as e:  # keep tearing down the rest
            problems.append(f"node {name} ({driver.stack}): {e}")

    _each(stacks, stop, iter(stacks))


def _each(stacks: Mapping[str, StackDriver], work: Callable[[str, StackDriver], None], names: Iterable[str]) -> None:
    threads = [threading.Thread(target=work, args=(n, stacks[n]), name=f"teardown-{n}") for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
