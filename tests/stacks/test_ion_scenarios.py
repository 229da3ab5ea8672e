"""The ISS story with ION: mixed with hilnet's agents, all ION, and all ION with too short a window.

Each is a whole ``hilnet run`` of a scenario in scenarios/ on the netns backend with a real
ION (about 100 s of wall time each).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.controller.run_e2e_harness import LeakWatch, events, hilnet_run, needs_netns, summary
from tests.ion_support import ion_or_skip

pytestmark = [pytest.mark.netns, pytest.mark.slow, needs_netns]

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
RUN_TIMEOUT_S = 400  # 95 s of scenario at scale 60, ION's start and stop, a loaded machine


def _stacks(out: Path) -> dict[str, str]:
    start = next(e for e in events(out) if e.get("event") == "run-start")
    return {node: rec["stack"] for node, rec in start["stacks"].items()}


def test_the_iss_story_with_ion_on_the_iss_and_the_ground_passes(tmp_path):
    ion_or_skip()
    leaks = LeakWatch()
    out = tmp_path / "run"
    p = hilnet_run(SCENARIOS / "iss-tdrs-ground-ion.yaml", out, "netns", timeout=RUN_TIMEOUT_S)
    assert p.returncode == 0, p.stdout + p.stderr
    assert _stacks(out) == {"iss": "ion", "tdrs-e": "hilnet", "tdrs-w": "hilnet", "wsc": "ion", "eac": "ion"}
    s = summary(out)
    assert s["passed"] is True and all(b["deliveries"] == 1 for b in s["bundles"])
    # ION's bundles crossed hilnet's relays under ION's ids: the relays report them by those ids
    relayed = {e["bundle"] for e in events(out) if e.get("node") == "tdrs-w" and e.get("event") == "acked"}
    assert relayed and all(k.startswith("ipn:1.2/") for k in relayed)
    leaks.check(out)


def test_the_iss_story_all_ion_passes(tmp_path):
    ion_or_skip()
    leaks = LeakWatch()
    out = tmp_path / "run"
    p = hilnet_run(SCENARIOS / "iss-tdrs-ground-all-ion.yaml", out, "netns", timeout=RUN_TIMEOUT_S)
    assert p.returncode == 0, p.stdout + p.stderr
    assert set(_stacks(out).values()) == {"ion"}
    assert summary(out)["passed"] is True
    leaks.check(out)


def test_the_all_ion_story_with_too_short_a_window_fails_bundle_by_bundle(tmp_path):
    ion_or_skip()
    out = tmp_path / "run"
    p = hilnet_run(SCENARIOS / "iss-tdrs-ground-all-ion-short-window.yaml", out, "netns", timeout=RUN_TIMEOUT_S)
    assert p.returncode == 1, p.stdout + p.stderr
    results = {r["name"]: r for r in summary(out)["results"]}
    delivered = results["delivered"]
    assert not delivered["passed"]
    undelivered = [b for b in summary(out)["bundles"] if b["deliveries"] == 0]
    assert undelivered and len(delivered["failures"]) == len(undelivered)
    for line in delivered["failures"]:  # each bundle by name, with where it ended
        # "last stored at N at T", or for one ION abandoned "dropped at N: REASON (at T)"
        assert re.match(
            r"(tweets|photos)#\d+ \(ipn:1\.0 -> ipn:5\.0\) .* at (iss|tdrs-e|tdrs-w|wsc|eac)(:| at )", line
        ), line
        assert line.split(" ")[0] in p.stdout  # the console says the same
