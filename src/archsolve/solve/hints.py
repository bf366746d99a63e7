"""Hints for an infeasible problem: the smallest change to the problem that then solves, under every rule.

A hint is one or two settings, each written ``key = TOML value`` so that it can
be pasted into the file or given to ``--set``.  Candidates come in order of size:

1. one setting: ``search.per_axis = true`` (a switch that widens no range), a
   free size's ``search.size`` (what the neighbouring sizes allow), one range
   of the failing step widened at either end by the least amount, or another
   kind offered for the failing step (``ops``);
2. two settings: two ranges widened (least total widening first), then
   another kind with one range widened.

A candidate must first let the failing step reach its size on every axis (the
catalog's recipes, no layers built), then the changed problem is **re-solved**:
the free sizes, the tables under every per-choice rule, reachability and the
exact count with every global constraint.  The first that yields a design is
the hint, so following it once solves.  All of it runs within the solve's deadline
(at most half of the time left); when that runs out the explanation goes without a hint.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from itertools import combinations

from ..catalog import KINDS
from ..errors import InputError, SolverTimeout
from ..problem.problem import Ops, Problem
from .count import count, reachable
from .deadline import Deadline
from .plan import check_memory, free_sizes
from .tables import Tables, TooLarge, recipe_chains

#: How far one range may be widened, per field.
WIDEN = {"kernel": 8, "stride": 4, "padding": 8, "output_padding": 4, "dilation": 4, "scale": 4}
#: The least value each field takes (a range is never widened below it).
FLOOR = {"kernel": 1, "stride": 1, "padding": 0, "output_padding": 0, "dilation": 1, "scale": 1}
#: Changed problems re-solved at most for one hint.
TRIALS = 64


@dataclass(frozen=True)
class Change:
    """One candidate hint: the settings it names and the problem they make."""

    settings: tuple[tuple[str, object], ...]
    problem: Problem

    def text(self) -> str:
        return " and ".join(f"{key} = {_toml(value)}" for key, value in self.settings)


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value) if isinstance(value, str) else str(value)


def hint(problem: Problem, index: int | None, sizes: list[tuple[int, ...]], deadline: Deadline) -> str | None:
    """The smallest change that makes ``problem`` solve (module doc), or None when none is found in time.

    ``index`` is the step that fails from the input ``sizes`` (None: no single step, e.g. free sizes that
    never lead to the last size); candidates that let that step reach its size from none of them (the
    first few are tried) are skipped unsolved.
    """
    # Half of what is left: a problem with no hint still gets its explanation well within the limit.
    deadline = Deadline(deadline.remaining() / 2)
    trials = 0
    try:
        for change in _changes(problem, index, deadline):
            if index is not None and not any(_reaches(change.problem, index, n, deadline) for n in sizes[:8]):
                continue
            trials += 1
            if solves(change.problem, deadline):
                return change.text()
            if trials >= TRIALS:
                return None
    except SolverTimeout:
        return None
    return None


def solves(problem: Problem, deadline: Deadline) -> bool:
    """Whether ``problem`` has a design under every rule: what :class:`~archsolve.solve.Solver` checks
    before it optimises (free sizes, memory, tables, reachability, the exact count)."""
    try:
        problem = free_sizes(problem, deadline)
        tables = Tables(problem, deadline)
        check_memory(problem, tables)
        layers = reachable(problem, tables)
        return all(layers) and count(problem, layers, deadline) > 0
    except InputError:  # TooLarge included: a change the solver would refuse is no hint
        return False


def _changes(problem: Problem, index: int | None, deadline: Deadline) -> Iterator[Change]:
    """Candidate changes in order of size (module doc)."""
    if problem.ndim > 1 and not problem.per_axis:
        yield Change((("search.per_axis", True),), replace(problem, per_axis=True))
    sized = _search_size(problem, deadline)
    if sized is not None:
        yield sized
    if index is None:
        return
    widenings = _widenings(problem, index)
    singles = sorted(widenings, key=lambda item: item[0])
    yield from (_apply(problem, index, [w]) for _, w in singles)
    # A decoder's kinds are its [decoder] ops pattern: another kind for one step is not a one-key change.
    kinds = [] if problem.prefix else _other_kinds(problem, index)
    offered = [replace(problem, steps=_with_kind(problem, index, kind)) for kind in kinds]
    yield from (Change((("ops", _ops_value(p)),), p) for p in offered)
    pairs = sorted(
        ((a + b, [x, y]) for (a, x), (b, y) in combinations(widenings, 2) if x[0] != y[0]),
        key=lambda item: item[0],  # two ends of one range are one setting: widened singly above
    )
    yield from (_apply(problem, index, ws) for _, ws in pairs)
    for p in offered:
        for _, w in singles:
            widened = _apply(p, index, [w])
            yield Change((("ops", _ops_value(p)), *widened.settings), widened.problem)


Widening = tuple[str, tuple[int, int]]


def _widenings(problem: Problem, index: int) -> list[tuple[int, Widening]]:
    """(amount, (field, new range)) for every way to widen one range of step ``index`` at one end."""
    ranges = problem.ranges[index]
    out: list[tuple[int, Widening]] = []
    for name, most in WIDEN.items():
        if name == "padding" and ranges.padding_word is not None:
            continue
        low, high = getattr(ranges, name)
        for extra in range(1, most + 1):
            out.append((extra, (name, (low, high + extra))))
            if low - extra >= FLOOR[name]:
                out.append((extra, (name, (low - extra, high))))
    return out


def _apply(problem: Problem, index: int, widenings: list[Widening]) -> Change:
    """The changed problem and its settings: ``search.F`` when every step shares the ranges, else the step's."""
    shared = all(r == problem.ranges[0] for r in problem.ranges)
    changes = dict(widenings)
    if shared:
        ranges = tuple(replace(r, **changes) for r in problem.ranges)  # type: ignore[arg-type]
        prefix = "search."
    else:
        ranges = tuple(
            replace(r, **changes) if i == index else r  # type: ignore[arg-type]
            for i, r in enumerate(problem.ranges)
        )
        prefix = f"search.step.{index + 1}."
    settings = tuple((prefix + name, span) for name, span in widenings)
    return Change(settings, replace(problem, ranges=ranges))


def _search_size(problem: Problem, deadline: Deadline) -> Change | None:
    """``search.size`` covering what the neighbouring sizes allow every plain free size, where it differs."""
    if problem.prefix or not any(s.fixed is None for s in problem.sizes):
        return None
    opened = replace(
        problem, sizes=tuple(s if s.fixed is not None else replace(s, default=True) for s in problem.sizes)
    )
    narrowed = free_sizes(opened, deadline)
    free = [s for s in narrowed.sizes if s.fixed is None]
    span = (min(s.low for s in free), max(s.high for s in free))
    if all((s.low, s.high) == span for s in problem.sizes if s.fixed is None):
        return None
    sizes = tuple(s if s.fixed is not None else replace(s, low=span[0], high=span[1]) for s in problem.sizes)
    return Change((("search.size", span),), replace(problem, sizes=sizes))


def _other_kinds(problem: Problem, index: int) -> list[str]:
    """Catalog kinds the step does not offer yet that can change a size on their own (no norms, no
    sequence kinds outside a sequence problem)."""
    offered = {ops for ops in problem.steps[index]}
    return [
        name
        for name, kind in KINDS.items()
        if not kind.is_norm
        and problem.ndim in kind.ndims
        and (problem.sequence or not kind.takes_sequence)
        and (name,) not in offered
    ]


def _with_kind(problem: Problem, index: int, kind: str) -> tuple[tuple[Ops, ...], ...]:
    return tuple((*alts, (kind,)) if i == index else alts for i, alts in enumerate(problem.steps))


def _ops_value(problem: Problem) -> str | tuple[str, ...]:
    """The ``ops`` value that writes the problem's kinds: one string when every step is alike."""
    texts = tuple(" | ".join("+".join(ops) for ops in alts) for alts in problem.steps)
    return texts[0] if len(set(texts)) == 1 else texts


def _reaches(problem: Problem, index: int, size: tuple[int, ...], deadline: Deadline) -> bool:
    """Whether step ``index`` can reach its target (or a size within its free range) from ``size`` on
    every axis, ignoring the rules: the cheap test before a re-solve."""
    spec, ranges = problem.sizes[index + 1], problem.ranges[index]
    for e, n in enumerate(size):
        high = spec.fixed[e] if spec.fixed is not None else spec.high
        try:
            reached = {
                passed[-1]
                for ops in problem.steps[index]
                for _, passed in recipe_chains(ops, ranges, n, problem.ndim, high, deadline)
            }
        except TooLarge:
            return False
        if spec.fixed is not None and spec.fixed[e] not in reached:
            return False
        if spec.fixed is None and not any(spec.low <= r <= spec.high for r in reached):
            return False
    return True
