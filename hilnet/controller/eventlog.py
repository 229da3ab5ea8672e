"""events.jsonl: every event of a run on one time base.

Records carry ``wall_ns`` (ns since the run's start ``t0``, negative while the
testbed is being built), ``t_ns`` (scenario time: ``wall_ns * scale``) and
``src`` (controller, agent or link). Lines are appended as they come, so an
interrupted run keeps what it gathered; ``close()`` rewrites the file in time
order.

A write that fails (a full disk) never raises into the thread that reported
the event: the log keeps the records in memory, stops writing and sets
``error``, which the controller turns into a broken run (exit 2).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from typing import TextIO

from hilnet.clock import Clock
from hilnet.units import wall_to_scenario_ns


class EventLog:
    def __init__(self, path: str, scale: float, clock: Clock, on_record: Callable[[dict], None] | None = None):
        self.path = path
        self.scale = scale
        self.clock = clock
        self.on_record = on_record
        self._t0: int | None = None
        self._pending: list[tuple[int, dict]] = []  # before t0 is known: (wall_abs, record)
        self._records: list[dict] = []
        self._lock = threading.Lock()
        self.error: OSError | None = None  # the first failed write; nothing is written after it
        self._file: TextIO | None = open(path, "w", encoding="utf-8")

    def set_t0(self, t0_abs: int) -> None:
        with self._lock:
            self._t0 = t0_abs
            pending, self._pending = self._pending, []
            for wall_abs, rec in pending:
                self._emit(wall_abs, rec)

    def write(self, src: str, record: dict, wall_abs: int, **extra) -> None:
        rec = {"src": src, **record, **extra}
        with self._lock:
            if self._t0 is None:
                self._pending.append((wall_abs, rec))
            else:
                self._emit(wall_abs, rec)

    def _emit(self, wall_abs: int, rec: dict) -> None:
        wall = wall_abs - (self._t0 or 0)  # only called once t0 is set
        full = {"t_ns": wall_to_scenario_ns(wall, self.scale), "wall_ns": wall, **rec}
        self._records.append(full)
        if self._file is not None:
            try:
                self._file.write(json.dumps(full, separators=(",", ":"), default=str) + "\n")
                self._file.flush()
            except OSError as e:
                self._fail(e)
        if self.on_record is not None:
            try:
                self.on_record(full)
            except Exception:  # a broken progress view must not break the run
                self.on_record = None

    def records(self) -> list[dict]:
        with self._lock:
            return sorted(self._records, key=lambda r: r["wall_ns"])

    def close(self) -> None:
        with self._lock:
            if self._t0 is None:  # never started: pending records relative to the first
                self._t0 = min((w for w, _ in self._pending), default=self.clock.now_ns())
                pending, self._pending = self._pending, []
                for wall_abs, rec in pending:
                    self._emit(wall_abs, rec)
            if self._file is None:
                return
            try:
                self._file.close()
            except OSError as e:
                self.error = self.error or e
            self._file = None
            if self.error is not None:
                return  # keep what reached the disk rather than a half-written rewrite
            ordered = sorted(self._records, key=lambda r: r["wall_ns"])
            tmp = self.path + ".tmp"
            try:
                with open(tmp, "w", encoding="utf-8") as f:
                    for r in ordered:
                        f.write(json.dumps(r, separators=(",", ":"), default=str) + "\n")
                os.replace(tmp, self.path)
            except OSError as e:
                self.error = e
                try:
                    os.unlink(tmp)
                except OSError:
                    pass

    def _fail(self, e: OSError) -> None:
        self.error = e
        try:
            if self._file is not None:
                self._file.close()
        except OSError:
            pass
        self._file = None
