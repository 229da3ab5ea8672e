"""BPSec keys for a run: one key file per node in the run folder (docs/bundle.md).

When a traffic stream asks for security, every node gets an integrity key and
a confidentiality (key-encryption) key, fresh for the run, and every node's
file holds every node's keys: each is a source for its own streams and an
acceptor for the streams to it. A node whose scenario entry names ``keys:``
gets that file instead (a hand-made set, or a deliberately wrong one).
Files are created 0600 in ``RUN/keys/``, a 0700 folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from hilnet.bundle.bpsec.keys import KeyRing, format_keys
from hilnet.bundle.eid import parse_eid
from hilnet.errors import TestbedError
from hilnet.scenario.model import Scenario

KEY_BYTES = 32  # HMAC key and AES-256 key-encryption key


def needs_keys(scenario: Scenario) -> bool:
    """Whether any traffic stream asks for BPSec, or any node brings its own keys."""
    return any(t.integrity or t.confidentiality for t in scenario.traffic) or any(n.keys for n in scenario.nodes)


def run_key_ring(scenario: Scenario, random: Callable[[int], bytes] = os.urandom) -> KeyRing:
    """Fresh integrity and confidentiality keys for every node of ``scenario``."""
    ids = [str(parse_eid(n.eid).node_id) for n in scenario.nodes]
    return KeyRing({i: random(KEY_BYTES) for i in ids}, {i: random(KEY_BYTES) for i in ids})


def write_run_keys(scenario: Scenario, run_dir: str) -> dict[str, str]:
    """node name -> absolute path of its key file (written now); empty when the run needs no keys."""
    if not needs_keys(scenario):
        return {}
    folder = os.path.join(os.path.abspath(run_dir), "keys")
    text = format_keys(run_key_ring(scenario), f"hilnet BPSec keys of run {scenario.name}")
    paths: dict[str, str] = {}
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        for node in scenario.nodes:
            if node.keys:
                paths[node.name] = node.keys
                continue
            path = os.path.join(folder, f"{node.name}.keys")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            paths[node.name] = path
    except OSError as e:
        raise TestbedError(f"cannot write the run's key files in {folder}: {e.strerror}") from None
    return paths
