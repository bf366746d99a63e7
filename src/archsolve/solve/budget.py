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

A side is held in plain Python (sorted lists) until it passes :data:`PLAIN_LIMIT`
entries, then as numpy arrays: importing numpy costs more than a small count
(most problems: ``solve --no-rank`` starts in a fraction of a second), and numpy is
what keeps a large count fast and its memory at 16 bytes an entry.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from .choices import Choice, State
from .deadline import Deadline
from .tables import TooLarge

if TYPE_CHECKING:
    import numpy as np

#: Partial costs one side may hold at once (two int64 arrays: about 16 bytes each, ~400 MB in all).
ENTRY_CAP = 25_000_000
#: Entries a side may reach in plain Python lists; a step that could pass it moves the count to numpy arrays.
PLAIN_LIMIT = 20_000

Side = dict[State, tuple[Any, Any]]
"""Per boundary state: sorted distinct partial costs, and the number of partial designs with each
(two lists, or two numpy arrays once the count has moved to numpy)."""

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
    forward: Side = {start: ([base], [1])}
    backward: Side = {c.target: ([0], [1]) for c in layers[-1]}
    plain = True
    low, high = 0, len(layers)
    while low < high:
        deadline.check("counting")
        grow_forward = _entries(forward) <= _entries(backward)
        edges = _edges(layers[low] if grow_forward else layers[high - 1], cost, forward_=grow_forward)
        if plain and _reach(forward if grow_forward else backward, edges) > PLAIN_LIMIT:
            forward, backward, plain = _as_arrays(forward, wide), _as_arrays(backward, wide), False
        advance = _advance_plain if plain else _advance
        if grow_forward:
            forward, low = advance(forward, edges, budget, deadline), low + 1
        else:
            backward, high = advance(backward, edges, budget, deadline), high - 1
    if plain:
        return sum(_meet_plain(*forward[state], *backward[state], budget) for state in forward if state in backward)
    return sum(_meet(*forward[state], *backward[state], budget, wide) for state in forward if state in backward)


def _reach(side: Side, edges: Edges) -> int:
    """At most how many entries the side holds one step further (before equal costs merge)."""
    return sum(len(costs) * len(edges.get(state, ())) for state, (costs, _) in side.items())


def _as_arrays(side: Side, wide: bool) -> Side:
    import numpy as np

    dtype: Any = object if wide else np.int64
    return {s: (np.array(costs, dtype=np.int64), np.array(counts, dtype=dtype)) for s, (costs, counts) in side.items()}


def _meet_plain(
    costs: Sequence[int], counts: Sequence[int], back: Sequence[int], back_counts: Sequence[int], budget: int
) -> int:
    """Forward partial designs joined with the backward ones whose cost keeps the sum within ``budget``."""
    cumulative = [0, *accumulate(back_counts)]
    return sum(n * cumulative[bisect_right(back, budget - c)] for c, n in zip(costs, counts, strict=True))


def _meet(costs: Any, counts: Any, back: Any, back_counts: Any, budget: int, wide: bool) -> int:
    """:func:`_meet_plain` on numpy arrays."""
    import numpy as np

    cumulative = np.concatenate([np.zeros(1, dtype=object if wide else np.int64), np.cumsum(back_counts)])
    return int(np.dot(counts, cumulative[np.searchsorted(back, budget - costs, side="right")]))


def _entries(side: Side) -> int:
    return sum(len(costs) for costs, _ in side.values())


def _edges(step: list[Choice], cost: Callable[[Choice], int], forward_: bool) -> Edges:
    grouped: dict[State, Counter[tuple[State, int]]] = defaultdict(Counter)
    for c in step:
        here, there = (c.source, c.target) if forward_ else (c.target, c.source)
        grouped[here][(there, cost(c))] += 1
    return {here: [(there, value, n) for (there, value), n in counter.items()] for here, counter in grouped.items()}


def _advance_plain(side: Side, edges: Edges, budget: int, deadline: Deadline) -> Side:
    """The side one step further: every partial cost plus each step cost that stays within the budget."""
    merged: dict[State, Counter[int]] = defaultdict(Counter)
    for state, (costs, counts) in side.items():
        for there, value, n in edges.get(state, ()):
            into = merged[there]
            for c, k in zip(costs[: bisect_right(costs, budget - value)], counts, strict=False):
                into[c + value] += k * n
        deadline.check("counting")
    out: Side = {}
    for there, found in merged.items():
        costs = sorted(found)
        out[there] = (costs, [found[c] for c in costs])
    return out


def _advance(side: Side, edges: Edges, budget: int, deadline: Deadline) -> Side:
    """:func:`_advance_plain` on numpy arrays, the step's partial costs kept under :data:`ENTRY_CAP`."""
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
