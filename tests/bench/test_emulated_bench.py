"""The bench path for real, without boards: tests/bench/emulated.yaml on the emulated bench.

Namespaces with their own sshd stand in for four boards (eac stays virtual),
ptys and veths for their UARTs and NICs, and tdrs-w's UART reaches the
emulator through a real ser2net as rfc2217://. hilnet gets onto every board
with ``hilnet bench install``; ``hilnet doctor`` checks them; the ISS
scenario runs across them with a crash of tdrs-w over SSH; a board whose
sshd dies ends a run with exit 2 naming it within 15 s. The fixture removes
everything it made and fails if anything is left.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from emulated_bench import ROOT, WHEELHOUSE, EmulatedBench, make_wheelhouse, unavailable

pytestmark = [pytest.mark.bench, pytest.mark.netns, pytest.mark.slow]

HERE = Path(__file__).parent
REPO = HERE.parent.parent
BENCH = HERE / "emulated.yaml"
SCENARIO = REPO / "scenarios" / "iss-tdrs-ground.yaml"
BOARDS = ("pi-iss", "pi-tdrs-e", "pi-tdrs-w", "pi-wsc")


def hilnet(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hilnet", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


def pip_source() -> list[str]:
    """The boards are namespaces with no route out: their dependencies come from a wheelhouse made here."""
    return ["--wheelhouse", str(WHEELHOUSE)]


@pytest.fixture(scope="module")
def emulated():
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    eb = EmulatedBench(BENCH)
    try:
        make_wheelhouse()
        eb.up()
        installed = hilnet("bench", "install", str(BENCH), *pip_source(), timeout=900)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        eb.installed = installed.stdout
        yield eb
    finally:
        eb.down()
        shutil.rmtree(WHEELHOUSE, ignore_errors=True)
    assert eb.leftovers() == [] and not WHEELHOUSE.exists()


def test_install_puts_this_hilnet_on_every_board_and_skips_it_the_second_time(emulated):
    lines = emulated.installed.splitlines()
    assert sorted(line.split(":")[0].split()[-1] for line in lines) == sorted(BOARDS)
    assert all(line.startswith("ok ") and "installed hilnet 0." in line for line in lines), lines
    again = hilnet("bench", "install", str(BENCH), *pip_source())
    assert again.returncode == 0, again.stderr
    assert len(again.stdout.splitlines()) == len(BOARDS)
    assert all(line.endswith("(skipped)") for line in again.stdout.splitlines()), again.stdout
    for board in BOARDS:  # each board got its own environment, not a shared one
        assert (Path(ROOT) / board / "venv" / "bin" / "hilnet").exists()


def test_doctor_reports_every_check(emulated):
    r = hilnet("doctor", "--bench", str(BENCH), timeout=120)
    print(r.stdout)
    assert r.returncode in (0, 1), r.stderr
    lines = r.stdout.splitlines()
    failed = [line for line in lines if line.startswith("FAIL")]
    # The one check this machine may fail is its own clock's NTP state (the boards share it).
    assert all("clock not synchronised" in line for line in failed), failed
    assert (r.returncode == 0) == (not failed)
    text = r.stdout
    for expected in ("host: OpenSSH client present", "host: raw sockets can be opened", "host: sch_netem"):
        assert expected in text
    assert "host port rfc2217://127.0.0.1:47217 (tdrs-e-tdrs-w, tdrs-w): opens (RFC 2217 server answers)" in text
    assert f"host port {ROOT}/emu/ttyUSB0 (tdrs-e-tdrs-w, tdrs-e): opens" in text
    assert "host port hbe-iss1 (iss-tdrs-e, iss): offloads off (TSO, GSO, GRO)" in text
    for board in BOARDS:
        mine = [line for line in lines if line.split(":")[0].endswith(f"board {board}")]
        kinds = ["reachable over SSH", "hilnet 0.", "clock", "free for stores"]
        assert all(any(k in line for line in mine) for k in kinds), mine
    assert f"ok    board pi-tdrs-w: UART {ROOT}/pi-tdrs-w/ttyAMA0 enabled, free of consoles" in text
    assert "ok    board pi-wsc: interface eth2 present" in text


def test_iss_runs_across_the_bench_with_a_crash_over_ssh_a_power_cut_and_one_node_virtual(emulated, tmp_path):
    scenario = tmp_path / "iss-crash.yaml"
    text = SCENARIO.read_text()
    cut = "  - {at: 33m, cut: wsc-eac, for: 6m}\n"
    assert cut in text
    # Between the photos: a crash while a 240 KiB photo crosses the 115200-baud relay link
    # (22 scenario minutes) restarts that transfer and breaks the scenario's within: 30m.
    # The power of wsc's board goes off at 60m for a minute: its agent dies with it and
    # starts again on its store once the board answers over SSH.
    faults = "  - {at: 40m, crash: tdrs-w, restart-after: 1m}\n  - {at: 60m, power-cut: wsc, for: 1m}\n"
    # The tweets' 20 s promise against the plan is 333 ms of wall time at scale 60: agents
    # reached over SSH (first sessions, and restarts after the crash and the power cut) take
    # longer than that, so here the tweets keep the scenario-wide bound; the virtual
    # backends hold the 20 s.
    tight = "expect: {within-plan: 20s}"
    assert tight in text
    scenario.write_text(text.replace(cut, cut + faults).replace(tight, "expect: {within-plan: 15m}"))
    run_dir = tmp_path / "run"
    started = time.monotonic()
    r = hilnet("run", str(scenario), "--bench", str(BENCH), "--out", str(run_dir), "-q", timeout=300)
    took = time.monotonic() - started
    assert r.returncode == 0, r.stdout + r.stderr
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    start = next(e for e in events if e["event"] == "run-start")
    assert start["backend"] == "bench"
    assert start["placement"]["eac"] == "virtual"
    for node, board in (("iss", "pi-iss"), ("tdrs-e", "pi-tdrs-e"), ("tdrs-w", "pi-tdrs-w"), ("wsc", "pi-wsc")):
        assert start["placement"][node].startswith(f"board {board} (ssh hb-"), start["placement"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["placement"] == start["placement"]
    testbed = next(e for e in events if e["event"] == "testbed")
    assert testbed["links"]["tdrs-e-tdrs-w"][1].startswith("rfc2217://127.0.0.1:47217?baud=115200")
    assert testbed["nodes"]["iss"]["command"][0] == "ssh"
    # the crash: kill -9 over SSH, then a new agent on the same board
    assert any(e["event"] == "crash" and e.get("node") == "tdrs-w" for e in events)
    pids = [e["pid"] for e in events if e["event"] == "ready" and e.get("node") == "tdrs-w"]
    assert len(pids) == 2 and pids[0] != pids[1]
    # the power cut: off, on, and a new agent on the board that came back
    assert [e["event"] for e in events if e["event"] in ("power-cut", "power-on")] == ["power-cut", "power-on"]
    assert len({e["pid"] for e in events if e["event"] == "ready" and e.get("node") == "wsc"}) == 2
    stats = next(e for e in events if e["event"] == "link-stats" and e["link"] == "tdrs-e-tdrs-w")["stats"]
    assert stats["a->b"]["bytes_out"] > 240 * 1024 and stats["b->a"]["bytes_out"] > 0
    assert (run_dir / "bench.yaml").read_text() == BENCH.read_text()
    # TLS is required on a bench: every TCPCL session, board or virtual end, ran inside TLS
    ups = [e for e in events if e["event"] == "session-up" and e["cla"] == "tcpcl"]
    assert {e["node"] for e in ups} == {"iss", "tdrs-e", "tdrs-w", "wsc", "eac"}
    assert all(e["detail"]["tls"] is True for e in ups)
    assert not [e for e in events if e["event"] == "tls-failed"]
    print(f"ISS on the emulated bench: {took:.1f} s")


def test_a_board_that_vanishes_ends_the_run_with_exit_2_naming_it_within_15_s(emulated, tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hilnet", "run", str(SCENARIO), "--bench", str(BENCH), "--out", str(run_dir), "-q"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        log = run_dir / "events.jsonl"
        deadline = time.monotonic() + 90
        while not (log.exists() and '"run-start"' in log.read_text()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run did not start within 90 s"
            time.sleep(0.1)
        time.sleep(2)
        emulated.kill_sshd("pi-wsc")
        killed = time.monotonic()
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - killed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        emulated.start_sshd("pi-wsc")
    print(f"board vanished: the run ended {took:.1f} s later: {err.strip().splitlines()[-1]}")
    assert proc.returncode == 2, out + err
    assert "board pi-wsc" in err and "stopped answering over SSH" in err, err
    assert took < 15, f"the run took {took:.1f} s to end after the board vanished"
