"""Exact counting under one budget (``max_params`` or ``max_macs``) by meeting in the middle.

Forward from the input and backward from the output, each side keeps, per
boundary state, the sorted distinct partial costs and how many partial designs
have each (numpy arrays, pruned at the budget).  The side with fewer entries
advances a step at a time until they meet; there every forward cost ``f`` pairs
with the backward partial designs of cost at most ``budget - f``, read off a
cumulative sum.  Free channels make the number of distinct partial costs grow
with every step, so two half-length sides hold far fewer entries than one
full-length pass (the 4→128 generator with four free channels: milliseconds
instead of minutes).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .choices import Choice, State
from .deadline import Deadline
from .tables import TooLarge

if TYPE_CHECKING:
    import numpy as np

#: Partial costs one side may hold at once (two int64 arrays: about 16 bytes each, ~400 MB in all).
ENTRY_CAP = 25_000_000

Side = dict[State, tuple["np.ndarray", "np.ndarray"]]
"""Per boundary state: sorted distinct partial costs, and the number of partial designs with each."""

Edges = dict[State, list[tuple[State, int, int]]]
"""Per state on the side's boundary: (the state across the step, the step's cost, how many choices)."""


def count_under_budget(
    layers: list[list[Choice]],
    start: State,
    cost: Callable[[Choice], int],
    base: int,
    budget: int,
    deadline: Deadline,
    wide: bool,
) -> int:
    """Designs over ``layers`` (pruned to complete paths) whose ``base`` + summed ``cost`` is at most ``budget``.

    ``wide``: counts may pass int64, so the arrays hold Python integers (exact, slower).
    """
    import numpy as np

    dtype: Any = object if wide else np.int64
    one = np.ones(1, dtype=dtype)
    forward: Side = {start: (np.array([base], dtype=np.int64), one)}
    ends = {c.target for c in layers[-1]}
    backward: Side = {end: (np.zeros(1, dtype=np.int64), one) for end in ends}
    low, high = 0, len(layers)
    while low < high:
        deadline.check("counting")
        if _entries(forward) <= _entries(backward):
            forward = _advance(forward, _edges(layers[low], cost, forward_=True), budget, deadline)
            low += 1
        else:
            backward = _advance(backward, _edges(layers[high - 1], cost, forward_=False), budget, deadline)
            high -= 1
    total = 0
    for state, (costs, counts) in forward.items():
        if state not in backward:
            continue
        back_costs, back_counts = backward[state]
        cumulative = np.concatenate([np.zeros(1, dtype=dtype), np.cumsum(back_counts)])
        fits = np.searchsorted(back_costs, budget - costs, side="right")
        total += int(np.dot(counts, cumulative[fits]))
    return total


def _entries(side: Side) -> int:
    return sum(len(costs) for costs, _ in side.values())


def _edges(step: list[Choice], cost: Callable[[Choice], int], forward_: bool) -> Edges:
    grouped: dict[State, Counter[tuple[State, int]]] = defaultdict(Counter)
    for c in step:
        here, there = (c.source, c.target) if forward_ else (c.target, c.source)
        grouped[here][(there, cost(c))] += 1
    return {here: [(there, value, n) for (there, value), n in counter.items()] for here, counter in grouped.items()}


def _advance(side: Side, edges: Edges, budget: int, deadline: Deadline) -> Side:
    """The side one step further: every partial cost plus each step cost that stays within the budget."""
    import numpy as np

    parts: dict[State, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    held = 0
    for state, (costs, counts) in side.items():
        for there, value, n in edges.get(state, ()):
            fits = int(np.searchsorted(costs, budget - value, side="right"))  # costs are sorted
            if fits:
                parts[there].append((costs[:fits] + value, counts[:fits] * n))
                held += fits
        if held > ENTRY_CAP:
            raise TooLarge(
                f"constraints: over {ENTRY_CAP:,} distinct partial costs to count under the budget; "
                "narrow search.channels or the search ranges"
            )
        deadline.check("counting")
    out: Side = {}
    for there, items in parts.items():
        costs = np.concatenate([c for c, _ in items])
        counts = np.concatenate([n for _, n in items])
        order = np.argsort(costs, kind="stable")
        costs, counts = costs[order], counts[order]
        starts = np.flatnonzero(np.concatenate([[True], costs[1:] != costs[:-1]]))
        out[there] = (costs[starts], np.add.reduceat(counts, starts))
    return out
