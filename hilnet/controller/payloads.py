"""Each injected bundle's name, payload seed and digest, worked out before the run starts.

Making a payload's bytes to hash them holds the interpreter lock for the whole call
(about 2 ms for a 512 KiB image): done at injection time, it would stand between the
link engine's loop and a window edge due at that moment (benchmarks/engine_lock.py).
The controller works them all out while it builds the testbed, before ``t0``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from hilnet.agent.payload import payload_sha256
from hilnet.scenario.actions import Action, InjectBundle


@dataclass(frozen=True, slots=True)
class Payload:
    tag: str  # the bundle's name in reports: "photos#3"
    seed: int  # what the source's stack makes the payload from (hilnet.agent.payload)
    sha256: str  # hex digest of those bytes: what an intact delivery reports


def bundle_tag(action: InjectBundle) -> str:
    return f"{action.traffic}#{action.seq + 1}"


def payload_of(scenario_seed: int, action: InjectBundle) -> Payload:
    """The payload of ``action``: its seed follows from the scenario's seed and the bundle's name alone."""
    tag = bundle_tag(action)
    seed = int.from_bytes(hashlib.sha256(f"{scenario_seed}:{tag}".encode()).digest()[:6], "big")
    return Payload(tag, seed, payload_sha256(seed, action.size))


def payloads_of(scenario_seed: int, actions: Iterable[Action]) -> dict[str, Payload]:
    """Every injection's payload, by bundle name."""
    return {bundle_tag(a): payload_of(scenario_seed, a) for a in actions if isinstance(a, InjectBundle)}
