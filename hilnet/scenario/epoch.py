"""``clock.epoch``: the UTC instant that scenario time 0 stands for (pure).

Written as ISO 8601 with an explicit UTC zone (``2024-03-01T12:00:00Z`` or
``+00:00``); a time without a zone is refused, since a lab's local time would
silently shift every absolute contact by hours. Kept as ns since the Unix epoch.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

NS_PER_S = 1_000_000_000
_UNIX = datetime(1970, 1, 1, tzinfo=UTC)


def parse_utc(text: str) -> int | None:
    """ns since the Unix epoch of an ISO 8601 UTC time; None when it is not one."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None or moment.utcoffset() != timedelta(0):
        return None
    delta = moment - _UNIX
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000


def format_utc(unix_ns: int) -> str:
    """ISO 8601 UTC text for ns since the Unix epoch, whole seconds: ``2009-01-01T00:00:00Z``."""
    moment = _UNIX + timedelta(seconds=unix_ns // NS_PER_S)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
