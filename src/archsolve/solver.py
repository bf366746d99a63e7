"""Solve a whole trajectory: exact counts, the best designs by Z3, and explanations when there are none.

The op catalog turns every step into a finite table of choices (recipes that
PyTorch accepts and that land on the step's sizes).  Over those tables:

* **counting** is dynamic programming over boundary states, never enumeration,
  so tens of millions of designs cost milliseconds;
* **the best designs** come from a *linear* Z3 ``Optimize`` model in which each
  step picks a *group* of choices with equal cost — one solver call usually
  yields thousands of tied designs, expanded lazily in a stable order;
* **infeasible problems** are explained from tracked assertions (Z3 unsat
  cores) plus the nearest sizes and ranges that would work.

Tie order for designs of equal objective: the other metric (MACs after params,
or params after MACs), then step by step: the step's op kinds in catalog order,
its recipes compared as (kernel, stride, padding, output_padding, dilation,
ceil_mode) per op and axis, then the output channels.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .design import Design, Step, make_step
from .errors import InfeasibleError, InputError, SolverTimeout
from .ops import KIND_ORDER, KINDS, ConvTranspose
from .problem import Problem
from .recipe import AxisRecipe, Ranges

State = tuple[tuple[int, ...], int, tuple[int, ...]]
"""A boundary between steps: (spatial size per axis, channels, jump per axis for receptive fields)."""

Row = tuple[tuple[tuple[AxisRecipe, ...], ...], tuple[tuple[int, ...], ...], bool]
"""One way through a step before channels: recipes [op][axis], sizes [boundary][entry], run-time sized."""


@dataclass(frozen=True)
class Choice:
    """One concrete way to do one step, with every number the solver needs about it."""

    step: Step
    recipes: tuple[tuple[AxisRecipe, ...], ...]  # per op of the step, per axis
    source: State
    target: State
    params: int
    macs: int
    rf_growth: tuple[int, ...]  # receptive-field growth per axis (at the source's jump)
    checkerboard: bool
    gaps: bool
    shared: tuple[int, ...]  # (kernel, stride, padding) per axis of the first weighted op, for same_recipe

    @functools.cached_property
    def order(self) -> tuple[Any, ...]:
        kinds = tuple(KIND_ORDER[layer.op] for layer in self.step.layers)
        fields = [
            (r.kernel, r.stride, r.padding, r.output_padding, r.dilation, r.ceil_mode)
            for per_op in self.recipes
            for r in per_op
        ]
        return (kinds, *fields, self.target[1])

    @functools.cached_property
    def key(self) -> str:
        """Stable text naming this choice (per-step categorical value for the ranker)."""
        parts = []
        for layer in self.step.layers:
            if layer.op in ("batch_norm", "instance_norm", "group_norm"):
                continue
            fields = ",".join(f"{k}={v}" for k, v in layer.recipe().items())
            parts.append(f"{layer.op}({fields})->{layer.out_shape[0]}")
        return " + ".join(parts)


@dataclass(frozen=True)
class Group:
    """Choices of one step that are interchangeable for every global constraint and the objective."""

    source: State
    target: State
    params: int
    macs: int
    rf_growth: tuple[int, ...]
    shared: tuple[int, ...]
    members: tuple[Choice, ...]


@dataclass(frozen=True)
class Candidate:
    """One valid design with its numbers (a row of ``solve`` output)."""

    design: Design
    choices: tuple[Choice, ...]

    @property
    def params(self) -> int:
        """The whole design's parameters (an encoder included), trainable and not."""
        return self.design.params.total

    @property
    def macs(self) -> int:
        return self.design.macs


@dataclass
class Solution:
    """What solving a problem gives: the exact count, the best designs, and the per-step tables."""

    problem: Problem
    count: int
    candidates: list[Candidate]
    tables: list[list[Choice]] = field(repr=False)
    seconds: float = 0.0

    def design(self, picks: Sequence[Choice]) -> Design:
        return make_design(self.problem, picks)


# ------------------------------------------------------------------------------------------------
# Step tables
# ------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8192)
def _chains(
    ops: tuple[str, ...], ranges: Ranges, n: int, ndim: int
) -> tuple[tuple[tuple[AxisRecipe, ...], tuple[int, ...]], ...]:
    """Every recipe sequence through a (possibly composite) step on one axis, with the sizes it passes."""
    chains: list[tuple[tuple[AxisRecipe, ...], tuple[int, ...]]] = [((), (n,))]
    for op in ops:
        kind = KINDS[op]
        chains = [
            ((*recipes, r), (*sizes, out))
            for recipes, sizes in chains
            for r, out in kind.recipes(sizes[-1], ranges, ndim)
        ]
    return tuple(chains)


class Tables:
    """Builds each step's choices from a boundary state, through the op catalog only."""

    def __init__(self, problem: Problem, deadline: float) -> None:
        self.problem = problem
        self.deadline = deadline
        self.track_rf = problem.constraints.receptive_field is not None
        self._cache: dict[tuple[int, State], list[Choice]] = {}
        self.dropped: Counter[tuple[int, str]] = Counter()

    def choices(self, index: int, source: State) -> list[Choice]:
        key = (index, source)
        if key not in self._cache:
            self._cache[key] = self._build(index, source)
        return self._cache[key]

    def _build(self, index: int, source: State) -> list[Choice]:
        """Every valid choice for step ``index`` from ``source``, over the step's alternative kinds."""
        problem = self.problem
        out: list[Choice] = []
        last = index == problem.n_steps - 1
        for ops in problem.steps[index]:
            for recipes, sizes, runtime in self._rows(index, ops, source[0]):
                if time.monotonic() > self.deadline:
                    raise SolverTimeout(
                        f"no answer within the time limit of {problem.time_limit:g} s (building tables)"
                    )
                for c_out in problem.channel_options(index + 1):
                    choice = self._choice(index, source, ops, recipes, sizes, c_out, last, runtime)
                    if choice is not None:
                        out.append(choice)
        out.sort(key=lambda c: c.order)
        return out

    def _rows(self, index: int, ops: tuple[str, ...], size: tuple[int, ...]) -> list[Row]:
        """Recipe rows of one alternative (a kind or composite) landing on the step's target sizes.

        A state's sizes hold every declared input's axes (entry ``e`` is axis
        ``e % ndim``); one recipe must be valid for all of them.
        """
        problem = self.problem
        ranges, ndim = problem.ranges[index], problem.ndim
        spec = problem.sizes[index + 1]
        entries: list[dict[tuple[AxisRecipe, ...], tuple[int, ...]]] = []
        for e, n in enumerate(size):
            allowed = {}
            for chain, passed in _chains(ops, ranges, n, ndim):
                reached = passed[-1]
                if (spec.fixed[e] == reached) if spec.fixed is not None else (spec.low <= reached <= spec.high):
                    allowed[chain] = passed
            entries.append(allowed)
        rows: list[Row] = []
        if problem.per_axis:
            per_axis = [sorted(set.intersection(*(set(d) for d in entries[a::ndim]))) for a in range(ndim)]
            for keys in itertools.product(*per_axis):
                recipes = tuple(tuple(keys[a][j] for a in range(ndim)) for j in range(len(ops)))
                sizes = tuple(tuple(d[keys[e % ndim]][j] for e, d in enumerate(entries)) for j in range(len(ops) + 1))
                rows.append((recipes, sizes, False))
        else:
            for key in sorted(set.intersection(*(set(d) for d in entries))):
                recipes = tuple((key[j],) * ndim for j in range(len(ops)))
                sizes = tuple(tuple(d[key][j] for d in entries) for j in range(len(ops) + 1))
                rows.append((recipes, sizes, False))
            if problem.inputs > 1 and ops == ("conv_transpose",) and spec.fixed is not None:
                rows += self._runtime_rows(ranges, size, spec.fixed, {r[0] for r, _, _ in rows})
        return rows

    def _runtime_rows(
        self, ranges: Ranges, size: tuple[int, ...], target: tuple[int, ...], fixed: set[tuple[AxisRecipe, ...]]
    ) -> list[Row]:
        """Transposed convs that reach every input's size only with ``output_size=`` at run time.

        Torch then picks output_padding per call, accepting sizes from the op=0 size up to stride − 1
        more (whatever the dilation): the catalog's :meth:`ConvTranspose.size_range` says which.
        """
        kind = KINDS["conv_transpose"]
        ndim = self.problem.ndim
        assert isinstance(kind, ConvTranspose)
        bases = {r._replace(output_padding=0) for r, _ in kind.recipes(size[0], ranges, ndim)}
        rows: list[Row] = []
        for base in sorted(bases):
            spans = [kind.size_range(base, n) for n in size]
            if any(s is None or not s[0] <= want <= s[1] for s, want in zip(spans, target, strict=True)):
                continue
            low = spans[0][0] if spans[0] is not None else 0
            reference = base._replace(output_padding=target[0] - low)
            if (reference,) in fixed:
                continue  # one fixed output_padding already serves every size
            rows.append((((reference,) * ndim,), (tuple(size), tuple(target)), True))
        return rows

    def _choice(
        self,
        index: int,
        source: State,
        ops: tuple[str, ...],
        recipes: tuple[tuple[AxisRecipe, ...], ...],
        sizes: tuple[tuple[int, ...], ...],
        c_out: int,
        last: bool,
        runtime: bool = False,
    ) -> Choice | None:
        problem = self.problem
        size, channels, jump = source
        ndim = problem.ndim
        merge = problem.merge(index)
        try:
            step = make_step(
                ops,
                (channels, *size[:ndim]),
                recipes,
                c_out,
                problem.build,
                index == 0 and not problem.prefix,
                last,
                merge,
            )
            if runtime:
                layers = (replace(step.layers[0], size_from=problem.size_from[index]), *step.layers[1:])
                step = replace(step, layers=layers)
            merged = step.out_shape[0]
            if merge is not None:
                skip = problem.skip_shapes[index]
                assert skip is not None
                merged = merge.out_shape(step.out_shape, skip)[0]
        except InputError:
            return None
        if step.out_shape[0] != c_out:
            return None
        checker = any(KINDS[op].checkerboard(r) for op, per in zip(ops, recipes, strict=True) for r in per)
        gaps = any(
            KINDS[op].gaps(per[e % ndim], n)
            for j, (op, per) in enumerate(zip(ops, recipes, strict=True))
            for e, n in enumerate(sizes[j])
        )
        growth, new_jump = self._receptive(ops, recipes, jump)
        shared = self._shared(ops, recipes) if problem.constraints.same_recipe else ()
        target: State = (tuple(sizes[-1]), merged, new_jump)
        return Choice(
            step=step,
            recipes=recipes,
            source=source,
            target=target,
            params=step.params.total,
            macs=step.macs,
            rf_growth=growth,
            checkerboard=checker,
            gaps=gaps,
            shared=shared,
        )

    def _receptive(
        self, ops: tuple[str, ...], recipes: tuple[tuple[AxisRecipe, ...], ...], jump: tuple[int, ...]
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        if not self.track_rf:
            return (), ()
        growth = [0] * len(jump)
        current = list(jump)
        for op, per in zip(ops, recipes, strict=True):
            for axis, r in enumerate(per):
                rule = KINDS[op].receptive(r)
                if rule is None:
                    raise InputError(
                        f"constraints.receptive_field: {op} has no receptive-field rule; "
                        "use it only with conv, pool and shape-keeping steps"
                    )
                extent, stride = rule
                growth[axis] += extent * current[axis]
                current[axis] *= stride
        return tuple(growth), tuple(current)

    @staticmethod
    def _shared(ops: tuple[str, ...], recipes: tuple[tuple[AxisRecipe, ...], ...]) -> tuple[int, ...]:
        for op, per in zip(ops, recipes, strict=True):
            if KINDS[op].has_weights:
                return tuple(v for r in per for v in (r.kernel, r.stride, r.padding))
        return ()


def prefix_cost(problem: Problem) -> tuple[int, int]:
    """Parameters and MACs of the fixed steps before the solved ones (budgets cover the whole design)."""
    return sum(s.params.total for s in problem.prefix), sum(s.macs for s in problem.prefix)


def make_design(problem: Problem, picks: Sequence[Choice]) -> Design:
    """The whole design: the problem's fixed steps (an encoder), then one choice per solved step."""
    steps = (*problem.prefix, *(c.step for c in picks))
    return Design(problem.name, steps, problem.build, problem.sequence)


def _allowed(choice: Choice, problem: Problem) -> bool:
    rules = problem.constraints
    return not ((rules.no_gaps and choice.gaps) or (rules.no_checkerboard and choice.checkerboard))


# ------------------------------------------------------------------------------------------------
# The solver
# ------------------------------------------------------------------------------------------------


def initial_state(problem: Problem) -> State:
    first = problem.sizes[0].fixed
    assert first is not None and problem.channels[0] is not None
    jump = (1,) * problem.ndim if problem.constraints.receptive_field is not None else ()
    return (first, problem.channels[0], jump)


class Solver:
    """Counts, optimises and explains one problem."""

    def __init__(self, problem: Problem, time_limit: float | None = None) -> None:
        self.problem = problem
        self.time_limit = time_limit if time_limit is not None else problem.time_limit
        self.started = time.monotonic()
        self.tables = Tables(problem, self.started + self.time_limit)
        self.layers: list[list[Choice]] = []  # valid choices per step, reachable from the input and to the end

    # --- reachability ----------------------------------------------------------------------------
    def _reachable(self) -> list[list[Choice]]:
        problem = self.problem
        frontier = {initial_state(problem)}
        forward: list[list[Choice]] = []
        for index in range(problem.n_steps):
            step_choices = [
                c for state in sorted(frontier) for c in self.tables.choices(index, state) if _allowed(c, problem)
            ]
            forward.append(step_choices)
            frontier = {c.target for c in step_choices}
        # Backward pruning: keep only choices that lead to the final boundary.
        alive = {c.target for c in forward[-1]} if forward else set()
        pruned: list[list[Choice]] = [[] for _ in forward]
        for index in reversed(range(len(forward))):
            pruned[index] = [c for c in forward[index] if c.target in alive]
            alive = {c.source for c in pruned[index]}
        return pruned

    # --- counting ---------------------------------------------------------------------------------
    def count(self, layers: list[list[Choice]]) -> int:
        if self.problem.constraints.same_recipe:
            keys = {c.shared for step in layers for c in step if c.shared}
            return sum(self._count(self._restrict(layers, key)) for key in sorted(keys))
        return self._count(layers)

    @staticmethod
    def _restrict(layers: list[list[Choice]], key: tuple[int, ...]) -> list[list[Choice]]:
        return [[c for c in step if not c.shared or c.shared == key] for step in layers]

    def _count(self, layers: list[list[Choice]]) -> int:
        rules = self.problem.constraints
        track_p, track_m = rules.max_params is not None, rules.max_macs is not None
        rf = rules.receptive_field
        # dp[state][(params, macs, rf)] = number of partial designs
        base_p, base_m = prefix_cost(self.problem)
        dp: dict[State, Counter[tuple[int, int, tuple[int, ...]]]] = {
            initial_state(self.problem): Counter({(base_p, base_m, (1,) * self.problem.ndim if rf else ()): 1})
        }
        for step in layers:
            grouped: dict[State, Counter[tuple[State, int, int, tuple[int, ...]]]] = defaultdict(Counter)
            for c in step:
                grouped[c.source][(c.target, c.params if track_p else 0, c.macs if track_m else 0, c.rf_growth)] += 1
            nxt: dict[State, Counter[tuple[int, int, tuple[int, ...]]]] = defaultdict(Counter)
            for state, partial in dp.items():
                for (target, p, m, growth), mult in grouped.get(state, {}).items():
                    bucket = nxt[target]
                    for (p0, m0, r0), n in partial.items():
                        p1, m1 = p0 + p, m0 + m
                        if (track_p and p1 > rules.max_params) or (track_m and m1 > rules.max_macs):  # type: ignore[operator]
                            continue
                        r1 = tuple(a + b for a, b in zip(r0, growth, strict=True)) if rf else ()
                        bucket[(p1, m1, r1)] += n * mult
                if time.monotonic() > self.tables.deadline:
                    raise SolverTimeout(f"no answer within the time limit of {self.time_limit:g} s (counting)")
            dp = nxt
        total = 0
        for partial in dp.values():
            for (_, _, r), n in partial.items():
                if rf is None or all(rf[0] <= v <= rf[1] for v in r):
                    total += n
        return total

    # --- solving --------------------------------------------------------------------------------
    def solve(self, top: int = 20) -> Solution:
        problem = self.problem
        if problem.sizes[0].fixed is None or problem.sizes[-1].fixed is None:
            raise InputError("sizes: the first and last sizes must be fixed")
        layers = self._reachable()
        self.layers = layers
        if any(not step for step in layers):
            raise explain(problem, self)
        count = self.count(layers)
        if count == 0:
            raise explain(problem, self)
        candidates = self.best(layers, top) if top > 0 else []
        return Solution(problem, count, candidates, layers, time.monotonic() - self.started)

    def best(self, layers: list[list[Choice]], top: int) -> list[Candidate]:
        """The ``top`` designs by objective, from a linear Z3 model over groups of equal-cost choices."""
        groups = [_groups(step) for step in layers]
        model = _GroupModel(self.problem, groups, self.remaining())
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
            total += _multiplicity(combo)
            last = value
        streams = [_expand(value, combo) for value, combo in picked]
        best = list(itertools.islice(heapq.merge(*streams), top))
        return [Candidate(make_design(self.problem, picks), picks) for _, _, picks in best]

    def remaining(self) -> float:
        return max(self.tables.deadline - time.monotonic(), 0.001)


def _groups(step: list[Choice]) -> list[Group]:
    buckets: dict[tuple[Any, ...], list[Choice]] = defaultdict(list)
    for c in step:
        buckets[(c.source, c.target, c.params, c.macs, c.rf_growth, c.shared)].append(c)
    return [
        Group(source, target, params, macs, growth, shared, tuple(sorted(members, key=lambda c: c.order)))
        for (source, target, params, macs, growth, shared), members in sorted(
            buckets.items(), key=lambda item: (item[0][2], item[0][3], item[1][0].order)
        )
    ]


def _multiplicity(combo: Sequence[Group]) -> int:
    total = 1
    for g in combo:
        total *= len(g.members)
    return total


def _expand(
    value: tuple[int, int], combo: Sequence[Group]
) -> Iterator[tuple[tuple[int, int], tuple[Any, ...], tuple[Choice, ...]]]:
    """Designs of one group combination in tie order (itertools.product over sorted members is lexicographic)."""
    for picks in itertools.product(*(g.members for g in combo)):
        yield value, tuple(c.order for c in picks), picks


class _GroupModel:
    """Linear Z3 model: each step picks one group; states chain; budgets and rules are sums over steps.

    Picks are Boolean selectors with an exactly-one pseudo-Boolean constraint per
    step; ``Optimize`` minimises the objective, then the other metric, and each
    answer is blocked so the next call gives the next best combination.  On the
    DCGAN problem this is about 3x faster per answer than integer pick variables
    with table lookups (measured while choosing the encoding).
    """

    def __init__(self, problem: Problem, groups: list[list[Group]], timeout: float) -> None:
        import z3

        self.z3 = z3
        self.problem = problem
        self.groups = groups
        self.opt = z3.Optimize()
        self.opt.set("timeout", max(int(timeout * 1000), 1))
        self.select = selectors(groups)
        named, params, macs = constraints(problem, groups, self.select)
        for constraint in named.values():
            self.opt.add(constraint)
        total_p, total_m = z3.Sum(params), z3.Sum(macs)
        self.first, self.second = (total_p, total_m) if problem.objective == "params" else (total_m, total_p)
        # One weighted objective equals the lexicographic order (the weight exceeds any second value)
        # and costs Z3 less than two prioritised objectives.
        weight = 1 + sum(max((g.params + g.macs for g in step), default=0) for step in groups)
        self.opt.minimize(self.first * weight + self.second)

    def next(self) -> tuple[tuple[int, int], tuple[Group, ...]] | None:
        """The best combination not returned yet, or None when none is left."""
        z3 = self.z3
        try:
            result = self.opt.check()
        except z3.Z3Exception as exc:
            raise SolverTimeout(f"z3 stopped: {exc}") from exc
        if result == z3.unknown:
            raise SolverTimeout(
                f"no answer within the time limit of {self.problem.time_limit:g} s "
                f"(z3: {self.opt.reason_unknown()}); raise search.time_limit or --time-limit"
            )
        if result == z3.unsat:
            return None
        model = self.opt.model()
        picks = [
            next(j for j, b in enumerate(step) if z3.is_true(model.eval(b, model_completion=True)))
            for step in self.select
        ]
        value = (model.eval(self.first).as_long(), model.eval(self.second).as_long())
        self.opt.add(z3.Or([z3.Not(step[j]) for step, j in zip(self.select, picks, strict=True)]))
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
    return named, params, macs


def solve(problem: Problem, top: int = 20, time_limit: float | None = None) -> Solution:
    """Count every valid design of ``problem`` and return the ``top`` best; InfeasibleError explains none."""
    return Solver(problem, time_limit).solve(top)


# ------------------------------------------------------------------------------------------------
# Explanations
# ------------------------------------------------------------------------------------------------


def explain(problem: Problem, solver: Solver) -> InfeasibleError:
    """Why no design exists: the first step that cannot be done, or the conflicting constraints."""
    from .explain import explain as _explain

    return _explain(problem, solver)


def satisfies(problem: Problem, picks: Sequence[Choice]) -> bool:
    """Whether concrete choices chain from the input and meet every global constraint."""
    rules = problem.constraints
    state = initial_state(problem)
    for choice in picks:
        if choice.source != state:
            return False
        state = choice.target
    base_p, base_m = prefix_cost(problem)
    if rules.max_params is not None and base_p + sum(c.params for c in picks) > rules.max_params:
        return False
    if rules.max_macs is not None and base_m + sum(c.macs for c in picks) > rules.max_macs:
        return False
    if rules.receptive_field is not None:
        low, high = rules.receptive_field
        for axis in range(problem.ndim):
            field_ = 1 + sum(c.rf_growth[axis] for c in picks)
            if not low <= field_ <= high:
                return False
    if rules.same_recipe:
        shared = {c.shared for c in picks if c.shared}
        if len(shared) > 1:
            return False
    return True


class SolutionSpace:
    """The solver's valid designs as a search space for the ranker (:class:`archsolve.space.SearchSpace`).

    Step ``i`` offers every valid choice of the solved table by its key; a pick
    tuple is a design when its choices chain and meet the global constraints.
    As a candidate source it supplies the best designs by the objective.
    """

    def __init__(self, solution: Solution) -> None:
        self.solution = solution
        self.problem = solution.problem
        self._keys: list[list[str]] = []
        self._by_key: list[dict[str, list[Choice]]] = []
        for step in solution.tables:
            by_key: dict[str, list[Choice]] = defaultdict(list)
            for choice in step:
                by_key[choice.key].append(choice)
            self._by_key.append(by_key)
            self._keys.append(sorted(by_key, key=lambda k, b=by_key: b[k][0].order))  # type: ignore[misc]
        self._index = [{key: i for i, key in enumerate(keys)} for keys in self._keys]

    @property
    def name(self) -> str:
        return self.problem.name

    def step_options(self) -> Sequence[Sequence[str]]:
        return self._keys

    def choices(self, picks: Sequence[int]) -> tuple[Choice, ...] | None:
        state = initial_state(self.problem)
        chosen: list[Choice] = []
        for keys, by_key, pick in zip(self._keys, self._by_key, picks, strict=True):
            match = next((c for c in by_key[keys[pick]] if c.source == state), None)
            if match is None:
                return None
            chosen.append(match)
            state = match.target
        return tuple(chosen) if satisfies(self.problem, chosen) else None

    def design(self, picks: Sequence[int]) -> Design | None:
        chosen = self.choices(picks)
        return None if chosen is None else make_design(self.problem, chosen)

    def picks(self, choices: Sequence[Choice]) -> tuple[int, ...]:
        return tuple(index[c.key] for index, c in zip(self._index, choices, strict=True))

    def candidates(self, limit: int, seed: int = 0) -> Iterator[Sequence[int]]:
        """Valid designs for the ranker's latency model: the solved best by the objective, then a
        uniform random sample of the rest (weights are completion counts, as in counting), each once.

        Sampling instead of asking Z3 for thousands of next-best designs keeps this at milliseconds.
        """
        seen: set[tuple[int, ...]] = set()
        for candidate in self.solution.candidates:
            picks = self.picks(candidate.choices)
            seen.add(picks)
            yield picks
        tables = self.solution.tables
        ways: list[dict[State, int]] = [defaultdict(int) for _ in range(len(tables) + 1)]
        for choice in tables[-1]:
            ways[-1][choice.target] = 1
        for i in reversed(range(len(tables))):
            for choice in tables[i]:
                ways[i][choice.source] += ways[i + 1][choice.target]
        leaving: list[dict[State, list[Choice]]] = [defaultdict(list) for _ in tables]
        for i, step in enumerate(tables):
            for choice in step:
                if ways[i + 1][choice.target]:
                    leaving[i][choice.source].append(choice)
        rng = random.Random(seed)
        for _ in range(limit * 4):
            if len(seen) >= limit:
                return
            state, picked = initial_state(self.problem), []
            for i in range(len(tables)):
                options = leaving[i][state]
                choice = rng.choices(options, weights=[ways[i + 1][c.target] for c in options])[0]
                picked.append(choice)
                state = choice.target
            picks = self.picks(picked)
            if picks not in seen and satisfies(self.problem, picked):
                seen.add(picks)
                yield picks
