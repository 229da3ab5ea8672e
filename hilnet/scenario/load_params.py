"""Reading a link's parameters (delay, rate or baud, loss, errors, queue...) into DirectionParams fields."""

from __future__ import annotations

from typing import Literal

from yaml.nodes import Node, ScalarNode

from hilnet.scenario.load_base import BuilderBase
from hilnet.scenario.model import DirectionParams, GilbertElliott, Medium, Pacing
from hilnet.scenario.reader import MappingEntries
from hilnet.units import framing_bits_per_byte, parse_baud, parse_duration, parse_fraction, parse_rate, parse_size

PARAM_KEYS = (
    "delay",
    "jitter",
    "rate",
    "baud",
    "framing",
    "loss",
    "loss-model",
    "bit-error-rate",
    "queue",
    "queue-units",
    "reorder",
)

# UART character framings a scenario may name, and the line bits per byte each costs.
FRAMINGS = {name: framing_bits_per_byte(name) for name in ("8N1", "8N2", "8E1", "8O1", "8E2", "8O2")}
DEFAULT_BAUD = 115200
DEFAULT_ETHERNET_RATE = 100_000_000  # a Raspberry Pi 3B's NIC; say `rate:` for anything else
MEDIA: tuple[Medium, ...] = ("serial", "ethernet")
_BERNOULLI: tuple[Literal["bernoulli"]] = ("bernoulli",)

# YAML key -> DirectionParams field
_FIELD = {
    "delay": "delay_ns",
    "jitter": "jitter_ns",
    "rate": "rate_bps",
    "baud": "baud",
    "framing": "bits_per_byte",
    "loss": "loss",
    "loss-model": "loss_model",
    "bit-error-rate": "ber",
    "queue": "queue_bytes",
    "queue-units": "queue_units",
    "reorder": "reorder",
}


class ParamBuilder(BuilderBase):
    def _params(
        self, m: MappingEntries, what: str, medium: Medium | None, keys: tuple[str, ...]
    ) -> dict[str, tuple[object, Node]]:
        """Direction parameters given in mapping ``m``: field name -> (value, node)."""
        out: dict[str, tuple[object, Node]] = {}
        for key, (knode, v) in m.items():
            if key not in keys or key in ("at", "ends", "medium", "up", "changes"):
                continue
            value = self._param(key, knode, v, what, medium)
            if value is not None:
                out[_FIELD[key]] = (value, v)
                if key in ("rate", "baud") and isinstance(value, int):
                    mark = v.start_mark
                    field: Literal["rate_bps", "baud"] = "rate_bps" if key == "rate" else "baud"
                    self.pacing_seen.append(Pacing(field, value, f"{what} {key}", mark.line + 1, mark.column + 1))
        return out

    def _param(self, key: str, knode: Node, v: Node, what: str, medium: Medium | None) -> object | None:
        """The value of parameter ``key``; None (reported) when it is wrong or does not apply."""
        r = self.r
        w = f"{what} {key}"
        if key in ("delay", "jitter"):
            return r.unit(v, w, parse_duration, "a duration such as 120ms")
        if key in ("rate", "baud", "framing"):
            return self._pacing(key, knode, v, what, medium)
        if key in ("loss", "bit-error-rate"):
            return r.unit(v, w, parse_fraction, "a fraction such as 0.5% or 1e-6")
        if key == "loss-model":
            return self._loss_model(v, w)
        if key == "queue":
            queue = r.unit(v, w, parse_size, "a size such as 64KiB")
            if queue == 0:
                r.error(v, f"{w} is 0; expected a size above 0 such as 64KiB (omit it for no limit)")
                return None
            return queue
        if key == "queue-units":
            return r.integer(v, w, minimum=1)
        if key == "reorder":
            return r.boolean(v, w)
        return None

    def _pacing(self, key: str, knode: Node, v: Node, what: str, medium: Medium | None) -> int | None:
        """``rate`` (ethernet), ``baud`` or ``framing`` (serial); the wrong one for the medium is reported."""
        r = self.r
        w = f"{what} {key}"
        if key == "rate":
            if medium == "serial":
                r.error(
                    knode,
                    f"{what}: a serial link is paced by 'baud', not 'rate'; expected baud: "
                    "115200 (a symbol rate: 8N1 moves baud/10 bytes per second)",
                )
                return None
            return r.unit(v, w, parse_rate, "a rate such as 10Mbit/s")
        if medium == "ethernet":
            r.error(
                knode,
                f"{what}: an ethernet link is paced by 'rate', not 'baud'; expected rate: 10Mbit/s (or medium: serial)"
                if key == "baud"
                else f"{what}: framing is a UART setting; expected it on a serial link only",
            )
            return None
        if key == "baud":
            return r.unit(v, w, parse_baud, "a baud rate such as 115200")
        choice = r.choice(v, w, FRAMINGS)
        return FRAMINGS[choice] if choice else None

    def _loss_model(self, node: Node, what: str) -> Literal["bernoulli"] | GilbertElliott | None:
        r = self.r
        if isinstance(node, ScalarNode):
            return r.choice(node, what, _BERNOULLI)
        m = r.mapping(node, what, ("gilbert-elliott",), required=("gilbert-elliott",))
        if not m or "gilbert-elliott" not in m:
            return None
        w = f"{what} gilbert-elliott"
        g = r.mapping(m["gilbert-elliott"][1], w, ("p", "r", "loss-good", "loss-bad"), required=("p", "r"))
        if g is None or "p" not in g or "r" not in g:
            return None
        values: dict[str, float | None] = {}
        for key, default in (("p", None), ("r", None), ("loss-good", 0.0), ("loss-bad", 1.0)):
            if key in g:
                values[key] = r.unit(g[key][1], f"{w} {key}", parse_fraction, "a probability such as 1%")
            else:
                values[key] = default
        p, rr, good, bad = values["p"], values["r"], values["loss-good"], values["loss-bad"]
        if p is None or rr is None or good is None or bad is None:
            return None
        for key in ("p", "r"):
            if values[key] == 0:
                r.error(g[key][1], f"{w} {key} is 0; expected a probability above 0 (else the state never changes)")
                return None
        return GilbertElliott(p=p, r=rr, loss_good=good, loss_bad=bad)


def defaults(medium: Medium) -> DirectionParams:
    if medium == "serial":
        return DirectionParams(baud=DEFAULT_BAUD, bits_per_byte=FRAMINGS["8N1"])
    return DirectionParams(rate_bps=DEFAULT_ETHERNET_RATE)
