"""The nearest relaxation of ``where`` items that makes an infeasible problem solvable.

For an item that empties one step's table: what the step's choices offer for the
fields the item reads, and which item dropped alone leaves choices.  For items
in a Z3 unsat core: whether dropping one alone leaves designs, and for a
comparison with a number on one side, the bound that would hold (Z3
``Optimize`` of the other side under every other constraint).
"""

from __future__ import annotations

from typing import Any

from ..problem.problem import Problem
from ..problem.where import Term, WhereItem, holds, leaf_order, leaves
from .choices import Choice
from .crossing import env_of, local_atoms, needed_leaves
from .deadline import Deadline
from .model import z3_term

FLIP = {"<=": ">=", "<": ">", ">=": "<=", ">": "<"}


def local_conflict(problem: Problem, index: int, kept: list[Choice]) -> list[str]:
    """Why the ``where`` items on step ``index`` leave none of its ``kept`` choices, and what would."""
    atoms = local_atoms(problem, index)
    items = [item for item in problem.constraints.where if any(a.item == item.index for a in atoms)]
    fails: dict[int, list[Choice]] = {item.index: [] for item in items}
    for c in kept:
        for item in items:
            mine = [a for a in atoms if a.item == item.index]
            env = env_of(c, sorted(set().union(*(leaves(a.term) for a in mine)), key=leaf_order))
            if not all(holds(a.term, env) is True for a in mine):
                fails[item.index].append(c)
    lines = []
    for item in items:
        lines.append(f"{item.label} rules out {len(fails[item.index])} of the step's {len(kept)} choices")
    read = sorted(set().union(*(leaves(a.term) for a in atoms)), key=leaf_order)
    if not problem.per_axis:  # every axis alike: one axis tells
        read = [leaf for leaf in read if leaf[4] in (None, 0)]
    for leaf in read[:6]:
        values = sorted({v for c in kept if (v := env_of(c, [leaf])[leaf]) is not None})
        shown = ", ".join(map(str, values[:12])) + (", ..." if len(values) > 12 else "")
        text = _leaf_text(leaf, problem.ndim if problem.per_axis else 1)
        lines.append(f"the step's choices have {text} in {shown or 'none (no such field)'}")
    for item in items:
        others = [i for i in items if i is not item]
        left = [c for c in kept if all(c not in fails[o.index] for o in others)]
        if left:
            lines.append(f"dropping {item.label} leaves {len(left)} choice(s), e.g. {left[0].key}")
    return lines


def _leaf_text(leaf: Term, ndim: int) -> str:
    _, step, layer, name, axis = leaf
    index = f"{step}" if layer is None else f"{step}, {layer}"
    text = f"{name}[{index}]"
    return f"axis({text}, {axis})" if axis is not None and ndim > 1 else text


def global_relaxations(problem: Problem, named: dict[str, Any], core: list[str], deadline: Deadline) -> list[str]:
    """For each ``where`` item in the unsat core: does dropping it alone solve, and which bound would."""
    import z3

    lines: list[str] = []
    by_label = {item.label: item for item in problem.constraints.where}
    for label in core:
        item = by_label.get(label)
        if item is None:
            continue
        rest = [f for name, f in named.items() if name != label]
        bound = _bound(problem, item, rest, deadline)
        if bound is not None:
            lines.append(f"nearest that solves: {bound}")
            continue
        solver = z3.Solver()
        solver.set("timeout", deadline.remaining_ms())
        solver.add(*rest)
        if solver.check() == z3.sat:
            lines.append(f"dropping {item.label} leaves designs")
    return lines


def _bound(problem: Problem, item: WhereItem, rest: list[Any], deadline: Deadline) -> str | None:
    """``lhs <= N`` (or >=, <, >) with a number N on one side, on every element the item means: the
    bound the rest of the constraints allow (the least lhs for <=, the greatest for >=)."""
    found = [_side(atom.term) for atom in item.atoms]
    if not found or any(f is None for f in found) or len({(f[0], f[2]) for f in found if f}) != 1:
        return None
    reached = [_optimum(problem, left, op in ("<=", "<"), rest, deadline) for op, left, _ in found if left]  # type: ignore[misc]
    if any(n is None for n in reached):
        return None
    op, _, limit = found[0]  # type: ignore[misc]
    low = op in ("<=", "<")
    n = max(reached) if low else min(reached)  # type: ignore[type-var]
    assert n is not None
    bound = {"<=": n, "<": n + 1, ">=": n, ">": n - 1}[op]
    return f"{item.label} with the bound {bound:,} instead of {limit:,} (the best the designs reach is {n:,})"


def _side(term: Term) -> tuple[str, Term, int] | None:
    """(op, the side that is not a number, the number) for a comparison with one number side."""
    if term[0] not in FLIP:
        return None
    op, left, right = term
    if left[0] == "c" and right[0] != "c":  # 100 >= sum(params) reads as sum(params) <= 100
        op, left, right = FLIP[op], right, left
    if right[0] != "c" or left[0] == "c" or isinstance(right[1], bool):
        return None
    return op, left, right[1]


def _optimum(problem: Problem, left: Term, low: bool, rest: list[Any], deadline: Deadline) -> int | None:
    import z3

    value: dict[Term, Any] = {}
    present: dict[Term, Any] = {}
    for i, needed in enumerate(needed_leaves(problem)):
        for k, leaf in enumerate(needed):
            value[leaf] = z3.Int(f"v{i}_{k}")  # the names the model gave them: the same Z3 constants
            present[leaf] = z3.Bool(f"has{i}_{k}")
    if not all(leaf in value for leaf in leaves(left)):
        return None
    guards: list[Any] = []
    expr = z3_term(left, value, present, guards)
    opt = z3.Optimize()
    opt.set("timeout", deadline.remaining_ms())
    opt.add(*rest, *guards)
    goal = opt.minimize(expr) if low else opt.maximize(expr)
    if opt.check() != z3.sat:
        return None
    reached = opt.lower(goal) if low else opt.upper(goal)
    return reached.as_long() if z3.is_int_value(reached) else None
