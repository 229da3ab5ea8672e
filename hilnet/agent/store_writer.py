"""The store's one writer: every write, batched into shared transactions on one connection.

A durable commit costs an fsync (a few ms on an SD card). An agent receiving
from several sessions while it deletes what its peers acknowledged would spend
its time waiting for the disk one write at a time, and an fsync on its event
loop stalls every session. So every write (puts, deletions, expiry, next-hop
updates: the operations of :mod:`hilnet.agent.store_ops`) is queued to one
:class:`StoreWriter`, which owns the write connection. Whatever queued while the
previous commit was being fsynced goes into the next transaction (up to
``max_batch`` writes or ``max_batch_bytes``), so the batch grows with the load
and a lone write waits for nobody. Each caller learns its own answer only after
the commit that holds its write: a put is durable when its caller hears of it.

Who commits: the writer's thread, for what asynchronous callers queue
(:meth:`StoreWriter.submit`; the agent's event loop never touches the disk). A
blocking caller (:meth:`StoreWriter.call`) that finds no commit under way takes
the writer's turn and commits the batch holding its write itself: handing a
lone write to the thread and back costs two thread wake-ups per write, a fifth
of the single durable puts/s that benchmarks/store.py measures. Either way one
committer at a time holds the turn and the one write connection, and batches
are taken from the one queue in arrival order.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections import deque
from concurrent.futures import Future
from typing import Any, TypeVar, cast

from hilnet.agent.store_ops import Quota, Transaction, WriteOp, apply_all
from hilnet.agent.store_schema import store_error
from hilnet.clock import Clock
from hilnet.errors import StoreError

T = TypeVar("T")

# Who hears a write's answer: a blocking caller's Future, or an event loop's future.
_Answer = Future[Any] | asyncio.Future[Any]
_Queued = tuple[WriteOp[Any], _Answer]
# An operation taken into a batch, with the future to answer (None: its caller gave up).
_Taken = tuple[WriteOp[Any], _Answer | None]


class StoreWriter:
    """The one owner of the store's write connection ``db`` (see the module docstring).

    ``count`` and ``used`` are the store's committed totals (bundles, bytes) when
    it opens; ``clock`` stamps each transaction (ns). Closing commits what is
    queued, then closes ``db``.
    """

    def __init__(
        self,
        db: sqlite3.Connection,
        path: str,
        clock: Clock,
        quota: Quota,
        count: int,
        used: int,
        *,
        max_batch: int = 4096,
        max_batch_bytes: int = 64 << 20,
    ):
        self.path = path
        self.quota = quota
        self.max_batch = max_batch
        self.max_batch_bytes = max_batch_bytes
        self.commits = 0  # transactions made; writes / commits is the mean batch size
        self._db = db
        self._clock = clock
        self._totals = (count, used)  # replaced whole after each commit, so readers see a consistent pair
        self._mutex = threading.Lock()  # guards the queue, _busy and _closed; never held across a commit
        self._wake = threading.Condition(self._mutex)
        self._queue: deque[_Queued] = deque()
        self._busy = False  # someone holds the writer's turn
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="hilnet-store-writer", daemon=True)
        self._thread.start()

    @property
    def totals(self) -> tuple[int, int]:
        """(bundles, bytes) stored as of the last commit."""
        return self._totals

    def submit(self, op: WriteOp[T]) -> Future[T]:
        """Queue ``op`` for the writer's thread; the future resolves after the commit that holds it."""
        fut: Future[T] = Future()
        self._submit(op, fut)
        return fut

    def submit_async(self, op: WriteOp[T], loop: asyncio.AbstractEventLoop) -> asyncio.Future[T]:
        """:meth:`submit` for an event loop: a future of ``loop``, resolved on it.

        The answers of one commit reach each loop in one hand-over (one wake-up
        of the loop, not one per write). Cancelling the future before its batch
        is taken drops a cancellable write, as with :meth:`submit`."""
        fut: asyncio.Future[T] = loop.create_future()
        self._submit(op, fut)
        return fut

    def _submit(self, op: WriteOp[Any], fut: _Answer) -> None:
        with self._mutex:
            self._enqueue(op, fut)
            if not self._busy:
                self._wake.notify()

    def call(self, op: WriteOp[T]) -> T:
        """Make ``op`` and return its answer once committed (blocking; see the module docstring)."""
        fut: Future[T] | None = None
        with self._mutex:
            if self._busy or self._queue:
                fut = Future()
                self._enqueue(op, fut)
            elif self._closed:
                raise StoreError(f"{self.path}: store is closed")
            lead = not self._busy
            self._busy = True
        if fut is None:  # nothing else to batch with: no queue, no future
            try:
                answer = self._answers([op])[0]
            finally:
                self._give_turn_back()
            if isinstance(answer, BaseException):
                raise answer
            return cast(T, answer)
        if lead:
            self._commit_until(fut)
        return fut.result()

    def close(self) -> None:
        """Commit what is queued, stop the thread and close the connection. Idempotent."""
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            self._wake.notify()
        self._thread.join()
        self._db.close()

    def abandon(self) -> None:
        """Stop as ``kill -9`` stops the process: what is queued is dropped, never committed.

        A commit under way finishes (it either reached the disk or it did not, as
        at a kill); nobody hears of the dropped writes. Idempotent."""
        with self._mutex:
            self._closed = True
            self._queue.clear()
            self._wake.notify()
        self._thread.join()
        self._db.close()  # an open transaction is rolled back, as the next opener would

    # -- the turn -----------------------------------------------------------------

    def _enqueue(self, op: WriteOp[Any], fut: _Answer) -> None:
        if self._closed:
            raise StoreError(f"{self.path}: store is closed")
        self._queue.append((op, fut))

    def _run(self) -> None:
        while True:
            with self._mutex:
                while self._busy or not self._queue:
                    if self._closed and not self._busy and not self._queue:
                        return
                    self._wake.wait()
                self._busy = True
            self._commit_until(None)

    def _commit_until(self, done: Future[Any] | None) -> None:
        """Commit batches while holding the turn: all that is queued, or (a caller) until ``done``."""
        try:
            while True:
                with self._mutex:
                    if not self._queue or (done is not None and done.done()):
                        break
                    batch = self._take()
                self._commit(batch)
        finally:
            self._give_turn_back()

    def _give_turn_back(self) -> None:
        with self._mutex:
            self._busy = False
            if self._queue or self._closed:
                self._wake.notify()  # the thread takes over what others queued meanwhile

    def _take(self) -> list[_Queued]:
        batch: list[_Queued] = []
        size = 0
        while self._queue and len(batch) < self.max_batch and (not batch or size < self.max_batch_bytes):
            op, fut = self._queue.popleft()
            batch.append((op, fut))
            size += op.size
        return batch

    # -- committing ---------------------------------------------------------------

    def _commit(self, batch: list[_Queued]) -> None:
        taken: list[_Taken] = []
        for op, fut in batch:
            if _still_wanted(fut):
                taken.append((op, fut))
            elif not op.cancellable:
                taken.append((op, None))  # a deletion is made even if nobody waits for its answer
        if not taken:
            return
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], object]]] = {}
        for (_, answer_to), res in zip(taken, self._answers([op for op, _ in taken])):
            if answer_to is None:
                continue
            if isinstance(answer_to, asyncio.Future):
                by_loop.setdefault(answer_to.get_loop(), []).append((answer_to, res))
            elif isinstance(res, BaseException):
                answer_to.set_exception(res)
            else:
                answer_to.set_result(res)
        for loop, answers in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, answers)
            except RuntimeError:
                pass  # the loop is closed: nobody is left to hear the answers

    def _answers(self, ops: list[WriteOp[Any]]) -> list[object]:
        """Commit ``ops`` together; one answer (a value or an exception) per op."""
        try:
            results = self._transact(ops)
            if not isinstance(results, StoreError):
                return results
            if len(ops) == 1:
                return [results]
            # The transaction failed as a whole (I/O, disk full): each write alone, so only the culprit fails.
            return [_one(self._transact([op])) for op in ops]
        except BaseException as exc:  # a bug must not leave callers waiting forever
            return [exc] * len(ops)

    def _transact(self, ops: list[WriteOp[Any]]) -> list[object] | StoreError:
        """Apply ``ops`` in one transaction; their answers, or the StoreError that failed them all."""
        db = self._db
        count, used = self._totals
        tx = Transaction(db, self._clock.now_ns(), count, used, self.quota)
        try:
            db.execute("BEGIN IMMEDIATE")
            results = apply_all(tx, ops)
            db.execute("COMMIT")  # with synchronous=FULL, this is the fsync
        except BaseException as exc:
            if db.in_transaction:
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the connection is broken; the original error says why
            if isinstance(exc, sqlite3.Error):
                return store_error(self.path, exc)
            raise
        self._totals = (tx.count, tx.used)
        self.commits += 1
        return results


def _one(result: list[object] | StoreError) -> object:
    return result if isinstance(result, StoreError) else result[0]


def _still_wanted(fut: _Answer) -> bool:
    """Whether a write's caller still waits for it (and, for a blocking caller, mark it running)."""
    if isinstance(fut, asyncio.Future):
        # Read from the writer's thread: at worst a cancel that lands right
        # after this read finds the write made, as a cancel after the batch does.
        return not fut.cancelled()
    return fut.set_running_or_notify_cancel()


def _settle(answers: list[tuple[asyncio.Future[Any], object]]) -> None:
    """On the loop: hand each future its answer, unless its caller cancelled it meanwhile."""
    for fut, res in answers:
        if fut.done():
            continue
        if isinstance(res, BaseException):
            fut.set_exception(res)
        else:
            fut.set_result(res)
