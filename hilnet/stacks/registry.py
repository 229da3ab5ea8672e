"""Which driver plays a node, by the scenario's ``stack:`` name.

Each stack's driver lives in its own module, imported only when a run uses
it; the module exports ``DRIVER``, a :data:`~hilnet.stacks.base.DriverFactory`
(its class) whose ``stack`` and ``observes`` describe it. The names a
scenario may use are :data:`hilnet.scenario.model.STACKS`; this table must
name a module for each (tests/stacks check it).

Adding a stack (docs/stacks.md): a module here with ``DRIVER``, its name in
``STACKS`` and in :data:`MODULES`, and, when it needs software installed, a
line in :func:`require` that says how to get it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from hilnet.errors import StackError
from hilnet.scenario.model import Crash, PowerCut, Scenario
from hilnet.stacks.base import DriverFactory

MODULES: dict[str, str] = {
    "hilnet": "hilnet.stacks.hilnet_agent",
    "ion": "hilnet.stacks.ion",  # NASA's ION (docs/stacks.md)
}


def driver_for(stack: str) -> DriverFactory:
    """The driver of ``stack``; StackError when hilnet has none."""
    module = MODULES.get(stack)
    if module is None:
        raise StackError(f"no driver for stack {stack!r} (known: {', '.join(sorted(MODULES))})")
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is not None and (module == e.name or module.startswith(e.name + ".")):
            raise StackError(f"stack {stack!r}: this hilnet has no driver for it ({module} is missing)") from None
        raise
    driver: DriverFactory = loaded.DRIVER
    return driver


def delivery_eid(stack: str, node_eid: str) -> str:
    """Where a bundle for a node of ``stack`` with id ``node_eid`` is addressed.

    The node id itself, unless the driver says its stack delivers elsewhere
    (ION keeps ``ipn:N.0`` for itself: ``delivery_eid`` on its driver).
    """
    endpoint = getattr(driver_for(stack), "delivery_eid", None)
    return node_eid if endpoint is None else str(endpoint(node_eid))


def require(stack: str) -> None:
    """Raise StackError, saying how to get it, when ``stack``'s software is not installed here."""
    if stack == "ion":
        from hilnet.stacks.ion_install import require_ion

        require_ion()
    driver_for(stack)


def refuse_what_stacks_cannot_do(scenario: Scenario, backend: str) -> None:
    """StackError for a node whose stack cannot run on ``backend``, or a ``crash`` or ``power-cut``
    fault on a node whose stack cannot come back from one."""
    for node in scenario.nodes:
        can = driver_for(node.stack).backends
        if backend not in can:
            raise StackError(
                f"node {node.name} runs stack {node.stack}, which hilnet runs on the {' or '.join(sorted(can))} "
                f"backend, not {backend}; expected --backend {sorted(can)[0]} (docs/stacks.md)"
            )
    for fault in scenario.faults:
        if isinstance(fault, (Crash, PowerCut)):
            stack = scenario.node(fault.node).stack
            if not driver_for(stack).observes.crash:
                kind = "crash" if isinstance(fault, Crash) else "power-cut"
                raise StackError(
                    f"{scenario.source}:{fault.line}:{fault.col}: a {kind} fault on node {fault.node}, whose stack "
                    f"{stack} cannot restart on the state it had (docs/stacks.md); expected no {kind} fault on it, "
                    "or another stack for it"
                )


def require_stacks(nodes: Iterable[tuple[str, str]]) -> None:
    """:func:`require` for every stack among ``(node, stack)``, naming the nodes that need a missing one."""
    by_stack: dict[str, list[str]] = {}
    for node, stack in nodes:
        by_stack.setdefault(stack, []).append(node)
    for stack, names in by_stack.items():
        try:
            require(stack)
        except StackError as e:
            who = f"node {names[0]} runs" if len(names) == 1 else f"nodes {', '.join(names)} run"
            raise StackError(f"{who} stack {stack}, but {e}") from None
