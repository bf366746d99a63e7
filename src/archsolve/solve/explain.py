"""Why a problem has no solution: the step or the constraints that conflict, and what would work.

Local failures (a step no recipe can do) are found by walking the trajectory;
global ones (budgets, receptive field, same_recipe) by a Z3 unsat core over
the solver's named constraints.  Suggestions come from the op catalog: the
nearest sizes the ranges reach, and the smallest widening of one range that
makes the step possible.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations

from ..catalog import KINDS
from ..catalog.conv import ConvTranspose
from ..core.recipe import Ranges
from ..core.sizes import sizes_text
from ..errors import InfeasibleError, SolverTimeout
from ..problem.problem import Problem
from .choices import RULES, Choice, State, allowed, initial_state, prefix_cost
from .count import reachable
from .crossing import across, local_filter
from .deadline import Deadline
from .hints import hint
from .model import constraints, grouped, selectors
from .relax import global_relaxations, local_conflict
from .tables import Tables, TooLarge, op_recipes, recipe_chains


def explain(problem: Problem, tables: Tables, layers: list[list[Choice]], deadline: Deadline) -> InfeasibleError:
    """Why no design exists: the first step that cannot be done, or the conflicting constraints.

    ``tables`` are the problem's step tables and ``layers`` the reachable choices the solver found.
    """
    frontier: set[State] = {initial_state(problem)}
    for index in range(problem.n_steps):
        every: list[Choice] = [c for s in sorted(frontier) for c in tables.choices(index, s)]
        kept = [c for c in every if allowed(c, problem)]
        if not every:
            lines = _size_conflict(problem, index, frontier, deadline) or _no_recipe(problem, index, frontier, deadline)
            lines += _hint(problem, index, frontier, deadline)
            return InfeasibleError(f"no design: {problem.step_label(index)} cannot be done", lines)
        if not kept:
            lines = _ruled_out(problem, every) + _hint(problem, index, frontier, deadline)
            return InfeasibleError(f"no design: {problem.step_label(index)} is ruled out", lines)
        keeps = local_filter(problem, index)
        wanted = [c for c in kept if keeps is None or keeps(c)]
        if not wanted:
            lines = local_conflict(problem, index, kept)
            return InfeasibleError(f"no design: {problem.step_label(index)} is ruled out by constraints.where", lines)
        frontier = {c.target for c in wanted}
    if across(problem) and (not layers or any(not step for step in layers)):
        layers = reachable(problem, tables, narrow=False)  # the cross-step atoms emptied it: the core says which
    if not layers or any(not step for step in layers):
        return InfeasibleError(
            "no design: the free sizes never lead to the last size",
            [
                f"sizes reachable after the last step: {sizes_text({s[0] for s in frontier})}; "
                f"wanted {problem.sizes[-1]}",
                *_hint(problem, None, set(), deadline),
            ],
        )
    return _global(problem, layers, deadline)


def _hint(problem: Problem, index: int | None, frontier: set[State], deadline: Deadline) -> list[str]:
    """The smallest change that re-solves (:mod:`.hints`), as a line; none when none is found in time."""
    found = hint(problem, index, sorted({state[0] for state in frontier}), deadline)
    return [f"it becomes possible with {found}"] if found else []


def _size_conflict(problem: Problem, index: int, frontier: set[State], deadline: Deadline) -> list[str]:
    """For designs serving several input sizes: which two inputs no single layer can serve, and why."""
    spec = problem.sizes[index + 1]
    if problem.inputs < 2 or spec.fixed is None or len(frontier) != 1:
        return []
    alternatives, ranges, ndim = problem.steps[index], problem.ranges[index], problem.ndim
    ((size, *_),) = frontier
    per = len(size) // problem.inputs

    def serving(x: int) -> set[object]:
        """Layers (alike on every axis) taking input x's size to its target; for a transposed conv,
        its recipe up to output_padding, which a fixed value or output_size= at run time supplies."""
        found: set[object] = set()
        for a in range(per):
            n, want = size[x * per + a], spec.fixed[x * per + a]  # type: ignore[index]
            here: set[object] = set()
            for ops in alternatives:
                kind = KINDS[ops[0]]
                if len(ops) == 1 and kind.takes_output_size:
                    assert isinstance(kind, ConvTranspose)  # the kinds that take output_size= have its size_range
                    here |= {
                        (ops, r._replace(output_padding=0))
                        for r, _ in op_recipes(ops[0], n, ranges, ndim, want + ranges.stride[1])
                        if (span := kind.size_range(r, n)) is not None and span[0] <= want <= span[1]
                    }
                else:
                    here |= {
                        (ops, recipes)
                        for recipes, sizes in recipe_chains(ops, ranges, n, ndim, want, deadline)
                        if sizes[-1] == want
                    }
            found = here if a == 0 else found & here
        return found

    sets = [serving(x) for x in range(problem.inputs)]
    text = [f"{_entry(size, x, per)} → {_entry(spec.fixed, x, per)}" for x in range(problem.inputs)]
    for x in range(problem.inputs):
        if not sets[x]:
            return [f"input {x + 1} needs {text[x]}, which no recipe within the ranges gives"]
    for x, y in combinations(range(problem.inputs), 2):
        if not sets[x] & sets[y]:
            return [
                f"inputs {x + 1} and {y + 1} conflict: {text[x]} and {text[y]} need different layers",
                "no fixed output_padding serves both, and output_size= at run time accepts only sizes up to "
                "stride - 1 above the output_padding=0 size",
            ]
    return ["no single layer serves every input size at once: " + "; ".join(text)]


def _entry(sizes: tuple[int, ...], x: int, per: int) -> str:
    return "x".join(map(str, sizes[x * per : (x + 1) * per]))


def _no_recipe(problem: Problem, index: int, frontier: set[State], deadline: Deadline) -> list[str]:
    ranges, spec = problem.ranges[index], problem.sizes[index + 1]
    lines = []
    for size, *_ in sorted(frontier)[:3]:
        reach = [_reach(problem, index, ranges, n, deadline) for n in size]
        if spec.fixed is not None:
            near = [_nearest(r, want) for r, want in zip(reach, spec.fixed, strict=True)]
            lines.append(
                f"from {'x'.join(map(str, size))} the ranges reach no {spec}; nearest reachable: "
                + " / ".join(f"axis {a}: {', '.join(map(str, n)) or 'none'}" for a, n in enumerate(near))
            )
        else:
            lines.append(f"from {'x'.join(map(str, size))} no size within {spec} is reachable")
    return lines


def _nearest(reach: set[int], want: int, count: int = 2) -> list[int]:
    below = sorted((n for n in reach if n < want), reverse=True)[:count]
    above = sorted(n for n in reach if n > want)[:count]
    return sorted(below + above)


def _reach(problem: Problem, index: int, ranges: Ranges, n: int, deadline: Deadline) -> set[int]:
    """Sizes step ``index`` can reach from ``n`` on one axis, over its alternative kinds (up to twice
    the target's size: the nearest misses are what a hint needs)."""
    spec = problem.sizes[index + 1]
    high = 2 * max(spec.fixed) + 8 if spec.fixed is not None else spec.high
    try:
        return {
            chain[1][-1]
            for ops in problem.steps[index]
            for chain in recipe_chains(ops, ranges, n, problem.ndim, high, deadline)
        }
    except TooLarge:
        return set()  # a widened trial range too large to list: not a hint worth giving


def _ruled_out(problem: Problem, every: list[Choice]) -> list[str]:
    rules = problem.constraints
    lines = [f"{len(every)} recipe(s) reach the size, but:"]
    for flag, rule, what in RULES:
        hit = sum(getattr(c, flag) for c in every)
        if hit and getattr(rules, rule):
            lines.append(f"{hit} {_plural_verb(what)} (constraints.{rule} = true)")
    sample = every[0].key
    lines.append(f"for example {sample}")
    return lines


def _plural_verb(what: str) -> str:
    """A rule's reason said of several recipes: "leaves pixels ..." becomes "leave pixels ..."."""
    verb, _, rest = what.partition(" ")
    plural = {"has": "have", "gives": "give"}.get(verb, verb[:-1] if verb.endswith("s") else verb)
    return f"{plural} {rest}"


def _global(problem: Problem, layers: list[list[Choice]], deadline: Deadline) -> InfeasibleError:
    import z3

    groups = grouped(problem, layers)
    named, _, _ = constraints(problem, groups, selectors(groups))
    s = z3.Solver()
    s.set("timeout", deadline.remaining_ms())
    labels = {}
    for i, (name, formula) in enumerate(named.items()):
        flag = z3.Bool(f"c{i}")
        labels[str(flag)] = name
        s.assert_and_track(formula, flag)
    result = s.check()
    if result == z3.unknown:
        raise deadline.timeout("explaining")
    # The links from picks to field values hold by construction: never the constraint to relax.
    core = sorted(labels[str(flag)] for flag in s.unsat_core() if labels[str(flag)] != "where values")
    core = core if result == z3.unsat else []
    lines = [f"conflicting: {', '.join(core)}"] if core else []
    lines += global_relaxations(problem, named, core, deadline)
    lines += _bounds(problem, deadline)
    return InfeasibleError("no design satisfies every constraint", lines)


def _bounds(problem: Problem, deadline: Deadline) -> list[str]:
    """The best each budget can be on its own, so the user knows how far to relax it."""
    rules = problem.constraints
    lines: list[str] = []
    free = replace(problem, constraints=replace(rules, max_params=None, max_macs=None, receptive_field=None))
    try:
        layers = reachable(free, Tables(free, deadline))
    except SolverTimeout:
        return lines
    if any(not step for step in layers):
        return lines
    base_p, base_m = prefix_cost(problem)  # an encoder's fixed steps count against the budgets too
    min_params = base_p + sum(min(c.params for c in step) for step in layers)
    min_macs = base_m + sum(min(c.macs for c in step) for step in layers)
    if rules.max_params is not None and min_params > rules.max_params:
        lines.append(f"the smallest design has {min_params:,} params (max_params = {rules.max_params:,})")
    if rules.max_macs is not None and min_macs > rules.max_macs:
        lines.append(f"the cheapest design has {min_macs:,} MACs (max_macs = {rules.max_macs:,})")
    if rules.max_params is not None and rules.max_macs is not None and not lines:
        lines.append("each budget alone can be met, but not both at once")
    return lines
