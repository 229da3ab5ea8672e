"""Scenario YAML -> :class:`~hilnet.scenario.model.Scenario`, with every error at FILE:LINE:COL.

The loader reads the whole file, collects every problem it finds (wrong keys
with a did-you-mean, wrong types, unknown nodes, overlapping windows, times
past ``clock.duration``, unreachable traffic...) and raises them together as
one :class:`~hilnet.errors.ScenarioErrors`. The language is documented key by
key in ``docs/scenario.md``; this module and that page must agree.

This module reads the file, the top level, ``clock`` and ``nodes``;
:mod:`~hilnet.scenario.load_links` and :mod:`~hilnet.scenario.load_events`
read the other sections into the same error list.
"""

from __future__ import annotations

import os
from pathlib import Path

from yaml.nodes import MappingNode, Node, ScalarNode

from hilnet.bundle.eid import Eid, EidScheme, ipn_numbers, parse_eid
from hilnet.errors import InputError, ScenarioError, ScenarioErrors
from hilnet.scenario.epoch import parse_utc
from hilnet.scenario.load_events import EventBuilder
from hilnet.scenario.load_links import LinkBuilder
from hilnet.scenario.load_security import read_key_file
from hilnet.scenario.model import STACK_TAKES, STACKS, TLS_MODES, ClockSpec, Expect, Scenario, TlsMode
from hilnet.scenario.model import Node as ScenarioNode
from hilnet.scenario.reader import Reader, describe
from hilnet.scenario.wall import refusals
from hilnet.scenario.yamltree import MAX_BYTES, compose, read_file
from hilnet.units import COMPRESS_MODES

FORMAT_VERSION = 1

TOP_KEYS = ("hilnet", "name", "description", "seed", "clock", "tls", "nodes", "links", "traffic", "faults", "expect")
NODE_KEYS = ("eid", "stack", "keys", "tls", "position")
_NOT_TAKEN = "expected it only on hilnet nodes (hilnet gives its BPSec keys and TLS to its own agent; docs/stacks.md)"


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and check a scenario file; raises ScenarioErrors listing every problem."""
    text, filename = read_file(path)
    return load_scenario_text(text, filename)


def load_scenario_text(text: str, filename: str = "<scenario>") -> Scenario:
    """Read and check scenario YAML text; ``filename`` is used in messages and as ``source``."""
    if len(text) > MAX_BYTES:
        raise ScenarioErrors(
            [
                ScenarioError(
                    f"scenario text is over {MAX_BYTES // 2**20} MiB; expected a scenario under that", filename, 1, 1
                )
            ]
        )
    if not text.strip() or all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()):
        raise ScenarioErrors(
            [
                ScenarioError(
                    "the file is empty; expected a scenario mapping that starts with 'hilnet: 1'", filename, 1, 1
                )
            ]
        )
    root, errors = compose(text, filename)
    if root is None:
        raise ScenarioErrors(
            errors
            or [
                ScenarioError(
                    "no YAML document; expected a scenario mapping that starts with 'hilnet: 1'", filename, 1, 1
                )
            ]
        )
    builder = _Builder(filename)
    builder.r.errors.extend(errors)
    scenario = builder.build(root)
    if builder.r.errors or scenario is None:
        raise ScenarioErrors(
            builder.r.errors
            or [ScenarioError("not a scenario; expected a mapping that starts with 'hilnet: 1'", filename, 1, 1)]
        )
    return scenario


class _Builder(LinkBuilder, EventBuilder):
    # -- top level -------------------------------------------------------------

    def build(self, root: Node) -> Scenario | None:
        r = self.r
        if not isinstance(root, MappingNode):
            r.error(root, f"the file holds {describe(root)}; expected a scenario mapping that starts with 'hilnet: 1'")
            return None
        top = r.mapping(root, "the scenario", TOP_KEYS, required=("hilnet", "clock", "nodes"))
        if top is None:
            return None
        version = None
        if "hilnet" in top:
            version = r.integer(top["hilnet"][1], "hilnet (the format version)")
            if version is not None and version != FORMAT_VERSION:
                r.error(
                    top["hilnet"][1],
                    f"format version {version} is not one this hilnet reads; expected hilnet: {FORMAT_VERSION}",
                )
        name = Path(self.filename).stem if self.filename != "<scenario>" else "scenario"
        if "name" in top:
            name = self._name(top["name"][1]) or name
        description = ""
        if "description" in top:
            description = r.text(top["description"][1], "description", "a sentence of text") or ""
        seed = 0
        if "seed" in top:
            seed = r.integer(top["seed"][1], "seed", minimum=0) or 0
        clock = self._clock(top["clock"][1]) if "clock" in top else None
        self.duration = clock.duration_ns if clock else None
        tls = _tls(r, top["tls"][1], "tls") if "tls" in top else None
        nodes = self._nodes(top["nodes"][1]) if "nodes" in top else ()
        links = self._links(top["links"][1]) if "links" in top else ()
        links = self._geometry_links(links, clock)
        traffic = self._traffic(top["traffic"][1], links) if "traffic" in top else ()
        faults = self._faults(top["faults"][1], links) if "faults" in top else ()
        expect = self._expect(top["expect"][1], traffic) if "expect" in top else Expect()
        if clock is None or version is None:
            return None
        scenario = Scenario(
            name=name,
            description=description,
            version=version,
            seed=seed,
            clock=clock,
            nodes=nodes,
            links=links,
            traffic=traffic,
            faults=faults,
            expect=expect,
            source=self.filename,
            tls=tls,
        )
        # What the wall clock cannot run at this scale is refused here, so validate, plan and run all say so.
        r.errors.extend(refusals(scenario))
        return scenario

    def _name(self, node: Node) -> str | None:
        """The scenario's name: one safe path component, since it names the run folder under runs/."""
        name = self.r.text(node, "name", "the scenario's name")
        if name is None:
            return None
        bad = "/" in name or "\\" in name or name in (".", "..") or any(ord(ch) < 32 or ord(ch) == 127 for ch in name)
        if bad:
            self.r.error(
                node,
                f"name {name!r} is not a single folder name (it names the run folder under runs/); "
                "expected a name without '/', '\\' or control characters, not '.' or '..'",
            )
            return None
        return name

    def _clock(self, node: Node) -> ClockSpec | None:
        m = self.r.mapping(node, "clock", ("scale", "duration", "epoch", "compress"), required=("duration",))
        if m is None:
            return None
        scale = 1.0
        if "scale" in m:
            scale = self.r.positive_number(m["scale"][1], "clock.scale (scenario seconds per wall second)") or 1.0
        duration = None
        if "duration" in m:
            duration = self._span(m["duration"][1], "clock.duration", "a duration", "95m")
        epoch = self._epoch(m["epoch"][1]) if "epoch" in m else None
        compress = "schedule"
        if "compress" in m:
            compress = self.r.choice(m["compress"][1], "clock.compress", COMPRESS_MODES) or "schedule"
        if not duration:
            return None
        return ClockSpec(
            scale=scale,
            duration_ns=duration,
            epoch=epoch[0] if epoch else None,
            epoch_unix_ns=epoch[1] if epoch else None,
            compress="all" if compress == "all" else "schedule",
        )

    def _epoch(self, node: Node) -> tuple[str, int] | None:
        """clock.epoch: (the text as written, ns since the Unix epoch); a UTC ISO 8601 instant."""
        expected = "a UTC time in ISO 8601 such as 2024-03-01T12:00:00Z"
        if self.r.scalar(node, "clock.epoch", expected) is None:
            return None
        # The raw text, not YAML's reading: an unquoted timestamp would otherwise lose its zone.
        text = str(node.value).strip()
        parsed = parse_utc(text)
        if parsed is None:
            self.r.error(node, f"clock.epoch {text!r} is not a UTC ISO 8601 time; expected {expected}")
            return None
        return text, parsed

    def _nodes(self, node: Node) -> tuple[ScenarioNode, ...]:
        r = self.r
        entries = r.named_mapping(node, "nodes", "{eid: ipn:N.0}")
        if entries is None:
            return ()
        if not entries and isinstance(node, MappingNode):
            r.error(node, "nodes is empty; expected at least one node such as iss: {eid: ipn:1.0}")
        out = []
        eids: dict[str, int] = {}
        self.node_names = [key.value for key, _ in entries]
        for key, value in entries:
            m = r.mapping(value, f"node {key.value!r}", NODE_KEYS, required=("eid",))
            stack = r.choice(m["stack"][1], f"node {key.value!r} stack", STACKS) if m and "stack" in m else None
            if stack is not None and m:
                self.node_stacks[key.value] = (stack, m["stack"][1])
                for k in ("keys", "tls"):
                    if k in m and k not in STACK_TAKES[stack]:
                        r.error(m[k][1], f"node {key.value!r} {k}: stack {stack} does not take it; {_NOT_TAKEN}")
            if m and "position" in m:
                self._position(m["position"][1], key.value)
            if not m or "eid" not in m:
                continue
            eid_node = m["eid"][1]
            eid = r.text(eid_node, f"node {key.value!r} eid", "an endpoint id such as ipn:1.0 or dtn://iss/")
            if eid is None:
                continue
            if not _valid_eid(eid_node, eid, key.value, r):
                continue
            if eid in eids:
                r.error(
                    eid_node,
                    f"node {key.value!r} eid {eid} is already the eid of another node (line "
                    f"{eids[eid]}); expected each node to have its own eid",
                )
                continue
            eids[eid] = eid_node.start_mark.line + 1
            keys = read_key_file(r, m["keys"][1], f"node {key.value!r} keys") if "keys" in m else None
            tls = _tls(r, m["tls"][1], f"node {key.value!r} tls") if "tls" in m else None
            position = self.positions.get(key.value)
            made = ScenarioNode(name=key.value, eid=eid, keys=keys, tls=tls, position=position, stack=stack or "hilnet")
            out.append(made)
        return tuple(out)


def _tls(r: Reader, node: Node, what: str) -> TlsMode | None:
    """A TLS policy: off, enable or require (read as written: YAML 1.1 would make ``off`` a boolean)."""
    if isinstance(node, ScalarNode) and not node.style:  # plain, not quoted
        for mode in TLS_MODES:
            if node.value == mode:
                return mode
    return r.choice(node, what, TLS_MODES)


def _valid_eid(node: Node, eid: str, name: str, r: Reader) -> bool:
    """Whether ``eid`` is a node id, recording why not; the syntax is :func:`parse_eid`'s."""
    ipn = ipn_numbers(eid)
    if ipn is not None:
        # Range checked here rather than by parse_eid so that the message can name the number.
        number, service = ipn
        if number == 0 or number >= 2**64:
            r.error(
                node,
                f"node {name!r} eid {eid}: node number {number} is outside 1..2^64-1; expected an eid such as ipn:1.0",
            )
            return False
        if service != 0:
            r.error(
                node,
                f"node {name!r} eid {eid} names service {service}, not the node; expected "
                f"ipn:{number}.0 (RFC 9171 4.2.5.1.2: only service 0 identifies a node)",
            )
            return False
        return True
    dtn = _dtn_eid(eid)
    if dtn is not None:
        # RFC 9171 4.2.5.1.1: a node id is dtn://node-name/ with an empty demux.
        if dtn.is_node_id:
            return True
        if not dtn.is_null:
            r.error(
                node,
                f"node {name!r} eid {eid} has a demux after the node name; expected "
                f"{eid[: eid.index('/', 6) + 1]} (RFC 9171 4.2.5.1.1: a node id ends at '/')",
            )
            return False
    r.error(
        node,
        f"node {name!r} eid {eid!r} is not a node endpoint id; expected ipn:N.0 (such as ipn:1.0) "
        "or dtn://name/ (such as dtn://iss/)",
    )
    return False


def _dtn_eid(text: str) -> Eid | None:
    try:
        eid = parse_eid(text)
    except InputError:
        return None
    return eid if eid.scheme == EidScheme.DTN else None
