"""What every endpoint offers the engine, and the spec text they are parsed from.

An endpoint is one end of an emulated link: the thing an agent (or a board's
UART, or a NIC) talks to. The engine owns the event loop; an endpoint only
says which file descriptors it wants watched, reads what arrived when told it
is readable, and writes what the link delivers. Nothing here sleeps or blocks:
every descriptor is non-blocking.

Units handed to the engine are ``Rx(data, arrive_ns, tag)``; ``arrive_ns`` is
in the engine clock's domain (kernel receive stamps when the socket gives
them, see :class:`Stamper`). ``tag`` is opaque to the shaper; only the stream
relay uses it (flow id and kind).
"""

from __future__ import annotations

import select
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

from hilnet.clock import MonotonicClock
from hilnet.errors import SpecError

READ = select.EPOLLIN
WRITE = select.EPOLLOUT

# Medium names as the shaper spells them (hilnet.link.shaper.Medium members).
SERIAL = "SERIAL"
ETHERNET = "ETHERNET"
DATAGRAM = "DATAGRAM"
STREAM = "STREAM"


class Rx(NamedTuple):
    """One unit read from an endpoint: bytes, arrival time (engine ns), tag."""

    data: bytes
    arrive_ns: int
    tag: object = None


@dataclass(frozen=True, slots=True)
class SpecText:
    """A spec split into its parts, before a scheme module reads them."""

    text: str
    scheme: str
    netloc: str
    path: str
    query: dict[str, str]

    def take(self, allowed: set[str]) -> dict[str, str]:
        """The query options, refusing any this scheme does not know."""
        unknown = sorted(set(self.query) - allowed)
        if unknown:
            known = ", ".join(sorted(allowed)) or "none"
            raise SpecError(f"{self.text!r}: unknown option {unknown[0]!r} (this scheme takes: {known})")
        return dict(self.query)


def split_spec(text: str) -> SpecText:
    """Split ``scheme://netloc/path?k=v`` (a repeated option is an error)."""
    if not isinstance(text, str) or "://" not in text:
        raise SpecError(
            f"{text!r} is not an endpoint spec; expected scheme://..., e.g. pty:///tmp/iss or udp://127.0.0.1:4000?peer=127.0.0.1:4001"
        )
    parts = urlsplit(text)
    query: dict[str, str] = {}
    for key, values in parse_qs(parts.query, keep_blank_values=True, strict_parsing=False).items():
        if len(values) != 1:
            raise SpecError(f"{text!r}: option {key!r} is given {len(values)} times")
        query[key] = values[0]
    if parts.fragment:
        raise SpecError(f"{text!r}: unexpected '#{parts.fragment}'")
    return SpecText(text, parts.scheme.lower(), parts.netloc, parts.path, query)


def parse_host_port(text: str, what: str, spec: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` -> (host, port); names are kept as written."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        ok = bool(sep and rest.startswith(":"))
    else:
        host, sep, port_text = text.rpartition(":")
        ok = bool(sep)
    if not ok or not host:
        raise SpecError(f"{spec!r}: {what} {text!r} is not HOST:PORT")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise SpecError(f"{spec!r}: {what} port {port_text!r} is not a number 0..65535")
    return host, int(port_text)


def resolve(host: str, port: int, spec: str) -> tuple[int, tuple]:
    """Resolve for a datagram/stream socket; returns (family, sockaddr)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except socket.gaierror as e:
        raise SpecError(f"{spec!r}: cannot resolve {host!r}: {e.strerror}") from None
    family, _, _, _, addr = infos[0]
    return family, addr


class Stamper:
    """Turns kernel CLOCK_REALTIME receive stamps into engine-clock ns.

    The offset between the realtime and monotonic clocks is measured once (the
    tightest of a few bracketed readings) because reading it per packet would
    cost more than the stamp gains. When the engine runs on a clock that is not
    the host's monotonic clock (a VirtualClock in tests), kernel stamps mean
    nothing in its domain and ``now`` is used instead (``enabled`` is False).
    """

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.offset_ns = MonotonicClock.realtime_offset_ns()

    def from_timespec(self, cmsg_data: bytes, now_ns: int) -> int:
        """Engine ns of a ``struct timespec`` from SO_TIMESTAMPNS; ``now_ns`` if unusable."""
        if not self.enabled or len(cmsg_data) < 16:
            return now_ns
        sec, nsec = struct.unpack_from("@qq", cmsg_data)
        t = sec * 1_000_000_000 + nsec - self.offset_ns
        # A stamp from the future or from more than a second ago means the clocks
        # were stepped (NTP) under us; the engine's own reading is then safer.
        if t > now_ns or now_ns - t > 1_000_000_000:
            return now_ns
        return t


SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
CMSG_SPACE_TS = socket.CMSG_SPACE(16)


class Endpoint:
    """Base of the endpoint drivers; the engine calls only these methods.

    ``medium`` names the shaper medium; ``max_unit`` is the largest unit (bytes)
    this endpoint can write (bigger ones are dropped as 'oversize');
    ``baud``/``bits_per_byte`` are set by serial endpoints that know their line.
    ``label`` names the end in events and capture files. ``overruns`` counts
    delivered units the OS refused (a full buffer): dropped as 'overrun'.
    ``undeliverable_units``/``undeliverable_bytes`` count what the shaper handed
    over that had nowhere to go (the stream relay's connection onward was refused
    or is closed): dropped as 'undeliverable', never counted delivered.
    """

    medium: str = ""
    max_unit: int = 1 << 20
    baud: int | None = None
    bits_per_byte: int | None = None

    def __init__(self, spec, label: str = ""):
        self.spec = spec
        self.label = label or spec.text
        self.closed = False
        self.overruns = 0  # units the OS would not take (full buffer): dropped, counted
        self.undeliverable_units = 0  # whole units with no connection to go to
        self.undeliverable_bytes = 0  # their bytes, and what a broken connection left unwritten
        self.gone_fds: list[int] = []  # descriptors closed since the engine last looked

    def interest(self, reading: bool) -> dict[int, int]:
        """Descriptors to watch now -> epoll mask; ``reading`` False pauses input."""
        raise NotImplementedError

    def on_ready(self, fd: int, mask: int, now_ns: int) -> list[Rx]:
        """Handle readiness of ``fd``; returns the units read (may be empty)."""
        raise NotImplementedError

    def send(self, data: bytes, tag: object, now_ns: int) -> list[Rx]:
        """Write one delivered unit; returns units to send back (stream control)."""
        raise NotImplementedError

    def backlog_bytes(self) -> int:
        """Bytes accepted by :meth:`send` but not yet written out."""
        return 0

    def transport(self) -> dict[str, object] | None:
        """What a network between this host and the port adds (a remote port); None for a local one."""
        return None

    def bind_clock(self, stamper: Stamper) -> None:
        """Called once by the engine before use."""
        self.stamper = stamper

    def close(self) -> None:
        self.closed = True


Opener = Callable[[object, str], Endpoint]
