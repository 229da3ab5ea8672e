"""The engine's command queue: the only way other threads reach the timing loop.

A :class:`~hilnet.link.links.LinkHandle` never touches what the loop owns (the
shaper directions, their counters, the endpoints). It posts a command, a
function the loop thread runs between two passes, and wakes the loop through
an eventfd. A question (:meth:`CommandQueue.ask`) is a command whose answer
the caller waits for; the loop hands the answer back through the engine's
outbox, so whoever reads an answer has already seen, through the event
listener, every event the loop produced before it.

Before the loop thread starts and after it has finished, nothing else runs
the links: a question is then answered at once, on the caller's thread.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from hilnet.link.links import Link

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Command:
    """One function for the loop thread to run.

    ``link`` is the link it acts on: the command is skipped once that link has
    stopped, and an exception it raises stops that link alone. ``answer`` is
    set for a question: the loop puts the function's result (or exception)
    there, through the outbox unless ``answer_now`` (the question came from
    the outbox's own thread, which cannot wait for itself).
    """

    fn: Callable[[], Any]
    link: Link | None = None
    answer: Future[Any] | None = None
    answer_now: bool = False


class CommandQueue:
    """Commands for the loop thread, and the eventfd that wakes it for them. Thread-safe."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self.wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._lock = threading.Lock()
        self._loop: threading.Thread | None = None  # set while a loop thread answers questions
        self._drain: threading.Thread | None = None  # the outbox's thread, meanwhile

    def post(self, fn: Callable[[], object], link: Link | None = None) -> None:
        """Run ``fn`` on the loop thread at its next pass; does not wait."""
        self._queue.put(Command(fn, link))
        self.wake()

    def ask(self, fn: Callable[[], T]) -> T:
        """``fn()`` run where it cannot race the loop; waits for the answer and returns it."""
        with self._lock:
            me = threading.current_thread()
            queued = self._loop is not None and self._loop is not me
            if queued:
                answer: Future[T] = Future()
                self._queue.put(Command(fn, None, answer, answer_now=me is self._drain))
        if not queued:
            return fn()
        self.wake()
        return answer.result()

    def loop_started(self, loop: threading.Thread, drain: threading.Thread | None) -> None:
        """From now on questions go to the ``loop`` thread; ``drain`` is the outbox's thread."""
        with self._lock:
            self._loop = loop
            self._drain = drain

    def loop_finished(self) -> None:
        """Questions are answered on the caller's thread again (call, then :meth:`take` what is left)."""
        with self._lock:
            self._loop = None
            self._drain = None

    def take(self) -> Iterator[Command]:
        """The commands posted so far, oldest first (loop thread)."""
        while True:
            try:
                yield self._queue.get_nowait()
            except queue.Empty:
                return

    def wake(self) -> None:
        """Make the loop's wait return."""
        try:
            os.eventfd_write(self.wake_fd, 1)
        except OSError:
            pass  # closed: the loop has finished

    def woken(self) -> None:
        """Reset the eventfd after it woke the loop."""
        try:
            os.eventfd_read(self.wake_fd)
        except BlockingIOError:
            pass

    def close(self) -> None:
        os.close(self.wake_fd)
