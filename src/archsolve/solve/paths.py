"""Designs in exact ascending order of an additive cost, under every global constraint.

A design is a path through the step tables: one choice per step, each starting
where the previous one ended.  When its cost is a sum of per-choice costs
(parameters, MACs, predicted seconds), the cheapest designs come out of a
best-first search whose bound is the exact cheapest completion from each
boundary state, computed backwards once (A* with a perfect heuristic for the
unconstrained problem):

* a partial design's key is its cost so far plus that bound, then the tie order
  of its choices so far, so complete designs leave the queue in ascending
  (cost, tie order) — a prefix sorts before its extensions;
* budgets (``max_params``, ``max_macs``) and the receptive-field range prune a
  partial design only when no completion can meet them (bounds from the same
  backward pass); ``same_recipe`` prunes a choice whose shared recipe differs
  from one already taken; every design that leaves is checked in full.

Costs are tuples compared lexicographically (``(params, macs)`` orders by
params, then MACs), added componentwise.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..problem.problem import Problem
from .choices import Choice, State, initial_state, prefix_cost, satisfies
from .deadline import Deadline

Cost = tuple[float, ...]
"""An additive cost, compared lexicographically."""


def _add(a: Cost, b: Cost) -> Cost:
    return tuple(x + y for x, y in zip(a, b, strict=True))


def _add_int(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(x + y for x, y in zip(a, b, strict=True))


class _Bounds:
    """Per boundary state: the cheapest completion, and the least and most each constraint can still add."""

    def __init__(
        self, problem: Problem, layers: Sequence[Sequence[Choice]], cost: Callable[[int, Choice], Cost]
    ) -> None:
        n = len(layers)
        self.cheapest: list[dict[State, Cost]] = [{} for _ in range(n + 1)]
        self.low: list[dict[State, tuple[int, ...]]] = [{} for _ in range(n + 1)]
        self.high: list[dict[State, tuple[int, ...]]] = [{} for _ in range(n + 1)]
        self.leaving: list[dict[State, list[tuple[Cost, Choice]]]] = [{} for _ in range(n)]
        costs = [[cost(i, c) for c in step] for i, step in enumerate(layers)]
        self.zero: Cost = tuple(0 for _ in next((c for step in costs for c in step), ()))
        width = 2 + (problem.ndim if problem.constraints.receptive_field is not None else 0)
        for state in {c.target for c in layers[-1]} if layers else set():
            self.cheapest[n][state] = self.zero
            self.low[n][state] = self.high[n][state] = (0,) * width
        for i in reversed(range(n)):
            for own, c in zip(costs[i], layers[i], strict=True):
                if c.target not in self.cheapest[i + 1]:
                    continue
                self.leaving[i].setdefault(c.source, []).append((own, c))
                total = _add(own, self.cheapest[i + 1][c.target])
                if c.source not in self.cheapest[i] or total < self.cheapest[i][c.source]:
                    self.cheapest[i][c.source] = total
                amounts = self.amounts(c)
                low = _add_int(amounts, self.low[i + 1][c.target])
                high = _add_int(amounts, self.high[i + 1][c.target])
                old_low, old_high = self.low[i].get(c.source), self.high[i].get(c.source)
                self.low[i][c.source] = low if old_low is None else tuple(map(min, low, old_low))
                self.high[i][c.source] = high if old_high is None else tuple(map(max, high, old_high))

    @staticmethod
    def amounts(c: Choice) -> tuple[int, ...]:
        """What the constrained sums read from one choice: params, MACs, receptive-field growth per axis."""
        return (c.params, c.macs, *c.rf_growth)


class PathSearch:
    """Iterates the valid designs over ``layers`` in ascending ``(cost, tie order)``, lazily and exactly.

    ``cost(step_index, choice)`` gives a choice's cost tuple; every design has the
    same tuple length.  Work is bounded by ``deadline``.
    """

    def __init__(
        self,
        problem: Problem,
        layers: Sequence[Sequence[Choice]],
        cost: Callable[[int, Choice], Cost],
        deadline: Deadline,
    ) -> None:
        self.problem = problem
        self.layers = layers
        self.deadline = deadline
        self.bounds = _Bounds(problem, layers, cost)
        rules = problem.constraints
        base_p, base_m = prefix_cost(problem)
        self.base = (base_p, base_m, *((1,) * problem.ndim if rules.receptive_field is not None else ()))
        inf = float("inf")
        low_rf, high_rf = rules.receptive_field or (-inf, inf)
        rf_axes = problem.ndim if rules.receptive_field is not None else 0
        self.most = (
            rules.max_params if rules.max_params is not None else inf,
            rules.max_macs if rules.max_macs is not None else inf,
            *((high_rf,) * rf_axes),
        )
        self.least = (-inf, -inf, *((low_rf,) * rf_axes))

    def _feasible(self, index: int, state: State, spent: tuple[int, ...]) -> bool:
        low, high = self.bounds.low[index][state], self.bounds.high[index][state]
        return all(
            s + lo <= most and s + hi >= least
            for s, lo, hi, most, least in zip(spent, low, high, self.most, self.least, strict=True)
        )

    def __iter__(self) -> Iterator[tuple[Cost, tuple[Choice, ...]]]:
        n = len(self.layers)
        start = initial_state(self.problem)
        if n == 0 or start not in self.bounds.cheapest[0]:
            return
        if not self._feasible(0, start, self.base):
            return
        same = self.problem.constraints.same_recipe
        ticket = itertools.count()  # never compared twice: keeps heap entries apart without comparing choices
        # (bound, tie order so far, ticket, cost so far, spent, shared recipe, picks)
        heap: list[tuple[Cost, tuple[Any, ...], int, Cost, tuple[int, ...], tuple[int, ...], tuple[Choice, ...]]] = [
            (self.bounds.cheapest[0][start], (), next(ticket), self.bounds.zero, self.base, (), ())
        ]
        while heap:
            self.deadline.check("searching designs")
            _, order, _, cost, spent, shared, picks = heapq.heappop(heap)
            i = len(picks)
            if i == n:
                if satisfies(self.problem, picks):
                    yield cost, picks
                continue
            state = picks[-1].target if picks else start
            for own, c in self.bounds.leaving[i].get(state, ()):
                if same and c.shared and shared and c.shared != shared:
                    continue
                now = _add_int(spent, _Bounds.amounts(c))
                if not self._feasible(i + 1, c.target, now):
                    continue
                so_far = _add(cost, own)
                bound = _add(so_far, self.bounds.cheapest[i + 1][c.target])
                entry = (bound, (*order, c.order), next(ticket), so_far, now, shared or c.shared, (*picks, c))
                heapq.heappush(heap, entry)


def cheapest(
    problem: Problem,
    layers: Sequence[Sequence[Choice]],
    cost: Callable[[int, Choice], Cost],
    limit: int,
    deadline: Deadline,
) -> list[tuple[Cost, tuple[Choice, ...]]]:
    """The ``limit`` cheapest valid designs, in ascending (cost, tie order)."""
    return list(itertools.islice(PathSearch(problem, layers, cost, deadline), limit))


def objective_cost(problem: Problem) -> Callable[[int, Choice], Cost]:
    """The solver's order as a cost: the objective, then the other metric (params and MACs)."""
    if problem.objective == "macs":
        return lambda _, c: (c.macs, c.params)
    return lambda _, c: (c.params, c.macs)


#: Designs the folded listing may draw from the search for one list (memory and time beyond the deadline).
FETCH_CAP = 20_000

Picks = tuple[Choice, ...]


def distinct(
    designs: Iterator[tuple[Cost, Picks]], top: int, fetch: int = FETCH_CAP
) -> list[tuple[Picks, list[Picks]]]:
    """The first ``top`` *ideas* of an ordered stream of designs, each with the designs folded under it.

    A design that differs from an already-listed idea in a single step (one choice) is folded under
    the first such idea instead of being listed; anything else is the next idea.  Folding is
    presentation: it reads the stream in order and drops nothing from counts.  At most ``fetch``
    designs are read (the deadline bounds the search that yields them), so a stream whose first
    ``fetch`` designs hold fewer than ``top`` ideas lists fewer.  One-step designs all differ in
    their one step: they are never folded.
    """
    ideas: list[tuple[Picks, list[Picks]]] = []
    # (step, the other steps' choices) -> the idea with those: a design matching one key differs from it
    # in that step only.  Choices of one solve are shared objects, so identity names them.
    under: dict[tuple[int, tuple[int, ...]], int] = {}
    for picks in itertools.islice((p for _, p in designs), fetch):
        ids = tuple(id(c) for c in picks)
        keys = [(i, ids[:i] + ids[i + 1 :]) for i in range(len(ids))]
        home = min((under[k] for k in keys if k in under), default=None) if len(ids) > 1 else None
        if home is not None:
            ideas[home][1].append(picks)
            continue
        if len(ideas) == top:
            break
        for k in keys:
            under.setdefault(k, len(ideas))
        ideas.append((picks, []))
    return ideas
