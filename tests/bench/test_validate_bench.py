"""``hilnet validate`` reads bench files by their content, and checks a scenario against a bench."""

from __future__ import annotations

import subprocess
import sys

from test_bench_load import BENCH, SCENARIO


def hilnet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hilnet", *args], capture_output=True, text=True, timeout=60)


def test_a_bench_file_is_recognised_by_its_top_level_key(tmp_path):
    bench = tmp_path / "lab.yaml"
    bench.write_text(BENCH)
    r = hilnet("validate", str(bench))
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{bench}: ok (bench lab: 2 boards, 2 nodes on boards, 3 link ends wired)\n"


def test_a_scenario_against_a_bench_says_which_nodes_are_real(tmp_path):
    (tmp_path / "pair.yaml").write_text(SCENARIO)
    (tmp_path / "lab.yaml").write_text(BENCH)
    r = hilnet("validate", str(tmp_path / "pair.yaml"), "--bench", str(tmp_path / "lab.yaml"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith("; with bench lab: on boards a, b, virtual c\n")


def test_every_error_of_a_bad_bench_is_printed_at_its_place_and_the_exit_is_2(tmp_path):
    bench = tmp_path / "lab.yaml"
    bench.write_text(BENCH.replace("model: pi3", "model: pi6").replace("emulator: /dev/zero", "emulator: eth9"))
    r = hilnet("validate", str(bench))
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        f"{bench}:4:28: board 'pi-b' model is 'pi6'; did you mean 'pi5'?; expected pi3 or pi4 or pi5 or zero2w",
        f"{bench}:11:39: link 'a-b' end 'b': emulator 'eth9' is a network interface, not a serial port; expected "
        "a serial device such as /dev/serial/by-id/usb-FTDI_... or rfc2217://HOST:PORT",
    ]
