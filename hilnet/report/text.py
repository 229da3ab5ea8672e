"""How reports print times and tables, the same in the console, HTML and failure lines."""

from __future__ import annotations

from collections.abc import Sequence

NS_PER_S = 1_000_000_000


def duration(ns: int | None) -> str:
    """A span for people: ``1h02m05s``, ``12m30s``, ``4.25s``, ``120ms``, ``35us``; ``-`` for None."""
    if ns is None:
        return "-"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns >= 60 * NS_PER_S:
        s = round(ns / NS_PER_S)
        h, rest = divmod(s, 3600)
        m, s = divmod(rest, 60)
        return f"{sign}{h}h{m:02d}m{s:02d}s" if h else f"{sign}{m}m{s:02d}s"
    for unit, size in (("s", NS_PER_S), ("ms", 10**6), ("us", 10**3)):
        if ns >= size:
            return f"{sign}{ns / size:.3g}{unit}"
    return f"{sign}{ns}ns"


def signed(ns: int | None) -> str:
    """A difference with its sign always shown: ``+1.2s``, ``-35ms``, ``0s``."""
    if ns is None:
        return "-"
    if ns == 0:
        return "0s"
    return duration(ns) if ns < 0 else "+" + duration(ns)


def clock(ns: int) -> str:
    """A point in scenario time as a clock: ``1:02:05`` or ``12:30`` (minutes:seconds)."""
    s = max(0, ns) // NS_PER_S
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "") -> list[str]:
    """Plain-text table lines, columns left-aligned to their widest cell."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = [indent + "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    for row in rows:
        lines.append(indent + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return lines
