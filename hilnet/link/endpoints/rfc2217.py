"""``rfc2217://host:port?baud=115200&bytesize=8&parity=N&stopbits=1``: a serial port on another host.

RFC 2217 is Telnet with serial-port control: ``ser2net`` (Debian) serves
any local UART that way, so a lab spreads its USB-serial adapters over
several hosts and one controller drives them all. pyserial's client speaks
it (line settings, escaping, option negotiation); this module adapts it to
the engine's readiness loop.

pyserial's client reads its socket on its own thread into a queue; a pump
thread here moves what it reads into a pipe whose read end the engine
watches, so the endpoint looks like any other descriptor. Bytes are stamped
when the engine reads them from the pipe: the network, the server and the
pump add latency and jitter that a local UART does not have, and
``benchmarks/bench_startup.py`` measures how much. When the server closes
the connection the pipe reaches end-of-file and the endpoint raises
:class:`~hilnet.errors.EndpointError`, as a UART that was unplugged does.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
from dataclasses import dataclass

from hilnet.errors import EndpointError, SpecError
from hilnet.link.endpoints.base import READ, SERIAL, Endpoint, Rx, SpecText, parse_host_port
from hilnet.link.endpoints.serial import OUT_LIMIT, SerialSpec, chunk_bytes
from hilnet.link.endpoints.serial import parse as parse_serial

_TCP_INFO_LEN = 8 + 17 * 4  # up to tcpi_rttvar
PUMP_TIMEOUT_S = 0.2  # how often the pump looks up from an idle port to see if it should stop


@dataclass(frozen=True, slots=True)
class Rfc2217Spec:
    """A remote serial port and its line settings (baud in symbols/s)."""

    text: str
    host: str
    port: int
    line: SerialSpec

    @property
    def bits_per_byte(self) -> int:
        return self.line.bits_per_byte


def parse(st: SpecText) -> Rfc2217Spec:
    if not st.netloc:
        raise SpecError(f"{st.text!r}: no host; expected rfc2217://HOST:PORT?baud=115200")
    if st.path not in ("", "/"):
        raise SpecError(f"{st.text!r}: unexpected path {st.path!r}; expected rfc2217://HOST:PORT?baud=115200")
    host, port = parse_host_port(st.netloc, "server", st.text)
    if port == 0:
        raise SpecError(f"{st.text!r}: port 0; expected the port ser2net serves the UART on")
    # The line options are a UART's: read them as serial:// does, with the same checks.
    line = parse_serial(SpecText(st.text, "serial", "", "/remote", st.query))
    return Rfc2217Spec(st.text, host, port, line)


class Rfc2217Endpoint(Endpoint):
    medium = SERIAL

    def __init__(self, spec: Rfc2217Spec, label: str = ""):
        import serial  # pyserial; imported here so other schemes never need it

        super().__init__(spec, label or f"{spec.host}:{spec.port}")
        line = spec.line
        host = spec.host if ":" not in spec.host else f"[{spec.host}]"
        # ign_set_control: ser2net (and other servers) do not echo SET-CONTROL as
        # pyserial expects; without it, opening waits for an answer that never comes.
        url = f"rfc2217://{host}:{spec.port}?ign_set_control"
        try:
            self._port = serial.serial_for_url(
                url,
                baudrate=line.baud,
                bytesize=line.bytesize,
                parity=line.parity,
                stopbits=line.stopbits,
                rtscts=line.rtscts,
                timeout=PUMP_TIMEOUT_S,
            )
        except (serial.SerialException, OSError, ValueError) as e:
            raise EndpointError(f"{spec.text}: cannot open the remote port: {e}") from None
        self._serial_error = serial.SerialException
        self.baud = line.baud
        self.bits_per_byte = line.bits_per_byte
        self.chunk = chunk_bytes(line.baud, line.bits_per_byte)
        self._rfd, self._wfd = os.pipe()
        os.set_blocking(self._rfd, False)
        self._stopping = threading.Event()
        self._pump = threading.Thread(target=self._run_pump, name=f"rfc2217-{self.label}", daemon=True)
        self._pump.start()

    def _run_pump(self) -> None:
        """Move bytes from pyserial's queue into the pipe until closed or the server goes away."""
        try:
            while not self._stopping.is_set():
                try:
                    data = self._port.read(1)
                    if data:
                        data += self._port.read(self._port.in_waiting) if self._port.in_waiting else b""
                except (self._serial_error, OSError, TypeError, AttributeError):
                    return  # the connection is gone (or closed under us): EOF on the pipe says so
                if data:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(self._wfd, view) :]
        except OSError:
            return
        finally:
            try:
                os.close(self._wfd)
            except OSError:
                pass

    def interest(self, reading: bool) -> dict[int, int]:
        return {self._rfd: READ} if reading else {}

    def on_ready(self, fd: int, mask: int, now_ns: int) -> list[Rx]:
        try:
            data = os.read(self._rfd, 65536)
        except BlockingIOError:
            return []
        except OSError as e:
            raise EndpointError(f"{self.label}: read failed: {e.strerror or e}") from None
        if not data:
            raise EndpointError(f"{self.label}: the RFC 2217 server closed the connection")
        c = self.chunk
        return [Rx(data[i : i + c], now_ns) for i in range(0, len(data), c)]

    def send(self, data: bytes, tag: object, now_ns: int) -> list[Rx]:
        if len(data) > OUT_LIMIT:
            self.overruns += 1
            return []
        try:
            self._port.write(data)  # a few bytes per call at line rate: sendall returns at once
        except (self._serial_error, OSError) as e:
            raise EndpointError(f"{self.label}: write failed: {e}") from None
        return []

    def transport(self) -> dict[str, object] | None:
        """The TCP connection to the server as the kernel sees it (RFC 6298 estimates, µs).

        ``rttvar_us`` is the jitter the network adds to every byte of this
        port, in both directions; a local UART has none. Linux only (TCP_INFO);
        elsewhere just the server's address."""
        out: dict[str, object] = {"server": f"{self.spec.host}:{self.spec.port}"}
        sock = getattr(self._port, "_socket", None)
        if sock is None or not hasattr(socket, "TCP_INFO"):
            return out
        try:
            info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
        except OSError:
            return out
        if len(info) >= _TCP_INFO_LEN:
            # struct tcp_info: 8 one-byte fields, then u32s; tcpi_rtt and tcpi_rttvar are the 16th and 17th
            rtt, rttvar = struct.unpack_from("=II", info, 8 + 15 * 4)
            out.update(rtt_us=rtt, rttvar_us=rttvar)
        return out

    def close(self) -> None:
        if self.closed:
            return
        self._stopping.set()
        try:
            self._port.close()
        except (self._serial_error, OSError):
            pass
        self._pump.join(PUMP_TIMEOUT_S * 5)
        try:
            os.close(self._rfd)
        except OSError:
            pass
        super().close()


def open_endpoint(spec: Rfc2217Spec, label: str = "") -> Rfc2217Endpoint:
    return Rfc2217Endpoint(spec, label)
