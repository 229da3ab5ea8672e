"""Bench files: a valid one reads into the model; each bad one gets its exact FILE:LINE:COL messages.

The base bench cables a small scenario (a -serial- b -ethernet- c) with a and
b on boards and c virtual; each row of the table changes one line and lists
every message the loader must give, in order. Emulator ports that must
exist on this host are /dev/null, /dev/zero and the loopback interface.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hilnet.bench.load import is_bench_text, load_bench
from hilnet.bench.model import NicEnd, Power, UartEnd
from hilnet.errors import ScenarioErrors
from hilnet.scenario.load import load_scenario

SCENARIO = """\
hilnet: 1
name: pair
clock: {scale: 60, duration: 10m}
nodes:
  a: {eid: ipn:1.0}
  b: {eid: ipn:2.0}
  c: {eid: ipn:3.0}
links:
  a-b: {ends: [a, b], medium: serial, baud: 115200}
  b-c: {ends: [b, c], medium: ethernet, rate: 10Mbit/s}
faults:
  - {at: 2m, crash: b, restart-after: 30s}
"""

BENCH = """\
hilnet-bench: 1
boards:
  pi-a: {ssh: pi@pi-a.lab, model: pi4}
  pi-b: {ssh: pi-b, model: pi3, power: {off: [uhubctl, -p, 2, -a, "off"], on: [uhubctl, -p, 2, -a, "on"]}}
nodes:
  a: pi-a
  b: pi-b
wiring:
  a-b:
    a: {uart: /dev/ttyAMA0, emulator: /dev/null}
    b: {uart: /dev/ttyAMA0, emulator: /dev/zero}
  b-c:
    b: {nic: eth1, address: 10.79.1.1/24, emulator: lo}
"""


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _edit(text: str, line: int, new: str | None) -> str:
    """Replace 1-based ``line`` (None: delete it; a text with a newline inserts)."""
    lines = text.splitlines()
    if new is None:
        del lines[line - 1]
    else:
        lines[line - 1] = new
    return "\n".join(lines) + "\n"


def test_a_valid_bench_reads_into_the_model(tmp_path):
    scenario = load_scenario(_write(tmp_path, "pair.yaml", SCENARIO))
    bench = load_bench(_write(tmp_path, "bench.yaml", BENCH), scenario)
    assert bench.version == 1 and bench.name == "bench"
    assert [b.name for b in bench.boards] == ["pi-a", "pi-b"]
    assert bench.board("pi-b").power == Power(("uhubctl", "-p", "2", "-a", "off"), ("uhubctl", "-p", "2", "-a", "on"))
    assert bench.board("pi-a").hilnet_dir == ".hilnet/venv" and bench.board("pi-a").model == "pi4"
    assert bench.board_of("a").name == "pi-a" and bench.board_of("c") is None
    assert bench.end("a-b", "a") == UartEnd("/dev/ttyAMA0", "/dev/null")
    assert bench.end("b-c", "b") == NicEnd("eth1", "10.79.1.1/24", "lo")
    assert is_bench_text(BENCH) and not is_bench_text(SCENARIO)


def test_a_uart_end_can_ask_for_rts_cts(tmp_path):
    scenario = load_scenario(_write(tmp_path, "pair.yaml", SCENARIO))
    text = _edit(BENCH, 10, "    a: {uart: /dev/ttyAMA0, emulator: /dev/null, rtscts: true}")
    bench = load_bench(_write(tmp_path, "bench.yaml", text), scenario)
    assert bench.end("a-b", "a") == UartEnd("/dev/ttyAMA0", "/dev/null", rtscts=True)
    assert bench.end("a-b", "b") == UartEnd("/dev/ttyAMA0", "/dev/zero")  # off unless asked for


# (what, line to change, new text, check this host's ports, scenario edit, expected messages)
ROWS = [
    (
        "rts/cts on an Ethernet end",
        13,
        "    b: {nic: eth1, address: 10.79.1.1/24, emulator: lo, rtscts: true}",
        True,
        None,
        ["bench.yaml:13:57: link 'b-c' end 'b': a nic end takes no rtscts; expected nic and emulator"],
    ),
    (
        "rts/cts not a boolean",
        10,
        "    a: {uart: /dev/ttyAMA0, emulator: /dev/null, rtscts: 1}",
        True,
        None,
        ["bench.yaml:10:58: link 'a-b' end 'a' rtscts is the number 1; expected true or false"],
    ),
    (
        "unknown board",
        7,
        "  b: pi-bb",
        True,
        None,
        [
            "bench.yaml:7:6: node 'b' is on board 'pi-bb', which is not in boards (did you mean 'pi-b'?); "
            "expected one of: pi-a, pi-b",
            "bench.yaml:11:5: link 'a-b' end 'b': node 'b' is not on a board (see nodes:); expected wiring only "
            "for nodes that boards play",
            "bench.yaml:13:5: link 'b-c' end 'b': node 'b' is not on a board (see nodes:); expected wiring only "
            "for nodes that boards play",
        ],
    ),
    (
        "a node mapped twice",
        7,
        "  b: pi-b\n  a: pi-b",
        True,
        None,
        ["bench.yaml:8:3: duplicate key 'a' (first at line 6); expected each key once"],
    ),
    (
        "one board for two nodes",
        7,
        "  b: pi-a",
        True,
        None,
        [
            "bench.yaml:7:6: board 'pi-a' already plays node 'a' (line 6); expected one node per board",
            "bench.yaml:11:5: link 'a-b' end 'b': node 'b' is not on a board (see nodes:); expected wiring only "
            "for nodes that boards play",
            "bench.yaml:13:5: link 'b-c' end 'b': node 'b' is not on a board (see nodes:); expected wiring only "
            "for nodes that boards play",
        ],
    ),
    (
        "a link end wired twice",
        11,
        "    b: {uart: /dev/ttyAMA0, emulator: /dev/null}",
        True,
        None,
        [
            "bench.yaml:11:39: link 'a-b' end 'b': emulator port /dev/null is already wired to link 'a-b' end 'a' "
            "(line 10); expected each port cabled once"
        ],
    ),
    (
        "a serial link wired to a NIC",
        10,
        "    a: {nic: eth1, address: 10.79.2.1/24, emulator: eth9}",
        False,
        None,
        [
            "bench.yaml:10:5: link 'a-b' is serial, but its end 'a' is wired to a NIC; expected uart: and a serial "
            "emulator port"
        ],
    ),
    (
        "a device path that does not exist",
        10,
        "    a: {uart: /dev/ttyAMA0, emulator: /dev/ttyUSB-missing}",
        True,
        None,
        [
            "bench.yaml:10:39: link 'a-b' end 'a': emulator device /dev/ttyUSB-missing does not exist on this host; "
            "expected the serial adapter cabled to this board (plugged in? see ls /dev/serial/by-id/)"
        ],
    ),
    (
        "an SSH destination with shell metacharacters",
        3,
        '  pi-a: {ssh: "pi@a; rm -rf ~", model: pi4}',
        True,
        None,
        [
            "bench.yaml:3:15: board 'pi-a' ssh 'pi@a; rm -rf ~' has ' ', ';', '~'; expected an SSH destination such "
            "as pi@iss-pi.lab or a Host of your ssh configuration (letters, digits, '.', '_', '-', ':', one '@'; "
            "no shell characters)"
        ],
    ),
    (
        "an SSH destination that ssh would read as an option",
        3,
        "  pi-a: {ssh: -oProxyCommand=x, model: pi4}",
        True,
        None,
        [
            "bench.yaml:3:15: board 'pi-a' ssh '-oProxyCommand=x' has '=', a leading '-'; expected an SSH destination such "
            "as pi@iss-pi.lab or a Host of your ssh configuration (letters, digits, '.', '_', '-', ':', one '@'; "
            "no shell characters)"
        ],
    ),
    (
        "a node the scenario does not have",
        7,
        "  b: pi-b\n  z: pi-z",
        True,
        None,
        # (the board pi-z is added by the test below: one line here changes one line there)
        ["bench.yaml:9:3: node 'z' is not a node of scenario pair; expected one of: a, b, c"],
    ),
    (
        "an end of a node on a board left unwired",
        11,
        None,
        True,
        None,
        [
            "bench.yaml:7:3: node 'b' is on board pi-b, but its end of link 'a-b' is not wired; expected wiring: "
            "{a-b: {b: {uart: /dev/ttyAMA0, emulator: /dev/ttyUSB0}}}"
        ],
    ),
    (
        "a power-cut of a board without power commands",
        None,
        None,
        True,
        "  - {at: 3m, power-cut: a, for: 1m}",
        [
            "pair.yaml:13:5: power-cut: a needs a board with power commands, but board pi-a has no power commands; "
            "expected power: {off: [...], on: [...]} on its board in the bench file"
        ],
    ),
    (
        "a power-cut of a virtual node",
        None,
        None,
        True,
        "  - {at: 3m, power-cut: c, for: 1m}",
        [
            "pair.yaml:13:5: power-cut: c needs a board with power commands, but c runs virtually (not on a board "
            "of bench.yaml); expected power: {off: [...], on: [...]} on its board in the bench file"
        ],
    ),
]


@pytest.mark.parametrize(("what", "line", "new", "check_host", "fault", "expected"), ROWS, ids=[r[0] for r in ROWS])
def test_bad_bench_files(tmp_path, what, line, new, check_host, fault, expected):
    bench_text = BENCH if line is None else _edit(BENCH, line, new)
    if "pi-z" in bench_text:
        bench_text = _edit(bench_text, 4, BENCH.splitlines()[3] + "\n  pi-z: {ssh: pi-z, model: pi4}")
    scenario_path = _write(tmp_path, "pair.yaml", SCENARIO + (fault + "\n" if fault else ""))
    bench_path = _write(tmp_path, "bench.yaml", bench_text)
    with pytest.raises(ScenarioErrors) as err:
        load_bench(bench_path, load_scenario(scenario_path), check_host=check_host)
    got = [str(e).replace(str(tmp_path) + "/", "") for e in err.value.errors]
    assert got == expected
