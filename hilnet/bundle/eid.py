"""Endpoint ids (RFC 9171 section 4.2.5): ``ipn:N.M``, ``dtn://node/service``, ``dtn:none``.

An :class:`Eid` is a frozen value: equal EIDs compare and hash equal, and
``str(eid)`` prints the URI that :func:`parse_eid` reads back. In a bundle an
EID is the CBOR array ``[scheme code, SSP]``: ``[2, [node, service]]`` for
ipn, ``[1, "//node/service"]`` for dtn and ``[1, 0]`` for ``dtn:none``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

from hilnet.bundle import cbor
from hilnet.errors import CborError, EidError, InputError

UINT64_MAX = (1 << 64) - 1


class EidScheme(IntEnum):
    """URI scheme codes of the "Bundle Protocol URI Scheme Types" registry."""

    DTN = 1
    IPN = 2


# RFC 3986 reg-name: unreserved / pct-encoded / sub-delims. RFC 9171 allows an
# empty one, but a dtn node without a name identifies nothing, so one is required.
_NODE_NAME = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+"
# demux = *VCHAR (visible US-ASCII, 0x21-0x7E)
_DTN_SSP = re.compile(rf"//({_NODE_NAME})/([\x21-\x7e]*)")
# RFC 9171 4.2.5.1.2 writes ipn numbers as 1*DIGIT; RFC 9758, which updates the ipn
# scheme, narrows each to canonical decimal: "0", or 1-9 followed by digits. Refusing
# leading zeros keeps text and CBOR one to one (str(parse_eid(s)) == s), so two
# spellings (ipn:01.0, ipn:1.0) can never name one node in a scenario or a node map.
# [0-9] rather than \d, which also matches other scripts' digits (and int() reads them).
_IPN = re.compile(r"ipn:(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")


@dataclass(frozen=True, slots=True)
class Eid:
    """One endpoint id.

    ``scheme`` is :class:`EidScheme`; ``ssp`` is ``(node, service)`` for ipn,
    the text after ``dtn:`` for dtn (``"//node/service"`` or ``"none"``).
    Build with :func:`parse_eid`, :meth:`ipn` or :meth:`dtn`.
    """

    scheme: EidScheme
    ssp: tuple[int, int] | str

    @staticmethod
    def ipn(node: int, service: int = 0) -> Eid:
        if not (0 <= node <= UINT64_MAX and 0 <= service <= UINT64_MAX):
            raise InputError(f"ipn node and service numbers must be 0..2^64-1, got {node}.{service}")
        return Eid(EidScheme.IPN, (node, service))

    @staticmethod
    def dtn(ssp: str) -> Eid:
        """``Eid.dtn("//node/svc")`` or ``Eid.dtn("none")``."""
        return parse_eid("dtn:" + ssp)

    @property
    def is_null(self) -> bool:
        """True for ``dtn:none``, the endpoint that never has members."""
        return self.ssp == "none" and self.scheme == EidScheme.DTN

    @property
    def node_id(self) -> Eid:
        """The administrative endpoint of this EID's node (``ipn:N.0``, ``dtn://node/``)."""
        ssp = self.ssp
        if isinstance(ssp, tuple):
            return Eid(EidScheme.IPN, (ssp[0], 0))
        if self.is_null:
            return self
        node = ssp[2:].split("/", 1)[0]
        return Eid(EidScheme.DTN, f"//{node}/")

    @property
    def node_number(self) -> int | None:
        """The ipn node number; None for a dtn EID."""
        return self.ssp[0] if isinstance(self.ssp, tuple) else None

    @property
    def is_node_id(self) -> bool:
        """True when this EID may serve as a node ID (service 0, empty demux)."""
        return not self.is_null and self.node_id == self

    @property
    def is_singleton(self) -> bool:
        """False for ``dtn:none`` and for dtn EIDs whose demux starts with ``~``."""
        ssp = self.ssp
        if isinstance(ssp, tuple):
            return True
        if self.is_null:
            return False
        return not ssp[2:].split("/", 1)[1].startswith("~")

    def __lt__(self, other: Eid) -> bool:
        if not isinstance(other, Eid):
            return NotImplemented
        if self.scheme != other.scheme:
            return self.scheme < other.scheme
        a, b = self.ssp, other.ssp
        if isinstance(a, tuple) and isinstance(b, tuple):
            return a < b
        if isinstance(a, str) and isinstance(b, str):
            return a < b
        return NotImplemented

    def __str__(self) -> str:
        ssp = self.ssp
        if isinstance(ssp, tuple):
            return f"ipn:{ssp[0]}.{ssp[1]}"
        return f"dtn:{ssp}"

    def __repr__(self) -> str:
        return f"Eid({str(self)!r})"

    def to_cbor(self) -> bytes:
        """The deterministic CBOR encoding of this EID."""
        ssp = self.ssp
        if isinstance(ssp, tuple):
            return b"\x82\x02\x82" + cbor.uint(ssp[0]) + cbor.uint(ssp[1])
        if self.is_null:
            return b"\x82\x01\x00"
        return b"\x82\x01" + cbor.text(ssp)


NULL_EID = Eid(EidScheme.DTN, "none")

# Decoding builds the same few EIDs over and over; frozen values can be shared.
_SMALL_IPN = [[Eid(EidScheme.IPN, (n, s)) for s in range(24)] for n in range(24)]


def _small_ipn(node: int, service: int) -> Eid:
    return _SMALL_IPN[node][service]


def ipn_numbers(text: str) -> tuple[int, int] | None:
    """The node and service numbers of ``text`` when it is written as an ipn EID, else None.

    Checks the syntax only (decimal digits without leading zeros); the numbers
    are not bounded, so a caller can name one that is out of range.
    :func:`parse_eid` is the full check.
    """
    m = _IPN.fullmatch(text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def parse_eid(text: str) -> Eid:
    """Read ``ipn:N.M``, ``dtn://node/service`` or ``dtn:none``.

    The one reader of EID text in hilnet: the scenario loader, the agent's node
    map and the control protocol all accept exactly what it accepts.
    Raises :class:`~hilnet.errors.InputError` naming what was wrong.
    """
    if not isinstance(text, str):
        raise InputError(f"an endpoint id must be text, got {text!r}")
    numbers = ipn_numbers(text)
    if numbers is not None:
        return Eid.ipn(*numbers)
    if text == "dtn:none":
        return NULL_EID
    if text.startswith("dtn:"):
        if _DTN_SSP.fullmatch(text[4:]):
            return Eid(EidScheme.DTN, text[4:])
        raise InputError(f"{text!r} is not a dtn endpoint id: expected dtn://node/service or dtn:none")
    if text.startswith("ipn:"):
        raise InputError(
            f"{text!r} is not an ipn endpoint id: expected ipn:NODE.SERVICE, decimal numbers without leading zeros"
        )
    raise InputError(f"{text!r} is not an endpoint id: expected ipn:NODE.SERVICE, dtn://node/service or dtn:none")


def read_eid(data: bytes, pos: int, end: int, what: str = "endpoint id") -> tuple[Eid, int]:
    """Decode an EID at ``pos`` (see :mod:`hilnet.bundle.cbor` for the reader convention).

    Raises :class:`~hilnet.errors.EidError` for a scheme or SSP that RFC 9171
    does not allow, :class:`~hilnet.errors.CborError` for malformed CBOR.
    """
    # Fast path: small ipn numbers and dtn:none, which are most EIDs on the wire.
    b = data[pos : pos + 5]
    if len(b) == 5 and b[0] == 0x82 and b[1] == 0x02 and b[2] == 0x82 and b[3] < 24 and b[4] < 24:
        return _small_ipn(b[3], b[4]), pos + 5
    if b[:3] == b"\x82\x01\x00":
        return NULL_EID, pos + 3
    start = pos
    n, pos = cbor.read_array(data, pos, end, what)
    if n != 2:
        raise EidError(f"{what} must be an array of 2 items, has {n}", start)
    scheme_at = pos
    scheme, pos = cbor.read_uint(data, pos, end, f"{what} scheme code")
    if scheme == EidScheme.IPN:
        inner = pos
        n, pos = cbor.read_array(data, pos, end, f"{what} ipn SSP")
        if n != 2:
            raise EidError(f"{what}: ipn SSP must be [node, service], has {n} items", inner)
        node, pos = cbor.read_uint(data, pos, end, f"{what} ipn node number")
        service, pos = cbor.read_uint(data, pos, end, f"{what} ipn service number")
        return Eid(EidScheme.IPN, (node, service)), pos
    if scheme == EidScheme.DTN:
        if pos < end and data[pos] == 0x00:
            return NULL_EID, pos + 1
        ssp_at = pos
        try:
            ssp, pos = cbor.read_text(data, pos, end, f"{what} dtn SSP")
        except CborError as e:
            if pos < end and data[pos] >> 5 == cbor.UINT:
                raise EidError(f"{what}: dtn SSP as an integer must be 0 (dtn:none)", ssp_at) from None
            raise e from None
        if ssp == "none" or not _DTN_SSP.fullmatch(ssp):
            raise EidError(f"{what}: {('dtn:' + ssp)[:80]!r} is not dtn://node/service", ssp_at)
        return Eid(EidScheme.DTN, ssp), pos
    raise EidError(f"{what}: unknown URI scheme code {scheme} (only 1 dtn, 2 ipn)", scheme_at)
