"""Quantities as people write them, as exact integers inside.

- durations -> int nanoseconds:  ``250ms``, ``1.5s``, ``2m``, ``1h30m``, ``3d``, ``0``
- rates     -> int bit/s:        ``9600bit/s``, ``10Mbit/s``, ``1.5MB/s`` (bytes, x8), ``2Mbps``
- sizes     -> int bytes:        ``280B``, ``300KiB``, ``2MB`` (SI: 2,000,000), ``1.5GiB``
- fractions -> float in [0, 1]:  ``0.5%``, ``1e-6``, ``0.005``
- baud      -> int symbols/s:    ``115200``, ``9600baud``
- scale     -> scenario <-> wall ns, exactly: :func:`scenario_to_wall_ns`, :func:`wall_to_scenario_ns`
- compress  -> what physics (delay, rate, baud) becomes on the wall clock: :func:`physics_wall_ns`, :func:`physics_wall_rate`
- framing   -> UART bits per byte: ``8N1`` -> 10, and the one bound on it (:func:`check_bits_per_byte`)

Arithmetic is done on ``fractions.Fraction`` so that ``1.1s`` is exactly
1,100,000,000 ns, never 1,099,999,999. Every error says what was read and what
was expected; callers add the file position.
"""

from __future__ import annotations

import functools
import math
import re
from fractions import Fraction

from hilnet.errors import UnitError

NS_PER_S = 1_000_000_000

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"

_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": NS_PER_S,
    "m": 60 * NS_PER_S,
    "min": 60 * NS_PER_S,
    "h": 3600 * NS_PER_S,
    "d": 86400 * NS_PER_S,
}
_DURATION_PART = re.compile(rf"({_NUMBER})\s*(ns|us|µs|ms|min|s|m|h|d)")
_MAX_DURATION_NS = 366 * 86400 * NS_PER_S  # a scenario longer than a year is a typo

_RATE_UNITS = {
    "bit/s": 1,
    "bps": 1,
    "b/s": 1,
    "kbit/s": 10**3,
    "kbps": 10**3,
    "kb/s": 10**3,
    "mbit/s": 10**6,
    "mbps": 10**6,
    "mb/s": 10**6,
    "gbit/s": 10**9,
    "gbps": 10**9,
    "gb/s": 10**9,
    # bytes per second: capital B, case matters
    "B/s": 8,
    "kB/s": 8 * 10**3,
    "KB/s": 8 * 10**3,
    "MB/s": 8 * 10**6,
    "GB/s": 8 * 10**9,
    "KiB/s": 8 * 2**10,
    "MiB/s": 8 * 2**20,
    "GiB/s": 8 * 2**30,
}
_MAX_RATE = 400 * 10**9  # faster than any NIC a board will carry

_SIZE_UNITS = {
    "B": 1,
    "": 1,
    "kB": 10**3,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
}
_MAX_SIZE = 2**40

_RATE_EXPECTED = "a rate such as 9600bit/s, 115.2kbit/s, 10Mbit/s, 2Mbps or 1.5MB/s"
_SIZE_EXPECTED = "a size such as 280B, 300KiB, 2MB or 1.5GiB"
_DURATION_EXPECTED = "a duration such as 250ms, 1.5s, 2m or 1h30m"


def _as_text(value: object, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UnitError(f"expected {what}, got {type(value).__name__} {value!r}")
    return str(value).strip()


def _number(text: str) -> Fraction:
    # Fraction parses decimal strings exactly ("1.1" -> 11/10), exponents included.
    return Fraction(text)


def parse_duration(value: object) -> int:
    """Read a duration; returns integer nanoseconds (>= 0).

    A bare ``0`` is accepted; any other number needs a unit, since ``5`` could
    mean seconds or minutes and a wrong guess silently breaks a scenario.
    """
    text = _as_text(value, _DURATION_EXPECTED)
    if text in ("0", "0.0"):
        return 0
    if text.startswith("-"):
        raise UnitError(f"duration {text!r} is negative; expected {_DURATION_EXPECTED}")
    pos = 0
    total = Fraction(0)
    compact = text.replace(" ", "")
    if not compact:
        raise UnitError(f"empty duration; expected {_DURATION_EXPECTED}")
    seen: set[str] = set()
    while pos < len(compact):
        m = _DURATION_PART.match(compact, pos)
        if not m:
            if re.fullmatch(_NUMBER, compact):
                raise UnitError(f"duration {text!r} has no unit; expected {_DURATION_EXPECTED}")
            raise UnitError(f"cannot read duration {text!r} at {compact[pos:]!r}; expected {_DURATION_EXPECTED}")
        unit = "us" if m.group(2) == "µs" else ("m" if m.group(2) == "min" else m.group(2))
        if unit in seen:
            raise UnitError(f"duration {text!r} repeats unit {m.group(2)!r}; expected {_DURATION_EXPECTED}")
        seen.add(unit)
        total += _number(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    ns = round(total)
    if ns > _MAX_DURATION_NS:
        raise UnitError(f"duration {text!r} is longer than a year; expected {_DURATION_EXPECTED}")
    return ns


def parse_rate(value: object) -> int:
    """Read a data rate; returns integer bit/s (> 0)."""
    text = _as_text(value, _RATE_EXPECTED)
    m = re.fullmatch(rf"({_NUMBER})\s*([A-Za-z/]+)", text)
    if not m:
        if re.fullmatch(rf"-\s*{_NUMBER}.*", text):
            raise UnitError(f"rate {text!r} is negative; expected {_RATE_EXPECTED}")
        if re.fullmatch(_NUMBER, text):
            raise UnitError(f"rate {text!r} has no unit; expected {_RATE_EXPECTED}")
        raise UnitError(f"cannot read rate {text!r}; expected {_RATE_EXPECTED}")
    unit = m.group(2)
    factor = _RATE_UNITS.get(unit)
    if factor is None and not unit.startswith(("B", "kB", "KB", "MB", "GB", "KiB", "MiB", "GiB")):
        factor = _RATE_UNITS.get(unit.lower())
    if factor is None:
        raise UnitError(f"unknown rate unit {unit!r} in {text!r}; expected {_RATE_EXPECTED}")
    bits = _number(m.group(1)) * factor
    if bits <= 0:
        raise UnitError(f"rate {text!r} must be above zero; expected {_RATE_EXPECTED}")
    if bits > _MAX_RATE:
        raise UnitError(f"rate {text!r} is above 400Gbit/s; expected {_RATE_EXPECTED}")
    return max(1, round(bits))


def parse_size(value: object) -> int:
    """Read a size; returns integer bytes (>= 0). A bare integer means bytes."""
    text = _as_text(value, _SIZE_EXPECTED)
    m = re.fullmatch(rf"({_NUMBER})\s*([A-Za-z]*)", text)
    if not m:
        if text.startswith("-"):
            raise UnitError(f"size {text!r} is negative; expected {_SIZE_EXPECTED}")
        raise UnitError(f"cannot read size {text!r}; expected {_SIZE_EXPECTED}")
    unit = m.group(2)
    if unit not in _SIZE_UNITS:
        hint = " (sizes are in bytes: B, kB, MB, KiB, MiB...)" if unit.lower().startswith(("b", "k", "m", "g")) else ""
        raise UnitError(f"unknown size unit {unit!r} in {text!r}{hint}; expected {_SIZE_EXPECTED}")
    n = _number(m.group(1)) * _SIZE_UNITS[unit]
    if n.denominator != 1:
        raise UnitError(f"size {text!r} is not a whole number of bytes; expected {_SIZE_EXPECTED}")
    if n > _MAX_SIZE:
        raise UnitError(f"size {text!r} is above 1TiB; expected {_SIZE_EXPECTED}")
    return int(n)


def parse_fraction(value: object) -> float:
    """Read a probability: ``0.5%`` or ``1e-6`` or ``0.005``; returns a float in [0, 1]."""
    expected = "a fraction such as 0.5%, 1e-6 or 0.005, between 0 and 1"
    text = _as_text(value, expected)
    try:
        if text.endswith("%"):
            f = Fraction(text[:-1].strip()) / 100
        else:
            f = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise UnitError(f"cannot read {text!r}; expected {expected}") from None
    if f < 0 or f > 1:
        raise UnitError(f"{text!r} is outside 0..1 (0%..100%); expected {expected}")
    return float(f)


def parse_baud(value: object) -> int:
    """Read a serial line speed; returns symbols per second."""
    expected = "a baud rate such as 9600, 115200 or 921600"
    text = _as_text(value, expected)
    m = re.fullmatch(r"(\d+)\s*(?:baud|bd)?", text)
    if not m:
        raise UnitError(f"cannot read baud rate {text!r}; expected {expected}")
    baud = int(m.group(1))
    if not 50 <= baud <= 20_000_000:
        raise UnitError(f"baud rate {baud} is outside 50..20000000; expected {expected}")
    return baud


def format_duration(ns: int) -> str:
    """Print nanoseconds the way a person writes them: ``1h30m``, ``250ms``, ``1.5s``."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns >= 60 * NS_PER_S:
        # Past a minute people read "26m13.36s", not "1573.36s".
        s, frac = divmod(ns, NS_PER_S)
        parts = []
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if s >= size:
                parts.append(f"{s // size}{unit}")
                s %= size
        if s or frac:
            sec = f"{s}" if not frac else f"{s + frac / NS_PER_S:.3f}".rstrip("0").rstrip(".")
            parts.append(f"{sec}s")
        return sign + "".join(parts)
    for unit, size in (("s", NS_PER_S), ("ms", 10**6), ("us", 10**3)):
        if ns >= size:
            return sign + f"{Fraction(ns, size).__float__():.6g}{unit}"
    return f"{sign}{ns}ns"


def format_rate(bps: int) -> str:
    """Print bit/s compactly: ``10Mbit/s``, ``115.2kbit/s``."""
    for unit, size in (("Gbit/s", 10**9), ("Mbit/s", 10**6), ("kbit/s", 10**3)):
        if bps >= size:
            return f"{bps / size:.6g}{unit}"
    return f"{bps}bit/s"


def format_size(n: int) -> str:
    """Print bytes compactly with binary prefixes: ``300KiB``, ``1.5MiB``."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.4g}{unit}"
    return f"{n}B"


# -- scenario time and wall time ---------------------------------------------------
#
# ``clock.scale`` is scenario seconds per wall second (60: a wall second is a
# scenario minute). It arrives as a float (YAML, ``--scale``), but what a person
# wrote is a decimal such as 60, 1440 or 0.1, so it is taken as the exact ratio
# that decimal text says (``repr`` of a float is its shortest round-trip
# decimal): 0.1 is 1/10, not the binary float just above it. Conversions are
# then exact integer arithmetic, rounded once to the nearest ns, ties to even
# (as ``round()`` does), so every layer gets the same nanosecond for the same
# instant however large the time.


@functools.lru_cache(maxsize=32, typed=True)
def scale_ratio(scale: float) -> Fraction:
    """``clock.scale`` (scenario seconds per wall second) as an exact ratio > 0."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float, Fraction)):
        raise UnitError(f"clock scale must be a number above 0, got {scale!r}")
    if isinstance(scale, float) and not math.isfinite(scale):
        raise UnitError(f"clock scale must be a finite number above 0, got {scale!r}")
    ratio = Fraction(repr(scale)) if isinstance(scale, float) else Fraction(scale)
    if ratio <= 0:
        raise UnitError(f"clock scale must be above 0, got {scale!r}")
    return ratio


def _round_div(num: int, den: int) -> int:
    """``num / den`` (``den > 0``) to the nearest integer, ties to even."""
    q, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and q % 2):
        q += 1
    return q


def scenario_to_wall_ns(scenario_ns: int, scale: float) -> int:
    """Wall ns that ``scenario_ns`` of scenario time take at ``scale`` (exact, to the nearest ns)."""
    ratio = scale_ratio(scale)
    return _round_div(scenario_ns * ratio.denominator, ratio.numerator)


def wall_to_scenario_ns(wall_ns: int, scale: float) -> int:
    """Scenario ns that ``wall_ns`` of wall time stand for at ``scale`` (exact, to the nearest ns)."""
    ratio = scale_ratio(scale)
    return _round_div(wall_ns * ratio.numerator, ratio.denominator)


# -- time compression: what physics becomes on the wall clock -------------------------
#
# ``clock.compress`` says what the scale compresses. ``schedule`` (the default):
# windows, traffic and faults run ``scale`` times faster, while delay, jitter,
# rate and baud stay physical, so a window carries ``scale`` times less data
# than in reality and a light time costs its full length in wall time. ``all``:
# delay and jitter are divided by the scale too and rates (bit/s, baud)
# multiplied by it, so every window carries what it would in reality, every
# round trip fits in the window as it would, and the whole run is ``scale``
# times faster. These two functions are that rule; every layer asks them.

COMPRESS_MODES = ("schedule", "all")


def physics_wall_ns(physical_ns: int, scale: float, compress: str) -> int:
    """Wall ns a physical duration (delay, jitter) lasts: itself, or ``/ scale`` under ``compress: all``."""
    if compress == "all":
        return scenario_to_wall_ns(physical_ns, scale)
    _check_compress(compress)
    return physical_ns


def physics_wall_rate(per_s: int, scale: float, compress: str) -> int:
    """The wall rate (bit/s, or baud) a physical one runs at: itself, or ``x scale`` under ``compress: all``.

    Exact, rounded once to the nearest unit (ties to even), and never below 1.
    """
    if compress == "all":
        ratio = scale_ratio(scale)
        return max(1, _round_div(per_s * ratio.numerator, ratio.denominator))
    _check_compress(compress)
    return per_s


def _check_compress(compress: str) -> None:
    if compress not in COMPRESS_MODES:
        raise UnitError(f"clock compress {compress!r} is not one of {', '.join(COMPRESS_MODES)}")


# -- serial line framing ------------------------------------------------------------
#
# A UART sends each byte as one character: a start bit, 5 to 8 data bits, an
# optional parity bit and 1 or 2 stop bits. So a byte costs 7 to 12 bits of line
# time (8N1: 10). Every layer that takes a bits-per-byte figure checks it here.

MIN_BITS_PER_BYTE = 1 + 5 + 0 + 1  # start + 5 data + no parity + 1 stop
MAX_BITS_PER_BYTE = 1 + 8 + 1 + 2  # start + 8 data + parity + 2 stop
BITS_PER_BYTE_8N1 = 10
_FRAMING = re.compile(r"([5-8])([NEOMS])([12])")


def framing_bits_per_byte(framing: str) -> int:
    """Line bits per byte of a UART framing written data bits, parity, stop bits: ``8N1`` -> 10, ``8E2`` -> 12."""
    m = _FRAMING.fullmatch(framing)
    if not m:
        raise UnitError(f"cannot read UART framing {framing!r}; expected data bits, parity and stop bits such as 8N1")
    return 1 + int(m.group(1)) + (m.group(2) != "N") + int(m.group(3))


def check_bits_per_byte(bits: object) -> int:
    """``bits`` if one byte can cost that many bits on a UART line (7..12); else :class:`UnitError`."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_BITS_PER_BYTE <= bits <= MAX_BITS_PER_BYTE:
        raise UnitError(
            f"bits per byte {bits!r} is outside {MIN_BITS_PER_BYTE}..{MAX_BITS_PER_BYTE}; expected start + "
            "5..8 data + optional parity + 1..2 stop bits (8N1 is 10)"
        )
    return bits
