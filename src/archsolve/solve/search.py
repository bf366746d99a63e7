"""The best group combinations without Z3: best-first search over the layered graph of boundary states.

Each step's groups are edges between boundary states with an additive cost
(the objective, then the other metric, as one weighted integer exactly as the
Z3 model uses).  A backward pass gives every state the cheapest completion,
an exact lower bound, so a best-first search pops complete combinations in
nondecreasing cost: the same order :class:`~archsolve.solve.model.GroupModel`
yields, in microseconds per answer instead of a Z3 call.  Budgets prune partial
paths whose cheapest completion already breaks them.

The search serves problems whose only global constraints are budgets; the
receptive field and ``same_recipe`` go to Z3.  When budgets bind so that the
search pops too many dead ends it gives up and Z3 takes over.
"""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict

from ..problem import Problem
from .choices import Group, State, prefix_cost
from .deadline import Deadline

#: Partial paths the search may expand or hold before handing the problem to Z3.
POP_CAP = 200_000
HEAP_CAP = 1_000_000

Path = tuple[Group, "Path"] | None
"""A partial combination as a linked list, newest group first (shared tails cost nothing)."""


class GiveUp(Exception):
    """The search would take longer than Z3: the caller falls back to the Z3 model."""


def applies(problem: Problem) -> bool:
    """Whether budgets are the only global constraints (what the search can prune exactly) and the
    objective is one the groups carry (params or MACs)."""
    rules = problem.constraints
    return rules.receptive_field is None and not rules.same_recipe and problem.objective in ("params", "macs")


class BestFirst:
    """Yields group combinations in nondecreasing (objective, other metric), like ``GroupModel.next``."""

    def __init__(self, problem: Problem, groups: list[list[Group]], deadline: Deadline) -> None:
        self.groups = groups
        self.deadline = deadline
        self.params_first = problem.objective == "params"
        self.weight = 1 + sum(max((g.params + g.macs for g in step), default=0) for step in groups)
        rules = problem.constraints
        base_p, base_m = prefix_cost(problem)
        self.room_p = None if rules.max_params is None else rules.max_params - base_p
        self.room_m = None if rules.max_macs is None else rules.max_macs - base_m
        self.leaving: list[dict[State, list[Group]]] = []
        for step in groups:
            by_source: dict[State, list[Group]] = defaultdict(list)
            for g in step:
                by_source[g.source].append(g)
            self.leaving.append(by_source)
        self._bounds()
        self.heap: list[tuple[int, int, int, State, int, int, int, Path]] = []
        self.tick = itertools.count()
        self.pops = 0
        for state in self.rest[0]:
            self._push(self.rest[0][state], 0, state, 0, 0, 0, None)

    def _key(self, g: Group) -> int:
        first, second = (g.params, g.macs) if self.params_first else (g.macs, g.params)
        return first * self.weight + second

    def _bounds(self) -> None:
        """Per boundary and state: the cheapest completion's cost, and the fewest params and MACs left."""
        n = len(self.groups)
        ends = {g.target for g in self.groups[-1]} if self.groups else set()
        self.rest: list[dict[State, int]] = [{} for _ in range(n + 1)]
        self.min_p: list[dict[State, int]] = [{} for _ in range(n + 1)]
        self.min_m: list[dict[State, int]] = [{} for _ in range(n + 1)]
        for end in ends:
            self.rest[n][end] = self.min_p[n][end] = self.min_m[n][end] = 0
        for i in reversed(range(n)):
            for state, out in self.leaving[i].items():
                live = [g for g in out if g.target in self.rest[i + 1]]
                if not live:
                    continue
                self.rest[i][state] = min(self._key(g) + self.rest[i + 1][g.target] for g in live)
                self.min_p[i][state] = min(g.params + self.min_p[i + 1][g.target] for g in live)
                self.min_m[i][state] = min(g.macs + self.min_m[i + 1][g.target] for g in live)
            self.deadline.check("optimising")

    def _push(self, f: int, i: int, state: State, cost: int, p: int, m: int, path: Path) -> None:
        if len(self.heap) >= HEAP_CAP:
            raise GiveUp
        heapq.heappush(self.heap, (f, next(self.tick), i, state, cost, p, m, path))

    def next(self) -> tuple[tuple[int, int], tuple[Group, ...]] | None:
        """The best combination not returned yet, or None when none is left."""
        n = len(self.groups)
        while self.heap:
            _, _, i, state, cost, p, m, path = heapq.heappop(self.heap)
            self.pops += 1
            if self.pops % 4096 == 0:
                self.deadline.check("optimising")
            if self.pops > POP_CAP:
                raise GiveUp
            if i == n:
                combo = _unwind(path)
                params, macs = sum(g.params for g in combo), sum(g.macs for g in combo)
                return ((params, macs) if self.params_first else (macs, params)), combo
            rest, min_p, min_m = self.rest[i + 1], self.min_p[i + 1], self.min_m[i + 1]
            for g in self.leaving[i].get(state, ()):
                after = rest.get(g.target)
                if after is None:
                    continue
                p2, m2 = p + g.params, m + g.macs
                if self.room_p is not None and p2 + min_p[g.target] > self.room_p:
                    continue
                if self.room_m is not None and m2 + min_m[g.target] > self.room_m:
                    continue
                c2 = cost + self._key(g)
                self._push(c2 + after, i + 1, g.target, c2, p2, m2, (g, path))
        return None


def _unwind(path: Path) -> tuple[Group, ...]:
    out: list[Group] = []
    while path is not None:
        group, path = path
        out.append(group)
    return tuple(reversed(out))
