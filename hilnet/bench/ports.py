"""What a port named in a bench file must look like, and whether it exists on this host.

Each check returns None when the port is fine, else the problem worded as
"what is wrong; expected what" for the loader to put at the port's line.
"""

from __future__ import annotations

import ipaddress
import os

RFC2217 = "rfc2217://"
IFNAMSIZ = 16  # Linux interface names are at most 15 bytes


def check_interface(name: str) -> str | None:
    if (
        not name
        or len(name.encode()) >= IFNAMSIZ
        or "/" in name
        or any(c.isspace() for c in name)
        or name in (".", "..")
    ):
        return f"{name!r} is not a network interface name; expected a name such as eth1 (at most 15 characters, no '/')"
    return None


def check_address(text: str) -> str | None:
    if "/" not in text:
        return f"address {text!r} has no prefix; expected an address with its prefix such as 10.79.1.1/24"
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError:
        return f"address {text!r} is not an IP address with a prefix; expected such as 10.79.1.1/24"
    if iface.network.num_addresses < 4:
        return f"address {text!r} leaves no room for a far end; expected a prefix of /30 or shorter"
    return None


def check_rfc2217(text: str) -> str | None:
    rest = text[len(RFC2217) :].split("?", 1)[0].rstrip("/")
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return f"{text!r} is not rfc2217://HOST:PORT; expected such as rfc2217://labhost2:3001"
    return None


def check_emulator_port(text: str, kind: str, check_host: bool) -> str | None:
    """The emulator side of a ``uart`` or ``nic`` end; ``check_host`` also looks for it on this host."""
    serial_like = text.startswith(RFC2217) or text.startswith("/")
    if kind == "uart":
        if not serial_like:
            return (
                f"emulator {text!r} is a network interface, not a serial port; expected a serial device "
                "such as /dev/serial/by-id/usb-FTDI_... or rfc2217://HOST:PORT"
            )
        if text.startswith(RFC2217):
            return check_rfc2217(text)
        if check_host and not os.path.exists(text):
            return (
                f"emulator device {text} does not exist on this host; expected the serial adapter "
                "cabled to this board (plugged in? see ls /dev/serial/by-id/)"
            )
        return None
    if serial_like:
        return f"emulator {text!r} is a serial port, not a network interface; expected an interface such as eth2 or eth2.101"
    problem = check_interface(text)
    if problem:
        return f"emulator {problem}"
    if check_host and not os.path.exists(f"/sys/class/net/{text}"):
        return f"emulator interface {text} does not exist on this host; expected a NIC or VLAN interface (see ip link)"
    return None
