"""The node's persistent bundle store: SQLite in WAL mode, durable when ``put`` returns.

Bundles are opaque bytes plus the columns the agent routes by (destination,
next hop, priority, expiry). A put is one transaction; when it returns the
bundle survives ``kill -9`` of the process *and* power loss of the board, so
the agent may acknowledge it to the previous hop, which then deletes its copy.

Durability choice: ``journal_mode=WAL`` with ``synchronous=FULL``. In WAL mode
``NORMAL`` skips the fsync of the WAL at commit: the commit sits in the page
cache, which survives a process crash but not a power cut or kernel panic. An
acknowledgement lets the sender delete its copy, so a bundle lost after the ack
is lost from the network; boards on a bench are power-cycled, so only FULL keeps
the promise. benchmarks/store.py measures both; group commit (:meth:`put_many`,
:class:`~hilnet.agent.group_commit.GroupCommitter`) is how FULL stays fast: many puts, one fsync.

The store is single-owner: ``locking_mode=EXCLUSIVE`` holds the file lock for
the store's lifetime, so a second agent on the same file gets a clear
StoreError instead of a silently shared quota (the OS drops the lock when the
owner dies, even by ``kill -9``). Each payload's SHA-256 is stored with it and
checked on :meth:`BundleStore.get`, so corruption at rest is reported, never
returned. Payloads live in their own table so that listings never read them.

Every removal goes through :meth:`BundleStore.delete` or :meth:`BundleStore.expire`
and leaves a row (key, reason, time) in the ``deleted`` journal, so a checker
can account for every bundle that was ever stored.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from hilnet.clock import Clock, MonotonicClock
from hilnet.errors import DuplicateBundleError, StoreError, StoreFullError

_APPLICATION_ID = 0x686C6E74  # "hlnt": marks the file as a hilnet store
_SCHEMA_VERSION = 1
_SQLITE_FULL = 13  # disk full: reported as StoreFullError, the sender keeps its copy

_SCHEMA = """
CREATE TABLE bundle (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- arrival order, never reused
    key TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    sha256 BLOB NOT NULL,
    source TEXT NOT NULL,
    destination TEXT NOT NULL,
    priority INTEGER NOT NULL,
    expires_at_ns INTEGER NOT NULL,
    next_hop TEXT,
    stored_at_ns INTEGER NOT NULL,
    forwarded_to TEXT,
    forwarded_at_ns INTEGER,
    meta TEXT
);
CREATE TABLE payload (seq INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE deleted (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL, reason TEXT NOT NULL,
    at_ns INTEGER NOT NULL, size INTEGER NOT NULL, sha256 BLOB NOT NULL
);
CREATE INDEX bundle_destination ON bundle (destination);
CREATE INDEX bundle_next_hop ON bundle (next_hop);
CREATE INDEX bundle_priority ON bundle (priority DESC, seq);
CREATE INDEX bundle_expiry ON bundle (expires_at_ns, seq);
"""

_COLUMNS = (
    "seq, key, size, sha256, source, destination, priority, expires_at_ns, next_hop,"
    " stored_at_ns, forwarded_to, forwarded_at_ns, meta"
)
_ORDER = {"priority": "priority DESC, seq", "expiry": "expires_at_ns, seq", "arrival": "seq"}


@dataclass(frozen=True, slots=True)
class StoredBundle:
    """What the store knows about one bundle (not its bytes: see :meth:`BundleStore.get`).

    ``arrival`` increases with every put and is never reused. ``priority``: higher
    is more urgent. Times are ns; ``expires_at_ns`` is in the agent's DTN time
    domain, ``stored_at_ns`` and ``forwarded_at_ns`` come from the store's clock.
    """

    key: str
    size: int  # bytes
    sha256: bytes = field(repr=False)
    source: str
    destination: str
    priority: int
    expires_at_ns: int
    next_hop: str | None
    stored_at_ns: int
    arrival: int
    forwarded_to: str | None = None
    forwarded_at_ns: int | None = None
    meta: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class PutRequest:
    """One bundle to store: the arguments of :meth:`BundleStore.put` as a value."""

    key: str
    data: bytes
    source: str
    destination: str
    priority: int
    expires_at_ns: int
    next_hop: str | None = None
    meta: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Deletion:
    """One row of the deletion journal: ``key`` left the store for ``reason`` at ``at_ns``."""

    key: str
    reason: str
    at_ns: int
    size: int  # bytes
    sha256: bytes


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A PutRequest checked and hashed outside the store lock."""

    req: PutRequest
    data: bytes
    sha256: bytes
    meta_json: str | None


def _prepare(req: PutRequest) -> _Prepared:
    if not isinstance(req.key, str) or not req.key:
        raise ValueError(f"a bundle key must be a non-empty str, got {req.key!r}")
    if not isinstance(req.data, bytes | bytearray | memoryview):
        raise TypeError(f"bundle data must be bytes, got {type(req.data).__name__}")
    for name in ("priority", "expires_at_ns"):
        if not isinstance(getattr(req, name), int):
            raise TypeError(f"{name} must be an int, got {getattr(req, name)!r}")
    data = bytes(req.data)
    meta = None if req.meta is None else json.dumps(dict(req.meta), sort_keys=True)
    return _Prepared(req, data, hashlib.sha256(data).digest(), meta)


def _row_to_bundle(row: tuple) -> StoredBundle:
    (seq, key, size, sha, source, dest, prio, exp, hop, stored, fwd, fwd_at, meta) = row
    return StoredBundle(
        key,
        size,
        sha,
        source,
        dest,
        prio,
        exp,
        hop,
        stored,
        seq,
        fwd,
        fwd_at,
        MappingProxyType(json.loads(meta)) if meta else MappingProxyType({}),
    )


class BundleStore:
    """A crash-safe bundle store in one SQLite file at ``path``.

    ``quota_bytes`` bounds the sum of payload sizes, ``quota_bundles`` the number
    of bundles; a put over either raises StoreFullError and stores nothing.
    ``clock`` stamps ``stored_at_ns``, forwarding and deletion times. Thread-safe
    (one lock); one process at a time. Use as a context manager or call close().
    """

    def __init__(
        self,
        path: str | os.PathLike,
        quota_bytes: int | None = None,
        quota_bundles: int | None = None,
        clock: Clock | None = None,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
    ):
        self.path = os.fspath(path)
        self.quota_bytes = quota_bytes
        self.quota_bundles = quota_bundles
        self.clock = clock if clock is not None else MonotonicClock()
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")
        created = not os.path.exists(self.path)
        try:
            # isolation_level=None: transactions are ours (BEGIN IMMEDIATE), not the module's.
            self._db = sqlite3.connect(self.path, timeout=0.5, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA locking_mode=EXCLUSIVE")
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise StoreError(f"{self.path}: cannot switch the store to WAL mode (got {mode})")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute("PRAGMA journal_size_limit=67108864")  # trim the WAL to 64 MiB
            with self._tx() as db:
                self._init_schema(db)
            self._count, self._bytes = self._db.execute(
                "SELECT count(*), coalesce(sum(size), 0) FROM bundle"
            ).fetchone()
        except BaseException as exc:
            if self._db is not None:
                self._db.close()
                self._db = None
            if isinstance(exc, sqlite3.Error):
                raise self._error(exc) from exc
            raise
        if created:  # make the new file's directory entry durable too
            fd = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _init_schema(self, db: sqlite3.Connection) -> None:
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = db.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
        if app_id == 0 and version == 0 and tables == 0:  # new, or killed before the first commit
            # One statement at a time: executescript() would COMMIT the open transaction.
            for statement in _SCHEMA.split(";\n"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA application_id={_APPLICATION_ID}")
            db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        elif app_id != _APPLICATION_ID:
            raise StoreError(f"{self.path}: an SQLite database, but not a hilnet bundle store")
        elif version != _SCHEMA_VERSION:
            raise StoreError(f"{self.path}: store schema version {version}, this hilnet reads {_SCHEMA_VERSION}")

    # -- plumbing -------------------------------------------------------------------

    def _error(self, exc: sqlite3.Error) -> StoreError:
        code = getattr(exc, "sqlite_errorcode", None)
        if code == _SQLITE_FULL:
            return StoreFullError(f"{self.path}: disk full, put refused ({exc})")
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            return StoreError(f"{self.path}: store is open in another process ({exc})")
        return StoreError(f"{self.path}: {exc} (corrupt or not a bundle store?)")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT under the store lock; ROLLBACK and StoreError on failure."""
        with self._lock:
            db = self._conn()
            try:
                db.execute("BEGIN IMMEDIATE")
                yield db
                db.execute("COMMIT")  # with synchronous=FULL, this is the fsync
            except BaseException as exc:
                if db.in_transaction:
                    try:
                        db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass  # the connection is broken; the original error says why
                if isinstance(exc, sqlite3.Error):
                    raise self._error(exc) from exc
                raise

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError(f"{self.path}: store is closed")
        return self._db

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._conn().execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise self._error(exc) from exc

    def _insert(self, db: sqlite3.Connection, p: _Prepared, now: int, count: int, used: int) -> StoredBundle:
        """Check quotas given the running totals, then insert; the caller commits."""
        r, size = p.req, len(p.data)
        full = (self.quota_bundles is not None and count + 1 > self.quota_bundles) or (
            self.quota_bytes is not None and used + size > self.quota_bytes
        )
        # A duplicate is reported as such even when full: the sender may take it as an ack.
        if full and db.execute("SELECT 1 FROM bundle WHERE key=?", (r.key,)).fetchone():
            raise DuplicateBundleError(f"bundle {r.key!r} is already stored")
        if self.quota_bundles is not None and count + 1 > self.quota_bundles:
            raise StoreFullError(f"store full: {count} of {self.quota_bundles} bundles, {r.key!r} refused")
        if self.quota_bytes is not None and used + size > self.quota_bytes:
            raise StoreFullError(
                f"store full: {used} of {self.quota_bytes} bytes used, {r.key!r} of {size} bytes refused"
            )
        try:
            seq = db.execute(
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
                    now,
                    p.meta_json,
                ),
            ).fetchone()[0]
        except sqlite3.IntegrityError:
            raise DuplicateBundleError(f"bundle {r.key!r} is already stored") from None
        db.execute("INSERT INTO payload (seq, data) VALUES (?, ?)", (seq, p.data))
        return StoredBundle(
            r.key,
            size,
            p.sha256,
            r.source,
            r.destination,
            r.priority,
            r.expires_at_ns,
            r.next_hop,
            now,
            seq,
            meta=MappingProxyType(json.loads(p.meta_json or "{}")),
        )

    # -- writes ---------------------------------------------------------------------

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
        """Store one bundle; it is durable when this returns (one fsync).

        Raises StoreFullError over quota (or disk full), DuplicateBundleError if
        ``key`` is stored already; in both cases nothing changed.
        """
        req = PutRequest(key, data, source, destination, priority, expires_at_ns, next_hop, meta)
        return self.put_many([req])[0]

    def put_many(self, items: Iterable[PutRequest]) -> list[StoredBundle]:
        """Store all ``items`` in one transaction and one fsync, or none of them."""
        prepared = [_prepare(i) for i in items]
        with self._lock:  # held past COMMIT: the totals change only once it succeeded
            with self._tx() as db:
                now, count, used, out = self.clock.now_ns(), self._count, self._bytes, []
                for p in prepared:
                    out.append(self._insert(db, p, now, count, used))
                    count, used = count + 1, used + len(p.data)
            self._count, self._bytes = count, used
        return out

    def _commit_batch(self, prepared: list[_Prepared]) -> list[StoredBundle | StoreError]:
        """One transaction; each item succeeds or fails alone (for GroupCommitter).

        A failure of the transaction itself (I/O, disk full) fails every item.
        """
        out: list[StoredBundle | StoreError] = []
        try:
            with self._lock:
                with self._tx() as db:
                    now, count, used = self.clock.now_ns(), self._count, self._bytes
                    for p in prepared:
                        try:
                            out.append(self._insert(db, p, now, count, used))
                            count, used = count + 1, used + len(p.data)
                        except (StoreFullError, DuplicateBundleError) as exc:
                            out.append(exc)  # a refused INSERT leaves the rest intact
                self._count, self._bytes = count, used
        except StoreError as exc:
            return [exc] * len(prepared)
        return out

    def _update(self, sql: str, args: tuple) -> bool:
        with self._tx() as db:
            return db.execute(sql, args).rowcount > 0

    def mark_forwarded(self, key: str, next_hop: str) -> bool:
        """Record that ``key`` was handed to ``next_hop`` now; False if not stored."""
        return self._update(
            "UPDATE bundle SET forwarded_to=?, forwarded_at_ns=? WHERE key=?", (next_hop, self.clock.now_ns(), key)
        )

    def set_next_hop(self, key: str, next_hop: str | None) -> bool:
        """Route ``key`` via ``next_hop`` (None: unrouted); False if not stored."""
        return self._update("UPDATE bundle SET next_hop=? WHERE key=?", (next_hop, key))

    def _remove(self, where: str, args: tuple, reason: str) -> list[StoredBundle]:
        with self._lock:
            with self._tx() as db:
                rows = db.execute(f"DELETE FROM bundle WHERE {where} RETURNING {_COLUMNS}", args).fetchall()
                now = self.clock.now_ns()
                gone = [_row_to_bundle(r) for r in rows]
                db.executemany("DELETE FROM payload WHERE seq=?", [(b.arrival,) for b in gone])
                db.executemany(
                    "INSERT INTO deleted (key, reason, at_ns, size, sha256) VALUES (?,?,?,?,?)",
                    [(b.key, reason, now, b.size, b.sha256) for b in gone],
                )
            self._count -= len(gone)
            self._bytes -= sum(b.size for b in gone)
        return gone

    def delete(self, key: str, reason: str) -> bool:
        """Remove ``key``, journaling ``reason`` (say 'delivered'); False if absent."""
        if not reason:
            raise ValueError("a deletion needs a reason")
        return bool(self._remove("key=?", (key,), reason))

    def delete_many(self, keys: Iterable[str], reason: str) -> list[str]:
        """Remove every key in ``keys`` in one transaction (one fsync); returns those that were there."""
        if not reason:
            raise ValueError("a deletion needs a reason")
        keys = list(keys)
        gone: list[str] = []
        for i in range(0, len(keys), 500):  # SQLite caps the number of bound parameters
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            gone += [b.key for b in self._remove(f"key IN ({marks})", tuple(chunk), reason)]
        return gone

    def expire(self, now_ns: int) -> list[StoredBundle]:
        """Delete, with reason 'expired', every bundle with ``expires_at_ns <= now_ns``."""
        return self._remove("expires_at_ns <= ?", (now_ns,), "expired")

    # -- reads ----------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """The bundle's bytes, checked against their SHA-256; None if not stored."""
        rows = self._read("SELECT p.data, b.sha256 FROM bundle b JOIN payload p USING (seq) WHERE b.key=?", (key,))
        if not rows:
            return None
        data, sha = rows[0]
        if hashlib.sha256(data).digest() != sha:
            raise StoreError(f"{self.path}: bundle {key!r} is corrupt (SHA-256 mismatch)")
        return data

    def info(self, key: str) -> StoredBundle | None:
        rows = self._read(f"SELECT {_COLUMNS} FROM bundle WHERE key=?", (key,))
        return _row_to_bundle(rows[0]) if rows else None

    def contains(self, key: str) -> bool:
        return bool(self._read("SELECT 1 FROM bundle WHERE key=?", (key,)))

    __contains__ = contains

    def list(
        self,
        destination: str | None = None,
        next_hop: str | None = None,
        order: Literal["priority", "expiry", "arrival"] = "priority",
        limit: int | None = None,
        forwarded: bool | None = None,
    ) -> list[StoredBundle]:
        """Bundles matching every given filter, most urgent / soonest / oldest first.

        ``forwarded``: True only those marked forwarded, False only those not.
        """
        if order not in _ORDER:
            raise ValueError(f"order must be one of {sorted(_ORDER)}, got {order!r}")
        where, args = [], []
        for col, val in (("destination", destination), ("next_hop", next_hop)):
            if val is not None:
                where.append(f"{col}=?")
                args.append(val)
        if forwarded is not None:
            where.append("forwarded_to IS NOT NULL" if forwarded else "forwarded_to IS NULL")
        sql = f"SELECT {_COLUMNS} FROM bundle"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {_ORDER[order]}"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [_row_to_bundle(r) for r in self._read(sql, tuple(args))]

    def next_expiry_ns(self) -> int | None:
        """The earliest ``expires_at_ns`` held, for the agent's expiry timer; None if empty."""
        return self._read("SELECT min(expires_at_ns) FROM bundle")[0][0]

    def deletions(self, since: int = 0) -> list[tuple[int, Deletion]]:
        """Journal rows with id > ``since``, oldest first, as (id, Deletion)."""
        rows = self._read("SELECT id, key, reason, at_ns, size, sha256 FROM deleted WHERE id > ? ORDER BY id", (since,))
        return [(r[0], Deletion(*r[1:])) for r in rows]

    def prune_deletions(self, upto: int) -> int:
        """Drop journal rows with id <= ``upto`` once a checker has read them; returns how many."""
        with self._tx() as db:
            return db.execute("DELETE FROM deleted WHERE id <= ?", (upto,)).rowcount

    def count(self) -> int:
        return self._count

    def bytes_used(self) -> int:
        """Sum of stored payload sizes, bytes (what ``quota_bytes`` bounds)."""
        return self._bytes

    def check(self, deep: bool = False) -> None:
        """Raise StoreError unless the file is sound and every bundle has its payload.

        ``deep`` also runs SQLite's full integrity_check and re-hashes every payload.
        """
        result = self._read("PRAGMA integrity_check" if deep else "PRAGMA quick_check")
        if result != [("ok",)]:
            raise StoreError(f"{self.path}: integrity check failed: {result[:5]}")
        bad = self._read(
            "SELECT b.key FROM bundle b LEFT JOIN payload p USING (seq)"
            " WHERE p.seq IS NULL OR length(p.data) != b.size LIMIT 5"
        )
        if bad:
            raise StoreError(f"{self.path}: bundles missing or truncated payloads: {bad}")
        if deep:
            for (key,) in self._read("SELECT key FROM bundle"):
                self.get(key)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> BundleStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
