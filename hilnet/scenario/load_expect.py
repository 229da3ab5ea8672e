"""Reading a scenario's ``expect:`` section, and the ``expect:`` a traffic stream may carry.

The run's ``expect`` judges every bundle; a stream's own ``expect`` (``within``
and ``within-plan`` only) judges that stream's bundles beside it, so that a
scenario can promise urgent traffic a tighter bound than bulk.
"""

from __future__ import annotations

from typing import Literal

from yaml.nodes import MappingNode, Node, ScalarNode

from hilnet.scenario.load_base import BuilderBase
from hilnet.scenario.model import Expect, StreamExpect, Traffic
from hilnet.scenario.reader import describe
from hilnet.units import parse_duration, parse_fraction

EXPECT_KEYS = ("delivered", "within", "within-plan", "duplicates", "intact", "lost", "fidelity")
STREAM_EXPECT_KEYS = ("within", "within-plan")


class ExpectBuilder(BuilderBase):
    def _expect(self, node: Node, traffic: tuple[Traffic, ...]) -> Expect:
        r = self.r
        m = r.mapping(node, "expect", EXPECT_KEYS)
        if m is None:
            return Expect()
        default = Expect()
        delivered = self._delivered(m["delivered"][1], sum(t.count for t in traffic)) if "delivered" in m else None
        within = None
        if "within" in m:
            within = r.unit(m["within"][1], "expect within", parse_duration, "a duration such as 90m")
        within_plan = self._within_plan(m["within-plan"][1], "expect within-plan") if "within-plan" in m else None
        duplicates = r.integer(m["duplicates"][1], "expect duplicates", minimum=0) if "duplicates" in m else None
        lost = r.integer(m["lost"][1], "expect lost", minimum=0) if "lost" in m else None
        intact = r.boolean(m["intact"][1], "expect intact") if "intact" in m else None
        fidelity = None
        if "fidelity" in m:
            fidelity = r.unit(m["fidelity"][1], "expect fidelity", parse_duration, "a duration such as 1ms")
        # what is missing or wrong keeps its default (the error is recorded)
        return Expect(
            delivered=default.delivered if delivered is None else delivered,
            within_ns=default.within_ns if within is None else within,
            within_plan=default.within_plan if within_plan is None else within_plan,
            duplicates=default.duplicates if duplicates is None else duplicates,
            intact=default.intact if intact is None else intact,
            lost=default.lost if lost is None else lost,
            fidelity_ns=fidelity,
        )

    def _stream_expect(self, node: Node, what: str) -> StreamExpect | None:
        """A traffic entry's ``expect`` (``what`` names the entry); None when absent or wrong (errors recorded)."""
        r = self.r
        m = r.mapping(node, f"{what} expect", STREAM_EXPECT_KEYS)
        if m is None:
            return None
        within = None
        if "within" in m:
            within = r.unit(m["within"][1], f"{what} expect within", parse_duration, "a duration such as 90m")
        within_plan = None
        if "within-plan" in m:
            within_plan = self._within_plan(m["within-plan"][1], f"{what} expect within-plan")
        if within is None and within_plan is None:
            if isinstance(node, MappingNode) and not node.value:
                r.error(
                    node, f"{what} expect is empty; expected within and/or within-plan, such as {{within-plan: 10s}}"
                )
            return None
        return StreamExpect(within_ns=within, within_plan=within_plan)

    def _delivered(self, node: Node, total: int) -> Literal["all"] | int | float | None:
        r = self.r
        expected = "all, a count such as 9, or a fraction such as 95% or 0.95"
        value = r.scalar(node, "expect delivered", expected)
        if value == "all":
            return "all"
        if isinstance(value, bool) or value is None:
            if isinstance(node, ScalarNode):
                r.error(node, f"expect delivered is {describe(node)}; expected {expected}")
            return None
        if isinstance(value, int):
            if value < 0 or (self.all_traffic_built and value > total):
                r.error(
                    node,
                    f"expect delivered is {value}, but the traffic injects {total} bundles; "
                    f"expected a count from 0 to {total}",
                )
                return None
            return value
        if isinstance(value, float) or (isinstance(value, str) and value.strip().endswith("%")):
            fraction = r.unit(node, "expect delivered", parse_fraction, expected)
            if fraction is not None and fraction == 0:
                r.error(node, f"expect delivered is 0%; expected a fraction above 0 ({expected})")
                return None
            return fraction
        r.error(node, f"expect delivered is {describe(node)}; expected {expected}")
        return None

    def _within_plan(self, node: Node, what: str) -> float | int | None:
        """A factor (``3x``, a float) or a slack duration (ns, an int); ``what`` names the key in messages."""
        r = self.r
        expected = "a factor such as 3x, or a slack duration such as 10m"
        value = r.scalar(node, what, expected)
        if isinstance(value, str) and value.strip().endswith("x"):
            try:
                factor = float(value.strip()[:-1])
            except ValueError:
                factor = 0.0
            if not factor >= 1 or factor == float("inf"):
                r.error(node, f"{what} {value!r} is not a factor of 1 or more; expected {expected}")
                return None
            return factor
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            r.error(node, f"{what} is {describe(node)}; expected {expected} (write 3x for a factor)")
            return None
        return r.unit(node, what, parse_duration, expected)
