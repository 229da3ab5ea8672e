"""Reading BPSec in a scenario: a traffic stream's ``security:`` and a node's ``keys:`` (docs/scenario.md)."""

from __future__ import annotations

import os

from yaml.nodes import Node

from hilnet.bundle.bpsec.keys import parse_keys
from hilnet.bundle.bpsec.policy import CONFIDENTIALITY, INTEGRITY
from hilnet.errors import KeyFileError
from hilnet.scenario.reader import Reader

SECURITY_KEYS = ("integrity", "confidentiality")


def read_security(r: Reader, node: Node, what: str) -> tuple[str | None, str | None]:
    """``(integrity, confidentiality)`` names of ``security: {...}``; errors recorded, None where wrong."""
    m = r.mapping(node, f"{what} security", SECURITY_KEYS)
    if m is None:
        return None, None
    if not m and not getattr(node, "value", None):
        r.error(node, f"{what} security is empty; expected integrity: hmac-sha384 and/or confidentiality: aes256-gcm")
    integrity = confidentiality = None
    if "integrity" in m:
        integrity = r.choice(m["integrity"][1], f"{what} security integrity", INTEGRITY)
    if "confidentiality" in m:
        confidentiality = r.choice(m["confidentiality"][1], f"{what} security confidentiality", CONFIDENTIALITY)
    return integrity, confidentiality


def read_key_file(r: Reader, node: Node, what: str) -> str | None:
    """The absolute path of a node's own key file, read and checked now; None (error recorded) if unusable.

    A relative path is relative to the scenario file.
    """
    path = r.text(node, what, "a key file path such as keys/cologne.keys")
    if path is None:
        return None
    full = os.path.join(os.path.dirname(os.path.abspath(r.filename)), os.path.expanduser(path))
    try:
        with open(full, encoding="utf-8") as f:
            parse_keys(f.read(), path)
    except OSError as e:
        r.error(node, f"{what}: cannot read {path}: {e.strerror}")
        return None
    except (KeyFileError, UnicodeDecodeError) as e:
        r.error(node, f"{what}: {e}")
        return None
    return full
