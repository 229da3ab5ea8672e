"""One contact plan for many agents: what a host process and its controller each handle once.

Every node of a run is configured with the same contact plan, and on a large
run that plan dominates the ``configure`` line (a 1,000-node grid with two
windows per link: 7,840 contacts, about 800 kB). Encoding it for each node on
the controller and parsing it for each node in the host cost more than all
the rest of building the testbed, and holding one copy per agent cost most of
a hosted agent's memory. So the plan's JSON is spliced, byte for byte, into
each node's ``configure`` line (:class:`PlanSplicer`, controller side), and
the host parses a plan whose bytes it has seen once and hands every node the
same tuple (:class:`PlanCache`). The lines stay what the protocol says: each
is a whole ``configure`` command, checked as one; only the work is shared.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from hilnet.agent.protocol import Command, Configure

_FIELD = b'"contacts":'
_EMPTY = _FIELD + b"[]"


def _contacts_span(line: bytes) -> tuple[int, int] | None:
    """Where the ``contacts`` array of a configure line lies (its brackets included), or None.

    A contact is an object of numbers and names, so the array ends at the first ``]``."""
    at = line.find(_FIELD)
    if at < 0:
        return None
    start = at + len(_FIELD)
    end = line.find(b"]", start)
    if end < 0 or line[start : start + 1] != b"[":
        return None
    return start, end + 1


class PlanSplicer:
    """Encodes ``configure`` commands whose contacts are one shared tuple, encoding that tuple once."""

    def __init__(self, encode: Callable[[Command], bytes]):
        self._encode = encode
        self._plan: tuple[object, bytes] | None = None  # (the contacts tuple, its JSON array)

    def encode(self, command: Command) -> bytes:
        if not isinstance(command, Configure) or not command.contacts:
            return self._encode(command)
        if self._plan is not None and self._plan[0] is command.contacts:
            line = self._encode(dataclasses.replace(command, contacts=()))
            return line.replace(_EMPTY, _FIELD + self._plan[1], 1)
        line = self._encode(command)
        span = _contacts_span(line)
        if span is not None and _holds(line[span[0] : span[1]], len(command.contacts)):
            self._plan = (command.contacts, line[span[0] : span[1]])
        return line


class PlanCache:
    """The contacts of the last plan a host parsed, by their bytes: parsed once, shared by every agent."""

    def __init__(self) -> None:
        self._plan: tuple[bytes, Any] | None = None

    def parse(self, line: bytes, parse: Callable[[bytes], Command | None]) -> Command | None:
        """``parse(line)``, with the contacts of a plan seen before taken from the cache."""
        span = _contacts_span(line) if line.startswith(b'{"cmd":"configure"') else None
        if span is None:
            return parse(line)
        raw = line[span[0] : span[1]]
        if self._plan is not None and self._plan[0] == raw:
            cmd = parse(line[: span[0]] + b"[]" + line[span[1] :])
            if isinstance(cmd, Configure):
                return dataclasses.replace(cmd, contacts=self._plan[1])
            return cmd
        cmd = parse(line)
        if isinstance(cmd, Configure) and cmd.contacts and _holds(raw, len(cmd.contacts)):
            self._plan = (raw, cmd.contacts)
        return cmd


def _holds(raw: bytes, count: int) -> bool:
    """Whether ``raw`` is the whole contacts array (``count`` of them): checked once per plan."""
    try:
        value = json.loads(raw)
    except ValueError:
        return False
    return isinstance(value, list) and len(value) == count
