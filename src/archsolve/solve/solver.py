"""The solve pipeline: tables, reachability, the exact count, the best designs, or an explanation."""

from __future__ import annotations

from ..errors import InfeasibleError, InputError
from ..problem import Problem
from . import count as counting
from .choices import Candidate, Choice, Solution, fold, make_design
from .deadline import Deadline, ProgressCallback
from .paths import cheapest, objective_cost
from .reference import reference_candidate
from .tables import Tables


class Solver:
    """Counts, optimises and explains one problem under one deadline."""

    def __init__(
        self, problem: Problem, time_limit: float | None = None, progress: ProgressCallback | None = None
    ) -> None:
        self.problem = problem
        self.deadline = Deadline(time_limit if time_limit is not None else problem.time_limit, progress)
        self.tables = Tables(problem, self.deadline)
        self.layers: list[list[Choice]] = []  # valid choices per step, reachable from the input and to the end

    @property
    def time_limit(self) -> float:
        return self.deadline.limit

    def reachable(self) -> list[list[Choice]]:
        return counting.reachable(self.problem, self.tables)

    def count(self, layers: list[list[Choice]]) -> int:
        return counting.count(self.problem, layers, self.deadline)

    def best(self, layers: list[list[Choice]], top: int) -> list[Candidate]:
        """The ``top`` designs by the objective (then the other metric, then tie order), exactly.

        A best-first search over the tables (:mod:`.paths`): on the bundled problems it lists the
        same designs as the Z3 group model (:mod:`.model`, still the source of explanations) in
        milliseconds instead of seconds.
        """
        found = cheapest(self.problem, layers, objective_cost(self.problem), top, self.deadline)
        return [Candidate(make_design(self.problem, picks), picks) for _, picks in found]

    def solve(self, top: int = 10) -> Solution:
        problem = self.problem
        if problem.sizes[0].fixed is None or problem.sizes[-1].fixed is None:
            raise InputError("sizes: the first and last sizes must be fixed")
        reference = reference_candidate(problem, self.tables)  # a bad reference is an input error, first
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
        candidates = self.best(layers, top) if top > 0 else []
        return Solution(problem, total, candidates, layers, self.deadline.elapsed(), folded, reference)

    def _explain(self, layers: list[list[Choice]]) -> InfeasibleError:
        from .explain import explain  # only an infeasible problem needs the explanations (and their Z3 model)

        self.deadline.report("explaining", 1, 1)
        return explain(self.problem, self.tables, layers, self.deadline)

    def remaining(self) -> float:
        return self.deadline.remaining()


def solve(
    problem: Problem, top: int = 10, time_limit: float | None = None, progress: ProgressCallback | None = None
) -> Solution:
    """Count every valid design of ``problem`` and return the ``top`` best; InfeasibleError explains none.

    ``time_limit`` (default: the problem's ``search.time_limit``) bounds the whole solve;
    ``progress`` hears where it is (:class:`SolveProgress`) at each step of each phase.
    """
    return Solver(problem, time_limit, progress).solve(top)
