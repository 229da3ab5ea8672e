"""YAML text -> a tree of PyYAML nodes that keep their line/column marks, safely.

PyYAML's own loaders would hide three things a scenario loader must see or
refuse, so this module composes the node tree itself from libyaml's events:

- duplicate mapping keys, which PyYAML silently accepts (the last one wins);
- aliases (``*name``), refused outright: with them a 1 kB file can expand into
  billions of nodes ("billion laughs"), and a scenario never needs them;
- oversized input: files over :data:`MAX_BYTES` are refused before parsing,
  trees over :data:`MAX_NODES` nodes while parsing.

Problems are collected as :class:`~hilnet.errors.ScenarioError` (1-based line
and column) so that a caller can report all of them at once.
"""

from __future__ import annotations

import os
from typing import Any, Protocol, cast

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from hilnet.errors import ScenarioError, ScenarioErrors

MAX_BYTES = 4 * 2**20  # a scenario is a few kB; anything this big is not one
MAX_NODES = 200_000
MAX_ERRORS = 100  # after this many, the rest is noise

# The tag given to a node that was refused (an alias, an unknown tag): its error is
# already reported, so readers stay quiet about it rather than report it twice.
REFUSED_TAG = "\x00refused"  # NUL cannot appear in a YAML tag, so no file can forge it

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STANDARD_TAGS = {"tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")}


def read_file(path: str | os.PathLike[str], what: str = "scenario") -> tuple[str, str]:
    """Read a ``what`` file (a scenario, a bench) as text, refusing big or non-UTF-8 files; returns (text, filename)."""
    filename = os.fspath(path)
    try:
        with open(filename, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_BYTES:
                raise ScenarioErrors(
                    [
                        ScenarioError(
                            f"file is {size} bytes; expected a {what} under {MAX_BYTES // 2**20} MiB "
                            "(refused before parsing)",
                            filename,
                            1,
                            1,
                        )
                    ]
                )
            data = f.read(MAX_BYTES + 1)  # the file may grow between stat and read
    except OSError as e:
        raise ScenarioErrors([ScenarioError(f"cannot read file: {e.strerror or e}", filename, 0, 0)]) from None
    if len(data) > MAX_BYTES:
        raise ScenarioErrors(
            [
                ScenarioError(
                    f"file is over {MAX_BYTES // 2**20} MiB; expected a {what} under that (refused before parsing)",
                    filename,
                    1,
                    1,
                )
            ]
        )
    return decode(data, filename, what), filename


def decode(data: bytes, filename: str, what: str = "scenario") -> str:
    """UTF-8 bytes -> text; a bad byte is reported at its line and column."""
    nul = data.find(b"\x00")
    if nul >= 0:  # say "binary" rather than blame whichever byte is not UTF-8
        line = data.count(b"\n", 0, nul) + 1
        col = nul - (data.rfind(b"\n", 0, nul) + 1) + 1
        raise ScenarioErrors(
            [ScenarioError(f"NUL byte: this is binary data; expected a YAML {what} file", filename, line, col)]
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ScenarioErrors(
            [
                ScenarioError(
                    f"byte 0x{data[e.start]:02x} is not UTF-8 text; expected a YAML {what} file", filename, line, col
                )
            ]
        ) from None
    return text.removeprefix("\ufeff")


class _Mark(Protocol):
    """A place in the text: PyYAML's ``Mark``, or libyaml's, which has the same fields."""

    line: int  # 0-based
    column: int  # 0-based


def _at(mark: _Mark | None, filename: str, message: str) -> ScenarioError:
    if mark is None:
        return ScenarioError(message, filename, 0, 0)
    return ScenarioError(message, filename, mark.line + 1, mark.column + 1)


def _marks(ev: yaml.Event) -> tuple[yaml.Mark | None, yaml.Mark | None]:
    # libyaml's events carry its own Mark type and the node stubs name only PyYAML's;
    # both have the line and column that readers use, so nodes keep them as they are.
    return cast("yaml.Mark | None", ev.start_mark), cast("yaml.Mark | None", ev.end_mark)


def compose(text: str, filename: str, what: str = "scenario") -> tuple[Node | None, list[ScenarioError]]:
    """Compose the single document in ``text``; returns (root node or None, errors).

    A syntax error ends parsing (its error is returned with whatever came
    before); refused aliases and duplicate keys are reported and parsing goes on.
    """
    if "\x00" in text:
        pos = text.index("\x00")
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        return None, [
            ScenarioError(f"NUL character: this is binary data; expected a YAML {what} file", filename, line, col)
        ]
    loader = _Loader(text)
    composer = _Composer(loader, filename, what)
    errors = composer.errors
    try:
        composer.run()
    except _TooBig as e:
        errors.append(_at(e.mark, filename, f"more than {MAX_NODES} YAML nodes; expected a {what} of sensible size"))
        return None, errors
    except yaml.MarkedYAMLError as e:
        what = " ".join(p for p in (e.problem, e.context) if p) or "invalid YAML"
        errors.append(_at(e.problem_mark or e.context_mark, filename, f"YAML syntax: {what}"))
        return None, errors
    except yaml.YAMLError as e:  # ReaderError: a control character
        errors.append(_unreadable(text, e, filename, what))
        return None, errors
    finally:
        loader.dispose()
    return composer.root, errors


def _unreadable(text: str, e: yaml.YAMLError, filename: str, what: str) -> ScenarioError:
    pos = getattr(e, "position", 0)
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    reason = getattr(e, "reason", "unreadable")
    return ScenarioError(f"YAML cannot read this text ({reason}); expected a YAML {what} file", filename, line, col)


class _Composer:
    """Builds the node tree from libyaml's events, collecting errors as it goes (see :func:`compose`)."""

    def __init__(self, loader: Any, filename: str, what: str = "scenario"):
        self.loader = loader
        self.filename = filename
        self.what = what
        self.errors: list[ScenarioError] = []
        self.root: Node | None = None
        # Each open collection: (node, items); mapping items alternate key, value.
        self.stack: list[tuple[SequenceNode | MappingNode, list[Node]]] = []
        self.count = 0  # nodes so far, against MAX_NODES
        self.documents = 0
        self.aliases = 0

    def run(self) -> None:
        """Read every event; raises _TooBig or PyYAML's errors, which compose() reports."""
        while self.loader.check_event():
            ev = self.loader.get_event()
            if isinstance(ev, yaml.DocumentStartEvent):
                self.documents += 1
                if self.documents > 1:
                    self._error(ev, f"a second YAML document (---); expected one {self.what} per file")
                    return
            elif isinstance(ev, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                self._open(ev)
            else:
                node = self._node(ev)
                if node is None:
                    continue  # stream / document end
                if self.stack:
                    self.stack[-1][1].append(node)
                else:
                    self.root = node
                if len(self.errors) >= MAX_ERRORS:
                    return

    def _node(self, ev: yaml.Event) -> Node | None:
        """The node that ``ev`` completes, or None."""
        if isinstance(ev, yaml.AliasEvent):
            return self._alias(ev)
        if isinstance(ev, yaml.ScalarEvent):
            return self._scalar(ev)
        if isinstance(ev, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            return self._close(ev)
        return None

    def _error(self, ev: yaml.Event, message: str) -> None:
        self.errors.append(_at(ev.start_mark, self.filename, message))

    def _counted(self, ev: yaml.Event) -> None:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooBig(ev.start_mark)

    def _tag(self, tag: str, ev: yaml.Event) -> str:
        """``tag``, or REFUSED_TAG (reported) when it is not a standard tag."""
        if tag not in _STANDARD_TAGS:
            self._error(ev, f"YAML tag {tag!r} is not allowed; expected plain values")
            return REFUSED_TAG
        return tag

    def _alias(self, ev: yaml.AliasEvent) -> Node:
        self.aliases += 1
        if self.aliases == 1:  # one is enough to say why; a bomb has thousands
            self._error(
                ev,
                f"alias *{ev.anchor} is not allowed; expected the value written out "
                "(aliases are refused so a file cannot expand without bound)",
            )
        return ScalarNode(REFUSED_TAG, "", *_marks(ev))

    def _scalar(self, ev: yaml.ScalarEvent) -> Node:
        tag = ev.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(ScalarNode, ev.value, ev.implicit)
        node = ScalarNode(self._tag(tag, ev), ev.value, *_marks(ev), style=ev.style)
        self._counted(ev)
        return node

    def _open(self, ev: yaml.SequenceStartEvent | yaml.MappingStartEvent) -> None:
        kind: type[SequenceNode] | type[MappingNode] = (
            SequenceNode if isinstance(ev, yaml.SequenceStartEvent) else MappingNode
        )
        tag = ev.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(kind, None, ev.implicit)
        self.stack.append((kind(self._tag(tag, ev), [], *_marks(ev), flow_style=ev.flow_style), []))
        self._counted(ev)

    def _close(self, ev: yaml.SequenceEndEvent | yaml.MappingEndEvent) -> Node:
        node, items = self.stack.pop()
        node.end_mark = _marks(ev)[1]
        if isinstance(node, SequenceNode):
            node.value = items
        else:
            node.value = list(zip(items[0::2], items[1::2]))
            _check_duplicates(node, self.filename, self.errors)
        return node


class _TooBig(Exception):
    def __init__(self, mark: _Mark | None):
        self.mark = mark


def _check_duplicates(node: MappingNode, filename: str, errors: list[ScenarioError]) -> None:
    seen: dict[str, _Mark] = {}
    for key, _value in node.value:
        if not isinstance(key, ScalarNode):
            continue  # the loader reports non-scalar keys where it knows what was expected
        first = seen.get(key.value)
        if first is not None:
            errors.append(
                _at(
                    key.start_mark,
                    filename,
                    f"duplicate key {key.value!r} (first at line {first.line + 1}); expected each key once",
                )
            )
        else:
            seen[key.value] = key.start_mark


_constructor = yaml.constructor.SafeConstructor()


def scalar_value(node: ScalarNode) -> object:
    """The Python value of a scalar node (str, int, float, bool, None, datetime)."""
    # Call the tag's constructor directly: construct_object() would cache every
    # node in the shared constructor for ever.
    construct = yaml.constructor.SafeConstructor.yaml_constructors.get(node.tag)
    if construct is None:  # a refused tag, already reported by compose()
        return node.value
    return construct(_constructor, node)
