"""`hilnet doctor` tells when two USB serial adapters carry the same serial string (they can swap names)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hilnet.testbed.doctor import _same_serial_string, usb_serial_adapters


def _adapter(sys_root: Path, tty: str, port_path: str, vendor: str, product: str, serial: str | None) -> None:
    """A USB serial adapter as sysfs shows it: the tty's device link into a USB interface of a USB device."""
    usb = sys_root / "devices" / "pci0000:00" / "usb1" / port_path
    interface = usb / f"{port_path}:1.0"
    (interface / tty).mkdir(parents=True)
    (usb / "idVendor").write_text(vendor + "\n")
    (usb / "idProduct").write_text(product + "\n")
    if serial is not None:
        (usb / "serial").write_text(serial + "\n")
    (sys_root / "class" / "tty" / tty).mkdir(parents=True)
    os.symlink(interface, sys_root / "class" / "tty" / tty / "device")


@pytest.mark.parametrize(
    ("second", "twin"),
    [
        (("10c4", "ea60", "0001"), True),  # two CP2102s with the factory serial "0001"
        (("1a86", "7523", None), False),  # a CH340 (no serial string) beside the CP2102
        (("10c4", "ea60", "A5XK3RJT"), False),  # a CP2102N with its own serial
    ],
)
def test_two_adapters_with_one_serial_string_fail(
    tmp_path: Path, second: tuple[str, str, str | None], twin: bool
) -> None:
    _adapter(tmp_path, "ttyUSB0", "1-1.2", "10c4", "ea60", "0001")
    _adapter(tmp_path, "ttyUSB1", "1-1.3", *second)
    (tmp_path / "class" / "tty" / "ttyS0").mkdir()  # an on-board UART: no USB parent
    adapters = usb_serial_adapters(str(tmp_path))
    assert set(adapters) == {"ttyUSB0", "ttyUSB1"}
    [check] = list(_same_serial_string("host port /dev/ttyUSB0 (l, a)", "/dev/ttyUSB0", adapters))
    assert check.ok is not twin
    if twin:
        assert "ttyUSB1 has the same vendor, product and serial string '0001'" in check.text
        assert "ID_PATH" in check.text


def test_a_port_that_is_no_usb_adapter_is_not_checked(tmp_path: Path) -> None:
    _adapter(tmp_path, "ttyUSB0", "1-1.2", "10c4", "ea60", "0001")
    assert (
        list(_same_serial_string("host port /dev/pts/3 (l, a)", "/dev/pts/3", usb_serial_adapters(str(tmp_path)))) == []
    )
