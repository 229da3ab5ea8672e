"""Random loss of whole units: Bernoulli, or Gilbert-Elliott bursts; seeded.

Gilbert-Elliott is a two-state Markov chain stepped once per unit: in the good
state a unit is lost with ``loss_good``, in the bad state with ``loss_bad``;
after each unit the chain moves good->bad with ``p_good_to_bad`` and
bad->good with ``p_bad_to_good``. The long-run loss rate is
``(r * loss_good + p * loss_bad) / (p + r)`` and a bad spell lasts ``1/r``
units on average. The same random draws are made whatever the outcome, so a
seed gives the same drops every run.
"""

from __future__ import annotations

import random

from hilnet.link.shaper.stage import DropFn, InstantStage
from hilnet.link.shaper.types import DirectionConfig, Unit


class Loss(InstantStage):
    __slots__ = ("_rng", "_drop", "_p", "_ge", "bad")

    def __init__(self, rng: random.Random, drop: DropFn):
        super().__init__()
        self._rng = rng
        self._drop = drop
        self._p = 0.0
        self._ge: tuple[float, float, float, float] | None = None
        self.bad = False  # Gilbert-Elliott state; starts good

    def configure(self, config: DirectionConfig) -> None:
        self._p = config.loss
        self._ge = config.gilbert

    def identity(self) -> bool:
        return self._ge is None and self._p == 0.0

    def filter(self, unit: Unit, now_ns: int) -> Unit | None:
        ge = self._ge
        if ge is None:
            lost = self._rng.random() < self._p
        else:
            rnd = self._rng.random
            lost = rnd() < (ge[3] if self.bad else ge[2])
            if self.bad:
                self.bad = not rnd() < ge[1]
            else:
                self.bad = rnd() < ge[0]
        if lost:
            self._drop(unit, "loss", now_ns)
            return None
        return unit
