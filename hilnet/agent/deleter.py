"""Store deletions off the event loop, batched (one fsync for many).

Used by the agent for bundles the next hop acknowledged or that were
delivered: losing a batched delete in a crash only means a re-send that the
next hop acknowledges and drops as a duplicate, so batching costs no safety.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable

from hilnet.agent.store import BundleStore


class BatchDeleter:
    """Store deletions on their own thread, batched: one transaction per reason per batch.

    Deleting one by one cost one fsync each, on the event loop. Everything queued
    while the previous batch committed goes in the next, so the batch grows with
    the load. ``done`` callbacks run on the agent's loop with True (deleted), False
    (was not stored) or the exception.
    """

    def __init__(self, store: BundleStore, loop: asyncio.AbstractEventLoop):
        self.store = store
        self.loop = loop
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="hilnet-store-delete", daemon=True)
        self._thread.start()

    def delete(self, key: str, reason: str, done: Callable[[bool | BaseException], None]) -> None:
        self._queue.put((key, reason, done))

    async def delete_async(self, key: str, reason: str) -> bool:
        fut = self.loop.create_future()

        def done(res: bool | BaseException) -> None:
            if not fut.done():
                (fut.set_exception if isinstance(res, BaseException) else fut.set_result)(res)

        self.delete(key, reason, done)
        return await fut

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < 4096:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            by_reason: dict[str, list] = {}
            for it in batch:
                by_reason.setdefault(it[1], []).append(it)
            for reason, items in by_reason.items():
                results: list = []
                try:
                    gone = set(self.store.delete_many([it[0] for it in items], reason))
                    results = [it[0] in gone for it in items]
                except BaseException as e:  # a failed batch fails its callers, not the thread
                    results = [e] * len(items)
                for it, res in zip(items, results):
                    self._call(it[2], res)
            if stop:
                return

    def _call(self, done, res) -> None:
        try:
            self.loop.call_soon_threadsafe(done, res)
        except RuntimeError:
            pass  # the loop is closed: the agent is gone, the deletion is durable anyway

    def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join()
