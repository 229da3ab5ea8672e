"""``hilnet link A B [options]``: one emulated link, standalone, until Ctrl-C or --duration.

Parsing turns the options (or a scenario's link) into a
:class:`~hilnet.link.standalone.LinkSetup`; :func:`~hilnet.link.standalone.run_link`
runs it, and ``--stats FILE`` gets the final statistics as JSON.
Scripted times (``--up``, ``--change``) count from the moment the link starts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import signal
from collections.abc import Callable, Iterable
from typing import Any

import click

from hilnet.errors import EndpointError, InputError, LinkError, ScenarioErrors, UnitError
from hilnet.link.standalone import LinkSetup, run_link
from hilnet.units import (
    check_bits_per_byte,
    parse_baud,
    parse_duration,
    parse_fraction,
    parse_rate,
    parse_size,
    scenario_to_wall_ns,
)

# --change keys -> (DirectionConfig field, parser)
_CHANGE_KEYS: dict[str, tuple[str, Callable[[str], object]]] = {
    "delay": ("delay_ns", parse_duration),
    "jitter": ("jitter_ns", parse_duration),
    "rate": ("rate_bps", parse_rate),
    "baud": ("baud", parse_baud),
    "loss": ("loss", parse_fraction),
    "ber": ("ber", parse_fraction),
    "queue": ("queue_bytes", parse_size),
}


def parse_windows(text: str) -> list[tuple[int, int]]:
    """``"0s-30s,45s-90s"`` -> [(start_ns, end_ns)], sorted; raises InputError naming the bad part."""
    spans = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        start, sep, end = part.partition("-")
        if not sep:
            raise InputError(f"--up: {part!r} is not a window START-END, e.g. 0s-30s")
        try:
            s, e = parse_duration(start), parse_duration(end)
        except UnitError as err:
            raise InputError(f"--up: window {part!r}: {err}") from None
        if e <= s:
            raise InputError(f"--up: window {part!r} ends before it starts")
        spans.append((s, e))
    if not spans:
        raise InputError("--up: no windows given; expected e.g. 0s-30s,45s-90s")
    return sorted(spans)


def parse_change(text: str) -> tuple[int, dict[str, object]]:
    """``"40s:rate=2Mbit/s,delay=250ms"`` -> (at_ns, {config field: value})."""
    at_text, sep, rest = text.partition(":")
    if not sep or not rest.strip():
        raise InputError(f"--change: {text!r} is not TIME:key=value,..., e.g. 40s:rate=2Mbit/s,delay=250ms")
    try:
        at = parse_duration(at_text.strip())
    except UnitError as err:
        raise InputError(f"--change {text!r}: time: {err}") from None
    changes: dict[str, object] = {}
    for item in rest.split(","):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in _CHANGE_KEYS:
            raise InputError(
                f"--change {text!r}: {item.strip()!r} is not key=value with key one of {', '.join(_CHANGE_KEYS)}"
            )
        fname, parse = _CHANGE_KEYS[key]
        try:
            changes[fname] = parse(value.strip())
        except UnitError as err:
            raise InputError(f"--change {text!r}: {key}: {err}") from None
    return at, changes


MAX_DEFAULT_NAME = 128  # longer endpoint pairs are shortened (file names)


def default_link_name(a: str, b: str) -> str:
    """A name for a standalone link made from its endpoints, so two links never share pcap files.

    Two links running at once cannot share an endpoint (a port, a pty path, a
    NIC), so the pair names the link uniquely: ``pty:///tmp/iss`` and
    ``pty:///tmp/gs`` give ``pty-tmp-iss_pty-tmp-gs``.
    """

    def tag(spec: str) -> str:
        words = re.split(r"[^A-Za-z0-9.]+", spec.split("?", 1)[0])
        return "-".join(w for w in words if w)

    name = f"{tag(a)}_{tag(b)}"
    if len(name) <= MAX_DEFAULT_NAME:
        return name
    # A file name has at most 255 bytes (and the pcap adds ".a.pcap"): keep the ends of the
    # endpoints, which tell them apart, and a digest of the whole pair so it stays unique.
    digest = hashlib.sha256(f"{a}\0{b}".encode()).hexdigest()[:10]
    return f"{tag(a)[-60:]}_{tag(b)[-60:]}_{digest}"


def _opt(name: str, parse: Callable[[str], Any], value: str | None) -> Any:
    if value is None:
        return None
    try:
        return parse(value)
    except UnitError as err:
        raise InputError(f"--{name}: {err}") from None


def setup_from_options(
    a: str,
    b: str,
    *,
    delay: str | None = None,
    jitter: str | None = None,
    rate: str | None = None,
    baud: str | None = None,
    bits_per_byte: int = 10,
    loss: str | None = None,
    ber: str | None = None,
    queue: str | None = None,
    up: str | None = None,
    changes: Iterable[str] = (),
    seed: int = 0,
    label: str | None = None,
    scale: float | None = None,
) -> LinkSetup:
    """A LinkSetup from ``hilnet link`` options (text as typed); same values both ways.

    ``label`` names the link (pcap files, stats); None: :func:`default_link_name`.
    ``scale``: the options are a scenario's, compressed as ``clock.compress: all`` does
    (times, delay and jitter divided by it, rate and baud multiplied).
    """
    from hilnet.link.endpoints import parse_spec
    from hilnet.link.shaper import DirectionConfig, ScheduleEvent

    parse_spec(a)
    parse_spec(b)
    kw: dict[str, Any] = {}
    for name, key, parse, value in (
        ("delay", "delay_ns", parse_duration, delay),
        ("jitter", "jitter_ns", parse_duration, jitter),
        ("rate", "rate_bps", parse_rate, rate),
        ("baud", "baud", parse_baud, baud),
        ("loss", "loss", parse_fraction, loss),
        ("ber", "ber", parse_fraction, ber),
        ("queue", "queue_bytes", parse_size, queue),
    ):
        v = _opt(name, parse, value)
        if v is not None:
            kw[key] = v
    try:
        kw["bits_per_byte"] = check_bits_per_byte(bits_per_byte)
    except UnitError as err:
        raise InputError(f"--bits-per-byte: {err}") from None
    events = _window_events(up, kw)
    for text in changes:
        at, ch = parse_change(text)
        events.append(ScheduleEvent(at_ns=at, changes=ch))
    if scale is not None:
        kw, events = _compressed(kw, events, scale)
    events.sort(key=lambda ev: (ev.at_ns, ev.up is None))
    try:
        cfg = DirectionConfig(**kw)
    except LinkError as err:  # the config's own checks
        raise InputError(f"link options: {err}") from None
    return LinkSetup(label or default_link_name(a, b), a, b, cfg, cfg, tuple(events), tuple(events), seed)


def _window_events(up: str | None, kw: dict[str, Any]) -> list[Any]:
    """The gate's events for ``--up`` windows (and whether it starts up, in ``kw``)."""
    from hilnet.link.shaper import ScheduleEvent

    events: list[ScheduleEvent] = []
    if up is not None:
        windows = parse_windows(up)
        kw["up"] = windows[0][0] == 0
        for s, e in windows:
            if s > 0:
                events.append(ScheduleEvent(at_ns=s, up=True))
            events.append(ScheduleEvent(at_ns=e, up=False, keep_in_flight=True))  # a planned end
    return events


def _compressed(kw: dict[str, Any], events: list[Any], scale: float) -> tuple[dict[str, Any], list[Any]]:
    """Options and script in wall terms at ``scale`` under full compression (the scenario rule, one place)."""
    from hilnet.scenario.model import ClockSpec, Pacing
    from hilnet.scenario.wall import refusal, wall_fields

    if not scale > 0:
        raise InputError(f"--scale: must be above 0, got {scale}")
    clock = ClockSpec(scale=scale, duration_ns=1, compress="all")
    for name, option in (("rate_bps", "--rate"), ("baud", "--baud")):
        if isinstance(kw.get(name), int):
            why = refusal(Pacing(name, kw[name], option), clock)  # type: ignore[arg-type]
            if why:
                raise InputError(why)
    out = [
        dataclasses.replace(
            ev,
            at_ns=scenario_to_wall_ns(ev.at_ns, scale),
            changes=wall_fields(ev.changes, clock) if ev.changes else ev.changes,
        )
        for ev in events
    ]
    return wall_fields(kw, clock), out


def setup_from_scenario(a: str, b: str, path: str, link_name: str, scale: float | None, seed: int | None) -> LinkSetup:
    """A LinkSetup for link ``link_name`` of a scenario file, its windows and changes scaled."""
    from hilnet.link.endpoints import parse_spec
    from hilnet.link.params import direction_config_from_params, schedule_for_link
    from hilnet.scenario.load import load_scenario
    from hilnet.scenario.wall import in_wall_terms, refusals

    parse_spec(a)
    parse_spec(b)
    sc = load_scenario(path)
    if scale is not None:
        if not scale > 0:
            raise InputError(f"--scale: must be above 0, got {scale}")
        sc = dataclasses.replace(sc, clock=dataclasses.replace(sc.clock, scale=scale))
        problems = refusals(sc)
        if problems:
            raise ScenarioErrors(problems)
    sc = in_wall_terms(sc)  # under compress: all, delay, rate and baud shrink and grow with the scale
    links = {ln.name: ln for ln in sc.links}
    if link_name not in links:
        raise InputError(f"--link: {path} has no link {link_name!r}; it has {', '.join(sorted(links)) or 'none'}")
    link = links[link_name]
    scale = sc.clock.scale
    fwd, back = schedule_for_link(link, scale, 0)
    notes = (
        f"scenario {sc.name}, link {link.name} ({link.a} -> {link.b}, {link.medium}), scale {scale:g}, "
        f"compress {sc.clock.compress}",
    )
    return LinkSetup(
        link.name,
        a,
        b,
        direction_config_from_params(link.forward),
        direction_config_from_params(link.backward),
        tuple(fwd),
        tuple(back),
        sc.seed if seed is None else seed,
        notes=notes,
    )


@click.command("link")
@click.argument("a")
@click.argument("b")
@click.option("--delay", help="One-way propagation delay, e.g. 120ms.")
@click.option("--jitter", help="Delay varies uniformly by +- this, e.g. 5ms.")
@click.option("--rate", help="Line rate, e.g. 10Mbit/s (ethernet, udp, tcp).")
@click.option("--baud", help="Serial line speed, e.g. 115200 (pty, serial).")
@click.option("--bits-per-byte", type=int, default=10, show_default=True, help="Serial wire bits per byte (8N1: 10).")
@click.option("--loss", help="Probability a unit is lost, e.g. 0.5% or 1e-3.")
@click.option("--ber", help="Bit error rate, e.g. 1e-6.")
@click.option("--queue", help="Queue before the line, in bytes (tail drop), e.g. 300KiB.")
@click.option("--up", "up", help="Windows when the link is up, from start: 0s-30s,45s-90s (down outside).")
@click.option(
    "--change", "changes", multiple=True, help="TIME:key=value,... e.g. 40s:rate=2Mbit/s,delay=250ms (repeatable)."
)
@click.option("--seed", type=int, default=None, help="Seed for loss, errors and jitter (default 0, or the scenario's).")
@click.option("--duration", help="Stop after this long, e.g. 90s (default: until Ctrl-C).")
@click.option("--pcap", "pcap", type=click.Path(file_okay=False), help="Write DIR/<name>.a.pcap and .b.pcap.")
@click.option(
    "--name",
    "link_label",
    help="The link's name in pcap files, stats and lines [default: from the endpoints, or the scenario link's].",
)
@click.option("--stats", "stats_file", type=click.Path(dir_okay=False), help="Write final counters as JSON here.")
@click.option(
    "--scenario", type=click.Path(dir_okay=False), help="Take the link's parameters and schedule from this scenario."
)
@click.option("--link", "link_name", help="With --scenario: which link.")
@click.option(
    "--scale",
    type=float,
    default=None,
    help="Scenario seconds per wall second. With --scenario: instead of the scenario's. Without: the options are "
    "physics and scenario times, all compressed by it (clock.compress: all).",
)
@click.option(
    "--realtime",
    is_flag=True,
    help="Run the timing loop SCHED_FIFO (root). Can tighten delay tails against competing work; can also starve senders on the same cores: measure (benchmarks/link_accuracy.py).",
)
def command(
    a,
    b,
    delay,
    jitter,
    rate,
    baud,
    bits_per_byte,
    loss,
    ber,
    queue,
    up,
    changes,
    seed,
    duration,
    pcap,
    link_label,
    stats_file,
    scenario,
    link_name,
    scale,
    realtime,
):
    """Run one emulated link between endpoints A and B until Ctrl-C or --duration.

    \b
    Endpoints:
      pty:///tmp/iss-uart                         a new pty; agents open that path as a UART
      serial:///dev/ttyUSB0?baud=115200           a real UART (8N1 unless bytesize/parity/stopbits)
      eth://enx00e04c                             every frame on a NIC or veth (root)
      udp://127.0.0.1:4000?peer=127.0.0.1:5000    datagrams; what A receives leaves B towards B's peer
      tcp://127.0.0.1:4556?peer=127.0.0.1:14556   stream relay; an outage stalls, never drops
    Both ends must be of one kind (pty and serial mix). See docs/link.md.
    """
    impairments = dict(delay=delay, jitter=jitter, rate=rate, baud=baud, loss=loss, ber=ber, queue=queue, up=up)
    if scenario is not None:
        given = [f"--{k}" for k, v in impairments.items() if v is not None] + (["--change"] if changes else [])
        if given:
            raise InputError(f"{', '.join(given)} cannot be combined with --scenario (the scenario sets them)")
        if not link_name:
            raise InputError("--scenario needs --link NAME")
        setup = setup_from_scenario(a, b, scenario, link_name, scale, seed)
        if link_label:
            setup = dataclasses.replace(setup, name=link_label)
    else:
        if link_name:
            raise InputError("--link needs --scenario FILE")
        opts = dict(bits_per_byte=bits_per_byte, changes=changes, seed=seed or 0, label=link_label, scale=scale)
        setup = setup_from_options(a, b, **opts, **impairments)
    duration_ns = _opt("duration", parse_duration, duration)
    signal.signal(signal.SIGTERM, _interrupt)
    result = run_link(setup, duration_ns=duration_ns, pcap=pcap, realtime=realtime)
    if stats_file:
        _write_stats(stats_file, result)
    if result["error"]:
        raise EndpointError(f"link {setup.name} stopped: {result['error']}")


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM (kill, systemd, a test harness) ends the link as Ctrl-C does: stats written, exit 0."""
    raise KeyboardInterrupt


def _write_stats(path: str, result: dict[str, Any]) -> None:
    try:
        with open(path, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    except OSError as e:
        raise InputError(f"--stats: cannot write {path}: {e.strerror or e}") from None
