"""One thread per ION node that runs its commands in order, so the controller never waits on ION.

ION's programs can take seconds to answer: each takes the node's SDR lock, which
ION's own daemons hold for as long as, say, a TCP connect to a neighbour behind an
outage takes. The controller's sequencer must not stall with them (an injection
due later would go in late), so configure and inject hand their command to this
worker and return; the worker runs them one after the other, in the order given.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

Job = tuple[Callable[[], None], Callable[[str], None]]  # (run it, tell it why it will not run)


class Worker:
    def __init__(self, name: str):
        self.name = name
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._jobs = queue.Queue()
        self._thread = threading.Thread(target=self._run, args=(self._jobs,), name=self.name, daemon=True)
        self._thread.start()

    def submit(self, run: Callable[[], None], fail: Callable[[str], None]) -> None:
        """Run ``run`` after what was submitted before; ``fail(why)`` if the worker ends first."""
        if self._thread is None or not self._thread.is_alive():
            fail("the node is not running")
            return
        self._jobs.put((run, fail))

    def stop(self, why: str, timeout_s: float = 30.0) -> None:
        """Let the running job finish, fail the waiting ones with ``why``; returns when the thread is done."""
        jobs = self._jobs
        waiting: list[Job] = []
        while True:
            try:
                job = jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                waiting.append(job)
        jobs.put(None)
        for _run, fail in waiting:
            fail(why)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        self._thread = None

    @staticmethod
    def _run(jobs: queue.Queue[Job | None]) -> None:
        while True:
            job = jobs.get()
            if job is None:
                return
            job[0]()
