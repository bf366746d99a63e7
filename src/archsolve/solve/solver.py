"""The solve pipeline: tables, reachability, the exact count, the best designs, or an explanation."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from ..errors import InfeasibleError, InputError
from ..problem.problem import Problem
from . import count as counting
from . import model
from .choices import Candidate, Choice, Solution, fold, make_design
from .crossing import TooWide, across, across_dp, values_key
from .deadline import Deadline, ProgressCallback
from .paths import Cost, PathSearch, Picks, cheapest, distinct, objective_cost
from .plan import check_memory, free_sizes
from .reference import reference_candidate
from .tables import Tables

#: With ``where`` atoms across steps, Z3 lists this many times ``top`` designs for folding to read.
ACROSS_FETCH = 4


class Solver:
    """Counts, optimises and explains one problem under one deadline."""

    def __init__(
        self, problem: Problem, time_limit: float | None = None, progress: ProgressCallback | None = None
    ) -> None:
        self.deadline = Deadline(time_limit if time_limit is not None else problem.time_limit, progress)
        self.problem = free_sizes(problem, self.deadline)  # free sizes' ranges, before any table
        self.tables = Tables(self.problem, self.deadline)
        self.layers: list[list[Choice]] = []  # valid choices per step, reachable from the input and to the end

    @property
    def time_limit(self) -> float:
        return self.deadline.limit

    def reachable(self) -> list[list[Choice]]:
        return counting.reachable(self.problem, self.tables)

    def count(self, layers: list[list[Choice]]) -> tuple[int, bool]:
        """The number of designs and whether it is exact (False: the deadline stopped an enumeration)."""
        return counting.count_where(self.problem, layers, self.deadline)

    def best(self, layers: list[list[Choice]], top: int, expand: bool = True) -> list[Candidate]:
        """The ``top`` designs by the objective (then the other metric, then tie order), exactly; with
        ``expand`` False, the ``top`` distinct ideas in that order, single-step variants folded under each.

        Where ``where`` atoms tie steps together, Z3 ``Optimize`` over groups of alike choices
        (:mod:`.model`); otherwise every constraint is a per-step filter, a budget or a sum, and a
        best-first search over the tables (:mod:`.paths`) is exact and takes milliseconds.
        """
        problem = self.problem
        cost = objective_cost(problem)
        if across(problem):
            # Z3 lists designs in the objective's order; folding reads that order as it reads the
            # tables' search, from a few more designs than it lists.
            found = model.best(problem, layers, top if expand else top * ACROSS_FETCH, self.deadline)
            stream: Iterator[tuple[Cost, Picks]] = (((), c.choices) for c in found)
        elif expand:
            stream = iter(cheapest(problem, layers, cost, top, self.deadline))
        else:
            stream = iter(PathSearch(problem, layers, cost, self.deadline))
        if expand:
            return [Candidate(make_design(problem, picks), picks) for _, picks in itertools.islice(stream, top)]
        return [
            Candidate(
                make_design(problem, picks), picks, tuple(Candidate(make_design(problem, v), v) for v in variants)
            )
            for picks, variants in distinct(stream, top)
        ]

    def narrow(self, layers: list[list[Choice]]) -> tuple[list[list[Choice]], int | None]:
        """Only the choices on some design meeting the cross-step atoms (the DP's backward pass), so
        Z3 sees the few groups that matter, and the exact count the DP found on the way; the layers
        unchanged and no count when the extended state is too wide."""
        try:
            total, kept = across_dp(self.problem, layers, self.deadline)
        except TooWide:
            return layers, None
        return kept, total

    def solve(self, top: int = 10, expand: bool = True) -> Solution:
        problem = self.problem
        if problem.sizes[0].fixed is None or problem.sizes[-1].fixed is None:
            raise InputError("sizes: the first and last sizes must be fixed")
        reference = reference_candidate(problem, self.tables)  # a bad reference is an input error, first
        check_memory(problem, self.tables)  # refuse what would not fit before building any table
        raw = self.reachable()
        # Folding keeps a choice between every pair of states it touches, so reachability is unchanged.
        keys = values_key(problem)  # what cross-step where atoms read: folding keeps it apart
        layers = [fold(step, keys[i]) for i, step in enumerate(raw)] if problem.constraints.no_duplicates else raw
        self.layers = layers
        if any(not step for step in layers):
            raise self._explain(layers)
        # Across steps the best designs come first: a count by enumeration may run to the deadline
        # and then be a lower bound.
        crossed = bool(across(problem))
        unnarrowed, counted = layers, None
        if crossed:
            layers, counted = self.narrow(layers)
            if counted == 0:
                raise self._explain(layers)
        candidates = self.best(layers, top, expand) if top > 0 and crossed else []
        if crossed and top > 0 and not candidates:
            raise self._explain(layers)
        total, exact = (counted, True) if counted is not None else self.count(layers)
        if total == 0:
            raise self._explain(layers)
        if not crossed and top > 0:
            candidates = self.best(layers, top, expand)
        # A second count only when folding left something out (it costs what the first did).
        shrunk = exact and any(len(f) < len(r) for f, r in zip(unnarrowed, raw, strict=True))
        folded = 0
        if shrunk:
            every, every_exact = self.count(raw)
            folded = every - total if every_exact else 0
        seconds = self.deadline.elapsed()
        return Solution(
            problem,
            total,
            candidates,
            layers,
            seconds,
            folded,
            reference,
            count_is_lower_bound=not exact,
            expanded=expand,
        )

    def _explain(self, layers: list[list[Choice]]) -> InfeasibleError:
        from .explain import explain  # only an infeasible problem needs the explanations (and their Z3 model)

        self.deadline.report("explaining", 1, 1)
        return explain(self.problem, self.tables, layers, self.deadline)

    def remaining(self) -> float:
        return self.deadline.remaining()


def solve(
    problem: Problem,
    top: int = 10,
    time_limit: float | None = None,
    progress: ProgressCallback | None = None,
    expand: bool = True,
) -> Solution:
    """Count every valid design of ``problem`` and return the ``top`` best; InfeasibleError explains none.

    ``expand`` False lists ``top`` distinct ideas instead, each design that differs from a listed
    one in a single step folded under it (``Candidate.variants``); the count is the same.

    ``time_limit`` (default: the problem's ``search.time_limit``) bounds the whole solve;
    ``progress`` hears where it is (:class:`SolveProgress`) at each step of each phase.
    """
    return Solver(problem, time_limit, progress).solve(top, expand)
