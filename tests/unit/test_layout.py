"""The shape of the package, read from its imports (ast), so that a violation fails here.

The rooms and their order, top to bottom (an import may only run down, or stay in its room)::

    cli, bench, web          the shells
    queue                    procrastinate: the queue, the worker
    api                      the one façade
    engine                   orchestration
    catalogue, report        what can be done; how it is shown
    aws, store               the two edges
    base                     errors, states, records

``sim`` (the WorkSpaces simulator) stands apart and imports the base alone. The package root
``fleetops/__init__.py`` is the lazy public façade: it names modules as strings, imported on first
use, and so stands outside the order. Imports under ``if TYPE_CHECKING:`` count like any other:
a type that crosses a boundary is a dependency too.

Besides the order: SQLAlchemy, psycopg, sqlite3 and alembic are imported inside ``store`` alone;
aiobotocore and botocore inside ``aws`` alone (``sim`` and ``bench`` aside: a fake and a
benchmark work the wire and the files directly); procrastinate inside ``queue`` and ``store``
(which builds its connector); typer and rich never below the shells and the report. No import
circles between modules, and no function longer than 100 lines.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "fleetops"

#: room -> rank; an import must go to a room of lower rank (or to its own room).
RANKS: dict[str, int] = {
    "cli": 7,
    "bench": 7,
    "web": 7,
    "queue": 6,
    "api": 5,
    "engine": 4,
    "catalogue": 3,
    "report": 3,
    "aws": 2,
    "store": 2,
    "base": 1,
}
BASE_MODULES = {"errors", "states", "records"}
#: third-party packages, and the rooms that alone may import them
CONFINED: dict[str, set[str]] = {
    "sqlalchemy": {"store", "bench"},
    "psycopg": {"store", "bench"},
    "sqlite3": {"store", "bench"},
    "alembic": {"store"},
    "aiosqlite": {"store"},
    "asyncpg": {"store"},
    "aiobotocore": {"aws", "sim", "bench"},
    "botocore": {"aws", "sim", "bench"},
    "boto3": {"bench"},
    "procrastinate": {"queue", "store"},
    "typer": {"cli", "bench", "sim", "web"},
    "click": {"cli", "bench", "sim", "web"},
    "rich": {"cli", "bench", "report", "web"},
}
MAX_FUNCTION_LINES = 100


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _room(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "root"
    head = parts[1]
    if head in BASE_MODULES:
        return "base"
    if head in {"__main__"}:
        return "cli"
    return head


def _imports(path: Path, module: str) -> list[tuple[str, int]]:
    """Every module named by an import in the file (absolute; relative ones resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[str, int]] = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            # "from fleetops.x import y" names the module fleetops.x.y where there is one
            members = [f"{target}.{alias.name}" for alias in node.names]
            submodules = [name for name in members if name in MODULES]
            if submodules:
                found.extend((name, node.lineno) for name in submodules)
            else:
                found.append((target, node.lineno))
    return found


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _internal(target: str) -> str | None:
    """The package module an import names (the longest known prefix), or None."""
    parts = target.split(".")
    while parts:
        name = ".".join(parts)
        if name in MODULES:
            return name
        parts.pop()
    return None


def _graph() -> dict[str, dict[str, int]]:
    graph: dict[str, dict[str, int]] = defaultdict(dict)
    for module, path in MODULES.items():
        for target, line in _imports(path, module):
            if not target.startswith("fleetops"):
                continue
            name = _internal(target)
            if name is None or name == module:
                continue
            graph[module].setdefault(name, line)
    return graph


def test_every_module_has_a_room() -> None:
    unknown = sorted(
        module
        for module in MODULES
        if _room(module) not in RANKS and _room(module) not in {"root", "sim"}
    )
    assert unknown == [], f"modules outside every room (a subpackage, not a flat module): {unknown}"


def test_imports_run_down_the_layers() -> None:
    wrong: list[str] = []
    for module, targets in _graph().items():
        here = _room(module)
        if here == "root":
            continue
        for target, line in targets.items():
            there = _room(target)
            if there == here:
                continue
            if here == "sim":
                if there != "base":
                    wrong.append(f"{module}:{line} -> {target} (sim imports the base alone)")
                continue
            if there == "root":
                if here in {"cli", "bench", "web"}:
                    continue  # the shells may use the public façade
                wrong.append(f"{module}:{line} -> fleetops (the façade is above every room)")
                continue
            if there == "sim":
                if here in {"cli", "bench"}:
                    continue  # the demo and the benchmark start the simulator
                wrong.append(f"{module}:{line} -> {target} (only the shells start the simulator)")
                continue
            if RANKS[there] >= RANKS[here]:
                wrong.append(f"{module}:{line} -> {target} ({here} may not import {there})")
    assert wrong == [], "imports that run up or across the layers:\n" + "\n".join(sorted(wrong))


def test_the_cli_stays_a_shell() -> None:
    """The CLI parses, calls the façade, renders: no store, engine or AWS edge beneath it."""
    wrong = [
        f"{module}:{line} -> {target}"
        for module, targets in _graph().items()
        if _room(module) == "cli"
        for target, line in targets.items()
        if _room(target) in {"store", "engine", "aws"}
    ]
    assert wrong == [], "the CLI reaches around the façade:\n" + "\n".join(sorted(wrong))


@pytest.mark.parametrize("library", sorted(CONFINED))
def test_third_party_libraries_stay_in_their_rooms(library: str) -> None:
    allowed = CONFINED[library]
    wrong = [
        f"{module}:{line} imports {target}"
        for module, path in MODULES.items()
        for target, line in _imports(path, module)
        if target.split(".")[0] == library and _room(module) not in allowed
    ]
    assert wrong == [], f"{library} is for {sorted(allowed)} alone:\n" + "\n".join(sorted(wrong))


def test_no_import_circles() -> None:
    graph = _graph()
    # a package's __init__ that merely re-exports is still an edge: circles through it count
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, {}):
            if nxt == "fleetops":
                continue  # the lazy façade imports nothing at run time
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(MODULES):
        if module not in index:
            visit(module)
    assert circles == [], f"import circles: {circles}"


def test_no_function_over_a_hundred_lines() -> None:
    long: list[str] = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{module}.{node.name}: {length} lines")
    assert long == [], "functions over 100 lines:\n" + "\n".join(sorted(long))


def test_the_checks_can_fail() -> None:
    """The rules see a violation where there is one (the tests above would pass on nothing)."""
    assert _room("fleetops.cli.jobs") == "cli"
    assert _room("fleetops.records") == "base"
    assert RANKS[_room("fleetops.store.repo")] < RANKS[_room("fleetops.engine.runner")]
    graph = _graph()
    assert graph, "no imports were read"
    assert "fleetops.engine.runner" in graph
    assert any(_room(t) == "store" for t in graph["fleetops.engine.runner"])
