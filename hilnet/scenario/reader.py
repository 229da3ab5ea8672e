"""Typed reads from YAML nodes that record, rather than raise, what is wrong.

A :class:`Reader` walks a node tree from :mod:`hilnet.scenario.yamltree` and
collects one :class:`~hilnet.errors.ScenarioError` per problem, each at the
line and column of the offending node and worded as "what is wrong; expected
what". Every getter returns ``None`` after recording an error, so a loader can
keep going and report all the problems of a file at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import TypeVar

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from hilnet.errors import ScenarioError, UnitError
from hilnet.scenario.yamltree import REFUSED_TAG, scalar_value

T = TypeVar("T")
S = TypeVar("S", bound=str)

#: a mapping as :meth:`Reader.mapping` returns it: key -> (key node, value node)
MappingEntries = dict[str, tuple[ScalarNode, Node]]


def describe(node: Node) -> str:
    """How a person would name what they wrote: 'a mapping', 'the text "x"', 'the number 3'."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    value = scalar_value(node)  # type: ignore[arg-type]
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {node.value}"
    if isinstance(value, (int, float)):
        return f"the number {node.value}"
    if isinstance(value, str):
        return f"the text {value!r}"
    return f"{type(value).__name__} {node.value!r}"


class Reader:
    def __init__(self, filename: str):
        self.filename = filename
        self.errors: list[ScenarioError] = []

    def error(self, node: Node, message: str) -> None:
        if node.tag == REFUSED_TAG:
            return  # compose() reported why this node was refused
        mark = node.start_mark
        self.errors.append(ScenarioError(message, self.filename, mark.line + 1, mark.column + 1))

    # -- structure -------------------------------------------------------------

    def mapping(
        self,
        node: Node,
        what: str,
        keys: Iterable[str],
        required: Iterable[str] = (),
        extra: Callable[[str], bool] | None = None,
    ) -> MappingEntries | None:
        """Read a mapping whose keys must be among ``keys`` (or pass ``extra``).

        Returns key -> (key node, value node). Unknown keys get a did-you-mean;
        missing required keys are reported at the mapping's first line.
        """
        keys = list(keys)
        if not isinstance(node, MappingNode):
            self.error(node, f"{what} is {describe(node)}; expected a mapping of {', '.join(keys)}")
            return None
        out: dict[str, tuple[ScalarNode, Node]] = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode):
                self.error(key, f"{what} has {describe(key)} as a key; expected one of: {', '.join(keys)}")
                continue
            name = key.value
            if name not in keys and not (extra and extra(name)):
                close = difflib.get_close_matches(name, keys, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}? " if close else ""
                self.error(key, f"unknown key {name!r} in {what}; {hint}expected one of: {', '.join(keys)}")
                continue
            if name not in out:  # a duplicate was reported by compose()
                out[name] = (key, value)
        missing = [k for k in required if k not in out]
        if missing:
            self.error(
                node,
                f"{what} lacks {', '.join(repr(k) for k in missing)}; expected "
                f"{'it' if len(missing) == 1 else 'them'} among: {', '.join(keys)}",
            )
        return out

    def sequence(self, node: Node, what: str, expected: str) -> list[Node] | None:
        if not isinstance(node, SequenceNode):
            self.error(node, f"{what} is {describe(node)}; expected a list of {expected}")
            return None
        return list(node.value)

    def named_mapping(self, node: Node, what: str, expected: str) -> list[tuple[ScalarNode, Node]] | None:
        """A mapping of name -> entry (nodes:, links:); names must be plain identifiers."""
        if not isinstance(node, MappingNode):
            self.error(node, f"{what} is {describe(node)}; expected a mapping of name: {expected}")
            return None
        out = []
        seen: set[str] = set()
        for key, value in node.value:
            if not isinstance(key, ScalarNode):
                self.error(key, f"{what} has {describe(key)} as a name; expected a name such as iss or tdrs-w")
                continue
            if key.value in seen:
                continue  # reported by compose()
            seen.add(key.value)
            if not is_name(key.value):
                self.error(
                    key,
                    f"{what} name {key.value!r} is not a plain name; expected letters, digits, "
                    "'-', '_' or '.', starting with a letter",
                )
                continue
            out.append((key, value))
        return out

    # -- scalars ---------------------------------------------------------------

    def scalar(self, node: Node, what: str, expected: str) -> object | None:
        if not isinstance(node, ScalarNode):
            self.error(node, f"{what} is {describe(node)}; expected {expected}")
            return None
        return scalar_value(node)

    def text(self, node: Node, what: str, expected: str = "text") -> str | None:
        value = self.scalar(node, what, expected)
        if value is None:
            if isinstance(node, ScalarNode):
                self.error(node, f"{what} is empty; expected {expected}")
            return None
        if not isinstance(value, str):
            self.error(node, f"{what} is {describe(node)}; expected {expected}")
            return None
        return value

    def choice(self, node: Node, what: str, choices: Iterable[S]) -> S | None:
        """One of ``choices``, typed as they are (a Literal tuple gives that Literal)."""
        options = list(choices)
        expected = " or ".join(options)
        value = self.text(node, what, expected)
        if value is None:
            return None
        for option in options:
            if option == value:
                return option
        close = difflib.get_close_matches(value, options, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        self.error(node, f"{what} is {value!r}{hint}; expected {expected}")
        return None

    def integer(self, node: Node, what: str, minimum: int | None = None) -> int | None:
        expected = "a whole number" + (f" >= {minimum}" if minimum is not None else "")
        value = self.scalar(node, what, expected)
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(node, ScalarNode):
                self.error(node, f"{what} is {describe(node)}; expected {expected}")
            return None
        if minimum is not None and value < minimum:
            self.error(node, f"{what} is {value}; expected {expected}")
            return None
        return value

    def positive_number(self, node: Node, what: str) -> float | None:
        expected = "a number above 0"
        value = self.scalar(node, what, expected)
        if isinstance(value, str):
            try:
                value = float(value)  # "1e3": PyYAML's YAML 1.1 floats need a dot
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if isinstance(node, ScalarNode):
                self.error(node, f"{what} is {describe(node)}; expected {expected}")
            return None
        if not value > 0 or value == float("inf"):
            self.error(node, f"{what} is {node.value}; expected {expected}")
            return None
        return float(value)

    def boolean(self, node: Node, what: str) -> bool | None:
        value = self.scalar(node, what, "true or false")
        if not isinstance(value, bool):
            if isinstance(node, ScalarNode):
                self.error(node, f"{what} is {describe(node)}; expected true or false")
            return None
        return value

    def unit(self, node: Node, what: str, parse: Callable[[object], T], expected: str) -> T | None:
        """Read a quantity with one of :mod:`hilnet.units`' parsers; its UnitError lands at the node."""
        value = self.scalar(node, what, expected)
        if value is None:
            if isinstance(node, ScalarNode):
                self.error(node, f"{what} is empty; expected {expected}")
            return None
        try:
            return parse(value)
        except UnitError as e:
            self.error(node, f"{what}: {e}")
            return None


def is_name(text: str) -> bool:
    """Plain names for nodes, links and traffic: ``iss``, ``tdrs-w``, ``photos_1``."""
    return (
        bool(text)
        and text[0].isascii()
        and text[0].isalpha()
        and all(c.isascii() and (c.isalnum() or c in "-_.") for c in text)
    )


def did_you_mean(name: str, names: list[str]) -> str:
    """`` (did you mean 'x'?)`` when ``name`` is close to one of ``names``, else empty."""
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
