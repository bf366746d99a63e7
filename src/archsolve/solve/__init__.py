"""Solve a whole trajectory: exact counts, the best designs, and explanations when there are none.

The op catalog turns every step into a finite table of choices (recipes that
PyTorch accepts and that land on the step's sizes), built by :mod:`.tables`.
Over those tables:

* **counting** (:mod:`.count`) is dynamic programming over boundary states,
  never enumeration, so tens of millions of designs cost milliseconds;
* **the best designs** come from a best-first search whose bound is the exact
  cheapest completion (:mod:`.paths`);
* **``where`` constraints** (:mod:`.where`, the language) that read one step
  filter that step's table; those across steps (:mod:`.crossing`) are counted
  by DP over a state extended with the atoms still open, or by Z3 enumeration
  when that state is too wide (a lower bound if the deadline stops it), and
  the best designs then come from Z3 ``Optimize`` over groups of alike choices
  (:mod:`.model`);
* **infeasible problems** (:mod:`.explain`) are explained from tracked
  assertions (Z3 unsat cores, naming the ``where`` items at fault) plus the
  nearest sizes, ranges and relaxations that would work (:mod:`.relax`).

One :class:`Deadline` covers the whole solve.  :class:`SolutionSpace` offers
the solved tables to the ranker.

Tie order for designs of equal objective: the other metric (MACs after params,
or params after MACs), then step by step: the step's op kinds in catalog order,
its recipes compared as (kernel, stride, padding, output_padding, dilation,
ceil_mode) per op and axis, then the output channels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..packages import lazy_names

if TYPE_CHECKING:
    from .choices import (
        Candidate,
        Choice,
        Group,
        Solution,
        State,
        allowed,
        initial_state,
        make_design,
        prefix_cost,
        satisfies,
    )
    from .deadline import Deadline, ProgressCallback, SolveProgress
    from .explain import explain
    from .solver import Solver, solve
    from .space import SolutionSpace
    from .tables import Tables, recipe_chains

# Loaded on first use: solving a feasible problem needs neither the explanations nor the ranker's view.
_HOMES = {
    **{name: ".choices" for name in ("Candidate", "Choice", "Group", "Solution", "State", "allowed")},
    **{name: ".choices" for name in ("initial_state", "make_design", "prefix_cost", "satisfies")},
    **dict.fromkeys(("Deadline", "ProgressCallback", "SolveProgress"), ".deadline"),
    "explain": ".explain",
    "Solver": ".solver",
    "solve": ".solver",
    "SolutionSpace": ".space",
    "Tables": ".tables",
    "recipe_chains": ".tables",
}
__getattr__ = lazy_names(__name__, _HOMES)

__all__ = [
    "Candidate",
    "Choice",
    "Deadline",
    "Group",
    "ProgressCallback",
    "Solution",
    "SolutionSpace",
    "SolveProgress",
    "Solver",
    "State",
    "Tables",
    "allowed",
    "explain",
    "initial_state",
    "make_design",
    "prefix_cost",
    "recipe_chains",
    "satisfies",
    "solve",
]
