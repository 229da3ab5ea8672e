"""The engine's outbox: what the timing loop produces, handed to a thread that may block.

The loop thread must never write a file, flush a log or redraw a terminal: a
late wake-up there is a late delivery on every link. So it only puts items
on a queue (a few hundred ns each); the outbox's own thread takes them in
order and does the slow part:

- an event (a dict) goes to the engine's listener (``on_event``);
- anything else is a function to run there: marking a handle stopped once its
  ``link-stopped`` event is out, answering a question asked through the
  command queue (so an answer never overtakes an earlier event).

A listener that raises is a broken run, not a detail: the outbox keeps the
error as a :class:`~hilnet.errors.LinkError` naming its cause, calls the
listener no more, and asks the engine to stop (``on_failure``). The engine
and its handles raise that error from then on.

Without a thread (an engine driven by hand with ``run_once()``), the caller
drains the outbox itself with :meth:`Outbox.deliver`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from hilnet.errors import LinkError

EventCallback = Callable[[dict[str, Any]], None]
Item = dict[str, Any] | Callable[[], None] | None  # None: no more items


class Outbox:
    """A FIFO of events and jobs from the loop thread, run on a thread of its own."""

    def __init__(self, listener: EventCallback | None, on_failure: Callable[[], None]):
        self._listener = listener
        self._on_failure = on_failure
        self._queue: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.failure: LinkError | None = None  # the listener's error, once it raised

    # --- loop thread -------------------------------------------------------
    def emit(self, event: dict[str, Any]) -> None:
        """Hand ``event`` to the listener, later and elsewhere."""
        self._queue.put(event)

    def call(self, job: Callable[[], None]) -> None:
        """Run ``job`` after every item put before it; it must not raise."""
        self._queue.put(job)

    # --- lifetime ----------------------------------------------------------
    def start(self) -> threading.Thread:
        """Start the outbox's thread; returns it."""
        self._thread = threading.Thread(target=self._drain, name="hilnet-link-outbox", daemon=True)
        self._thread.start()
        return self._thread

    def finish(self) -> None:
        """No more items will come: the thread ends after the ones queued (loop thread)."""
        self._queue.put(None)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def deliver(self) -> None:
        """Run every queued item now, on the caller's thread (only when no outbox thread runs)."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                self._run(item)

    def check(self) -> None:
        """Raise the listener's error, if it failed."""
        if self.failure is not None:
            raise self.failure

    # --- outbox thread -----------------------------------------------------
    def _drain(self) -> None:
        while (item := self._queue.get()) is not None:
            self._run(item)

    def _run(self, item: dict[str, Any] | Callable[[], None]) -> None:
        if not isinstance(item, dict):
            item()
            return
        if self._listener is None or self.failure is not None:
            return
        try:
            self._listener(item)
        except Exception as e:  # noqa: BLE001 - any listener error ends the run; it is kept with its cause
            failure = LinkError(
                f"the link event listener failed on a {item.get('event')!r} event: {type(e).__name__}: {e}"
            )
            failure.__cause__ = e
            self.failure = failure
            self._on_failure()
