"""``serial:///dev/ttyUSB0?baud=115200&bytesize=8&parity=N&stopbits=1&rtscts=0``: a real UART.

Opened with pyserial in raw mode, non-blocking, and in low-latency mode where
the driver allows it (FTDI adapters otherwise hold bytes back up to 16 ms).
Bytes read become units of at most about one millisecond of line time, so the
shaper paces a long burst byte-run by byte-run, as the wire would, instead of
releasing it all at the end.

:class:`TtyEndpoint` holds what a UART and a pty master share.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from hilnet.errors import EndpointError, SpecError
from hilnet.link.endpoints.base import READ, SERIAL, WRITE, Endpoint, Rx, SpecText

N = TypeVar("N", int, float)

_PARITY_BITS = {"N": 0, "E": 1, "O": 1, "M": 1, "S": 1}
OUT_LIMIT = 1 << 20  # bytes waiting for a reader before the "UART" overruns


@dataclass(frozen=True, slots=True)
class SerialSpec:
    """A UART device and its line settings (baud in symbols/s)."""

    text: str
    device: str
    baud: int = 115200
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1
    rtscts: bool = False  # RTS/CTS hardware flow control (the cable carries RTS and CTS)

    @property
    def bits_per_byte(self) -> int:
        """Wire bits per data byte: start + data + parity + stop (8N1 -> 10)."""
        return int(1 + self.bytesize + _PARITY_BITS[self.parity] + round(self.stopbits))


def parse(st: SpecText) -> SerialSpec:
    opts = st.take({"baud", "bytesize", "parity", "stopbits", "rtscts"})
    device = st.path if not st.netloc else f"/{st.netloc}{st.path}"
    if not device or device == "/":
        raise SpecError(f"{st.text!r}: no device; expected serial:///dev/ttyUSB0?baud=115200")
    baud = _number(st, opts, "baud", "115200", int)
    bytesize = _number(st, opts, "bytesize", "8", int)
    stopbits = _number(st, opts, "stopbits", "1", float)
    parity = opts.get("parity", "N").upper()
    if not 50 <= baud <= 20_000_000:
        raise SpecError(f"{st.text!r}: baud {baud} is outside 50..20000000")
    if bytesize not in (5, 6, 7, 8):
        raise SpecError(f"{st.text!r}: bytesize {bytesize} is not 5, 6, 7 or 8")
    if parity not in _PARITY_BITS:
        raise SpecError(f"{st.text!r}: parity {parity!r} is not one of N, E, O, M, S")
    if stopbits not in (1, 1.5, 2):
        raise SpecError(f"{st.text!r}: stopbits {stopbits:g} is not 1, 1.5 or 2")
    rtscts = opts.get("rtscts", "0")
    if rtscts not in ("0", "1"):
        raise SpecError(f"{st.text!r}: rtscts={rtscts!r}; expected rtscts=1 (RTS/CTS flow control) or 0")
    return SerialSpec(st.text, device, baud, bytesize, parity, stopbits, rtscts == "1")


def _number(st: SpecText, opts: dict[str, str], key: str, default: str, kind: Callable[[str], N]) -> N:
    try:
        return kind(opts.get(key, default))
    except ValueError:
        raise SpecError(f"{st.text!r}: {key}={opts[key]!r} is not a number") from None


def chunk_bytes(baud: int | None, bits_per_byte: int) -> int:
    """Bytes per unit: about 1 ms of line time, between 1 and 4096."""
    if not baud:
        return 4096
    return max(1, min(4096, baud // bits_per_byte // 1000))


class TtyEndpoint(Endpoint):
    """Bytes in and out of one tty file descriptor (a UART or a pty master)."""

    medium = SERIAL

    def __init__(self, spec, label: str, fd: int, chunk: int):
        super().__init__(spec, label)
        self.fd = fd
        self.chunk = chunk
        self._out = bytearray()
        os.set_blocking(fd, False)

    def interest(self, reading: bool) -> dict[int, int]:
        mask = (READ if reading else 0) | (WRITE if self._out else 0)
        return {self.fd: mask}

    def _vanished(self, why: str) -> EndpointError:
        return EndpointError(f"{self.label}: {why}")

    def on_ready(self, fd: int, mask: int, now_ns: int) -> list[Rx]:
        if mask & WRITE:
            self._flush()
        if not mask & ~WRITE:
            return []
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return []
        except OSError as e:
            raise self._vanished(f"read failed: {e.strerror or e}") from None
        if not data:
            if mask & (0x10 | 0x08):  # EPOLLHUP | EPOLLERR: the device is gone
                raise self._vanished("device hung up (unplugged?)")
            return []
        c = self.chunk
        if len(data) <= c:
            return [Rx(data, now_ns)]
        return [Rx(data[i : i + c], now_ns) for i in range(0, len(data), c)]

    def send(self, data: bytes, tag: object, now_ns: int) -> list[Rx]:
        if len(self._out) + len(data) > OUT_LIMIT:
            # Nobody reads the far side: a real UART would overrun, not queue forever.
            self.overruns += 1
            return []
        self._out += data
        self._flush()
        return []

    def _flush(self) -> None:
        while self._out:
            try:
                n = os.write(self.fd, self._out)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno == errno.EINTR:
                    continue
                raise self._vanished(f"write failed: {e.strerror or e}") from None
            del self._out[:n]

    def backlog_bytes(self) -> int:
        return len(self._out)


class SerialEndpoint(TtyEndpoint):
    """A UART opened through pyserial."""

    def __init__(self, spec: SerialSpec, label: str = ""):
        import serial  # pyserial; imported here so other schemes never need it

        try:
            self._port = serial.Serial(
                spec.device,
                baudrate=spec.baud,
                bytesize=spec.bytesize,
                parity=spec.parity,
                stopbits=spec.stopbits,
                rtscts=spec.rtscts,
                timeout=0,
                exclusive=True,
            )
        except (serial.SerialException, OSError, ValueError) as e:
            raise EndpointError(f"{spec.text}: cannot open {spec.device}: {e}") from None
        try:
            self._port.set_low_latency_mode(True)
        except (AttributeError, OSError, ValueError, NotImplementedError):
            pass  # ptys and some drivers have no low-latency flag; pacing still holds
        self.baud = spec.baud
        self.bits_per_byte = spec.bits_per_byte
        super().__init__(spec, label or spec.device, self._port.fileno(), chunk_bytes(spec.baud, spec.bits_per_byte))

    def close(self) -> None:
        if not self.closed:
            try:
                self._port.close()
            except OSError:
                pass
        super().close()


def open_endpoint(spec: SerialSpec, label: str = "") -> SerialEndpoint:
    return SerialEndpoint(spec, label)
