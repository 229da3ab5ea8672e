"""Two-line element sets: the fixed-column format, its checksums and its epoch (pure, no sgp4).

SGP4 libraries read a TLE by column and accept a wrong checksum or a shifted
field silently, which turns a typo into a satellite somewhere else. So every
line is checked here first, and a problem names the 1-based column it is at.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

LINE_LENGTH = 69
NS_PER_DAY = 86_400 * 1_000_000_000

# (first column, last column, what, kind) of the fields a propagator reads, 1-based inclusive.
# kind: "int" digits (spaces allowed before), "float" a decimal number, "exp" an implied-decimal
# exponent field such as " 30306-3", "digits" digits only (eccentricity's implied "0.").
_LINE1 = (
    (3, 7, "satellite number", "satnum"),
    (19, 20, "epoch year", "digits"),
    (21, 32, "epoch day of year", "float"),
    (34, 43, "first derivative of mean motion", "float"),
    (45, 52, "second derivative of mean motion", "exp"),
    (54, 61, "B* drag term", "exp"),
)
_LINE2 = (
    (3, 7, "satellite number", "satnum"),
    (9, 16, "inclination (degrees)", "float"),
    (18, 25, "right ascension of the ascending node (degrees)", "float"),
    (27, 33, "eccentricity (digits after an implied '0.')", "digits"),
    (35, 42, "argument of perigee (degrees)", "float"),
    (44, 51, "mean anomaly (degrees)", "float"),
    (53, 63, "mean motion (revolutions per day)", "float"),
)


@dataclass(frozen=True, slots=True)
class TleProblem:
    """What is wrong with a TLE: which of its two lines (0 or 1), at which 1-based column."""

    line: int
    col: int
    message: str


def checksum(line: str) -> int:
    """The TLE checksum of columns 1-68: the sum of the digits, each '-' counting 1, mod 10."""
    return sum(int(c) if c.isdigit() else 1 if c == "-" else 0 for c in line[:68]) % 10


def with_checksum(line: str) -> str:
    """``line`` (68 or 69 columns) with a correct checksum in column 69."""
    return line[:68] + str(checksum(line))


def check_tle(line1: str, line2: str) -> list[TleProblem]:
    """Every problem of a TLE's two lines, each at its column; empty when it is sound."""
    problems: list[TleProblem] = []
    for index, (line, fields) in enumerate(((line1, _LINE1), (line2, _LINE2))):
        problems += _check_line(index, line.rstrip(), fields)
    if not problems and line1[2:7] != line2[2:7]:
        problems.append(
            TleProblem(
                1,
                3,
                f"satellite number {line2[2:7].strip()!r} differs from line 1's {line1[2:7].strip()!r}; "
                "expected the two lines of one satellite",
            )
        )
    if not problems:
        day = float(line1[20:32])
        if not 1.0 <= day < 367.0:
            problems.append(
                TleProblem(0, 21, f"epoch day of year {day} is outside 1..366; expected a day such as 061.5")
            )
    return problems


def _check_line(index: int, line: str, fields: tuple[tuple[int, int, str, str], ...]) -> list[TleProblem]:
    number = str(index + 1)
    if len(line) != LINE_LENGTH:
        return [
            TleProblem(
                index,
                min(len(line), LINE_LENGTH) + 1,
                f"TLE line {number} has {len(line)} columns; expected {LINE_LENGTH} (fields are fixed columns, "
                "so a lost or extra space shifts every field after it)",
            )
        ]
    if line[0] != number or line[1] != " ":
        return [TleProblem(index, 1, f"TLE line {number} starts with {line[:2]!r}; expected '{number} '")]
    for first, last, what, kind in fields:
        text = line[first - 1 : last]
        if not _field_ok(text, kind):
            return [
                TleProblem(
                    index,
                    first,
                    f"TLE line {number} columns {first}-{last} ({what}) read {text!r}; expected {_EXPECT[kind]}",
                )
            ]
    if not line[68].isdigit():
        return [TleProblem(index, 69, f"TLE line {number} column 69 is {line[68]!r}; expected the checksum digit")]
    want = checksum(line)
    if int(line[68]) != want:
        return [
            TleProblem(
                index,
                69,
                f"TLE line {number} checksum is {line[68]}, but columns 1-68 sum to {want} (mod 10); "
                "expected a line copied whole (a changed digit changes the sum)",
            )
        ]
    return []


_EXPECT = {
    "satnum": "a catalogue number (5 digits, or a letter and 4 digits)",
    "digits": "digits",
    "float": "a decimal number",
    "exp": "an exponent field such as ' 30306-3'",
}


def _field_ok(text: str, kind: str) -> bool:
    body = text.strip()
    if kind == "satnum":
        return bool(body) and (body.isdigit() or (body[0].isalpha() and body[1:].isdigit()))
    if kind == "digits":
        return len(body) == len(text) and body.isdigit()
    if kind == "exp":
        # [sign]ddddd[sign]d: mantissa digits with an implied leading "0.", then the exponent
        if len(body) < 3 or body[-2] not in "+-":
            return False
        mantissa = body[:-2].lstrip("+-")
        return mantissa.isdigit() and body[-1].isdigit()
    try:
        float(body)
    except ValueError:
        return False
    return True


def tle_epoch_unix_ns(line1: str) -> int:
    """The epoch of a checked TLE as ns since the Unix epoch (UTC).

    Columns 19-20 are the year (57-99: 1957-1999, 00-56: 2000-2056), 21-32 the
    day of the year with its fraction, day 1.0 being 1 January at 00:00.
    """
    yy = int(line1[18:20])
    year = 1900 + yy if yy >= 57 else 2000 + yy
    start = datetime(year, 1, 1, tzinfo=UTC)
    start_ns = int((start - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1_000_000_000
    return start_ns + round((float(line1[20:32]) - 1.0) * NS_PER_DAY)


def read_tle_file(text: str, name: str) -> tuple[int, str, str] | None:
    """The TLE called ``name`` in a file of three-line (name, line 1, line 2) sets, as (0-based line, l1, l2).

    None when no set has that name; names are compared with surrounding spaces
    and a leading '0 ' (as CelesTrak writes them) removed.
    """
    lines = text.splitlines()
    for i, line in enumerate(lines[:-2]):
        title = line.strip()
        if title.startswith("0 "):
            title = title[2:].strip()
        if title == name.strip() and lines[i + 1].startswith("1 ") and lines[i + 2].startswith("2 "):
            return i + 1, lines[i + 1], lines[i + 2]
    return None


def tle_names(text: str) -> list[str]:
    """The names of the three-line sets in a TLE file, for a did-you-mean."""
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines[:-2]):
        if lines[i + 1].startswith("1 ") and lines[i + 2].startswith("2 ") and not line.startswith(("1 ", "2 ")):
            out.append(line.strip().removeprefix("0 ").strip())
    return out
