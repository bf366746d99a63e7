"""One owner for each piece of knowledge: kind names live in the catalog, and modules import without cycles."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from archsolve.catalog import KINDS

SRC = Path(__file__).parent.parent / "src" / "archsolve"
#: The op catalog owns the kind names (a file or a folder).  ``check/`` translates torch's own function
#: names (``conv2d``) into kinds and is the one other reader of them.
KIND_OWNERS = {SRC / "catalog", SRC / "check"}


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def is_kind_literal(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value in KINDS
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(is_kind_literal(e) for e in node.elts)
    return False


def kind_comparisons(tree: ast.AST) -> Iterator[int]:
    """Lines comparing with a kind name (``op == "conv"``, ``in ("max_pool", ...)``) or indexing by one."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(is_kind_literal(n) for n in [node.left, *node.comparators]):
            yield node.lineno
        if isinstance(node, ast.Subscript) and is_kind_literal(node.slice):
            yield node.lineno


def test_no_kind_name_comparisons_outside_the_catalog() -> None:
    found = []
    for _, path in modules():
        if any(path == owner or owner in path.parents for owner in KIND_OWNERS):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [f"{path.relative_to(SRC)}:{line}" for line in kind_comparisons(tree)]
    assert not found, "ask the catalog's capability flags instead: " + ", ".join(found)


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """archsolve modules ``name`` imports anywhere: module level, inside functions and under ``if TYPE_CHECKING:``.

    A cycle through a function-level or TYPE_CHECKING import still ties the two modules together (one cannot
    be read, type-checked or moved without the other), so every import counts.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            base = f"{base}.{node.module}" if node.level and node.module else (node.module or base)
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found |= {target for target in targets if target in known and target != name}
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


#: Cycles the re-layout (issue 18, /work/wt/relayout) removes, each named by two modules in it: the fix search
#: and the per-axis report hold each other's values; Solution and RankResult render through report.py, which
#: imports both.  The re-layout empties this list.
KNOWN_CYCLES: list[tuple[str, str]] = []


def test_no_import_cycles() -> None:
    found = dict(modules())
    known = set(found)
    # A package's own __init__ importing its submodules is how a package is made, not a cycle.
    graph = {
        name: {t for t in imports(name, path, known) if not (path.name != "__init__.py" and name.startswith(t + "."))}
        for name, path in found.items()
    }
    # Every cycle is reported with the imports that close it, so one run shows all of them.
    found_cycles = [
        ", ".join(f"{a} -> {b}" for a in cycle for b in sorted(graph[a] & set(cycle)))
        for cycle in cycles(graph)
        if not any({one, two} <= set(cycle) for one, two in KNOWN_CYCLES)
    ]
    assert not found_cycles, "import cycles:\n" + "\n".join(found_cycles)


def test_the_cycle_finder_finds_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
