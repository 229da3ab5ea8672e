"""A node's BPSec keys, by security source, and the text of a key file (docs/bundle.md). No I/O.

A key file has one key a line, ``SOURCE PURPOSE HEX``; ``#`` starts a comment::

    # hilnet BPSec keys
    ipn:2.0 integrity       1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b
    ipn:2.0 confidentiality 6162636465666768696a6b6c6d6e6f706162636465666768696a6b6c6d6e6f70

``SOURCE`` is the node id of the security source whose blocks the key
makes (at that node) or checks (at an acceptor). ``integrity`` is the HMAC
key of BIB-HMAC-SHA2 (16 to 128 bytes); ``confidentiality`` the
key-encryption key of BCB-AES-GCM (16 or 32 bytes), which wraps a fresh
content-encryption key per bundle (AES key wrap, RFC 3394). A line that
cannot be read raises :class:`~hilnet.errors.KeyFileError` at FILE:LINE:COL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from hilnet.bundle.eid import Eid, parse_eid
from hilnet.errors import InputError, KeyFileError, SecurityError

__all__ = ["PURPOSES", "KeyRing", "Purpose", "format_keys", "parse_keys"]

Purpose = Literal["integrity", "confidentiality"]
PURPOSES: tuple[Purpose, ...] = ("integrity", "confidentiality")
_SIZES = {"integrity": range(16, 129), "confidentiality": (16, 32)}
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")


@dataclass(frozen=True)
class KeyRing:
    """Keys by purpose, then by security source node id (text, ``ipn:2.0``)."""

    integrity: Mapping[str, bytes] = field(default_factory=dict)
    confidentiality: Mapping[str, bytes] = field(default_factory=dict)

    def key(self, purpose: Purpose, source: Eid) -> bytes:
        """The key for blocks of ``purpose`` from ``source`` (any endpoint of the node).

        Raises :class:`~hilnet.errors.SecurityError` (reason ``no-key``) when there is none.
        """
        keys = self.integrity if purpose == "integrity" else self.confidentiality
        found = keys.get(str(source.node_id)) if not source.is_null else None
        if found is None:
            raise SecurityError("no-key", f"no {purpose} key for security source {source} in this node's key file")
        return found


def _line(text: str, number: int, file: str, keys: dict[str, dict[str, bytes]]) -> None:
    words = [(m.start() + 1, m.group()) for m in re.finditer(r"\S+", text.split("#", 1)[0])]
    if not words:
        return
    if len(words) != 3:
        raise KeyFileError(f"expected SOURCE PURPOSE HEX, found {len(words)} words", file, number, words[0][0])
    (scol, source), (pcol, purpose), (hcol, hexkey) = words
    try:
        eid = parse_eid(source)
    except InputError as e:
        raise KeyFileError(f"not a node id: {e}", file, number, scol) from None
    if eid.is_null or not eid.is_node_id:
        raise KeyFileError(f"{source!r} is not a node id (ipn:N.0 or dtn://node/)", file, number, scol)
    if purpose not in PURPOSES:
        raise KeyFileError(f"purpose {purpose!r} is not integrity or confidentiality", file, number, pcol)
    if not _HEX.fullmatch(hexkey):
        raise KeyFileError("the key must be hexadecimal, two digits a byte", file, number, hcol)
    key = bytes.fromhex(hexkey)
    if len(key) not in _SIZES[purpose]:
        want = "16 to 128" if purpose == "integrity" else "16 or 32"
        raise KeyFileError(f"an {purpose} key has {want} bytes, this one {len(key)}", file, number, hcol)
    if str(eid) in keys[purpose]:
        raise KeyFileError(f"a second {purpose} key for {eid}", file, number, scol)
    keys[purpose][str(eid)] = key


def parse_keys(text: str, file: str = "<keys>") -> KeyRing:
    """The :class:`KeyRing` a key file's ``text`` holds."""
    keys: dict[str, dict[str, bytes]] = {p: {} for p in PURPOSES}
    for number, line in enumerate(text.splitlines(), start=1):
        _line(line, number, file, keys)
    return KeyRing(keys["integrity"], keys["confidentiality"])


def format_keys(ring: KeyRing, header: str = "hilnet BPSec keys") -> str:
    """The key file text of ``ring`` (``parse_keys(format_keys(r)) == r``)."""
    lines = [f"# {header}: SOURCE PURPOSE HEX (docs/bundle.md)"]
    for purpose in PURPOSES:
        for source, key in sorted(getattr(ring, purpose).items()):
            lines.append(f"{source} {purpose} {key.hex()}")
    return "\n".join(lines) + "\n"
