"""Group commit: many puts from many callers, one transaction and one fsync.

A durable put costs an fsync (a few ms on an SD card); an agent receiving
from several sessions at once would spend its time waiting for the disk one
bundle at a time. The committer batches whatever queued up during the
previous commit, so the batch grows with the load and a lone put waits for
nobody. Each caller still learns its own result, after the commit that holds
its bundle.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

from hilnet.agent.store import BundleStore, PutRequest, StoredBundle, _prepare
from hilnet.errors import StoreError

_STOP = object()


class GroupCommitter:
    """Batches puts from many threads or asyncio tasks into shared transactions.

    A commit thread takes everything queued while the previous commit was being
    fsynced (up to ``max_batch`` puts or ``max_batch_bytes``) and commits it as one
    transaction, so the batch grows with the load and a lone put pays no wait.
    Each caller is resolved after the commit that holds its bundle, with its own
    result: a StoreFullError or DuplicateBundleError refuses that put only.
    """

    def __init__(self, store: BundleStore, *, max_batch: int = 1024, max_batch_bytes: int = 64 << 20):
        self.store = store
        self.max_batch = max_batch
        self.max_batch_bytes = max_batch_bytes
        self.commits = 0  # transactions made; puts / commits is the mean batch size
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="hilnet-store-commit", daemon=True)
        self._thread.start()

    def submit(
        self,
        key: str,
        data: bytes,
        *,
        source: str,
        destination: str,
        priority: int,
        expires_at_ns: int,
        next_hop: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> Future[StoredBundle]:
        """Queue a put; the future resolves once it is durable (or with its StoreError)."""
        if self._closed:
            raise StoreError("group committer is closed")
        prepared = _prepare(PutRequest(key, data, source, destination, priority, expires_at_ns, next_hop, meta))
        fut: Future[StoredBundle] = Future()
        self._queue.put((prepared, fut))
        return fut

    def put(self, key: str, data: bytes, **columns: Any) -> StoredBundle:
        """Blocking put through the shared commit: durable on return."""
        return self.submit(key, data, **columns).result()

    async def put_async(self, key: str, data: bytes, **columns: Any) -> StoredBundle:
        """Awaitable put through the shared commit: durable once it returns.

        Cancelling the awaiting task before its batch is taken drops the put; once the
        commit has begun the bundle is stored regardless (check with ``contains``).
        """
        return await asyncio.wrap_future(self.submit(key, data, **columns))

    def _run(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            if item is _STOP:
                return
            batch, size = [item], len(item[0].data)
            while len(batch) < self.max_batch and size < self.max_batch_bytes:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
                size += len(item[0].data)
            # A put whose caller gave up before its commit began is not made.
            batch = [(p, f) for p, f in batch if f.set_running_or_notify_cancel()]
            if not batch:
                continue
            try:
                results = self.store._commit_batch([p for p, _ in batch])
            except BaseException as exc:  # a bug must not leave callers waiting forever
                results = [exc] * len(batch)
            self.commits += 1
            for (_, fut), res in zip(batch, results):
                if isinstance(res, BaseException):
                    fut.set_exception(res)
                else:
                    fut.set_result(res)

    def close(self) -> None:
        """Commit what is queued, then stop the commit thread (the store stays open)."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join()

    def __enter__(self) -> GroupCommitter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
