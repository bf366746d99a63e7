"""Before any table is built: the ranges free sizes lie in, and whether the tables fit in memory.

**Free sizes.**  A size the problem leaves free can only be one the steps around
it can reach: from the nearest fixed size before it (forwards) and to the nearest
fixed size after it (backwards), through the kinds each step allows within its
ranges.  The catalog does the arithmetic: every recipe it lists from a size says
which sizes one step reaches, and a step's smallest and largest reachable sizes
grow with its input (a recipe valid from ``n`` is valid from ``n + 1`` and
gives at least the same size), so intervals carry through a whole trajectory:

* forwards, ``[a, b]`` leads to ``[smallest reach from a, largest reach from b]``;
* backwards, ``[a, b]`` is reachable from ``[least n whose largest reach is >= a,
  greatest n whose smallest reach is <= b]`` (binary searches over ``n``).

A plain ``"?"`` without ``search.size`` takes that interval as its range (an
audio encoder ``16000 → ? → ? → 250`` gets about ``[3999, 4035]`` and
``[998, 1007]`` with the default conv ranges); a range the problem states is
only intersected with it, which removes nothing a design could use.

**Memory.**  Each choice costs a few KiB with its layers, so before the first
table is built the same walk over sizes lists every step's recipe rows (cheap
tuples, no layers) from every size it can start at, times the channel counts,
and refuses the problem with the numbers when the total passes
:data:`~archsolve.solve.tables.CHOICE_CAP`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from ..core.recipe import Ranges
from ..problem.problem import DIM_MAX, Problem, SizeSpec
from .deadline import Deadline
from .tables import CHOICE_CAP, Tables, TooLarge, op_recipes

Interval = tuple[int, int]


class _Reach:
    """One step's smallest and largest reachable size from one input size, over its alternatives."""

    def __init__(self, problem: Problem, index: int, deadline: Deadline) -> None:
        self.alternatives = problem.steps[index]
        self.ranges: Ranges = problem.ranges[index]
        self.ndim = problem.ndim
        self.deadline = deadline

    def _outs(self, op: str, n: int) -> list[int]:
        return [out for _, out in op_recipes(op, n, self.ranges, self.ndim, None, self.deadline)]

    def bounds(self, n: int) -> Interval | None:
        """(smallest, largest) size the step reaches from ``n``; None when no alternative takes ``n``."""
        found: list[Interval] = []
        for ops in self.alternatives:
            low = high = n
            for op in ops:
                lows, highs = self._outs(op, low), self._outs(op, high)
                if not lows or not highs:
                    break
                low, high = min(lows), max(highs)
            else:
                found.append((low, high))
        if not found:
            return None
        return min(f[0] for f in found), max(f[1] for f in found)

    def forward(self, span: Interval) -> Interval | None:
        low, high = self.bounds(span[0]), self.bounds(span[1])
        if low is None or high is None:
            return None
        return low[0], high[1]

    def backward(self, span: Interval) -> Interval:
        """Input sizes from which some alternative may land in ``span`` (a superset)."""
        first = self._search(lambda n: (b := self.bounds(n)) is not None and b[1] >= span[0])
        past = self._search(lambda n: (b := self.bounds(n)) is not None and b[0] > span[1])
        return (DIM_MAX if first is None else first), (DIM_MAX if past is None else past - 1)

    def _search(self, holds: Callable[[int], bool]) -> int | None:
        """The least ``n`` in [1, DIM_MAX] where the monotone ``holds`` turns true (None: never)."""
        if not holds(DIM_MAX):
            return None
        low, high = 1, DIM_MAX
        while low < high:
            self.deadline.check("sizing free sizes")
            mid = (low + high) // 2
            if holds(mid):
                high = mid
            else:
                low = mid + 1
        return low


def free_sizes(problem: Problem, deadline: Deadline) -> Problem:
    """``problem`` with every free size's range narrowed to what its neighbouring sizes allow (module doc)."""
    specs = problem.sizes
    if all(s.fixed is not None for s in specs) or specs[0].fixed is None or specs[-1].fixed is None:
        return problem
    try:
        reach = [_Reach(problem, i, deadline) for i in range(problem.n_steps)]
        forward: list[list[Interval] | None] = [[(n, n) for n in specs[0].fixed]]
        for i, spec in enumerate(specs[1:]):
            before = forward[-1]
            if spec.fixed is not None:
                forward.append([(n, n) for n in spec.fixed])
            elif before is None:
                forward.append(None)
            else:
                spans = [reach[i].forward(s) for s in before]
                forward.append([s for s in spans if s is not None] if all(spans) else None)
        backward: list[list[Interval]] = [[(n, n) for n in specs[-1].fixed]]
        for i in reversed(range(problem.n_steps)):
            spec = specs[i]
            after = backward[0]
            fixed = spec.fixed
            backward.insert(0, [(n, n) for n in fixed] if fixed is not None else [reach[i].backward(s) for s in after])
    except TooLarge:
        return problem  # ranges too wide to list from one size: the tables will say so, naming the range
    narrowed: list[SizeSpec] = []
    for spec, ahead, behind in zip(specs, forward, backward, strict=True):
        if spec.fixed is not None:
            narrowed.append(spec)
            continue
        low, high = (1, DIM_MAX) if spec.default else (spec.low, spec.high)
        if ahead is not None:
            low = max(low, min(a[0] for a in ahead))
            high = min(high, max(a[1] for a in ahead))
        low = max(low, min(b[0] for b in behind))
        high = min(high, max(b[1] for b in behind))
        if spec.default and ahead is None:
            low, high = spec.low, spec.high  # nothing reaches it: keep the stated fallback for the message
        narrowed.append(replace(spec, low=low, high=max(low, high)) if low <= high else spec)
    return replace(problem, sizes=tuple(narrowed))


def check_memory(problem: Problem, tables: Tables) -> None:
    """Raise :class:`TooLarge` when the step tables would hold more than ``CHOICE_CAP`` choices (module doc)."""
    frontier: set[tuple[int, ...]] = {tuple(problem.sizes[0].fixed or ())}
    channels_in = 1
    total = 0
    for index in range(problem.n_steps):
        channels_out = len(problem.channel_options(index + 1))
        reached: set[tuple[int, ...]] = set()
        rows = 0
        for seen, size in enumerate(sorted(frontier), 1):
            for ops in problem.steps[index]:
                found = tables.recipe_rows.rows(index, ops, size)
                rows += len(found)
                reached.update(tuple(sizes[-1]) for _, sizes, _ in found)
            if total + rows * channels_in * channels_out > CHOICE_CAP:
                raise TooLarge(
                    _memory_message(problem, index, (seen, len(frontier)), rows, channels_in, channels_out, total)
                )
        total += rows * channels_in * channels_out
        frontier = reached
        channels_in = channels_out
        if not frontier:
            return  # the explanation says why nothing is reachable


def _memory_message(
    problem: Problem,
    index: int,
    visited: tuple[int, int],
    rows: int,
    channels_in: int,
    channels_out: int,
    before: int,
) -> str:
    """The numbers that passed the cap: rows listed from the first ``visited[0]`` of ``visited[1]`` sizes."""
    here = rows * channels_in * channels_out
    seen, sizes = visited
    some = f"the first {seen:,} of " if seen < sizes else ""
    factors = f"{rows:,} recipe rows from {some}{sizes:,} input size{'s' if sizes != 1 else ''}"
    if channels_in > 1:
        factors += f" x {channels_in:,} input channel counts"
    factors += f" x {channels_out:,} output channel count{'s' if channels_out != 1 else ''}"
    earlier = f" on top of {before:,} in the steps before" if before else ""
    keys = []
    # Many input sizes come from free sizes: search.size bounds them in a plain trajectory (a decoder's
    # free sizes follow its encoder; the ranges are what to narrow there).
    if sizes > 1 and not problem.prefix:
        keys.append("search.size")
    if channels_in > 1 or channels_out > 1:
        keys.append("search.channels")
    keys.append("the search ranges (search.kernel, search.stride, search.padding)")
    return (
        f"{problem.step_label(index)}: {factors} make {here:,} choices{earlier}, over the {CHOICE_CAP:,} "
        f"the tables may hold in memory (checked before building any); narrow {' or '.join(keys)}"
    )
