"""Reading ION ``ionrc`` text: the contacts and ranges in it, and a note for everything else. Pure.

What ``ionadmin`` does with each command (ION 4.1, ``ici/utils/ionadmin.c``):

- ``a contact FROM_TIME UNTIL_TIME FROM TO RATE [CONFIDENCE]`` and
  ``a range FROM_TIME UNTIL_TIME FROM TO OWLT``: read. A time is ``+SECONDS``
  (relative to the reference time: ION's start, or what ``@`` set) or
  ``yyyy/mm/dd-hh:mm:ss`` (UTC). A contact from time ``0`` is hypothetical
  (discovery) and ``-1`` a registration: neither is a scheduled contact, so
  both are skipped with a note, as are a node's contacts and ranges with itself.
- ``d contact|range FROM_TIME FROM TO`` deletes what an earlier line added
  (``*`` for every time); ``c contact FROM_TIME FROM TO RATE`` changes its rate.
- ``@ TIME`` sets the reference time of later relative times (``@ 0``: back to ION's start).
- ``1``, ``s``, ``x``, ``m ...`` and the rest set up or run the node: nothing to
  import, one note per command naming its lines. Files made by ``ionscript``
  hold every admin program's lines between ``## begin NAME`` and ``## end NAME``;
  only the ``ionadmin`` part is read.

A line that is meant as a contact or range but cannot be read raises
:class:`~hilnet.errors.ContactPlanError` with ``FILE:LINE:``: a plan that comes
in with a hole is worse than none.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from hilnet.errors import ContactPlanError
from hilnet.scenario.epoch import format_utc

_ABSOLUTE = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})-(\d{1,2}):(\d{1,2}):(\d{1,2})")
_RELATIVE = re.compile(r"\+(\d+)")
_SECTION = re.compile(r"##\s*(begin|end)\s+(\S+)")

# ionadmin commands that set up or run a node, and what they do (for the notes)
_NOTHING_TO_IMPORT = {
    "1": "initialises the node",
    "s": "starts ION",
    "x": "stops ION",
    "m": "sets a management parameter",
    "e": "switches echo",
    "w": "switches watch characters",
    "h": "asks for help",
    "?": "asks for help",
    "v": "prints the version",
    "l": "lists",
    "i": "prints information",
    "r": "runs a command",
    "t": "tests",
    "q": "quits",
    "b": "sets a timeout",
    "^": "sets the region",
}


@dataclass(frozen=True, slots=True)
class IonTime:
    """A time as ION wrote it: ``absolute`` Unix seconds, or seconds after ION's start."""

    seconds: int
    absolute: bool
    text: str


@dataclass(frozen=True, slots=True)
class IonLine:
    """One ``a contact`` or ``a range`` line; ``value`` is a rate (bytes/s) or an OWLT (s)."""

    kind: str  # "contact" or "range"
    start: IonTime
    end: IonTime
    frm: int
    to: int
    value: float
    line: int  # 1-based line number in the ionrc text


@dataclass(frozen=True, slots=True)
class IonRc:
    lines: tuple[IonLine, ...]  # contacts and ranges still standing at the end, in file order
    notes: tuple[str, ...]  # "FILE:LINE: what was skipped or understood", one a line
    nodes: frozenset[int]  # every node number a contact or range names, self-contacts included


def parse_ionrc(text: str, source: str = "<ionrc>") -> IonRc:
    """The contacts and ranges of ionrc ``text``; every other command becomes a note."""
    return _Reader(source).read(text)


class _Reader:
    def __init__(self, source: str):
        self.source = source
        self.lines: list[IonLine] = []
        self.notes: list[str] = []
        self.nodes: set[int] = set()
        self.skipped: dict[str, list[int]] = {}  # command -> lines, noted once at the end
        self.reference = IonTime(0, False, "+0")  # what relative times count from

    def read(self, text: str) -> IonRc:
        section: tuple[str, int] | None = None  # a non-ionadmin ionscript section and its first line
        for number, raw in enumerate(text.splitlines(), 1):
            marker = _SECTION.match(raw.strip())
            if marker:
                if marker.group(1) == "begin" and marker.group(2) != "ionadmin":
                    section = (marker.group(2), number)
                elif marker.group(1) == "end" and section is not None:
                    self.notes.append(
                        f"{self.source}:{section[1]}: the {section[0]} section (lines {section[1]}-{number}) "
                        "is not ionadmin's; skipped"
                    )
                    section = None
                continue
            words = raw.split("#", 1)[0].split()
            if section is None and words:
                self._command(words, number)
        if section is not None:
            self.notes.append(
                f"{self.source}:{section[1]}: the {section[0]} section (line {section[1]} to the end) is not "
                "ionadmin's; skipped"
            )
        for command, numbers in self.skipped.items():
            lines = ", ".join(str(n) for n in numbers)
            self.notes.append(f"{self.source}: skipped {command!r} (line{'s' if len(numbers) > 1 else ''} {lines})")
        return IonRc(tuple(self.lines), tuple(self.notes), frozenset(self.nodes))

    def _where(self, number: int) -> str:
        return f"{self.source}:{number}"

    def _command(self, words: list[str], number: int) -> None:
        first = words[0]
        if first in ("a", "d", "c") and len(words) > 1 and words[1] in ("contact", "range"):
            {"a": self._add, "d": self._delete, "c": self._change}[first](words, number)
        elif first == "@":
            self._reference(words, number)
        elif first in _NOTHING_TO_IMPORT:
            label = " ".join(words[:2]) if first == "m" and len(words) > 1 else first
            self.skipped.setdefault(f"{label}: {_NOTHING_TO_IMPORT[first]}, nothing to import", []).append(number)
        elif first == "a" and len(words) > 1:
            self.skipped.setdefault(f"a {words[1]}: not a contact or range (another admin's line?)", []).append(number)
        else:
            self.skipped.setdefault(f"{first}: not an ionadmin contact command", []).append(number)

    def _reference(self, words: list[str], number: int) -> None:
        if len(words) != 2:
            raise ContactPlanError(f"{self._where(number)}: '@' needs one time; expected @ yyyy/mm/dd-hh:mm:ss or @ 0")
        if words[1] == "0":
            self.reference = IonTime(0, False, "+0")
        else:
            self.reference = self._time(words[1], number, "reference")
        self.notes.append(
            f"{self._where(number)}: '@ {words[1]}' sets the reference time; later +SECONDS count from "
            + (
                format_utc(self.reference.seconds * 1_000_000_000)
                if self.reference.absolute
                else f"ION's start + {self.reference.seconds} s"
            )
        )

    def _time(self, arg: str, number: int, what: str) -> IonTime:
        m = _RELATIVE.fullmatch(arg)
        if m:
            ref = self.reference
            return IonTime(ref.seconds + int(m.group(1)), ref.absolute, arg)
        m = _ABSOLUTE.fullmatch(arg)
        if m:
            try:
                y, mo, d, h, mi, sec = (int(g) for g in m.groups())
                moment = datetime(y, mo, d, h, mi, sec, tzinfo=UTC)
            except ValueError as e:
                raise ContactPlanError(f"{self._where(number)}: {what} time {arg!r}: {e}") from None
            return IonTime(int(moment.timestamp()), True, arg)
        raise ContactPlanError(
            f"{self._where(number)}: {what} time {arg!r} is not a time; expected +SECONDS or yyyy/mm/dd-hh:mm:ss (UTC)"
        )

    def _nodes(self, words: list[str], number: int) -> tuple[int, int]:
        try:
            frm, to = int(words[0]), int(words[1])
        except ValueError:
            raise ContactPlanError(
                f"{self._where(number)}: cannot read nodes {' '.join(words[:2])!r}; expected node numbers such as 1 2"
            ) from None
        if not (0 < frm < 2**64 and 0 < to < 2**64):
            raise ContactPlanError(
                f"{self._where(number)}: nodes {frm} and {to}; expected node numbers from 1 to 2^64-1"
            )
        return frm, to

    def _add(self, words: list[str], number: int) -> None:
        kind, args = words[1], words[2:]
        usage = f"a {kind} START END FROM TO {'RATE [CONFIDENCE]' if kind == 'contact' else 'OWLT'}"
        if not (len(args) == 5 or (kind == "contact" and len(args) == 6)):
            raise ContactPlanError(f"{self._where(number)}: 'a {kind}' has {len(args)} arguments; expected {usage}")
        frm, to = self._nodes(args[2:4], number)
        self.nodes |= {frm, to}
        if kind == "contact" and args[0] in ("0", "-1"):
            sort = "a hypothetical contact (for discovery)" if args[0] == "0" else "a registration contact"
            self.notes.append(f"{self._where(number)}: contact {frm}->{to} from {args[0]} is {sort}; skipped")
            return
        start, end = self._time(args[0], number, "start"), self._time(args[1], number, "end")
        value = self._number(args[4], number, "a rate in bytes/s" if kind == "contact" else "an OWLT in seconds")
        if kind == "contact" and len(args) == 6:
            confidence = self._number(args[5], number, "a confidence from 0 to 1")
            if not 0 <= confidence <= 1:
                raise ContactPlanError(f"{self._where(number)}: confidence {args[5]}; expected a number from 0 to 1")
        if start.absolute == end.absolute and end.seconds <= start.seconds:
            raise ContactPlanError(
                f"{self._where(number)}: ends at {args[1]} before it starts at {args[0]}; expected START < END"
            )
        if value < 0 or (kind == "contact" and value == 0):
            raise ContactPlanError(f"{self._where(number)}: {kind} value {args[4]}; expected a number above 0")
        if frm == to:
            self.notes.append(
                f"{self._where(number)}: {kind} {frm}->{to} is node {frm}'s {kind} with itself; skipped "
                "(hilnet nodes reach themselves without a link)"
            )
            return
        self.lines.append(IonLine(kind, start, end, frm, to, value, number))

    def _number(self, arg: str, number: int, expected: str) -> float:
        try:
            value = float(int(arg, 0)) if arg[:2].lower() == "0x" else float(arg)
        except ValueError:
            raise ContactPlanError(f"{self._where(number)}: cannot read {arg!r}; expected {expected}") from None
        if not math.isfinite(value):
            raise ContactPlanError(f"{self._where(number)}: {arg!r} is not finite; expected {expected}")
        return value

    def _delete(self, words: list[str], number: int) -> None:
        kind, args = words[1], words[2:]
        if len(args) != 3:
            raise ContactPlanError(
                f"{self._where(number)}: 'd {kind}' has {len(args)} arguments; expected d {kind} START FROM TO"
            )
        frm, to = self._nodes(args[1:3], number)
        start = None if args[0] == "*" else self._time(args[0], number, "start")
        before = len(self.lines)
        self.lines = [
            x
            for x in self.lines
            if not (x.kind == kind and (x.frm, x.to) == (frm, to) and (start is None or _at(x.start) == _at(start)))
        ]
        self.notes.append(f"{self._where(number)}: deletes {before - len(self.lines)} {kind}(s) {frm}->{to}")

    def _change(self, words: list[str], number: int) -> None:
        args = words[2:]
        if words[1] != "contact" or len(args) not in (4, 5):
            raise ContactPlanError(
                f"{self._where(number)}: 'c {words[1]}' has {len(args)} arguments; "
                "expected c contact START FROM TO RATE [CONFIDENCE]"
            )
        frm, to = self._nodes(args[1:3], number)
        start = self._time(args[0], number, "start")
        rate = self._number(args[3], number, "a rate in bytes/s")
        if rate <= 0:
            raise ContactPlanError(f"{self._where(number)}: contact value {args[3]}; expected a number above 0")
        hits = [i for i, x in enumerate(self.lines) if x.kind == "contact" and (x.frm, x.to) == (frm, to)]
        hits = [i for i in hits if _at(self.lines[i].start) == _at(start)]
        if not hits:
            raise ContactPlanError(
                f"{self._where(number)}: changes contact {frm}->{to} from {args[0]}, which no line added"
            )
        for i in hits:
            self.lines[i] = replace(self.lines[i], value=rate)


def _at(t: IonTime) -> tuple[int, bool]:
    """The instant of ``t``, however it was written."""
    return t.seconds, t.absolute
