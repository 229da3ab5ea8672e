"""BPSec at a node: its key file, the blocks a source adds, the destination's check (docs/bundle.md).

The rules are :mod:`hilnet.bundle.bpsec.policy`'s; this module reads the key
file, brings the randomness (``os.urandom``) and turns a failed check into a
``security-failed`` event. The agent calls :func:`protected` for a bundle a
local application sends with a protection, and :func:`accepted` for a bundle
for this node that carries a BIB or BCB, before it is stored: a bundle that
fails is dropped there, never stored and never delivered.
"""

from __future__ import annotations

import logging
import os
import stat
from collections import Counter
from collections.abc import Callable
from typing import Any

from hilnet.agent import protocol as ev
from hilnet.bundle.blocks import Bundle
from hilnet.bundle.bpsec.keys import KeyRing, parse_keys
from hilnet.bundle.bpsec.policy import Protection, accept, protect
from hilnet.errors import BundleDecodeError, KeyFileError, SecurityError

log = logging.getLogger("hilnet.agent")

#: a key file over this is not a key file
MAX_KEY_FILE = 1024 * 1024


def load_keyring(path: str | None) -> KeyRing:
    """The keys in the file at ``path`` (None: no keys). Raises KeyFileError naming FILE:LINE:COL."""
    if path is None:
        return KeyRing()
    try:
        with open(path, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            raw = f.read(MAX_KEY_FILE + 1)
    except OSError as e:
        raise KeyFileError(f"cannot read: {e.strerror}", path) from None
    if len(raw) > MAX_KEY_FILE:
        raise KeyFileError(f"over {MAX_KEY_FILE} bytes: not a key file", path)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s: other users can read these keys (mode %o); chmod 600 it", path, stat.S_IMODE(mode))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise KeyFileError(f"not UTF-8 text (byte {e.start})", path) from None
    return parse_keys(text, path)


def protected(bundle: Bundle, keys: KeyRing, protection: Protection | None) -> Bundle:
    """``bundle`` with the BPSec blocks ``protection`` asks for (SecurityError without a key)."""
    return protect(bundle, keys, protection, os.urandom) if protection else bundle


def accepted(
    bundle: Bundle, key: str, keys: KeyRing, emit: Callable[..., Any], counters: Counter[str]
) -> Bundle | None:
    """``bundle`` decrypted and verified, or None after a ``security-failed`` event."""
    try:
        return accept(bundle, keys)
    except (SecurityError, BundleDecodeError) as e:
        check = e.reason if isinstance(e, SecurityError) else "malformed-block"
        counters["security-failed:" + check] += 1
        emit(ev.SecurityFailed, bundle=key, source=str(bundle.primary.source), check=check, reason=str(e))
        return None
