"""The best designs by Z3: a linear ``Optimize`` model over groups of equal-cost choices.

Each step picks a *group* of choices alike in everything the constraints and
the objective read, so one solver call usually yields many tied designs,
expanded lazily in a stable order.  The solver uses it when ``where``
constraints tie steps together (one-step ones are table filters, and without
cross-step ones a best-first search over the tables, :mod:`.paths`, is exact
and faster); it also counts by enumeration when the counting DP's extended
state grows too wide.  The named constraints are shared with the explanation,
whose unsat core names the ones that conflict.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from ..errors import SolverTimeout
from ..problem.problem import Problem
from ..problem.where import Term
from .choices import Candidate, Choice, Group, group_choices, initial_state, make_design, prefix_cost
from .crossing import across, needed_leaves, values_key
from .deadline import Deadline

#: Megabytes Z3 may hold (a solve stays under 1.5 GB in all).
MEMORY_MB = 800


def grouped(problem: Problem, layers: list[list[Choice]]) -> list[list[Group]]:
    """Each step's choices in groups alike for the budgets, the objective and the cross-step atoms."""
    keys = values_key(problem)
    return [group_choices(step, keys[i]) for i, step in enumerate(layers)]


def best(problem: Problem, layers: list[list[Choice]], top: int, deadline: Deadline) -> list[Candidate]:
    """The ``top`` designs by objective (then the other metric, then tie order), from Z3 ``Optimize``."""
    groups = grouped(problem, layers)
    return _best(problem, GroupModel(problem, groups, deadline, top), top)


def count_enumerated(problem: Problem, layers: list[list[Choice]], deadline: Deadline) -> tuple[int, bool]:
    """The number of designs by Z3 enumeration over groups (each model blocked once found), and whether
    it is exact: when the deadline stops the enumeration the number is a lower bound."""
    import z3

    z3.set_param("memory_max_size", MEMORY_MB)
    groups = [_coarse(problem, step, i) for i, step in enumerate(layers)]
    select = selectors(groups)
    named, _, _ = constraints(problem, groups, select)
    solver = z3.Solver()
    solver.add(*named.values())
    total = 0
    while True:
        try:
            deadline.check("counting by enumeration")
        except SolverTimeout:
            return total, False
        solver.set("timeout", deadline.remaining_ms())
        result = solver.check()
        if result == z3.unknown:
            return total, False
        if result == z3.unsat:
            return total, True
        model = solver.model()
        picks = [
            next(j for j, b in enumerate(step) if z3.is_true(model.eval(b, model_completion=True))) for step in select
        ]
        total += multiplicity([g[j] for g, j in zip(groups, picks, strict=True)])
        solver.add(z3.Or([z3.Not(step[j]) for step, j in zip(select, picks, strict=True)]))


def _coarse(problem: Problem, step: list[Choice], index: int) -> list[Group]:
    """Groups for counting: params and MACs matter only under a budget, so equal-cost is not needed."""
    rules = problem.constraints
    keys = values_key(problem)[index]
    buckets: dict[tuple[Any, ...], list[Choice]] = {}
    for c in step:
        key = (
            c.source,
            c.target,
            c.params if rules.max_params is not None else 0,
            c.macs if rules.max_macs is not None else 0,
            c.rf_growth,
            c.shared,
            keys(c),
        )
        buckets.setdefault(key, []).append(c)
    return [Group(k[0], k[1], k[2], k[3], k[4], k[5], tuple(m), k[6]) for k, m in buckets.items()]


def _best(problem: Problem, model: Combinations, top: int) -> list[Candidate]:
    picked: list[tuple[tuple[int, int], tuple[Group, ...]]] = []
    total, last = 0, None
    while True:
        found = model.next()
        if found is None:
            break
        value, combo = found
        if total >= top and last is not None and value > last:
            break
        picked.append((value, combo))
        total += multiplicity(combo)
        last = value
    streams = [expand(value, combo) for value, combo in picked]
    chosen = list(itertools.islice(heapq.merge(*streams), top))
    return [Candidate(make_design(problem, picks), picks) for _, _, picks in chosen]


def multiplicity(combo: Sequence[Group]) -> int:
    """How many designs one combination of groups stands for."""
    total = 1
    for g in combo:
        total *= g.size
    return total


def expand(
    value: tuple[int, int], combo: Sequence[Group]
) -> Iterator[tuple[tuple[int, int], tuple[Any, ...], tuple[Choice, ...]]]:
    """Designs of one group combination in tie order (itertools.product over sorted members is lexicographic)."""
    for picks in itertools.product(*(g.members for g in combo)):
        yield value, tuple(c.order for c in picks), picks


class Combinations(Protocol):
    """A source of group combinations in nondecreasing (objective, other metric) order."""

    def next(self) -> tuple[tuple[int, int], tuple[Group, ...]] | None: ...


class GroupModel:
    """Linear Z3 model: each step picks one group; states chain; budgets and rules are sums over steps.

    Picks are Boolean selectors with an exactly-one pseudo-Boolean constraint per
    step; ``Optimize`` minimises the objective, then the other metric, and each
    answer is blocked so the next call gives the next best combination.  On the
    DCGAN problem this is about 3x faster per answer than integer pick variables
    with table lookups (measured while choosing the encoding).
    """

    def __init__(self, problem: Problem, groups: list[list[Group]], deadline: Deadline, top: int = 1) -> None:
        import z3

        # Z3 stops cleanly (an "unknown" answer) rather than let the process grow past the memory bound.
        z3.set_param("memory_max_size", MEMORY_MB)
        self.found, self.top = 0, top
        self.z3 = z3
        self.problem = problem
        self.groups = groups
        self.deadline = deadline
        self.opt = z3.Optimize()
        self.select = selectors(groups)
        named, params, macs = constraints(problem, groups, self.select)
        for constraint in named.values():
            self.opt.add(constraint)
        total_p, total_m = z3.Sum(params), z3.Sum(macs)
        # The solver's order (paths.objective_cost): MACs first only when minimising MACs.
        self.first, self.second = (total_m, total_p) if problem.objective == "macs" else (total_p, total_m)
        # One weighted objective equals the lexicographic order (the weight exceeds any second value)
        # and costs Z3 less than two prioritised objectives.
        weight = 1 + sum(max((g.params + g.macs for g in step), default=0) for step in groups)
        self.opt.minimize(self.first * weight + self.second)

    def next(self) -> tuple[tuple[int, int], tuple[Group, ...]] | None:
        """The best combination not returned yet, or None when none is left."""
        z3 = self.z3
        self.deadline.report("optimising", self.found, self.top)
        self.opt.set("timeout", self.deadline.remaining_ms())
        try:
            result = self.opt.check()
        except z3.Z3Exception as exc:
            raise self.deadline.timeout(f"z3 stopped: {exc}") from exc
        if result == z3.unknown:
            raise self.deadline.timeout(f"optimising; z3: {self.opt.reason_unknown()}")
        if result == z3.unsat:
            return None
        model = self.opt.model()
        picks = [
            next(j for j, b in enumerate(step) if z3.is_true(model.eval(b, model_completion=True)))
            for step in self.select
        ]
        value = (model.eval(self.first).as_long(), model.eval(self.second).as_long())
        self.opt.add(z3.Or([z3.Not(step[j]) for step, j in zip(self.select, picks, strict=True)]))
        self.found += 1
        return value, tuple(g[j] for g, j in zip(self.groups, picks, strict=True))


def selectors(groups: list[list[Group]]) -> list[list[Any]]:
    """One Boolean per (step, group): the step picks that group."""
    import z3

    return [[z3.Bool(f"pick{i}_{j}") for j in range(len(step))] for i, step in enumerate(groups)]


def constraints(
    problem: Problem, groups: list[list[Group]], select: list[list[Any]]
) -> tuple[dict[str, Any], list[Any], list[Any]]:
    """Named Z3 constraints over per-step group selectors (names are what unsat cores report).

    Returns the constraints and the per-step parameter and MAC terms.
    """
    import z3

    named: dict[str, Any] = {}
    rules = problem.constraints
    states = sorted({g.source for step in groups for g in step} | {g.target for step in groups for g in step})
    state_id = {s: i for i, s in enumerate(states)}
    boundary = [z3.Int(f"s{i}") for i in range(len(groups) + 1)]
    named["input"] = boundary[0] == state_id.get(initial_state(problem), -1)
    params, macs = [], []
    rf_terms: list[list[Any]] = [[] for _ in range(problem.ndim)]
    shared_ids: dict[tuple[int, ...], int] = {}
    anchor = z3.Int("shared")
    same: list[Any] = []
    for i, (step, sel) in enumerate(zip(groups, select, strict=True)):
        # Fixed sizes and channels leave one state per boundary: nothing to link, and Z3 is faster without.
        chained = len({(g.source, g.target) for g in step}) > 1 or len(states) > len(groups) + 1
        links = (
            [
                z3.Implies(b, z3.And(boundary[i] == state_id[g.source], boundary[i + 1] == state_id[g.target]))
                for b, g in zip(sel, step, strict=True)
            ]
            if chained
            else []
        )
        one = z3.PbEq([(b, 1) for b in sel], 1) if sel else z3.BoolVal(False)
        named[problem.step_label(i)] = z3.And(one, *links)
        params.append(z3.Sum([z3.If(b, g.params, 0) for b, g in zip(sel, step, strict=True)]) if sel else 0)
        macs.append(z3.Sum([z3.If(b, g.macs, 0) for b, g in zip(sel, step, strict=True)]) if sel else 0)
        if rules.receptive_field is not None:
            for axis in range(problem.ndim):
                rf_terms[axis].append(z3.Sum([z3.If(b, g.rf_growth[axis], 0) for b, g in zip(sel, step, strict=True)]))
        if rules.same_recipe:
            for b, g in zip(sel, step, strict=True):
                if g.shared:
                    same.append(z3.Implies(b, anchor == shared_ids.setdefault(g.shared, len(shared_ids))))
    base_p, base_m = prefix_cost(problem)
    if rules.max_params is not None:
        named[f"constraints.max_params = {rules.max_params:,}"] = base_p + z3.Sum(params) <= rules.max_params
    if rules.max_macs is not None:
        named[f"constraints.max_macs = {rules.max_macs:,}"] = base_m + z3.Sum(macs) <= rules.max_macs
    if rules.receptive_field is not None:
        low, high = rules.receptive_field
        for axis in range(problem.ndim):
            total = 1 + z3.Sum(rf_terms[axis])
            named[f"constraints.receptive_field >= {low} (axis {axis})"] = total >= low
            named[f"constraints.receptive_field <= {high} (axis {axis})"] = total <= high
    if same:
        named["constraints.same_recipe"] = z3.And(same)
    named.update(where_constraints(problem, groups, select))
    return named, params, macs


def where_constraints(problem: Problem, groups: list[list[Group]], select: list[list[Any]]) -> dict[str, Any]:
    """The cross-step ``where`` atoms over the group selectors, one named constraint per ``where`` item.

    Each leaf (a step's field on an axis) is an integer the picked group fixes, with a Boolean saying
    whether the step's layers have that field; an atom holds only where its leaves exist and its
    divisors are not zero (the language's rule, :mod:`.where`).
    """
    import z3

    found = across(problem)
    if not found:
        return {}
    needed = needed_leaves(problem)
    value: dict[Term, Any] = {}
    present: dict[Term, Any] = {}
    links: list[Any] = []
    for i, (step, sel) in enumerate(zip(groups, select, strict=True)):
        for k, leaf in enumerate(needed[i]):
            value[leaf] = z3.Int(f"v{i}_{k}")
            present[leaf] = z3.Bool(f"has{i}_{k}")
            for b, g in zip(sel, step, strict=True):
                v = g.values[k]
                holds = z3.Not(present[leaf]) if v is None else z3.And(present[leaf], value[leaf] == v)
                links.append(z3.Implies(b, holds))
    by_item: dict[int, list[Any]] = {}
    for atom in found:
        guards: list[Any] = []
        formula = z3_term(atom.term, value, present, guards)
        by_item.setdefault(atom.item, []).append(z3.And(*guards, formula))
    named = {"where values": z3.And(links)} if links else {}
    for item in problem.constraints.where:
        if item.index in by_item:
            named[item.label] = z3.And(by_item[item.index])
    return named


def z3_term(term: Term, value: dict[Term, Any], present: dict[Term, Any], guards: list[Any]) -> Any:
    """A term as a Z3 expression with Python's integer semantics; ``guards`` gathers what must hold for
    it to be defined (leaves present, divisors non-zero)."""
    import z3

    op = term[0]
    if op == "c":
        return z3.BoolVal(term[1]) if isinstance(term[1], bool) else z3.IntVal(term[1])
    if op == "v":
        guards.append(present[term])
        return value[term]
    if op == "sum":
        return z3.Sum([z3.IntVal(term[1]), *(z3_term(t, value, present, guards) for t in term[2])])
    args = [z3_term(t, value, present, guards) for t in term[1:]]
    if op == "neg":
        return -args[0]
    if op == "*":
        return args[0] * args[1]
    if op in ("//", "%"):
        a, b = args
        guards.append(b != 0)
        # Z3's division is Euclidean; for a positive divisor that is floor division, and Python's
        # a // b equals (-a) // (-b) for a negative one.
        q = z3.If(b > 0, a / b, (-a) / (-b))
        return q if op == "//" else a - b * q
    if op == "min":
        return z3.If(args[0] <= args[1], args[0], args[1])
    if op == "max":
        return z3.If(args[0] >= args[1], args[0], args[1])
    if op == "b2i":
        return z3.If(args[0], 1, 0)
    if op == "not":
        return z3.Not(args[0])
    if op == "and":
        return z3.And(args[0], args[1])
    if op == "or":
        return z3.Or(args[0], args[1])
    a, b = args
    return {"==": a == b, "!=": a != b, "<=": a <= b, ">=": a >= b, "<": a < b, ">": a > b}[op]
