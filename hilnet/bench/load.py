"""Bench YAML -> :class:`~hilnet.bench.model.Bench`, with every error at FILE:LINE:COL.

The same reader as scenarios (:mod:`hilnet.scenario.yamltree` for the node
tree, :class:`~hilnet.scenario.reader.Reader` for typed reads), so a bench file
gets the same did-you-means and the same refusals (aliases, duplicate keys,
oversized files). Every problem of a file is collected and raised together
as one :class:`~hilnet.errors.ScenarioErrors`. The format is documented key
by key in ``docs/bench.md``; this module and that page must agree. Checks
against a scenario (every node and link end present) are
:mod:`hilnet.bench.pairing`'s.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from yaml.nodes import MappingNode, Node, ScalarNode

from hilnet.bench.model import (
    DEFAULT_HILNET_DIR,
    DEFAULT_PYTHON,
    DEFAULT_STORE_DIR,
    MODELS,
    Bench,
    Board,
    End,
    NicEnd,
    Power,
    UartEnd,
)
from hilnet.bench.pairing import Positions, check_pair
from hilnet.bench.ports import check_address, check_emulator_port, check_interface
from hilnet.errors import ScenarioError, ScenarioErrors
from hilnet.scenario.model import Scenario
from hilnet.scenario.reader import Reader, describe, did_you_mean
from hilnet.scenario.yamltree import compose, read_file

FORMAT_VERSION = 1
VERSION_KEY = "hilnet-bench"  # the top-level key that tells a bench file from a scenario
TOP_KEYS = (VERSION_KEY, "name", "ssh-config", "boards", "nodes", "wiring")
BOARD_KEYS = ("ssh", "model", "hilnet", "store", "python", "power")
POWER_KEYS = ("off", "on", "cycle")

# An SSH destination as ssh(1) takes it: [user@]host. Nothing a shell or ssh
# itself would read as more than a name: no spaces, quotes, ;|&$`<>(){}*?!\,
# and no leading '-' (ssh would take it for an option).
_SSH_DEST = re.compile(r"(?:[A-Za-z0-9_][A-Za-z0-9._-]*@)?[A-Za-z0-9_.][A-Za-z0-9._:%-]*\Z")
_SHELL_CHARS = set(" \t\n;|&$`<>(){}[]*?!\\'\"~#^,=")


def load_bench(path: str | os.PathLike[str], scenario: Scenario | None = None, *, check_host: bool = True) -> Bench:
    """Read and check a bench file; raises ScenarioErrors listing every problem.

    With ``scenario``, also check the pair (:mod:`hilnet.bench.pairing`).
    ``check_host``: also check that the emulator-side devices and interfaces
    exist on this machine (the emulator host); off for a bench read elsewhere.
    """
    text, filename = read_file(path, "bench")
    return load_bench_text(text, filename, scenario, check_host=check_host)


def load_bench_text(
    text: str, filename: str = "<bench>", scenario: Scenario | None = None, *, check_host: bool = True
) -> Bench:
    root, errors = compose(text, filename, "bench")
    if root is None:
        raise ScenarioErrors(
            errors
            or [
                ScenarioError(
                    f"the file is empty; expected a bench mapping that starts with '{VERSION_KEY}: 1'", filename, 1, 1
                )
            ]
        )
    builder = _Builder(filename, check_host)
    builder.r.errors.extend(errors)
    bench = builder.build(root)
    if bench is not None and scenario is not None and not builder.r.errors:
        # The pair is checked once the bench reads cleanly on its own: a board
        # with a bad line is missing from the model, and every node on it would
        # look unmapped.
        check_pair(bench, scenario, builder.where, builder.r)
    if builder.r.errors or bench is None:
        raise ScenarioErrors(
            builder.r.errors
            or [ScenarioError(f"not a bench; expected a mapping that starts with '{VERSION_KEY}: 1'", filename, 1, 1)]
        )
    return bench


def is_bench_text(text: str) -> bool:
    """Whether YAML text is a bench file (it has the top-level ``hilnet-bench`` key), without parsing it."""
    return any(line.startswith(f"{VERSION_KEY}:") for line in text.splitlines())


class _Builder:
    def __init__(self, filename: str, check_host: bool):
        self.filename = filename
        self.check_host = check_host
        self.r = Reader(filename)
        self.where: Positions = {}  # what the pairing check points at

    def build(self, root: Node) -> Bench | None:
        r = self.r
        if not isinstance(root, MappingNode):
            r.error(
                root, f"the file holds {describe(root)}; expected a bench mapping that starts with '{VERSION_KEY}: 1'"
            )
            return None
        top = r.mapping(root, "the bench", TOP_KEYS, required=(VERSION_KEY, "boards", "nodes"))
        if top is None:
            return None
        self.where[("top",)] = root
        version = None
        if VERSION_KEY in top:
            version = r.integer(top[VERSION_KEY][1], f"{VERSION_KEY} (the bench format version)")
            if version is not None and version != FORMAT_VERSION:
                r.error(
                    top[VERSION_KEY][1],
                    f"bench format version {version} is not one this hilnet reads; expected {VERSION_KEY}: {FORMAT_VERSION}",
                )
                version = None
        name = Path(self.filename).stem
        if "name" in top:
            name = r.text(top["name"][1], "name", "the bench's name") or name
        ssh_config = self._ssh_config(top["ssh-config"][1]) if "ssh-config" in top else None
        boards, declared = self._boards(top["boards"][1]) if "boards" in top else ((), [])
        nodes = self._nodes(top["nodes"][1], declared) if "nodes" in top else ()
        wiring = self._wiring(top["wiring"][1], dict(nodes)) if "wiring" in top else ()
        if version is None:
            return None
        return Bench(name, version, boards, nodes, wiring, ssh_config, self.filename)

    def _ssh_config(self, node: Node) -> str | None:
        text = self.r.text(node, "ssh-config", "the path of an ssh_config file")
        if text is None:
            return None
        path = os.path.join(os.path.dirname(os.path.abspath(self.filename)), os.path.expanduser(text))
        if self.check_host and not os.path.isfile(path):
            self.r.error(node, f"ssh-config {text!r}: no such file ({path}); expected an ssh_config file")
            return None
        return path

    # -- boards ----------------------------------------------------------------------

    def _boards(self, node: Node) -> tuple[tuple[Board, ...], list[str]]:
        """The boards that could be read, and the names of all (a bad board's errors are its own)."""
        r = self.r
        entries = r.named_mapping(node, "boards", "{ssh: pi@iss-pi.lab, model: pi4}")
        if entries is None:
            return (), []
        out = []
        for key, value in entries:
            board = self._board(key, value)
            if board is not None:
                out.append(board)
        return tuple(out), [key.value for key, _ in entries]

    def _board(self, key: ScalarNode, value: Node) -> Board | None:
        r = self.r
        what = f"board {key.value!r}"
        m = r.mapping(value, what, BOARD_KEYS, required=("ssh", "model"))
        if m is None or "ssh" not in m or "model" not in m:
            return None
        ssh = self._ssh_destination(m["ssh"][1], what)
        model = r.choice(m["model"][1], f"{what} model", MODELS)
        paths = {}
        for k, default in (("hilnet", DEFAULT_HILNET_DIR), ("store", DEFAULT_STORE_DIR), ("python", DEFAULT_PYTHON)):
            paths[k] = self._board_path(m[k][1], f"{what} {k}") if k in m else default
        power = self._power(m["power"][1], what) if "power" in m else None
        if ssh is None or model is None or None in paths.values():
            return None
        return Board(
            key.value,
            ssh,
            model,
            str(paths["hilnet"]),
            str(paths["store"]),
            str(paths["python"]),
            power,
            key.start_mark.line + 1,
        )

    def _ssh_destination(self, node: Node, what: str) -> str | None:
        text = self.r.text(node, f"{what} ssh", "an SSH destination such as pi@iss-pi.lab")
        if text is None:
            return None
        if _SSH_DEST.match(text) is None or text.startswith("-"):
            bad = [repr(c) for c in sorted({c for c in text if c in _SHELL_CHARS})]
            if text.startswith("-"):
                bad.append("a leading '-'")
            why = f"has {', '.join(bad)}" if bad else "is not a plain name"
            self.r.error(
                node,
                f"{what} ssh {text!r} {why}; expected an SSH destination such as pi@iss-pi.lab or a Host "
                "of your ssh configuration (letters, digits, '.', '_', '-', ':', one '@'; no shell characters)",
            )
            return None
        return text

    def _board_path(self, node: Node, what: str) -> str | None:
        text = self.r.text(node, what, "a path on the board")
        if text is None:
            return None
        if not text.strip() or "\x00" in text or "\n" in text:
            self.r.error(node, f"{what} {text!r} is not a path; expected a path on the board such as .hilnet/venv")
            return None
        return text

    def _power(self, node: Node, what: str) -> Power | None:
        r = self.r
        m = r.mapping(node, f"{what} power", POWER_KEYS, required=("off", "on"))
        if m is None:
            return None
        argv = {k: self._argv(m[k][1], f"{what} power {k}") for k in m}
        off, on = argv.get("off"), argv.get("on")
        if off is None or on is None or ("cycle" in m and argv["cycle"] is None):
            return None
        return Power(off, on, argv.get("cycle"))

    def _argv(self, node: Node, what: str) -> tuple[str, ...] | None:
        """A command as a list of arguments: run as is, never through a shell."""
        r = self.r
        items = r.sequence(node, what, "arguments, such as [uhubctl, -l, 1-1, -p, 2, -a, off]")
        if items is None:
            return None
        if not items:
            r.error(node, f"{what} is empty; expected a command such as [uhubctl, -l, 1-1, -p, 2, -a, off]")
            return None
        out = []
        for item in items:
            if isinstance(item, ScalarNode) and item.tag.endswith((":int", ":float")):
                out.append(item.value)  # a port number written bare is still an argument
                continue
            text = r.text(item, f"{what} argument", "text")
            if text is None:
                return None
            out.append(text)
        return tuple(out)

    # -- nodes -----------------------------------------------------------------------

    def _nodes(self, node: Node, names: list[str]) -> tuple[tuple[str, str], ...]:
        r = self.r
        entries = r.named_mapping(node, "nodes", "BOARD (a board of boards:)")
        if entries is None:
            return ()
        played: dict[str, tuple[str, int]] = {}  # board -> (node, line)
        out = []
        for key, value in entries:
            board = r.text(value, f"node {key.value!r}", "the name of a board")
            if board is None:
                continue
            if board not in names:
                r.error(
                    value,
                    f"node {key.value!r} is on board {board!r}, which is not in boards{did_you_mean(board, names)}; "
                    f"expected one of: {', '.join(names) or '(no boards)'}",
                )
                continue
            if board in played:
                other, line = played[board]
                r.error(
                    value,
                    f"board {board!r} already plays node {other!r} (line {line}); expected one node per board",
                )
                continue
            played[board] = (key.value, key.start_mark.line + 1)
            self.where[("node", key.value)] = key
            out.append((key.value, board))
        return tuple(out)

    # -- wiring ----------------------------------------------------------------------

    def _wiring(self, node: Node, on_board: dict[str, str]) -> tuple[tuple[str, str, End], ...]:
        r = self.r
        links = r.named_mapping(node, "wiring", "{NODE: {uart: /dev/ttyAMA0, emulator: /dev/ttyUSB0}}")
        if links is None:
            return ()
        out: list[tuple[str, str, End]] = []
        used: dict[str, tuple[str, int]] = {}  # port -> (link end, line): a port is cabled once
        for link_key, ends in links:
            self.where[("link", link_key.value)] = link_key
            entries = r.named_mapping(ends, f"wiring of link {link_key.value!r}", "{uart: ..., emulator: ...}")
            for node_key, spec in entries or ():
                what = f"link {link_key.value!r} end {node_key.value!r}"
                if node_key.value not in on_board:
                    r.error(
                        node_key,
                        f"{what}: node {node_key.value!r} is not on a board (see nodes:); "
                        "expected wiring only for nodes that boards play",
                    )
                    continue
                end = self._end(spec, what, on_board[node_key.value], used)
                self.where[("end", link_key.value, node_key.value)] = node_key
                if end is not None:
                    out.append((link_key.value, node_key.value, end))
        return tuple(out)

    def _end(self, node: Node, what: str, board: str, used: dict[str, tuple[str, int]]) -> End | None:
        r = self.r
        m = r.mapping(node, what, ("uart", "nic", "address", "emulator", "rtscts"), required=("emulator",))
        if m is None:
            return None
        kinds = [k for k in ("uart", "nic") if k in m]
        if len(kinds) != 1:
            r.error(
                node,
                f"{what} has {' and '.join(kinds) or 'neither uart nor nic'}; expected exactly one of uart: /dev/ttyAMA0 or nic: eth1",
            )
            return None
        kind = kinds[0]
        wrong = "address" if kind == "uart" else "rtscts"  # an Ethernet end has no flow-control lines
        if wrong in m:
            r.error(m[wrong][0], f"{what}: a {kind} end takes no {wrong}; expected {kind} and emulator")
            return None
        if kind == "nic" and "address" not in m:
            r.error(node, f"{what} lacks 'address'; expected the board interface's address such as 10.79.1.1/24")
            return None
        port = r.text(
            m[kind][1],
            f"{what} {kind}",
            "a device such as /dev/ttyAMA0" if kind == "uart" else "an interface such as eth1",
        )
        emulator = r.text(m["emulator"][1], f"{what} emulator", "the emulator host's port")
        if port is None or emulator is None or "emulator" not in m:
            return None
        problems = [
            (m[kind][1], (_uart_problem(port) if kind == "uart" else check_interface(port))),
            (m["emulator"][1], check_emulator_port(emulator, kind, self.check_host)),
        ]
        address = None
        if kind == "nic":
            address = r.text(m["address"][1], f"{what} address", "an address with its prefix such as 10.79.1.1/24")
            problems.append((m["address"][1], check_address(address) if address else None))
        for at, problem in problems:
            if problem:
                r.error(at, f"{what}: {problem}")
        if any(p for _, p in problems) or (kind == "nic" and address is None):
            return None
        if not self._once(f"emulator port {emulator}", emulator, what, m["emulator"][1], used):
            return None
        if not self._once(f"board {board} port {port}", f"{board}:{port}", what, m[kind][1], used):
            return None
        if kind == "nic":
            return NicEnd(port, str(address), emulator)
        return UartEnd(port, emulator, bool("rtscts" in m and r.boolean(m["rtscts"][1], f"{what} rtscts")))

    def _once(self, label: str, port: str, what: str, node: Node, used: dict[str, tuple[str, int]]) -> bool:
        if port in used:
            other, line = used[port]
            self.r.error(
                node, f"{what}: {label} is already wired to {other} (line {line}); expected each port cabled once"
            )
            return False
        used[port] = (what, node.start_mark.line + 1)
        return True


def _uart_problem(port: str) -> str | None:
    if not port.startswith("/"):
        return f"uart {port!r} is not a device path; expected the board's UART such as /dev/ttyAMA0"
    return None
