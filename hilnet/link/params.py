"""From the scenario model to the shaper: per-direction configs and schedules (pure).

Scenario times (windows, changes) are divided by the clock scale and put on
the engine clock as offsets from ``t0_ns``; delay, jitter, rate and baud are
physics and pass unscaled.
"""

from __future__ import annotations

from collections.abc import Mapping

from hilnet.errors import LinkError
from hilnet.link.shaper import DirectionConfig, Medium, ScheduleEvent
from hilnet.scenario.model import DirectionParams, GilbertElliott, Link
from hilnet.units import scenario_to_wall_ns

_SAME_NAME = frozenset(
    {
        "delay_ns",
        "jitter_ns",
        "rate_bps",
        "baud",
        "loss",
        "ber",
        "queue_bytes",
        "queue_units",
        "reorder",
    }
)


def medium_of(link: Link) -> Medium:
    """The shaper medium of a scenario link (``serial`` or ``ethernet``)."""
    try:
        return Medium(link.medium)
    except ValueError:
        raise LinkError(f"link {link.name}: unknown medium {link.medium!r}") from None


def _gilbert(model: object) -> tuple[float, float, float, float] | None:
    if isinstance(model, GilbertElliott):
        return (model.p, model.r, model.loss_good, model.loss_bad)
    if model in (None, "bernoulli"):
        return None
    raise LinkError(f"unknown loss model {model!r}")


def config_changes(params: Mapping[str, object]) -> dict[str, object]:
    """DirectionParams field -> value, as DirectionConfig field -> value."""
    out: dict[str, object] = {}
    for name, value in params.items():
        if name in _SAME_NAME:
            out[name] = value
        elif name == "bits_per_byte":
            out[name] = value or 10  # 0 means "not serial": keep the 8N1 default
        elif name == "loss_model":
            out["gilbert"] = _gilbert(value)
        else:
            raise LinkError(f"a scheduled change of {name!r} is not something a link can apply")
    return out


def direction_config_from_params(p: DirectionParams, *, up: bool = True) -> DirectionConfig:
    """The shaper configuration for one direction's scenario parameters."""
    return DirectionConfig(
        delay_ns=p.delay_ns,
        jitter_ns=p.jitter_ns,
        reorder=p.reorder,
        rate_bps=p.rate_bps,
        baud=p.baud,
        bits_per_byte=p.bits_per_byte or 10,
        loss=p.loss,
        gilbert=_gilbert(p.loss_model),
        ber=p.ber,
        queue_bytes=p.queue_bytes,
        queue_units=p.queue_units,
        up=up,
    )


def up_at_start(link: Link) -> bool:
    """Whether the link is up at scenario time 0 (no windows: up the whole run)."""
    return not link.windows or any(w.start_ns <= 0 < w.end_ns for w in link.windows)


def schedule_for_link(link: Link, scale: float, t0_ns: int) -> tuple[list[ScheduleEvent], list[ScheduleEvent]]:
    """The (forward a->b, backward b->a) schedules of a link's windows and changes, engine-clock ns.

    The gate's state at the start is the first event of each list (at ``t0_ns``),
    so a Direction built with ``up=True`` follows the script. Windows that touch
    (one ends where the next starts) leave the link up. At one instant, gate
    events come before parameter changes.
    """
    gate: list[tuple[int, bool]] = [(0, up_at_start(link))]
    if link.windows:
        spans = sorted((w.start_ns, w.end_ns) for w in link.windows)
        merged: list[list[int]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        for start, end in merged:
            if start > 0:
                gate.append((start, True))
            if end > 0:
                gate.append((end, False))
    forward: list[ScheduleEvent] = []
    backward: list[ScheduleEvent] = []
    for at, up in gate:
        wall = t0_ns + scenario_to_wall_ns(at, scale)
        # A window's planned end: what is already on its way arrives (ScheduleEvent.keep_in_flight).
        forward.append(ScheduleEvent(at_ns=wall, up=up, keep_in_flight=not up))
        backward.append(ScheduleEvent(at_ns=wall, up=up, keep_in_flight=not up))
    for change in link.changes:
        wall = t0_ns + scenario_to_wall_ns(change.at_ns, scale)
        changes = config_changes(change.params)
        if change.direction in ("both", "forward"):
            forward.append(ScheduleEvent(at_ns=wall, changes=changes))
        if change.direction in ("both", "backward"):
            backward.append(ScheduleEvent(at_ns=wall, changes=changes))
    key = lambda e: (e.at_ns, e.up is None)  # noqa: E731 - gate first at one instant
    return sorted(forward, key=key), sorted(backward, key=key)
