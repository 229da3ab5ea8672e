"""What an agent is told to be: :class:`AgentConfig`, and how a ``configure`` command becomes one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hilnet.agent.protocol import BUNDLE_CRCS, ClaConfig, Configure, Limits
from hilnet.bundle.codec import DEFAULT_MAX_SIZE
from hilnet.bundle.crc import CrcType
from hilnet.scenario.contact import Contact
from hilnet.units import scenario_to_wall_ns

DEFAULT_HOP_LIMIT = 32


@dataclass(frozen=True)
class AgentConfig:
    """What ``configure`` tells an agent. Times ns; sizes bytes."""

    node: str
    eid: str
    store_path: str
    quota_bytes: int | None = None
    quota_bundles: int | None = None
    clas: tuple[ClaConfig, ...] = ()  # started in this order
    contacts: tuple[Contact, ...] = ()
    nodes: Mapping[str, str] = field(default_factory=dict)  # name -> eid
    routes: Mapping[str, str] = field(default_factory=dict)  # dest eid or "*" -> next hop eid
    epoch_ns: int | None = None  # agent clock reading at plan time 0; None = now (held: after ``start``)
    hold: bool = False  # plan time waits for a ``start`` command (the controller's t0)
    hop_limit: int = DEFAULT_HOP_LIMIT
    max_bundle_size: int = DEFAULT_MAX_SIZE  # bytes; the scenario loader refuses traffic above it
    keys_path: str | None = None  # BPSec key file (docs/bundle.md)
    bundle_crc: CrcType = CrcType.CRC32C  # of every block of the bundles this agent makes
    limits: Limits = Limits()  # what peers may cost, all connections together


def config_from_command(c: Configure, default_store: str) -> AgentConfig:
    """The :class:`AgentConfig` a ``configure`` command describes.

    Contacts arrive in scenario time; the agent routes in plan time (wall ns
    since ``epoch_ns``), so window times are divided by ``scale`` while rate
    and light time, which are physics, stay as they are.
    """
    contacts = _plan_contacts(c.contacts, c.scale or 1.0)
    store = c.store
    return AgentConfig(
        node=c.node,
        eid=c.eid,
        store_path=store.path if store else default_store,
        quota_bytes=store.quota_bytes if store else None,
        quota_bundles=store.quota_bundles if store else None,
        clas=c.clas,
        contacts=contacts,
        nodes=dict(c.nodes),
        routes=dict(c.routes),
        epoch_ns=c.epoch_ns if c.epoch_ns and not c.hold else None,
        hold=c.hold,
        keys_path=c.keys,
        bundle_crc=BUNDLE_CRCS[c.bundle_crc],
        limits=c.limits,
    )


# The last plan converted: the agents one host process runs are configured with one shared
# contacts tuple (hilnet/agent/host.py), which is then converted once, not once per agent.
_last_plan: tuple[object, float, tuple[Contact, ...]] | None = None


def _plan_contacts(contacts: tuple[Any, ...], scale: float) -> tuple[Contact, ...]:
    """``contacts`` (scenario time) as plan contacts (window times divided by ``scale``)."""
    global _last_plan
    if _last_plan is not None and _last_plan[0] is contacts and _last_plan[1] == scale:
        return _last_plan[2]
    converted = tuple(
        Contact(
            k.frm, k.to, scenario_to_wall_ns(k.start_ns, scale), scenario_to_wall_ns(k.end_ns, scale), k.rate, k.owlt_ns
        )
        for k in contacts
    )
    _last_plan = (contacts, scale, converted)
    return converted
