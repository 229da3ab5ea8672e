"""The bundle store's file: its SQL schema, the records of its rows, and opening it.

Durability choice: ``journal_mode=WAL`` with ``synchronous=FULL``. In WAL mode
``NORMAL`` skips the fsync of the WAL at commit: the commit sits in the page
cache, which survives a process crash but not a power cut or kernel panic. An
acknowledgement lets the sender delete its copy, so a bundle lost after the ack
is lost from the network; boards on a bench are power-cycled, so only FULL keeps
the promise. benchmarks/store.py measures both; group commit (many writes, one
fsync: :mod:`hilnet.agent.store_writer`) is how FULL stays fast.

Two connections share the file: the writer's, which alone writes, and the
reader's (``query_only``), which WAL lets read a committed snapshot while the
writer is in the middle of a commit. Recovery after ``kill -9`` is SQLite's
own: the first connection replays the WAL up to its last committed frame.

The store is single-owner: an exclusive ``flock`` on ``<path>-lock`` is held for
the store's lifetime, so a second agent on the same file gets a clear StoreError
instead of a silently shared quota (the OS drops the lock when the owner dies,
even by ``kill -9``). The lock file is left in place: removing it would let two
openers lock two different files. A lock on the database file itself would not
do: closing any descriptor of that file drops SQLite's own POSIX locks on it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from hilnet.errors import StoreError, StoreFullError

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

# The columns of :class:`StoredBundle`, in the order :func:`row_to_bundle` reads them.
COLUMNS = (
    "seq, key, size, sha256, source, destination, priority, expires_at_ns, next_hop,"
    " stored_at_ns, forwarded_to, forwarded_at_ns, meta"
)


@dataclass(frozen=True, slots=True)
class StoredBundle:
    """What the store knows about one bundle (not its bytes: see ``BundleStore.get``).

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
    """One bundle to store: the arguments of ``BundleStore.put`` as a value."""

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
class PreparedPut:
    """A PutRequest checked, copied and hashed by its caller, so the writer only inserts."""

    req: PutRequest
    data: bytes
    sha256: bytes
    meta_json: str | None


def prepare_put(req: PutRequest) -> PreparedPut:
    """Check ``req``'s types and hash its data; raises ValueError or TypeError, never StoreError."""
    if not isinstance(req.key, str) or not req.key:
        raise ValueError(f"a bundle key must be a non-empty str, got {req.key!r}")
    if not isinstance(req.data, bytes | bytearray | memoryview):
        raise TypeError(f"bundle data must be bytes, got {type(req.data).__name__}")
    for name in ("priority", "expires_at_ns"):
        if not isinstance(getattr(req, name), int):
            raise TypeError(f"{name} must be an int, got {getattr(req, name)!r}")
    data = bytes(req.data)
    meta = None if req.meta is None else json.dumps(dict(req.meta), sort_keys=True)
    return PreparedPut(req, data, hashlib.sha256(data).digest(), meta)


def row_to_bundle(row: tuple) -> StoredBundle:
    """A row of ``SELECT {COLUMNS}`` as a StoredBundle."""
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


def store_error(path: str, exc: sqlite3.Error) -> StoreError:
    """The StoreError that says what ``exc`` means for the store at ``path``."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code == _SQLITE_FULL:
        return StoreFullError(f"{path}: disk full, put refused ({exc})")
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return StoreError(f"{path}: store is open in another process ({exc})")
    return StoreError(f"{path}: {exc} (corrupt or not a bundle store?)")


@dataclass(frozen=True, slots=True)
class OpenStore:
    """An opened store file: its owner lock, both connections, and the totals it holds (bytes)."""

    lock_fd: int
    writer: sqlite3.Connection
    reader: sqlite3.Connection
    count: int
    bytes_used: int


def open_store(path: str, synchronous: Literal["FULL", "NORMAL"]) -> OpenStore:
    """Lock, open (recovering after a crash) and check the store at ``path``; create it if new."""
    created = not os.path.exists(path)
    lock_fd = _lock(path)
    writer = reader = None
    try:
        # isolation_level=None: transactions are ours (BEGIN IMMEDIATE), not the module's.
        writer = sqlite3.connect(path, timeout=0.5, isolation_level=None, check_same_thread=False)
        mode = writer.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise StoreError(f"{path}: cannot switch the store to WAL mode (got {mode})")
        writer.execute(f"PRAGMA synchronous={synchronous}")
        writer.execute("PRAGMA journal_size_limit=67108864")  # trim the WAL to 64 MiB
        _init_schema(writer, path)
        count, used = writer.execute("SELECT count(*), coalesce(sum(size), 0) FROM bundle").fetchone()
        reader = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
        reader.execute("PRAGMA query_only=ON")
    except BaseException as exc:
        for db in (reader, writer):
            if db is not None:
                db.close()
        os.close(lock_fd)
        if isinstance(exc, sqlite3.Error):
            raise store_error(path, exc) from exc
        raise
    if created:  # make the new file's directory entry durable too
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return OpenStore(lock_fd, writer, reader, count, used)


def _lock(path: str) -> int:
    lock_path = path + "-lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise StoreError(f"{path}: cannot open the store ({exc})") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreError(f"{path}: store is open in another process ({lock_path} is locked)") from None
    return fd


def _init_schema(db: sqlite3.Connection, path: str) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
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
            raise StoreError(f"{path}: an SQLite database, but not a hilnet bundle store")
        elif version != _SCHEMA_VERSION:
            raise StoreError(f"{path}: store schema version {version}, this hilnet reads {_SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the connection is broken; the original error says why
        raise
