"""Just enough Markdown for the docs tests: fenced blocks with their tags, marked tables.

The docs mark what a test checks, so a reader sees the contract where the text is:

- a fenced block whose info string is ``sh run`` is an example the tests run
  (``sh run exit=1`` when the example shows a failure, ``timeout=N`` seconds);
  a block tagged ``file=NAME`` is written as NAME into the folder the page's
  examples run in;
  a block right after it tagged ``output`` (``json output``, ``text output``)
  is what the example shows, and the tests compare it with what it printed;
- ``<!-- options: hilnet CMD -->`` before a table: its first column lists every
  option of that command, no more, no less;
- ``<!-- events: SRC -->`` before a table: its first column lists event kinds
  that source (agent, socket, controller, link) writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def doc_files() -> list[Path]:
    """README.md, hardware.md and every page under docs/, in a fixed order."""
    files = [ROOT / "README.md", ROOT / "hardware.md", ROOT / "firmware-config" / "README.md"]
    files += sorted((ROOT / "docs").glob("*.md"))
    return [f for f in files if f.exists()]


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@dataclass(frozen=True)
class Block:
    """One fenced block: its info-string words, its text, where it starts (1-based line of the fence)."""

    path: Path
    line: int
    lang: str
    tags: tuple[str, ...]
    text: str
    output: Block | None = field(default=None, compare=False)

    @property
    def where(self) -> str:
        return f"{rel(self.path)}:{self.line}"

    def tag(self, name: str, default: str | None = None) -> str | None:
        """The value of a ``name=value`` tag, or ``default``."""
        for t in self.tags:
            if t.startswith(name + "="):
                return t.split("=", 1)[1]
        return default


_FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*(.*)$")


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of ``path``; a ``run`` block gets the ``output`` block right after it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m.groups()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            line = lines[i]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            i += 1
        words = info.split()
        lang = words[0] if words else ""
        found.append(Block(path, start + 1, lang, tuple(words[1:]), "\n".join(body) + "\n"))
        i += 1
    out: list[Block] = []
    for n, b in enumerate(found):
        if "output" in b.tags:
            continue
        nxt = found[n + 1] if n + 1 < len(found) else None
        if "run" in b.tags and nxt is not None and "output" in nxt.tags:
            b = Block(b.path, b.line, b.lang, b.tags, b.text, output=nxt)
        out.append(b)
    return out


def run_blocks() -> list[Block]:
    """The examples to run and the files they use (``file=NAME`` blocks), page by page in order."""
    return [b for f in doc_files() for b in blocks(f) if "run" in b.tags or b.tag("file")]


@dataclass(frozen=True)
class MarkedTable:
    """A table after ``<!-- KIND: VALUE -->``: the backticked names of its first column, with their lines."""

    path: Path
    line: int
    kind: str
    value: str
    names: dict[str, int]

    @property
    def where(self) -> str:
        return f"{rel(self.path)}:{self.line}"


_MARK = re.compile(r"^<!--\s*(options|events):\s*(.+?)\s*-->\s*$")
_CODE = re.compile(r"`([^`]+)`")


def marked_tables(kind: str) -> list[MarkedTable]:
    """Every table marked ``<!-- KIND: ... -->`` in the docs."""
    tables: list[MarkedTable] = []
    for path in doc_files():
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            m = _MARK.match(line.strip())
            if not m or m.group(1) != kind:
                continue
            names: dict[str, int] = {}
            j = i + 1
            while j < len(lines) and not lines[j].startswith("|"):
                j += 1
            rows = 0
            while j < len(lines) and lines[j].startswith("|"):
                rows += 1
                cells = [c.strip() for c in re.split(r"(?<!\\)\|", lines[j])[1:-1]]
                if rows > 2 and cells:  # header and separator rows name nothing
                    for name in _CODE.findall(cells[0]):
                        names.setdefault(name.strip(), j + 1)
                j += 1
            tables.append(MarkedTable(path, i + 1, kind, m.group(2), names))
    return tables
