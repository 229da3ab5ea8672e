"""A remote serial port says what its network adds: link stats, the fidelity figures and the summary carry it."""

from __future__ import annotations

import pytest
from link_endpoint_harness import Rfc2217Harness, ser2net_available

from hilnet.controller.fidelity import fidelity_of
from hilnet.link.engine import Engine
from hilnet.report.console import format_summary
from hilnet.report.meta import RunMeta
from hilnet.verdict import CheckReport, RemotePort

_SER2NET = ser2net_available()


@pytest.mark.skipif(_SER2NET is not None, reason=str(_SER2NET))
def test_a_link_through_ser2net_reports_its_network_in_the_link_stats(tmp_path) -> None:
    h = Rfc2217Harness(tmp_path)
    engine = Engine()
    try:
        a, b = h.specs()
        link = engine.add_link("uart", a, b)
        engine.start()
        stats = link.stats()
    finally:
        engine.stop()
        engine.join(5)
        engine.close()
        h.close()
    for direction in ("a->b", "b->a"):
        [remote] = stats[direction]["remote"]  # end a is remote, end b a local pty
        assert remote["end"] == "a" and remote["server"] == f"127.0.0.1:{h.port}"
        assert isinstance(remote["rtt_us"], int) and remote["rtt_us"] > 0
        assert isinstance(remote["rttvar_us"], int)


def test_the_fidelity_figures_and_the_console_name_each_remote_end() -> None:
    remote = {"end": "a", "server": "lab2:3001", "rtt_us": 412, "rttvar_us": 125}
    events = [
        {
            "src": "controller",
            "event": "link-stats",
            "link": "uart",
            "stats": {"a->b": {"remote": [remote]}, "b->a": {"remote": [remote]}},
        },
        {"src": "controller", "event": "link-stats", "link": "eth", "stats": {"a->b": {"remote": []}, "b->a": {}}},
    ]
    f = fidelity_of(events)
    assert f.remote == (RemotePort("uart", "a", "lab2:3001", 412, 125),)
    report = CheckReport(results=(), bundles=(), fidelity=f, end_ns=0, end_reason="duration")
    meta = RunMeta("runs/x", "s", 1, "loopback", 1.0, 10**9, 10**9)
    text = format_summary(report, meta)
    assert "remote port: link uart end a through lab2:3001: network round trip 0.41 ms, jitter 0.12 ms" in text


def test_a_serial_spec_reads_rts_cts() -> None:
    from hilnet.errors import SpecError
    from hilnet.link.endpoints import parse_spec

    assert parse_spec("serial:///dev/ttyUSB0?baud=921600&rtscts=1").rtscts is True
    assert parse_spec("serial:///dev/ttyUSB0?baud=921600").rtscts is False
    assert parse_spec("rfc2217://lab2:3001?baud=921600&rtscts=1").line.rtscts is True
    with pytest.raises(SpecError, match=r"rtscts='yes'; expected rtscts=1 \(RTS/CTS flow control\) or 0"):
        parse_spec("serial:///dev/ttyUSB0?rtscts=yes")
