"""The shipped udev rules, run by the real ``udevadm test`` on USB-serial adapters.

No adapter is plugged into a CI machine, so each test builds the sysfs tree a
kernel would show for adapters on a USB hub (PCI xHCI controller, hub, device,
interface, usb-serial port, tty), and runs ``udevadm test`` in a private mount
namespace where that tree is ``/sys``, the shipped rules file is the only rule
file, and ``/dev`` and ``/run/udev`` are scratch tmpfs: nothing of the machine's
own devices, rules or database is read or touched.

Needs root (mount namespaces), ``unshare`` and ``udevadm`` (Debian ``udev``); skips
with the reason otherwise.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "firmware-config" / "udev" / "99-hilnet-serial.rules"

pytestmark = [
    pytest.mark.skipif(shutil.which("udevadm") is None, reason="udevadm missing (Debian package udev)"),
    pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare missing (util-linux)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a private mount namespace"),
]

PCI = "0000:00:14.0"  # the xHCI controller the shipped example rules name
# sd-device refuses a /sys that is not sysfs unless told, as systemd's own tests
# of fake sysfs trees tell it.
FAKE_SYSFS = {"SYSTEMD_DEVICE_VERIFY_SYSFS": "0"}


@dataclass(frozen=True)
class Adapter:
    """One USB-serial adapter on port ``port`` of a hub on root port 1 (``1-1.<port>``)."""

    port: int
    vendor: str
    product: str
    serial: str | None
    driver: str
    tty: str


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _device(d: Path, subsystem: str, uevent: str, **attrs: str) -> None:
    d.mkdir(parents=True, exist_ok=True)
    _write(d / "uevent", uevent)
    (d / "subsystem").symlink_to(f"/sys/bus/{subsystem}" if subsystem != "tty" else "/sys/class/tty")
    for name, value in attrs.items():
        _write(d / name, value + "\n")


def build_sysfs(top: Path, adapters: list[Adapter]) -> dict[str, str]:
    """A sysfs tree under ``top`` with ``adapters``; returns tty name -> its devpath."""
    for bus in ("pci", "usb", "usb-serial"):
        (top / "bus" / bus / "drivers").mkdir(parents=True, exist_ok=True)
    (top / "class" / "tty").mkdir(parents=True, exist_ok=True)
    pci = top / "devices" / "pci0000:00" / PCI
    _device(pci, "pci", f"PCI_SLOT_NAME={PCI}\n")
    root_hub = pci / "usb1"
    _device(root_hub, "usb", "DEVTYPE=usb_device\nBUSNUM=001\nDEVNUM=001\n", idVendor="1d6b", idProduct="0002")
    hub = root_hub / "1-1"
    _device(hub, "usb", "DEVTYPE=usb_device\nBUSNUM=001\nDEVNUM=002\n", idVendor="05e3", idProduct="0610")
    paths: dict[str, str] = {}
    for n, a in enumerate(adapters):
        attrs = {"idVendor": a.vendor, "idProduct": a.product}
        if a.serial is not None:
            attrs["serial"] = a.serial
        dev = hub / f"1-1.{a.port}"
        _device(dev, "usb", f"DEVTYPE=usb_device\nBUSNUM=001\nDEVNUM={3 + n:03d}\n", **attrs)
        intf = dev / f"1-1.{a.port}:1.0"
        _device(intf, "usb", "DEVTYPE=usb_interface\nINTERFACE=255/0/0\n")
        (top / "bus" / "usb-serial" / "drivers" / a.driver).mkdir(parents=True, exist_ok=True)
        port = intf / a.tty
        _device(port, "usb-serial", "", latency_timer="16")
        (port / "driver").symlink_to(f"/sys/bus/usb-serial/drivers/{a.driver}")
        tty = port / "tty" / a.tty
        _device(tty, "tty", f"MAJOR=188\nMINOR={n}\nDEVNAME={a.tty}\n", dev=f"188:{n}")
        paths[a.tty] = f"/sys/{tty.relative_to(top)}"
    return paths


_SCRIPT = r"""
set -e
mount --make-rprivate /
mount --bind "$FAKE/sys" /sys
mkdir -p "$FAKE/rules" "$FAKE/empty"
for d in /etc/udev/rules.d /usr/lib/udev/rules.d /lib/udev/rules.d /run/udev/rules.d; do
    [ -d "$d" ] && mount --bind "$FAKE/empty" "$d"
done
mount --bind "$FAKE/rules" /etc/udev/rules.d
mount -t tmpfs none /run/udev 2>/dev/null || { mkdir -p /run/udev && mount -t tmpfs none /run/udev; }
mount -t tmpfs none /dev
mknod -m 666 /dev/null c 1 3
for p in $DEVPATHS; do
    echo "=== $p"
    udevadm test --action=add "$p" 2>&1
    echo "=== exit $?"
done
"""


def udevadm_test(tmp: Path, rules_text: str, adapters: list[Adapter]) -> dict[str, str]:
    """Run ``udevadm test`` on each adapter's tty; tty -> its whole output."""
    fake = tmp / "fake"
    paths = build_sysfs(fake / "sys", adapters)
    _write(fake / "rules" / RULES.name, rules_text)
    env = dict(os.environ, FAKE=str(fake), DEVPATHS=" ".join(paths.values()), **FAKE_SYSFS)
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", _SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"the namespace script failed: {proc.stderr}\n{proc.stdout}"
    out: dict[str, str] = {}
    for tty, devpath in paths.items():
        m = re.search(rf"=== {re.escape(devpath)}\n(.*?)=== exit (\d+)", proc.stdout, re.S)
        assert m, proc.stdout
        assert m.group(2) == "0", f"udevadm test failed on {tty}:\n{m.group(1)}"
        out[tty] = m.group(1)
    return out


def links(output: str) -> set[str]:
    m = re.search(r"^DEVLINKS=(.*)$", output, re.M)
    return {p for p in (m.group(1).split() if m else []) if p.startswith("/dev/hilnet/")}


def test_the_shipped_rules_parse_without_a_complaint(tmp_path: Path) -> None:
    out = udevadm_test(tmp_path, RULES.read_text(), [Adapter(1, "0403", "6001", "A10KZ0Q1", "ftdi_sio", "ttyUSB0")])
    text = out["ttyUSB0"]
    complaints = [
        line
        for line in text.splitlines()
        if re.search(r"invalid|unknown|error|failed to", line, re.I) and RULES.name in line
    ]
    assert not complaints, "\n".join(complaints)
    assert f"Reading rules file: /etc/udev/rules.d/{RULES.name}" in text or RULES.name in text


# Two adapters with the SAME serial string (every CP2102 ships as "0001"), a CH340
# with none, an FTDI FT231X: named by the hub port they sit in, never by serial.
TABLE = [
    (Adapter(1, "10c4", "ea60", "0001", "cp210x", "ttyUSB0"), {"/dev/hilnet/tdrs-e-tdrs-w.a"}),
    (Adapter(2, "10c4", "ea60", "0001", "cp210x", "ttyUSB1"), {"/dev/hilnet/tdrs-e-tdrs-w.b"}),
    (Adapter(3, "1a86", "7523", None, "ch341-uart", "ttyUSB2"), set()),  # a port no rule names
    (Adapter(4, "0403", "6015", "DK0AB1CD", "ftdi_sio", "ttyUSB3"), set()),
]


def test_two_adapters_with_the_same_serial_get_two_names(tmp_path: Path) -> None:
    out = udevadm_test(tmp_path, RULES.read_text(), [a for a, _ in TABLE])
    got = {a.tty: links(out[a.tty]) for a, _ in TABLE}
    want = {a.tty: names for a, names in TABLE}
    assert got == want
    assert "ID_PATH=pci-0000:00:14.0-usb-0:1.1:1.0" in out["ttyUSB0"]  # the builtin, not a guess


def test_matching_by_that_serial_would_give_both_one_name(tmp_path: Path) -> None:
    # Why the rules match by port: the same two adapters matched by their serial
    # string both claim one name, and a link's two ends can swap.
    by_serial = 'SUBSYSTEM=="tty", ATTRS{idVendor}=="10c4", ATTRS{serial}=="0001", SYMLINK+="hilnet/tdrs-e-tdrs-w.a"\n'
    adapters = [a for a, _ in TABLE[:2]]
    out = udevadm_test(tmp_path, by_serial, adapters)
    assert links(out["ttyUSB0"]) == links(out["ttyUSB1"]) == {"/dev/hilnet/tdrs-e-tdrs-w.a"}


def test_an_ftdi_adapter_gets_a_1_ms_latency_timer(tmp_path: Path) -> None:
    adapter = Adapter(1, "0403", "6001", "A10KZ0Q1", "ftdi_sio", "ttyUSB0")
    fake = tmp_path / "fake"
    paths = build_sysfs(fake / "sys", [adapter])
    port = paths["ttyUSB0"].rsplit("/tty/", 1)[0]
    _write(fake / "rules" / RULES.name, RULES.read_text())
    env = dict(os.environ, FAKE=str(fake), DEVPATHS=port, **FAKE_SYSFS)
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", _SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"ATTR '\S+/ttyUSB0/latency_timer' writing '1'", proc.stdout), proc.stdout
    # (udevadm test only says what it would write; the attribute itself is left alone.)
