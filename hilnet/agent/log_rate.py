"""Rate-limited logging: a flood of identical log lines costs a few lines, not the disk.

A hostile peer can make the agent fail the same way thousands of times a
second (an accept() out of descriptors, a malformed frame per connection);
logging each with its traceback once filled 230 MB of stderr in a minute.
:class:`RateLimitFilter` passes the first ``burst`` records of one kind in a
window of ``window_s`` seconds and holds back the rest; the first record of
that kind after the window says how many were held back ("N more like this in
the last S s"). Records are of one kind when they come from the same logger,
at the same level, with the same message template and exception type, so
"closing 10.0.0.7:40112" and "closing 10.0.0.7:40113" are one kind. Time is
the record's own stamp (``created``), taken by :mod:`logging`.
"""

from __future__ import annotations

import logging

DEFAULT_WINDOW_S = 10.0
DEFAULT_BURST = 5
MAX_KINDS = 1024  # kinds remembered; beyond it the oldest window is forgotten


class RateLimitFilter(logging.Filter):
    """Passes at most ``burst`` records of a kind per ``window_s`` seconds, then a count of the rest."""

    def __init__(self, window_s: float = DEFAULT_WINDOW_S, burst: int = DEFAULT_BURST):
        super().__init__()
        self.window_s = window_s
        self.burst = burst
        self._windows: dict[tuple[object, ...], list[float | int]] = {}  # kind -> [start, passed, held back]

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else None
        kind = (record.name, record.levelno, str(record.msg), exc)
        w = self._windows.get(kind)
        if w is None or record.created - w[0] >= self.window_s:
            held = int(w[2]) if w is not None else 0
            if w is not None:
                del self._windows[kind]  # re-inserted last: the dict stays in window order
            elif len(self._windows) >= MAX_KINDS:
                del self._windows[next(iter(self._windows))]
            self._windows[kind] = [record.created, 1, 0]
            if held:
                record.msg = f"{record.msg} [{held} more like this in the last {self.window_s:g} s]"
            return True
        if w[1] < self.burst:
            w[1] += 1
            return True
        w[2] += 1
        return False


def install(
    logger: logging.Logger | None = None, window_s: float = DEFAULT_WINDOW_S, burst: int = DEFAULT_BURST
) -> RateLimitFilter:
    """Put one :class:`RateLimitFilter` on every handler of ``logger`` (the root logger by default)."""
    f = RateLimitFilter(window_s, burst)
    for handler in (logger or logging.getLogger()).handlers:
        handler.addFilter(f)
    return f
