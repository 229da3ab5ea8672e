"""The store's writes as values, and what each does inside the writer's transaction.

Every change to the store is one of the operations below, queued to the one
:class:`~hilnet.agent.store_writer.StoreWriter`, which applies a batch of them in
one transaction (:func:`apply_all`). An operation either takes effect or raises
StoreFullError / DuplicateBundleError and changes nothing, and the rest of the
batch goes on; an sqlite3.Error fails the whole transaction.

Every removal leaves a row (key, reason, time) in the ``deleted`` journal, so a
checker can account for every bundle that was ever stored.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Generic, TypeVar

from hilnet.agent.store_schema import COLUMNS, PreparedPut, StoredBundle, row_to_bundle
from hilnet.errors import DuplicateBundleError, StoreFullError

T = TypeVar("T")

_MAX_PARAMS = 500  # keys per DELETE: SQLite caps the number of bound parameters


@dataclass(frozen=True, slots=True)
class Quota:
    """Bounds on the sum of payload sizes (bytes) and on the number of bundles; None: no bound."""

    max_bytes: int | None = None
    max_bundles: int | None = None


class Transaction:
    """One open write transaction: its time stamp (ns, the store's clock) and running totals.

    ``count`` and ``used`` (bytes) start at the store's committed totals and follow
    every insert and removal, so each put is checked against the quota as it stands
    after the writes before it in the same batch.
    """

    def __init__(self, db: sqlite3.Connection, now_ns: int, count: int, used: int, quota: Quota):
        self.db = db
        self.now_ns = now_ns
        self.count = count
        self.used = used
        self.quota = quota

    def refuse(self, p: PreparedPut, count: int, used: int, stored: bool | None) -> None:
        """Raise what a put of ``p`` meets with ``count`` bundles and ``used`` bytes stored, if anything.

        ``stored``: whether ``p``'s key is stored; None: look it up only when the
        store is full (otherwise the INSERT's UNIQUE constraint tells).
        """
        r, size, q = p.req, len(p.data), self.quota
        over_bundles = q.max_bundles is not None and count + 1 > q.max_bundles
        over_bytes = q.max_bytes is not None and used + size > q.max_bytes
        if stored is None and (over_bundles or over_bytes):
            stored = self.db.execute("SELECT 1 FROM bundle WHERE key=?", (r.key,)).fetchone() is not None
        # A duplicate is reported as such even when full: the sender may take it as an ack.
        if stored:
            raise DuplicateBundleError(f"bundle {r.key!r} is already stored")
        if over_bundles:
            raise StoreFullError(f"store full: {count} of {q.max_bundles} bundles, {r.key!r} refused")
        if over_bytes:
            raise StoreFullError(f"store full: {used} of {q.max_bytes} bytes used, {r.key!r} of {size} bytes refused")

    def stored_keys(self, keys: Sequence[str]) -> set[str]:
        """Those of ``keys`` that are stored."""
        found: set[str] = set()
        for i in range(0, len(keys), _MAX_PARAMS):
            chunk = tuple(keys[i : i + _MAX_PARAMS])
            marks = ",".join("?" * len(chunk))
            found.update(k for (k,) in self.db.execute(f"SELECT key FROM bundle WHERE key IN ({marks})", chunk))
        return found

    def insert(self, p: PreparedPut) -> StoredBundle:
        """Insert one bundle after checking the quota; raises StoreFullError or DuplicateBundleError."""
        self.refuse(p, self.count, self.used, None)
        r, size = p.req, len(p.data)
        try:
            seq = self.db.execute(
                "INSERT INTO bundle (key, size, sha256, source, destination, priority,"
                " expires_at_ns, next_hop, stored_at_ns, meta) VALUES (?,?,?,?,?,?,?,?,?,?)"
                " RETURNING seq",
                (
                    r.key,
                    size,
                    p.sha256,
                    r.source,
                    r.destination,
                    r.priority,
                    r.expires_at_ns,
                    r.next_hop,
                    self.now_ns,
                    p.meta_json,
                ),
            ).fetchone()[0]
        except sqlite3.IntegrityError:
            raise DuplicateBundleError(f"bundle {r.key!r} is already stored") from None
        self.db.execute("INSERT INTO payload (seq, data) VALUES (?, ?)", (seq, p.data))
        self.count += 1
        self.used += size
        meta = MappingProxyType(json.loads(p.meta_json or "{}"))
        return StoredBundle(
            r.key,
            size,
            p.sha256,
            r.source,
            r.destination,
            r.priority,
            r.expires_at_ns,
            r.next_hop,
            self.now_ns,
            seq,
            meta=meta,
        )

    def remove(self, where: str, args: tuple, reason: str) -> list[StoredBundle]:
        """Delete the bundles matching ``where`` and journal each with ``reason``."""
        rows = self.db.execute(f"DELETE FROM bundle WHERE {where} RETURNING {COLUMNS}", args).fetchall()
        gone = [row_to_bundle(r) for r in rows]
        self.db.executemany("DELETE FROM payload WHERE seq=?", [(b.arrival,) for b in gone])
        self.db.executemany(
            "INSERT INTO deleted (key, reason, at_ns, size, sha256) VALUES (?,?,?,?,?)",
            [(b.key, reason, self.now_ns, b.size, b.sha256) for b in gone],
        )
        self.count -= len(gone)
        self.used -= sum(b.size for b in gone)
        return gone

    def remove_keys(self, keys: Sequence[str], reason: str) -> set[str]:
        """Delete every key in ``keys``, journaled with ``reason``; returns those that were stored."""
        gone: set[str] = set()
        for i in range(0, len(keys), _MAX_PARAMS):
            chunk = tuple(keys[i : i + _MAX_PARAMS])
            gone.update(b.key for b in self.remove(f"key IN ({','.join('?' * len(chunk))})", chunk, reason))
        return gone


class WriteOp(Generic[T]):
    """One write: ``apply`` does it inside ``tx`` and returns what its caller is told.

    ``cancellable``: a caller that gives up before its batch is taken cancels it
    (a put nobody waits for); other writes are made anyway. ``size``: bytes it
    adds, for the writer's batch bound.
    """

    cancellable: ClassVar[bool] = False

    @property
    def size(self) -> int:
        return 0

    def apply(self, tx: Transaction) -> T:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Put(WriteOp[StoredBundle]):
    """Store one bundle; answers what the store knows of it."""

    item: PreparedPut
    cancellable: ClassVar[bool] = True

    @property
    def size(self) -> int:
        return len(self.item.data)

    def apply(self, tx: Transaction) -> StoredBundle:
        return tx.insert(self.item)


@dataclass(frozen=True, slots=True)
class PutAll(WriteOp[list[StoredBundle]]):
    """Store every item or none of them."""

    items: tuple[PreparedPut, ...]
    cancellable: ClassVar[bool] = True

    @property
    def size(self) -> int:
        return sum(len(p.data) for p in self.items)

    def apply(self, tx: Transaction) -> list[StoredBundle]:
        # Every refusal is found before the first INSERT, so nothing needs undoing: a
        # savepoint would do, but it copies every page the puts touch to a sub-journal.
        seen = tx.stored_keys([p.req.key for p in self.items])
        count, used = tx.count, tx.used
        for p in self.items:
            tx.refuse(p, count, used, p.req.key in seen)
            seen.add(p.req.key)
            count, used = count + 1, used + len(p.data)
        return [tx.insert(p) for p in self.items]


@dataclass(frozen=True, slots=True)
class Delete(WriteOp[list[str]]):
    """Remove ``keys``, journaled with ``reason``; answers the keys that were stored."""

    keys: tuple[str, ...]
    reason: str

    def answer(self, gone: set[str]) -> list[str]:
        return [k for k in self.keys if k in gone]

    def apply(self, tx: Transaction) -> list[str]:
        return self.answer(tx.remove_keys(self.keys, self.reason))


@dataclass(frozen=True, slots=True)
class DeleteOne(WriteOp[bool]):
    """Remove ``key``, journaled with ``reason``; answers whether it was stored."""

    key: str
    reason: str

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.key,)

    def answer(self, gone: set[str]) -> bool:
        return self.key in gone

    def apply(self, tx: Transaction) -> bool:
        return self.answer(tx.remove_keys(self.keys, self.reason))


@dataclass(frozen=True, slots=True)
class Expire(WriteOp[list[StoredBundle]]):
    """Remove, with reason 'expired', every bundle with ``expires_at_ns <= now_ns``."""

    now_ns: int

    def apply(self, tx: Transaction) -> list[StoredBundle]:
        return tx.remove("expires_at_ns <= ?", (self.now_ns,), "expired")


@dataclass(frozen=True, slots=True)
class SetNextHop(WriteOp[bool]):
    """Route ``key`` via ``next_hop`` (None: unrouted); answers whether it is stored."""

    key: str
    next_hop: str | None

    def apply(self, tx: Transaction) -> bool:
        return tx.db.execute("UPDATE bundle SET next_hop=? WHERE key=?", (self.next_hop, self.key)).rowcount > 0


@dataclass(frozen=True, slots=True)
class MarkForwarded(WriteOp[bool]):
    """Record that ``key`` was handed to ``next_hop`` at ``at_ns``; answers whether it is stored."""

    key: str
    next_hop: str
    at_ns: int

    def apply(self, tx: Transaction) -> bool:
        sql = "UPDATE bundle SET forwarded_to=?, forwarded_at_ns=? WHERE key=?"
        return tx.db.execute(sql, (self.next_hop, self.at_ns, self.key)).rowcount > 0


@dataclass(frozen=True, slots=True)
class PruneDeletions(WriteOp[int]):
    """Drop journal rows with id <= ``upto``; answers how many."""

    upto: int

    def apply(self, tx: Transaction) -> int:
        return tx.db.execute("DELETE FROM deleted WHERE id <= ?", (self.upto,)).rowcount


def apply_all(tx: Transaction, ops: Sequence[WriteOp[Any]]) -> list[object]:
    """Apply ``ops`` in order inside ``tx``; each answer is a value or its refusal.

    A run of consecutive deletions is made as one DELETE per reason: the agent
    deletes one key at a time, as peers acknowledge, and a batch holds many.
    """
    out: list[object] = []
    i = 0
    while i < len(ops):
        op = ops[i]
        if isinstance(op, Delete | DeleteOne):
            run = _deletion_run(ops, i)
            out += _delete_together(tx, run)
            i += len(run)
            continue
        try:
            out.append(op.apply(tx))
        except (StoreFullError, DuplicateBundleError) as exc:
            out.append(exc)  # a refused write leaves the rest of the batch intact
        i += 1
    return out


def _deletion_run(ops: Sequence[WriteOp[Any]], start: int) -> list[Delete | DeleteOne]:
    run: list[Delete | DeleteOne] = []
    for op in ops[start:]:
        if not isinstance(op, Delete | DeleteOne):
            break
        run.append(op)
    return run


def _delete_together(tx: Transaction, run: list[Delete | DeleteOne]) -> list[object]:
    by_reason: dict[str, list[str]] = {}
    for op in run:
        by_reason.setdefault(op.reason, []).extend(op.keys)
    gone: set[str] = set()
    for reason, keys in by_reason.items():
        gone |= tx.remove_keys(keys, reason)
    return [op.answer(gone) for op in run]
