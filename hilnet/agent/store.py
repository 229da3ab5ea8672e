"""The node's persistent bundle store: SQLite in WAL mode, durable when a put is answered.

Bundles are opaque bytes plus the columns the agent routes by (destination,
next hop, priority, expiry). When a put is answered the bundle survives
``kill -9`` of the process *and* power loss of the board, so the agent may
acknowledge it to the previous hop, which then deletes its copy.

:class:`BundleStore` is the one object the agent holds. Its reads
(:class:`~hilnet.agent.store_reader.StoreReader`) use their own connection and
never wait for a commit. Every write goes to its one writer
(:mod:`hilnet.agent.store_writer`), which batches the writes of all callers into
shared transactions (group commit: many writes, one fsync). Each write comes
twice: a blocking method for threads and tools (``put``, ``delete``...), and an
``..._async`` method for the agent's event loop, which queues the write at once
and returns an asyncio future (await it, or add a done callback); the loop
itself never touches the disk. The file, its schema and its durability choice
are described in :mod:`hilnet.agent.store_schema`, the writes in
:mod:`hilnet.agent.store_ops`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeVar

from hilnet.agent.store_ops import (
    Delete,
    DeleteOne,
    Expire,
    MarkForwarded,
    PruneDeletions,
    Put,
    PutAll,
    Quota,
    SetNextHop,
    WriteOp,
)
from hilnet.agent.store_reader import StoreReader
from hilnet.agent.store_schema import PutRequest, StoredBundle, open_store, prepare_put
from hilnet.agent.store_writer import StoreWriter
from hilnet.clock import Clock, MonotonicClock

T = TypeVar("T")


class BundleStore(StoreReader):
    """A crash-safe bundle store in one SQLite file at ``path``.

    ``quota_bytes`` bounds the sum of payload sizes, ``quota_bundles`` the number
    of bundles; a put over either raises StoreFullError and stores nothing.
    ``clock`` stamps ``stored_at_ns``, forwarding and deletion times (ns).
    ``synchronous="NORMAL"`` is for measurements only: it is not power-safe.
    Thread-safe; one process at a time. Use as a context manager or call close().
    """

    def __init__(
        self,
        path: str | os.PathLike,
        quota_bytes: int | None = None,
        quota_bundles: int | None = None,
        clock: Clock | None = None,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
    ):
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")
        path = os.fspath(path)
        opened = open_store(path, synchronous)
        super().__init__(path, opened.reader)
        self.clock = clock if clock is not None else MonotonicClock()
        self._lock_fd: int | None = opened.lock_fd
        quota = Quota(quota_bytes, quota_bundles)
        self._writer = StoreWriter(opened.writer, path, self.clock, quota, opened.count, opened.bytes_used)

    @property
    def quota_bytes(self) -> int | None:
        return self._writer.quota.max_bytes

    @property
    def quota_bundles(self) -> int | None:
        return self._writer.quota.max_bundles

    @property
    def commits(self) -> int:
        """Write transactions committed since the store opened; writes / commits is the mean batch."""
        return self._writer.commits

    def count(self) -> int:
        return self._writer.totals[0]

    def bytes_used(self) -> int:
        """Sum of stored payload sizes, bytes (what ``quota_bytes`` bounds)."""
        return self._writer.totals[1]

    # -- blocking writes: each returns once its transaction is committed --------------

    def put(
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
    ) -> StoredBundle:
        """Store one bundle; it is durable when this returns.

        Raises StoreFullError over quota (or disk full), DuplicateBundleError if
        ``key`` is stored already; in both cases nothing changed.
        """
        req = PutRequest(key, data, source, destination, priority, expires_at_ns, next_hop, meta)
        return self._writer.call(Put(prepare_put(req)))

    def put_many(self, items: Iterable[PutRequest]) -> list[StoredBundle]:
        """Store all ``items`` in one transaction, or none of them."""
        prepared = tuple(prepare_put(i) for i in items)
        return self._writer.call(PutAll(prepared)) if prepared else []

    def delete(self, key: str, reason: str) -> bool:
        """Remove ``key``, journaling ``reason`` (say 'delivered'); False if absent."""
        return self._writer.call(DeleteOne(key, _reason(reason)))

    def delete_many(self, keys: Iterable[str], reason: str) -> list[str]:
        """Remove every key in ``keys`` in one transaction; returns those that were there."""
        return self._writer.call(Delete(tuple(keys), _reason(reason)))

    def expire(self, now_ns: int) -> list[StoredBundle]:
        """Delete, with reason 'expired', every bundle with ``expires_at_ns <= now_ns``."""
        return self._writer.call(Expire(now_ns))

    def set_next_hop(self, key: str, next_hop: str | None) -> bool:
        """Route ``key`` via ``next_hop`` (None: unrouted); False if not stored."""
        return self._writer.call(SetNextHop(key, next_hop))

    def mark_forwarded(self, key: str, next_hop: str) -> bool:
        """Record that ``key`` was handed to ``next_hop`` now; False if not stored."""
        return self._writer.call(MarkForwarded(key, next_hop, self.clock.now_ns()))

    def prune_deletions(self, upto: int) -> int:
        """Drop journal rows with id <= ``upto`` once a checker has read them; returns how many."""
        return self._writer.call(PruneDeletions(upto))

    # -- asynchronous writes, for the event loop: queued at once, answered after the commit --

    def put_async(
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
    ) -> asyncio.Future[StoredBundle]:
        """:meth:`put` for the event loop: the future resolves once the bundle is durable.

        Cancelling it before its batch is taken drops the put; once the commit has
        begun the bundle is stored regardless (check with ``contains``).
        """
        req = PutRequest(key, data, source, destination, priority, expires_at_ns, next_hop, meta)
        return self._async(Put(prepare_put(req)))

    def delete_async(self, key: str, reason: str) -> asyncio.Future[bool]:
        """:meth:`delete` for the event loop. Made even if the future is cancelled."""
        return self._async(DeleteOne(key, _reason(reason)))

    def expire_async(self, now_ns: int) -> asyncio.Future[list[StoredBundle]]:
        """:meth:`expire` for the event loop."""
        return self._async(Expire(now_ns))

    def set_next_hop_async(self, key: str, next_hop: str | None) -> asyncio.Future[bool]:
        """:meth:`set_next_hop` for the event loop."""
        return self._async(SetNextHop(key, next_hop))

    def _async(self, op: WriteOp[T]) -> asyncio.Future[T]:
        return self._writer.submit_async(op, asyncio.get_running_loop())

    # -- lifecycle ------------------------------------------------------------------

    def close(self) -> None:
        """Commit the writes already queued, then close the store. Idempotent."""
        self._close_reader()
        # The writer's connection closes last: the last one out checkpoints and removes the WAL.
        self._writer.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def abandon(self) -> None:
        """Let go of the store as a killed process does: queued writes are lost, nothing more is committed.

        For a node killed inside a process that lives on (hilnet/agent/host.py);
        the store is then opened again on restart, as after ``kill -9``."""
        self._close_reader()
        self._writer.abandon()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> BundleStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reason(reason: str) -> str:
    if not reason:
        raise ValueError("a deletion needs a reason")
    return reason
