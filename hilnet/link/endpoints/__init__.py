"""Link endpoints, one module per scheme, opened from URL-like specs.

    serial:///dev/ttyUSB0?baud=115200&bytesize=8&parity=N&stopbits=1   a UART (pyserial)
    rfc2217://labhost2:3001?baud=115200                                a UART on another host (ser2net)
    pty:///tmp/iss-uart                                                a new pty; symlink at that path
    eth://veth0                                                        AF_PACKET on an interface
    udp://127.0.0.1:4000?peer=127.0.0.1:5000                           datagrams
    tcp://127.0.0.1:4556?peer=127.0.0.1:14556                          stream relay

:func:`parse_spec` turns a spec into that scheme's frozen dataclass (no I/O);
:func:`open_endpoint` opens it. Both raise :class:`~hilnet.errors.SpecError`
for a spec that cannot be used, naming the bad part.
"""

from __future__ import annotations

import importlib

from hilnet.errors import SpecError
from hilnet.link.endpoints.base import Endpoint, split_spec

# scheme -> module; each module has parse(SpecText) and open_endpoint(spec, label).
SCHEMES = {
    "serial": "hilnet.link.endpoints.serial",
    "rfc2217": "hilnet.link.endpoints.rfc2217",
    "pty": "hilnet.link.endpoints.pty",
    "eth": "hilnet.link.endpoints.eth",
    "udp": "hilnet.link.endpoints.udp",
    "tcp": "hilnet.link.endpoints.tcp",
}


def _module(scheme: str, text: str):
    name = SCHEMES.get(scheme)
    if name is None:
        raise SpecError(f"{text!r}: unknown scheme {scheme!r}; expected one of {', '.join(s + '://' for s in SCHEMES)}")
    return importlib.import_module(name)


def parse_spec(text: str):
    """Parse an endpoint spec into its scheme's frozen dataclass; no I/O."""
    st = split_spec(text)
    return _module(st.scheme, text).parse(st)


def open_endpoint(spec, label: str = "") -> Endpoint:
    """Open an endpoint from a spec string or a parsed spec dataclass."""
    if isinstance(spec, str):
        spec = parse_spec(spec)
    scheme = split_spec(spec.text).scheme
    return _module(scheme, spec.text).open_endpoint(spec, label)


__all__ = ["SCHEMES", "Endpoint", "open_endpoint", "parse_spec"]
