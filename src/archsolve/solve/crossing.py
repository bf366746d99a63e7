"""``where`` constraints over the step tables: one-step filters, and exact counting across steps.

An atom (:mod:`.where`) that reads one step is a filter on that step's table
(:func:`keeps`, applied while the tables are read, so the DP stays the fast
path).  The others are counted here by dynamic programming over an *extended*
boundary state: besides the sizes and channels, the running budgets, and the
residual of every atom begun but not finished — the atom with the known steps'
values folded in (``kernel[3] == 4`` once step 1 chose kernel 4; a running sum
for ``sum(params[0:3]) <= ...``).  Adjacent-step and running-sum constraints
keep that state small; when it grows past :data:`STATE_CAP` the count goes to
Z3 enumeration instead (:func:`.model.count_enumerated`).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from ..catalog import KINDS
from ..problem.problem import Problem
from ..problem.where import Atom, Term, WhereItem, holds, leaf_order, leaves
from .choices import Choice, State, initial_state, prefix_cost
from .deadline import Deadline

#: Extended states (boundary state x running values x residual atoms) the DP may hold at one boundary.
STATE_CAP = 200_000

Env = dict[Term, int | None]


class TooWide(Exception):
    """The extended state grew past :data:`STATE_CAP`: the caller counts by Z3 enumeration."""


def atoms(problem: Problem) -> list[Atom]:
    return [atom for item in problem.constraints.where for atom in item.atoms]


def local_atoms(problem: Problem, index: int) -> list[Atom]:
    """Atoms that read only step ``index`` (atoms that read no step at all belong to the first)."""
    return [a for a in atoms(problem) if a.steps == {index} or (not a.steps and index == 0)]


def across(problem: Problem) -> list[Atom]:
    """Atoms that read two or more steps: solved across the tables."""
    return [a for a in atoms(problem) if len(a.steps) > 1]


def leaf_value(choice: Choice, leaf: Term) -> int | None:
    """A leaf's value in one choice; None when the step's layers lack the field (see docs/problems.md)."""
    _, _, layer, name, axis = leaf
    if name == "channels":
        return choice.step.out_shape[0]
    if name == "in_channels":
        return choice.source[1]
    if name == "params":
        return choice.params
    if name == "macs":
        return choice.macs
    if name == "size":
        return choice.target[0][axis]
    ops = [layer_.op for layer_ in choice.step.layers if not layer_.kind.is_norm]
    positions = range(len(ops)) if layer is None else [layer] if -len(ops) <= layer < len(ops) else []
    for j in positions:
        kind = KINDS[ops[j]]
        field = next((f for f in kind.search_fields if kind.range_of.get(f, f) == name), None)
        if field is not None:
            return int(getattr(choice.recipes[j][axis], field))
    return None


def env_of(choice: Choice, needed: Sequence[Term]) -> Env:
    return {leaf: leaf_value(choice, leaf) for leaf in needed}


def local_filter(problem: Problem, index: int) -> Callable[[Choice], bool] | None:
    """Whether a choice of step ``index`` meets every ``where`` atom that reads only that step;
    None when no atom does."""
    found = local_atoms(problem, index)
    if not found:
        return None
    needed = sorted(set().union(*(leaves(a.term) for a in found)), key=leaf_order)

    def keeps(choice: Choice) -> bool:
        env = env_of(choice, needed)
        return all(holds(a.term, env) is True for a in found)

    return keeps


def needed_leaves(problem: Problem) -> list[list[Term]]:
    """Per step, the leaves the cross-step atoms read there (what a choice must carry into the model)."""
    out: list[set[Term]] = [set() for _ in range(problem.n_steps)]
    for atom in across(problem):
        for leaf in leaves(atom.term):
            out[leaf[1]].add(leaf)
    return [sorted(s, key=leaf_order) for s in out]


def values_key(problem: Problem) -> list[Callable[[Choice], tuple[int | None, ...]]]:
    """Per step, what a choice's values for the cross-step atoms are (for folding and grouping)."""
    return [functools.partial(_values, tuple(needed)) for needed in needed_leaves(problem)]


def _values(needed: tuple[Term, ...], choice: Choice) -> tuple[int | None, ...]:
    return tuple(leaf_value(choice, leaf) for leaf in needed)


Extra = tuple[int, int, tuple[int, ...], tuple[int, ...], tuple[tuple[int, Term], ...]]
"""The extended state beyond the boundary: params, MACs, receptive field, shared recipe, residual atoms."""


def count_across(problem: Problem, layers: list[list[Choice]], deadline: Deadline) -> int:
    """The exact number of designs over ``layers`` meeting every global constraint and cross-step atom.

    Raises :class:`TooWide` when the extended state outgrows :data:`STATE_CAP`.
    """
    return across_dp(problem, layers, deadline)[0]


def across_dp(problem: Problem, layers: list[list[Choice]], deadline: Deadline) -> tuple[int, list[list[Choice]]]:
    """The count, and per step the choices on some design that meets everything (what Z3 then needs).

    A forward pass over extended states counts; a backward pass from the extended states that end
    a valid design keeps the transitions, hence the choices, that lie on one.
    """
    rules = problem.constraints
    track_p, track_m = rules.max_params is not None, rules.max_macs is not None
    rf = rules.receptive_field
    found = across(problem)
    starting: dict[int, list[tuple[int, Term]]] = defaultdict(list)
    for k, atom in enumerate(found):
        starting[min(atom.steps)].append((k, atom.term))
    needed = needed_leaves(problem)
    base_p, base_m = prefix_cost(problem)
    start: Extra = (base_p, base_m, (1,) * problem.ndim if rf else (), (), ())
    dp: dict[tuple[State, Extra], int] = {(initial_state(problem), start): 1}
    # Per step: (extended state before, group key) -> extended state after; and each key's members.
    moves: list[list[tuple[tuple[State, Extra], tuple[Any, ...], tuple[State, Extra]]]] = []
    members: list[dict[tuple[Any, ...], list[Choice]]] = []
    for index, step in enumerate(layers):
        deadline.report("counting", index + 1, len(layers))
        grouped: dict[State, dict[tuple[Any, ...], list[Any]]] = defaultdict(dict)
        belong: dict[tuple[Any, ...], list[Choice]] = defaultdict(list)
        for c in step:
            env = env_of(c, needed[index])
            key = (
                c.target,
                c.params if track_p else 0,
                c.macs if track_m else 0,
                c.rf_growth,
                c.shared if rules.same_recipe else (),
                tuple(env.items()),
            )
            slot = grouped[c.source].setdefault(key, [0, env])
            slot[0] += 1
            belong[(c.source, *key)].append(c)
        members.append(belong)
        nxt: dict[tuple[State, Extra], int] = defaultdict(int)
        taken: list[tuple[tuple[State, Extra], tuple[Any, ...], tuple[State, Extra]]] = []
        for (state, (p0, m0, r0, shared0, pending)), n in dp.items():
            for key, (mult, env) in grouped.get(state, {}).items():
                target, p, m, growth, shared, _ = key
                p1, m1 = p0 + p, m0 + m
                if (track_p and p1 > rules.max_params) or (track_m and m1 > rules.max_macs):  # type: ignore[operator]
                    continue
                if shared and shared0 and shared != shared0:
                    continue
                rest = _advance(pending, starting.get(index, ()), env)
                if rest is None:
                    continue
                r1 = tuple(a + b for a, b in zip(r0, growth, strict=True)) if rf else ()
                after = (target, (p1, m1, r1, shared0 or shared, rest))
                nxt[after] += n * mult
                taken.append(((state, (p0, m0, r0, shared0, pending)), (state, *key), after))
            deadline.check("counting")
        if len(nxt) > STATE_CAP or len(taken) > 4 * STATE_CAP:
            raise TooWide
        moves.append(taken)
        dp = nxt
    total = 0
    alive: set[tuple[State, Extra]] = set()
    for end, n in dp.items():
        _, (_, _, r, _, pending) = end
        assert not pending  # every atom's last step has been chosen
        if rf is None or all(rf[0] <= v <= rf[1] for v in r):
            total += n
            alive.add(end)
    kept: list[list[Choice]] = [[] for _ in layers]
    for index in reversed(range(len(layers))):
        keys = {key for before, key, after in moves[index] if after in alive}
        alive = {before for before, _, after in moves[index] if after in alive}
        chosen = {id(c) for key in keys for c in members[index][key]}
        kept[index] = [c for c in layers[index] if id(c) in chosen]  # in the table's order
    return total, kept


def _advance(
    pending: tuple[tuple[int, Term], ...], new: Sequence[tuple[int, Term]], env: Env
) -> tuple[tuple[int, Term], ...] | None:
    """The residual atoms after one step's values; None when one of them fails."""
    out: list[tuple[int, Term]] = []
    for k, term in (*pending, *new):
        left = holds(term, env)
        if left is False:
            return None
        if left is not True:
            out.append((k, left))
    return tuple(out)


def forward(
    problem: Problem,
    choices: Callable[[int, State], list[Choice]],
    keep: Callable[[int, Choice], bool],
    deadline: Deadline,
) -> list[list[Choice]]:
    """Per step, the kept choices reachable from the input with the cross-step atoms still holding.

    Like the plain forward pass, but each boundary state carries the residual atoms that reach it,
    so a step's table is built only from states some design can be in ("channels halve" leaves one
    channel count per boundary instead of every one).  Past :data:`STATE_CAP` residual states it
    stops narrowing and goes on as the plain pass (the DP then counts exactly all the same).
    """
    starting: dict[int, list[tuple[int, Term]]] = defaultdict(list)
    for k, atom in enumerate(across(problem)):
        starting[min(atom.steps)].append((k, atom.term))
    needed = needed_leaves(problem)
    frontier: dict[State, set[tuple[tuple[int, Term], ...]] | None] = {initial_state(problem): {()}}
    out: list[list[Choice]] = []
    for index in range(problem.n_steps):
        deadline.report("tables", index + 1, problem.n_steps)
        step: list[Choice] = []
        nxt: dict[State, set[tuple[tuple[int, Term], ...]] | None] = {}
        wide = sum(len(r) if r is not None else 0 for r in frontier.values()) > STATE_CAP
        for state in sorted(frontier):
            pending = frontier[state]
            for c in choices(index, state):
                if not keep(index, c):
                    continue
                if pending is None or wide:
                    step.append(c)
                    nxt[c.target] = None
                    continue
                env = env_of(c, needed[index])
                reached = {r for p in pending if (r := _advance(p, starting.get(index, ()), env)) is not None}
                if reached:
                    step.append(c)
                    if nxt.get(c.target, set()) is not None:
                        nxt.setdefault(c.target, set()).update(reached)  # type: ignore[union-attr]
            deadline.check("building tables")
        out.append(step)
        frontier = nxt
    return out


def broken_items(problem: Problem, picks: Sequence[Choice]) -> list[WhereItem]:
    """The ``where`` items one whole design breaks (a check of a given design, not how solving works)."""
    out = []
    for item in problem.constraints.where:
        env: Env = {leaf: leaf_value(picks[leaf[1]], leaf) for atom in item.atoms for leaf in leaves(atom.term)}
        if not all(holds(a.term, env) is True for a in item.atoms):
            out.append(item)
    return out


def design_holds(problem: Problem, picks: Sequence[Choice]) -> bool:
    """Whether one whole design meets every ``where`` item."""
    return not broken_items(problem, picks)
