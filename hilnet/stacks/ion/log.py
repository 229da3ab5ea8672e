"""Lines of ION's ``ion.log``: what each says, for the run's events. Pure.

ION writes one line per memo, ``[yyyy/mm/dd-hh:mm:ss] [L] text``, where
``L`` is ``i`` (information), ``?`` (a warning: something was refused or
is missing), ``x`` (a statistics report) or ``!`` (a serious failure) (ION
4.1.3, ``ici/library/ion.c`` and ``platform.c``). Lines without that form
(the trace lines ``at line 443 of ici/...`` an error leaves) are kept as
they are.

The one line the driver acts on is ``bprecvfile``'s, written when a
delivered payload is whole in its file::

    [2026/11/29-10:09:23] [i] bprecvfile has created 'testfile1', size 5000.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE = re.compile(r"\[(\d{4}/\d\d/\d\d-\d\d:\d\d:\d\d)\] (?:\[(.)\] )?(.*)")
_CREATED = re.compile(r"bprecvfile has created '([^']+)', size (\d+)\.")

LEVELS = {"i": "info", "?": "warning", "x": "info", "!": "error"}
# Warnings every ION process of a hilnet node writes: it runs without ION's own
# bundle security (hilnet's BPSec is hilnet's agent's), which is what was meant.
EXPECTED = ("Can't find ION security database.", "Warning: running without bundle security.")


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of ion.log: ``stamp`` as ION wrote it (local time, whole seconds), None when it had none."""

    stamp: str | None
    level: str  # info, warning or error
    text: str


@dataclass(frozen=True, slots=True)
class FileCreated:
    """bprecvfile finished writing delivered payload ``name`` (in its working folder) of ``size`` bytes."""

    name: str
    size: int


def parse_line(line: str) -> LogLine:
    text = line.rstrip("\r\n")
    m = _LINE.fullmatch(text)
    stamp = None
    if m is not None:
        stamp, level, text = m.groups()
        if level is not None:
            return LogLine(stamp, LEVELS.get(level, "info"), text)
    # ION's error trace ("at line N of FILE, what") comes without a level.
    return LogLine(stamp, "error" if text.startswith("at line ") else "info", text)


def noteworthy(line: LogLine) -> bool:
    """Whether ``line`` belongs in the run's events: a warning or error hilnet did not expect."""
    return line.level != "info" and line.text not in EXPECTED


def file_created(line: LogLine) -> FileCreated | None:
    """The delivery ``line`` reports, if it is bprecvfile's "has created"."""
    m = _CREATED.fullmatch(line.text)
    return None if m is None else FileCreated(m.group(1), int(m.group(2)))


class LineStream:
    """Whole lines out of what is read from a growing file; a line cut by the read waits for its end."""

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, data: bytes) -> list[str]:
        *lines, self._rest = (self._rest + data).split(b"\n")
        return [ln.decode("utf-8", "replace") for ln in lines]
