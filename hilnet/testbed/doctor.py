"""``hilnet doctor``: is this host (and each board of a bench) ready for a run? One line per check.

Host: the SSH client, raw-socket rights, ``sch_netem``, and for every
emulator-side port of the bench: a serial port exists and opens (an
``rfc2217://`` one answers), an FTDI adapter's ``latency_timer`` is 1 ms, a
NIC is up with its offloads off. Each board: it answers over SSH, runs this
hilnet, its UARTs exist and no login console holds them, its interfaces
exist, its clock is synchronised, and its store directory has room.

Each check is a :class:`Check`: ``ok`` with what was seen, or not ok with
what to do.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import shutil
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from hilnet.bench.model import Bench, Board, NicEnd, UartEnd
from hilnet.errors import HilnetError
from hilnet.link.endpoints import open_endpoint
from hilnet.testbed.boards import each, ports_of, probe, ssh_config_of
from hilnet.testbed.identity import identity
from hilnet.testbed.ssh import SshBoard, control_dir

MIN_STORE_BYTES = 200 * 2**20  # a run's stores: a few hundred bundles of up to a few MiB
SIOCETHTOOL = 0x8946
_GET_OFFLOADS = {"tso": 0x1E, "gso": 0x23, "gro": 0x2B}  # legacy ethtool "get" commands (linux/ethtool.h)


@dataclass(frozen=True)
class Check:
    subject: str  # "host", "host port /dev/ttyUSB0", "board pi-iss"
    ok: bool
    text: str  # what was seen (ok) or what is wrong and what to do

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.subject}: {self.text}"


def host_checks(bench: Bench | None) -> Iterator[Check]:
    yield _ssh_client()
    yield _raw_sockets()
    yield _netem()
    if bench is None:
        return
    adapters = usb_serial_adapters()
    for link, node, end in bench.wiring:
        subject = f"host port {end.emulator_port} ({link}, {node})"
        if isinstance(end, UartEnd):
            yield from _serial_port(subject, end.emulator_port)
            if not end.emulator_port.startswith("rfc2217://"):
                yield from _same_serial_string(subject, end.emulator_port, adapters)
        elif isinstance(end, NicEnd):
            yield from _nic(subject, end.emulator_port)


def usb_serial_adapters(sys_root: str = "/sys") -> dict[str, tuple[str, str, str]]:
    """tty name -> (idVendor, idProduct, serial string) of every USB serial adapter plugged in.

    Read from sysfs: a tty's ``device`` link leads into the USB interface, whose
    parent USB device holds ``idVendor``, ``idProduct`` and ``serial`` (absent on
    adapters without one, such as most CH340s: then the serial is "").
    """
    out: dict[str, tuple[str, str, str]] = {}
    base = os.path.join(sys_root, "class", "tty")
    try:
        names = os.listdir(base)
    except OSError:
        return out
    for name in names:
        dev = os.path.realpath(os.path.join(base, name, "device"))
        for _ in range(4):  # tty -> interface -> USB device; stop at the first with an idVendor
            if os.path.exists(os.path.join(dev, "idVendor")):
                out[name] = (_read(dev, "idVendor"), _read(dev, "idProduct"), _read(dev, "serial"))
                break
            dev = os.path.dirname(dev)
    return out


def _read(directory: str, name: str) -> str:
    try:
        with open(os.path.join(directory, name)) as f:
            return f.read().strip()
    except OSError:
        return ""


def _same_serial_string(subject: str, port: str, adapters: dict[str, tuple[str, str, str]]) -> Iterator[Check]:
    """Fail when another adapter carries this one's vendor, product and serial string.

    A udev rule that names adapters by serial string then gives this port's name
    to either of them, and two link ends can swap between boots (CP2102s ship
    with serial "0001"; CH340s have none)."""
    tty = os.path.basename(os.path.realpath(port))
    mine = adapters.get(tty)
    if mine is None:
        return  # not a USB serial adapter (a pty, an on-board UART): nothing to confuse
    twins = sorted(name for name, ids in adapters.items() if ids == mine and name != tty)
    if not twins:
        yield Check(subject, True, f"its serial string {mine[2] or '(none)'!r} is its own")
        return
    yield Check(
        subject,
        False,
        f"{', '.join(twins)} has the same vendor, product and serial string {mine[2] or '(none)'!r}: a name made "
        "from the serial string can land on either; name adapters by USB port (ID_PATH, firmware-config/udev/)",
    )


def _ssh_client() -> Check:
    if shutil.which("ssh"):
        return Check("host", True, "OpenSSH client present")
    return Check("host", False, "no ssh client; install openssh-client")


def _raw_sockets() -> Check:
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
    except PermissionError:
        return Check("host", False, "no raw-socket rights (Ethernet links need them); run as root or grant CAP_NET_RAW")
    except OSError as e:
        return Check("host", False, f"cannot open a raw socket: {e.strerror}")
    return Check("host", True, "raw sockets can be opened (Ethernet link ends)")


def _netem() -> Check:
    release = os.uname().release
    present = os.path.isdir("/sys/module/sch_netem") or any(
        f.startswith("sch_netem.ko")
        for _, _, files in os.walk(f"/lib/modules/{release}/kernel/net/sched")
        for f in files
    )
    if present:
        return Check("host", True, "sch_netem present (kernel shaping of a NIC with tc netem is possible)")
    return Check(
        "host",
        True,
        "sch_netem absent: the user-space emulator shapes every link (only kernel shaping with tc netem needs it)",
    )


def _serial_port(subject: str, port: str) -> Iterator[Check]:
    import serial  # pyserial

    url = port if port.startswith("rfc2217://") else None
    try:
        if url:  # as a run opens it: hilnet's endpoint, with the settings ser2net needs
            open_endpoint(url).close()
        else:
            serial.Serial(port, timeout=0, exclusive=True).close()
    except (serial.SerialException, OSError, ValueError, HilnetError) as e:
        fix = "is ser2net running there?" if url else "plugged in? held by another program (fuser PORT)?"
        yield Check(subject, False, f"cannot open: {e}; {fix}")
        return
    yield Check(subject, True, "opens" + (" (RFC 2217 server answers)" if url else ""))
    if url:
        return
    name = os.path.basename(os.path.realpath(port))
    timer = f"/sys/bus/usb-serial/devices/{name}/latency_timer"
    if not os.path.exists(timer):
        yield Check(subject, True, "no latency_timer (not an FTDI adapter): nothing to set")
        return
    with open(timer) as f:
        ms = int(f.read().strip() or 0)
    if ms <= 1:
        yield Check(subject, True, "FTDI latency_timer is 1 ms")
    else:
        yield Check(
            subject,
            False,
            f"FTDI latency_timer is {ms} ms; set 1: echo 1 > {timer} (or the udev rule in firmware-config/)",
        )


def _nic(subject: str, ifname: str) -> Iterator[Check]:
    base = f"/sys/class/net/{ifname}"
    if not os.path.isdir(base):
        yield Check(subject, False, "no such interface; check the cable/adapter and `ip link`")
        return
    with open(f"{base}/flags") as f:
        up = bool(int(f.read().strip(), 16) & 1)
    yield Check(subject, up, "up" if up else f"down; run: ip link set {ifname} up")
    on = [name for name, cmd in _GET_OFFLOADS.items() if _offload(ifname, cmd)]
    if on:
        yield Check(subject, False, f"offloads on: {', '.join(on)}; run: ethtool -K {ifname} tso off gso off gro off")
    else:
        yield Check(subject, True, "offloads off (TSO, GSO, GRO)")


def _offload(ifname: str, cmd: int) -> bool:
    value = ctypes.create_string_buffer(struct.pack("II", cmd, 0), 8)
    req = struct.pack("16s", ifname.encode()) + struct.pack("P", ctypes.addressof(value)).ljust(24, b"\0")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            fcntl.ioctl(s.fileno(), SIOCETHTOOL, req)
        except OSError:
            return False  # the driver has no such offload: it does not do it
    return bool(struct.unpack("II", value.raw)[1])


def board_checks(bench: Bench) -> dict[Board, list[Check]]:
    """Every board's checks, boards checked in parallel."""
    sockets = control_dir()
    try:
        results = each(bench.boards, lambda b: _board(bench, b, sockets))
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    return {b: r if isinstance(r, list) else [Check(f"board {b.name}", False, str(r))] for b, r in results.items()}


def _board(bench: Bench, board: Board, sockets: str) -> list[Check]:
    subject = f"board {board.name}"
    ssh = SshBoard(board.name, board.ssh, sockets, ssh_config_of(bench))
    try:
        ssh.connect()
    except HilnetError as e:
        why = str(e).removeprefix(f"{subject}: ")
        return [Check(subject, False, f"{why}; check `ssh {board.ssh}` works without a prompt (keys, known_hosts)")]
    try:
        out = [Check(subject, True, f"reachable over SSH ({board.ssh})")]
        try:
            facts = probe(ssh, bench, board)
        except HilnetError as e:
            return [*out, Check(subject, False, str(e).removeprefix(f"{subject}: "))]
        return out + list(_facts(bench, board, facts))
    finally:
        ssh.close()


def _facts(bench: Bench, board: Board, facts: dict) -> Iterator[Check]:
    subject = f"board {board.name}"
    mine, theirs = identity(), facts.get("identity")
    if theirs == mine:
        yield Check(subject, True, f"hilnet {theirs}, as here")
    else:
        yield Check(subject, False, f"hilnet {theirs}, here {mine}; run: hilnet bench install {bench.source}")
    uarts, nics = ports_of(bench, board)
    for dev in uarts:
        yield _uart(subject, dev, facts.get("uarts", {}).get(dev, {}))
    for nic in nics:
        f = facts.get("nics", {}).get(nic, {})
        yield Check(subject, bool(f.get("exists")), f"interface {nic} " + ("present" if f.get("exists") else "missing"))
    synced = facts.get("clock_synchronised")
    if synced:
        yield Check(subject, True, "clock synchronised (NTP)")
    else:
        yield Check(subject, False, "clock not synchronised; run chrony following the emulator host (firmware-config/)")
    free = facts.get("store_free_bytes")
    if isinstance(free, int) and free >= MIN_STORE_BYTES:
        yield Check(subject, True, f"{free // 2**20} MiB free for stores in {board.store_dir}")
    else:
        yield Check(subject, False, f"only {(free or 0) // 2**20} MiB free in {board.store_dir}; free some space")


def _uart(subject: str, dev: str, f: dict) -> Check:
    if not f.get("exists"):
        return Check(subject, False, f"UART {dev} missing; enable it (enable_uart=1, firmware-config/) and reboot")
    if f.get("console"):
        return Check(subject, False, f"UART {dev} is the serial console; remove console=serial0,... from cmdline.txt")
    if f.get("holders"):
        return Check(subject, False, f"UART {dev} held by {', '.join(f['holders'])}; stop it (serial-getty?)")
    if not f.get("openable"):
        return Check(subject, False, f"UART {dev} cannot be opened ({f.get('error')}); add the user to group dialout")
    return Check(subject, True, f"UART {dev} enabled, free of consoles")
