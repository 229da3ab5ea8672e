"""Kernel shaping for high-rate bench links: a link's script as ``tc`` netem commands.

On real Linux hardware with ``sch_netem``, a NIC's egress is shaped by a netem
qdisc and its ingress by a second one on an ``ifb`` device that the ingress
traffic is redirected to. This module translates a :class:`DirectionConfig`
and its :class:`ScheduleEvent` list into ``tc`` argv lists stamped with the
instant each must run (pure), and applies them with an injected clock and an
injected runner (so tests check the commands without running ``tc``).

How the shaper's model maps onto netem:

- delay/jitter -> ``delay D J`` (uniform); the gate down -> ``loss 100%``.
- loss -> ``loss random P``; Gilbert-Elliott -> ``loss gemodel p r 1-h 1-k``.
- ber on Ethernet -> folded into the loss, as the receiver's FCS would drop
  the frame (netem ``corrupt`` flips a bit *before* the NIC computes the FCS,
  so the frame would arrive damaged but valid); ``ber_mode="corrupt"`` asks
  for netem ``corrupt`` instead. Both take a frame size, since netem works per
  packet: ``P(frame error) = 1 - (1 - ber) ** bits``.
- rate -> ``rate Rbit 24`` (24 B: preamble, inter-frame gap and FCS, which
  the kernel's packet length lacks).
- no reordering with jitter: netem times a packet from the one before it only
  when ``rate`` is set, so a rate (the NIC's, if the link has none) is always
  given then.
- netem's ``limit`` counts every packet it holds, delayed ones included, so it
  is sized to rate x (delay + jitter) plus the configured queue.
- netem keeps delays in 32-bit ticks of 64 ns: at most ~274 s. Longer (deep
  space) is refused; the user-space engine has no such limit.
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hilnet.clock import Clock
from hilnet.errors import LinkError
from hilnet.link.shaper import DirectionConfig, Medium, ScheduleEvent, error_bits, wire_bits
from hilnet.link.shaper.types import ETHERNET_OVERHEAD_BYTES

# tc stores netem's delay and jitter as u32 ticks of 64 ns (PSCHED_SHIFT 6).
NETEM_MAX_DELAY_NS = (2**32 - 1) * 64
NETEM_DEFAULT_LIMIT = 1000
ETHERNET_HEADER_BYTES = 14  # in the kernel's packet length, unlike the 24 B of wire overhead

# A runner takes an argv and returns (exit status, stderr text).
Runner = Callable[[Sequence[str]], tuple[int, str]]

USER_SPACE_HINT = "the user-space engine will be used instead"


@dataclass(frozen=True, slots=True)
class TcCommand:
    """A command to run at ``at_ns`` (engine clock), with why, for logs."""

    at_ns: int
    argv: tuple[str, ...]
    why: str = ""


@dataclass(frozen=True, slots=True)
class AppliedCommand:
    command: TcCommand
    applied_ns: int  # clock reading when the command returned


@dataclass(frozen=True, slots=True)
class NetemPlan:
    """Everything to set up, change on schedule, and tear down one NIC's shaping."""

    setup: tuple[TcCommand, ...]
    timed: tuple[TcCommand, ...]
    teardown: tuple[TcCommand, ...]
    notes: tuple[str, ...] = ()  # approximations a person should know about

    def commands(self) -> list[TcCommand]:
        """Setup then timed changes, in the order they run (teardown is separate)."""
        return [*self.setup, *self.timed]


def _tc_time(ns: int) -> str:
    # tc reads s/ms/us (and ns on recent iproute2): use the largest exact one
    for unit, size in (("s", 10**9), ("ms", 10**6), ("us", 10**3)):
        if ns % size == 0:
            return f"{ns // size}{unit}"
    return f"{ns}ns"


def _pct(p: float) -> str:
    return f"{p * 100:.10g}%"


def netem_args(
    config: DirectionConfig,
    *,
    medium: Medium = Medium.ETHERNET,
    frame_bytes: int = 1500,
    nic_rate_bps: int = 10**9,
    ber_mode: Literal["drop", "corrupt"] = "drop",
    max_delay_ns: int = NETEM_MAX_DELAY_NS,
    notes: list[str] | None = None,
) -> list[str]:
    """The netem parameters (after ``netem``) for ``config``; frame_bytes is the typical frame, bytes."""
    _check_fits(config, medium, max_delay_ns)
    notes = notes if notes is not None else []
    args = _delay_args(config)
    args += _loss_args(config, _frame_error_probability(config, medium, frame_bytes, ber_mode, notes), ber_mode)
    rate = config.line_rate_bps()
    if rate is None and config.jitter_ns and not config.reorder:
        rate = nic_rate_bps  # only a rate makes netem keep order under jitter
    if rate is not None:
        args += ["rate", f"{rate}bit"]
        if medium is Medium.ETHERNET:
            args.append(str(ETHERNET_OVERHEAD_BYTES))
    return ["limit", str(_limit(config, medium, rate or nic_rate_bps, frame_bytes, notes)), *args]


def _check_fits(config: DirectionConfig, medium: Medium, max_delay_ns: int) -> None:
    if medium in (Medium.SERIAL, Medium.STREAM):
        raise LinkError(f"netem shapes network interfaces, not {medium.value} links; {USER_SPACE_HINT}")
    if config.delay_ns + config.jitter_ns > max_delay_ns:
        raise LinkError(
            f"netem cannot delay by {config.delay_ns / 1e9:.3f} s (+ {config.jitter_ns / 1e9:.3f} s jitter): "
            f"its limit is {max_delay_ns / 1e9:.1f} s on this kernel (less on some 32-bit kernels); "
            f"use the user-space engine for deep-space delays"
        )


def _delay_args(config: DirectionConfig) -> list[str]:
    if not (config.delay_ns or config.jitter_ns):
        return []
    args = ["delay", _tc_time(config.delay_ns)]
    if config.jitter_ns:
        args.append(_tc_time(config.jitter_ns))
    return args


def _frame_error_probability(
    config: DirectionConfig, medium: Medium, frame_bytes: int, ber_mode: str, notes: list[str]
) -> float:
    """The chance that a typical frame has a bit error: netem applies errors per packet, not per bit."""
    if config.ber <= 0.0:
        return 0.0
    p_frame = 1.0 - (1.0 - config.ber) ** error_bits(medium, frame_bytes)
    notes.append(
        f"ber {config.ber:g} applied per packet as {_pct(p_frame)} for {frame_bytes} B frames "
        f"({'dropped' if ber_mode == 'drop' else 'corrupted'}); netem cannot scale it with frame size"
    )
    return p_frame


def _loss_args(config: DirectionConfig, p_frame: float, ber_mode: str) -> list[str]:
    fold = p_frame if ber_mode == "drop" else 0.0  # errored frames dropped: one more loss
    args: list[str] = []
    if not config.up:
        args += ["loss", "random", "100%"]
    elif config.gilbert is not None:
        p, r, lg, lb = config.gilbert
        # netem: gemodel p r 1-h 1-k, with 1-h the loss in bad and 1-k the loss in good
        lb, lg = 1 - (1 - lb) * (1 - fold), 1 - (1 - lg) * (1 - fold)
        args += ["loss", "gemodel", _pct(p), _pct(r), _pct(lb), _pct(lg)]
    elif config.loss or fold:
        args += ["loss", "random", _pct(1 - (1 - config.loss) * (1 - fold))]
    if ber_mode == "corrupt" and p_frame:
        args += ["corrupt", _pct(p_frame)]
    return args


def _limit(config: DirectionConfig, medium: Medium, rate_bps: int, frame_bytes: int, notes: list[str]) -> int:
    """netem's limit, packets: it covers the packets in its delay line too, so size it to what is in flight."""
    flight_bits = rate_bps * (config.delay_ns + config.jitter_ns) / 1e9
    in_flight = math.ceil(flight_bits / wire_bits(medium, frame_bytes))
    if config.queue_units is not None:
        queue = config.queue_units
    elif config.queue_bytes is not None:
        queue = max(1, config.queue_bytes // (frame_bytes + ETHERNET_HEADER_BYTES))
        notes.append(f"queue of {config.queue_bytes} B approximated as {queue} packets of {frame_bytes} B")
    else:
        queue = NETEM_DEFAULT_LIMIT
    return in_flight + queue + 1


def plan_link(
    dev: str,
    config: DirectionConfig,
    schedule: Iterable[ScheduleEvent] = (),
    *,
    t0_ns: int = 0,
    ingress: DirectionConfig | None = None,
    ingress_schedule: Iterable[ScheduleEvent] = (),
    ifb: str = "ifb0",
    end_ns: int | None = None,
    **netem_opts: Any,
) -> NetemPlan:
    """Commands that shape ``dev``: egress by ``config``, and ingress by ``ingress`` through ``ifb``.

    Schedule events are on the engine clock (ns); setup runs at ``t0_ns``.
    Several events at one instant become one ``tc qdisc change``.
    """
    notes: list[str] = []
    setup: list[TcCommand] = []
    teardown: list[TcCommand] = []
    at_end = end_ns if end_ns is not None else t0_ns
    shaped = [(dev, config, list(schedule))]
    if ingress is not None:
        shaped.append((ifb, ingress, list(ingress_schedule)))
        setup += _ingress_setup(dev, ifb, t0_ns)
    timed: list[TcCommand] = []
    for target, cfg, events in shaped:
        netem = ("tc", "qdisc", "add", "dev", target, "root", "handle", "1:", "netem")
        setup.append(TcCommand(t0_ns, (*netem, *netem_args(cfg, notes=notes, **netem_opts)), f"shape {target}"))
        timed += _changes(target, cfg, events, t0_ns, netem_opts)
        teardown.append(TcCommand(at_end, ("tc", "qdisc", "del", "dev", target, "root")))
    if ingress is not None:
        teardown += [
            TcCommand(at_end, ("tc", "qdisc", "del", "dev", dev, "ingress")),
            TcCommand(at_end, ("ip", "link", "del", ifb)),
        ]
    timed.sort(key=lambda c: c.at_ns)  # stable: egress before ingress at one instant
    return NetemPlan(tuple(setup), tuple(timed), tuple(teardown), tuple(dict.fromkeys(notes)))


def _ingress_setup(dev: str, ifb: str, t0_ns: int) -> list[TcCommand]:
    """An ifb device, and a filter that sends everything arriving on ``dev`` through it."""
    redirect = ("protocol", "all", "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "redirect")
    return [
        TcCommand(t0_ns, ("modprobe", "ifb", "numifbs=0"), "ifb device for ingress shaping"),
        TcCommand(t0_ns, ("ip", "link", "add", ifb, "type", "ifb")),
        TcCommand(t0_ns, ("ip", "link", "set", ifb, "up")),
        TcCommand(t0_ns, ("tc", "qdisc", "add", "dev", dev, "handle", "ffff:", "ingress")),
        TcCommand(
            t0_ns,
            ("tc", "filter", "add", "dev", dev, "parent", "ffff:", *redirect, "dev", ifb),
            f"redirect {dev} ingress to {ifb}",
        ),
    ]


def _changes(
    target: str, cfg: DirectionConfig, events: list[ScheduleEvent], t0_ns: int, netem_opts: dict[str, Any]
) -> list[TcCommand]:
    """One ``tc qdisc change`` per instant at which the schedule changes ``target``'s config."""
    current = cfg
    by_time: dict[int, DirectionConfig] = {}
    for event in sorted(events, key=lambda e: e.at_ns):
        current = event.applied_to(current)
        by_time[max(event.at_ns, t0_ns)] = current
    netem = ("tc", "qdisc", "change", "dev", target, "root", "handle", "1:", "netem")
    return [
        TcCommand(
            at,
            (*netem, *netem_args(cfg_at, **netem_opts)),
            f"{target} {'up' if cfg_at.up else 'down'} at {at} ns",
        )
        for at, cfg_at in sorted(by_time.items())
    ]


def run_command(argv: Sequence[str]) -> tuple[int, str]:
    """The real runner: run ``argv``; returns (exit status, stderr)."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return 127, f"{argv[0]}: command not found"
    return done.returncode, done.stderr.strip()


def check_netem(runner: Runner = run_command) -> None:
    """Raise LinkError unless this kernel can run netem (needs root: it adds a qdisc on lo)."""
    _, modprobe_err = runner(["modprobe", "sch_netem"])  # may be built in: judge by tc
    rc, err = runner(["tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "netem", "delay", "0ms"])
    if rc == 0:
        runner(["tc", "qdisc", "del", "dev", "lo", "root"])
        return
    low = err.lower()
    if "unknown" in low:  # "Specified qdisc kind is unknown."
        why = f"tc: {err}" + (f"; modprobe sch_netem: {modprobe_err}" if modprobe_err else "")
        raise LinkError(f"this kernel lacks sch_netem ({why}); {USER_SPACE_HINT}")
    if "not permitted" in low:
        raise LinkError(f"kernel shaping needs root (CAP_NET_ADMIN): {err}; {USER_SPACE_HINT}")
    raise LinkError(f"cannot use netem: {err}; {USER_SPACE_HINT}")


class NetemApplier:
    """Runs a plan's commands at their instants on an injected clock."""

    def __init__(self, clock: Clock, runner: Runner = run_command):
        self.clock = clock
        self.runner = runner
        self.applied: list[AppliedCommand] = []

    def run(self, commands: Iterable[TcCommand]) -> list[AppliedCommand]:
        """Run ``commands`` in time order, each not before its ``at_ns``; stops at the first failure."""
        done = []
        for cmd in sorted(commands, key=lambda c: c.at_ns):
            self.clock.sleep_until_ns(cmd.at_ns)
            rc, err = self.runner(cmd.argv)
            if rc != 0:
                raise LinkError(f"{' '.join(cmd.argv)} failed (exit {rc}): {err}")
            applied = AppliedCommand(cmd, self.clock.now_ns())
            done.append(applied)
            self.applied.append(applied)
        return done
