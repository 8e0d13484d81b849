"""The house's shape read from the code's own imports: layers, cycles, handlers and module length.

Layers, bottom to top: store (persistence) < jobs (domain work) < bot (services, presentation, delivery,
web, CLI) < handlers (Slack listeners). Every import counts, including those under TYPE_CHECKING and those
inside functions: a lazy import is still a dependency. The composition root (bot/app.py) may import
handlers to register them.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

LAYERS = {"store": 0, "jobs": 1, "bot": 2, "handlers": 3}
COMPOSITION_ROOT = "bot.app"
MAX_LINES = 500
# A handler may name the registry's enums and domain errors; queries and sessions go through bot's services.
HANDLER_MAY_NAME = ("store.models", "store.errors")


@dataclass
class Shape:
    upward: list[str] = field(default_factory=list)  # "module:line imports target"
    handler_store: list[str] = field(default_factory=list)
    cycles: list[list[str]] = field(default_factory=list)
    long: list[str] = field(default_factory=list)


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str, modules: set[str]) -> list[tuple[str, int]]:
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            # `from pkg import module` depends on that module; `from module import name` on the module
            named = [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in modules]
            found += [(t, node.lineno) for t in named] or [(target, node.lineno)]
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def read_shape(root: Path) -> Shape:
    files = {module_name(root, p): p for top in LAYERS for p in sorted((root / top).rglob("*.py"))
             if "migrations" not in p.parts}
    shape = Shape()
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        rank = LAYERS[name.split(".")[0]]
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES:
            shape.long.append(f"{path.relative_to(root)} has {lines} lines")
        for target, line in _imports(path, name, set(files)):
            top = target.split(".")[0]
            if top not in LAYERS:
                continue
            owner = next((m for m in (target, target.rsplit(".", 1)[0]) if m in files), None)
            if owner is not None and owner != name:
                graph[name].add(owner)
            where = f"{path.relative_to(root)}:{line} imports {target}"
            if LAYERS[top] > rank and name != COMPOSITION_ROOT:
                shape.upward.append(where)
            if rank == LAYERS["handlers"] and top == "store" and not target.startswith(HANDLER_MAY_NAME):
                shape.handler_store.append(where)
    shape.cycles = _cycles(graph)
    return shape
