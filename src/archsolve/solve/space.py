"""The solved tables as the ranker's search space (:class:`archsolve.design.search_space.SearchSpace`)."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence

from ..design.design import Design
from .choices import Choice, Solution, State, initial_state, make_design, satisfies
from .crossing import design_holds
from .deadline import Deadline
from .paths import cheapest


class SolutionSpace:
    """The solver's valid designs as a search space for the ranker (:class:`archsolve.design.search_space.SearchSpace`).

    Step ``i`` offers every valid choice of the solved table by its key; a pick
    tuple is a design when its choices chain and meet the global constraints.
    As a candidate source it supplies the best designs by the objective; as a
    :class:`archsolve.design.search_space.FastestSource`, the exact predicted-fastest designs.
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
        return tuple(chosen) if satisfies(self.problem, chosen) and design_holds(self.problem, chosen) else None

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
            if len(seen) >= limit:
                return  # up to ``limit``, as the CandidateSource contract says
            picks = self.picks(candidate.choices)
            if picks not in seen:
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
            if picks not in seen and satisfies(self.problem, picked) and design_holds(self.problem, picked):
                seen.add(picks)
                yield picks

    def fastest(
        self, limit: int, step_time: Callable[[int, int], float], time_limit: float | None = None
    ) -> list[tuple[int, ...]]:
        """Up to ``limit`` valid pick tuples in exact ascending order of summed ``step_time(step, option)``.

        Option indices are those of :meth:`step_options`.  Every constraint holds (budgets, receptive
        field, ``same_recipe``, the rules the tables were solved under); equal sums keep the solver's
        tie order.  Bounded by ``time_limit`` (default: the problem's).
        """
        times = [{key: float(step_time(i, j)) for j, key in enumerate(keys)} for i, keys in enumerate(self._keys)]
        deadline = Deadline(time_limit if time_limit is not None else self.problem.time_limit)
        found = cheapest(self.problem, self.solution.tables, lambda i, c: (times[i][c.key],), limit, deadline)
        return [self.picks(picks) for _, picks in found]

    def reference(self) -> tuple[int, ...] | None:
        """The problem's reference design as picks, where the solved tables hold it (None: no reference, or
        one outside the search ranges or folded into a smaller duplicate; measure ``solution.reference`` then)."""
        reference = self.solution.reference
        if reference is None:
            return None
        try:
            picks = self.picks(reference.choices)
        except KeyError:
            return None
        return picks if self.choices(picks) == reference.choices else None
