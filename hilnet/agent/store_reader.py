"""Reads of the bundle store, on a connection of their own.

WAL lets this connection read the last committed snapshot while the writer is
in the middle of a transaction or its fsync, so a read never waits for a commit
(:mod:`hilnet.agent.store_writer`). Each payload's SHA-256 is stored with it and
checked on :meth:`StoreReader.get`, so corruption at rest is reported, never
returned. Payloads live in their own table so that listings never read them.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from typing import Literal

from hilnet.agent.store_schema import COLUMNS, Deletion, StoredBundle, row_to_bundle, store_error
from hilnet.errors import StoreError

_ORDER = {"priority": "priority DESC, seq", "expiry": "expires_at_ns, seq", "arrival": "seq"}


class StoreReader:
    """The read side of a store at ``path``, over the read-only connection ``db``. Thread-safe."""

    def __init__(self, path: str, db: sqlite3.Connection):
        self.path = path
        self._rdb: sqlite3.Connection | None = db
        self._rlock = threading.Lock()  # one statement at a time on the connection; never held by a write

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._rlock:
            try:
                return self._connection().execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise store_error(self.path, exc) from exc

    def _connection(self) -> sqlite3.Connection:
        if self._rdb is None:
            raise StoreError(f"{self.path}: store is closed")
        return self._rdb

    def _verify_payloads(self) -> None:
        """Re-hash every payload in one pass (one statement, rows read one at a time)."""
        with self._rlock:  # held for the whole scan: a deep check is for tools and tests, not the agent
            rows = self._connection().cursor()
            try:
                for key, data, sha in rows.execute(
                    "SELECT b.key, p.data, b.sha256 FROM bundle b JOIN payload p USING (seq)"
                ):
                    if hashlib.sha256(data).digest() != sha:
                        raise StoreError(f"{self.path}: bundle {key!r} is corrupt (SHA-256 mismatch)")
            except sqlite3.Error as exc:
                raise store_error(self.path, exc) from exc
            finally:
                rows.close()  # ends the read transaction even when the scan stopped early

    def _close_reader(self) -> None:
        with self._rlock:
            if self._rdb is not None:
                self._rdb.close()
                self._rdb = None

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
        rows = self._read(f"SELECT {COLUMNS} FROM bundle WHERE key=?", (key,))
        return row_to_bundle(rows[0]) if rows else None

    def contains(self, key: str) -> bool:
        return bool(self._read("SELECT 1 FROM bundle WHERE key=?", (key,)))

    __contains__ = contains

    def next_expiry_ns(self) -> int | None:
        """The earliest ``expires_at_ns`` held, for the agent's expiry timer; None if empty."""
        return self._read("SELECT min(expires_at_ns) FROM bundle")[0][0]

    def deletions(self, since: int = 0) -> list[tuple[int, Deletion]]:
        """Journal rows with id > ``since``, oldest first, as (id, Deletion)."""
        rows = self._read("SELECT id, key, reason, at_ns, size, sha256 FROM deleted WHERE id > ? ORDER BY id", (since,))
        return [(r[0], Deletion(*r[1:])) for r in rows]

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
            self._verify_payloads()

    # Last in the class: below it, ``list`` in an annotation would name this method.
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
        where: list[str] = []
        args: list[object] = []
        for col, val in (("destination", destination), ("next_hop", next_hop)):
            if val is not None:
                where.append(f"{col}=?")
                args.append(val)
        if forwarded is not None:
            where.append("forwarded_to IS NOT NULL" if forwarded else "forwarded_to IS NULL")
        sql = f"SELECT {COLUMNS} FROM bundle"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {_ORDER[order]}"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [row_to_bundle(r) for r in self._read(sql, tuple(args))]
