"""The solve pipeline: tables, reachability, the exact count, the best designs, or an explanation."""

from __future__ import annotations

from ..errors import InfeasibleError, InputError
from ..problem import Problem
from . import count as counting
from .choices import Candidate, Choice, Solution, fold, make_design
from .deadline import Deadline, ProgressCallback
from .explain import explain
from .paths import PathSearch, cheapest, distinct, objective_cost
from .plan import check_memory, free_sizes
from .reference import reference_candidate
from .tables import Tables


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

    def count(self, layers: list[list[Choice]]) -> int:
        return counting.count(self.problem, layers, self.deadline)

    def best(self, layers: list[list[Choice]], top: int, expand: bool = True) -> list[Candidate]:
        """The ``top`` designs by the objective (then the other metric, then tie order), exactly; with
        ``expand`` False, the ``top`` distinct ideas in that order, single-step variants folded under each.

        A best-first search over the tables (:mod:`.paths`): on the bundled problems it lists the
        same designs as the Z3 group model (:mod:`.model`, still the source of explanations) in
        milliseconds instead of seconds.
        """
        problem = self.problem
        if expand:
            found = cheapest(problem, layers, objective_cost(problem), top, self.deadline)
            return [Candidate(make_design(problem, picks), picks) for _, picks in found]
        ideas = distinct(iter(PathSearch(problem, layers, objective_cost(problem), self.deadline)), top)
        return [
            Candidate(
                make_design(problem, picks),
                picks,
                tuple(Candidate(make_design(problem, v), v) for v in variants),
            )
            for picks, variants in ideas
        ]

    def solve(self, top: int = 20, expand: bool = True) -> Solution:
        problem = self.problem
        if problem.sizes[0].fixed is None or problem.sizes[-1].fixed is None:
            raise InputError("sizes: the first and last sizes must be fixed")
        reference = reference_candidate(problem, self.tables)  # a bad reference is an input error, first
        check_memory(problem, self.tables)  # refuse what would not fit before building any table
        raw = self.reachable()
        # Folding keeps a choice between every pair of states it touches, so reachability is unchanged.
        layers = [fold(step) for step in raw] if problem.constraints.no_duplicates else raw
        self.layers = layers
        if any(not step for step in layers):
            raise self._explain(layers)
        total = self.count(layers)
        if total == 0:
            raise self._explain(layers)
        # A second count only when folding left something out (it costs what the first did).
        shrunk = any(len(f) < len(r) for f, r in zip(layers, raw, strict=True))
        folded = self.count(raw) - total if shrunk else 0
        candidates = self.best(layers, top, expand) if top > 0 else []
        seconds = self.deadline.elapsed()
        return Solution(problem, total, candidates, layers, seconds, folded, reference, expanded=expand)

    def _explain(self, layers: list[list[Choice]]) -> InfeasibleError:
        self.deadline.report("explaining", 1, 1)
        return explain(self.problem, self.tables, layers, self.deadline)

    def remaining(self) -> float:
        return self.deadline.remaining()


def solve(
    problem: Problem,
    top: int = 20,
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
