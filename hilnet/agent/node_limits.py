"""What a node may use, as configure carries it: its bundle store and its limits (docs/control.md).

Read and written beside the other configure fields by :mod:`hilnet.agent.control`;
imported through :mod:`hilnet.agent.protocol`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from hilnet.agent.jsonlines import FieldReader


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """The bundle store: SQLite file ``path``; quotas in bytes and bundles (None: no limit)."""

    path: str
    quota_bytes: int | None = None
    quota_bundles: int | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """What hostile or broken peers may cost the agent, all connections together (docs/cla.md, "Limits").

    Sizes in bytes, times in ns; enforced by :mod:`hilnet.agent.cla.limits`.
    ``max_connections`` None: the descriptor limit (``RLIMIT_NOFILE``) less a headroom.
    """

    memory_bytes: int = 256 << 20  # incoming bundles not yet handed to the agent
    max_connections: int | None = None  # accepted TCP connections (TCPCL and MTCP)
    idle_timeout_ns: int = 300 * 10**9  # MTCP: silence between bundles that closes a connection
    partial_timeout_ns: int = 60 * 10**9  # a bundle partly received that makes no progress for this long
    transfer_timeout_ns: int = 60 * 10**9  # TCPCL sending: no XFER_ACK progress for this long ends the session


def read_store(o: FieldReader) -> StoreConfig | None:
    raw = o.get("store", False)
    if raw is None:
        return None
    s = o.nested(raw, "store.")
    cfg = StoreConfig(
        s.string("path"), s.optional_integer("quota_bytes", min=0), s.optional_integer("quota_bundles", min=0)
    )
    s.finish()
    return cfg


def read_limits(o: FieldReader) -> Limits:
    raw = o.get("limits", False)
    if raw is None:
        return Limits()
    r = o.nested(raw, "limits.")
    d = Limits()
    given = {f.name: r.optional_integer(f.name, min=1) for f in fields(Limits)}
    r.finish()
    return Limits(**{k: getattr(d, k) if v is None else v for k, v in given.items()})


def node_limits_json(store: StoreConfig | None, limits: Limits) -> dict[str, Any]:
    """The ``store`` and ``limits`` fields of configure's JSON (defaults left out)."""
    d: dict[str, Any] = {}
    if store is not None:
        s = store
        d["store"] = {"path": s.path} | {
            k: v for k, v in (("quota_bytes", s.quota_bytes), ("quota_bundles", s.quota_bundles)) if v is not None
        }
    if limits != Limits():
        d["limits"] = {f.name: getattr(limits, f.name) for f in fields(Limits) if getattr(limits, f.name) is not None}
    return d
