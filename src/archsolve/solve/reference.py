"""The problem's reference design (``reference = "…"``), checked like any design.

The reference is the design to beat: the ranker always measures it.  It is
written in the notation the tables print, so a printed row pasted back in names
the same design.  Here it becomes the solver's own choices, step by step from
the input state, through the same table code as every other design (the search
ranges aside: a reference need not lie inside them), then meets the same rules
and global constraints.  Anything it misses is an input error naming the file,
the key and the step.
"""

from __future__ import annotations

from ..design.notation import StepText
from ..errors import InputError, Issue
from ..problem.problem import Problem
from .choices import (
    Candidate,
    Choice,
    State,
    allowed,
    broken_rules,
    initial_state,
    make_design,
    prefix_cost,
    satisfies,
)
from .tables import Tables


def reference_candidate(problem: Problem, tables: Tables) -> Candidate | None:
    """The reference as a design of ``problem`` (None when the problem names none); InputError if it misses."""
    if not problem.reference:
        return None
    where = f"{problem.source}: reference"
    if len(problem.reference) != problem.n_steps:
        raise InputError(Issue(where, f"{len(problem.reference)} steps, but the problem has {problem.n_steps}"))
    state = initial_state(problem)
    picks: list[Choice] = []
    for i, text in enumerate(problem.reference):
        label = f"step {i + 1}"
        try:
            choice = _step(problem, tables, i, state, text)
        except InputError as exc:
            raise InputError(Issue(where, f"{label}: {'; '.join(x.message for x in exc.issues)}")) from None
        if not allowed(choice, problem):
            raise InputError(Issue(where, f"{label} {', '.join(broken_rules(choice, problem))}"))
        picks.append(choice)
        state = choice.target
    if not satisfies(problem, picks):
        raise InputError(Issue(where, _global_miss(problem, picks)))
    return Candidate(make_design(problem, picks), tuple(picks))


def _step(problem: Problem, tables: Tables, index: int, state: State, text: StepText) -> Choice:
    if text.ops not in problem.steps[index]:
        allowed_ops = " | ".join("+".join(ops) for ops in problem.steps[index])
        raise InputError(f"{'+'.join(text.ops)} is not one of this step's kinds ({allowed_ops})")
    recipes = text.recipes(problem.ndim)
    fixed = problem.channels[index + 1]
    if text.channels is not None and fixed is not None and text.channels != fixed:
        raise InputError(f"→{text.channels}, but the problem fixes {fixed} channels here")
    c_out = text.channels if text.channels is not None else fixed
    if c_out is None:
        raise InputError("the problem leaves these channels free: write them, e.g. →64")
    choice = tables.choice_for(index, state, text.ops, recipes, c_out)
    if text.size is not None and tuple(choice.target[0][: len(text.size)]) != text.size:
        got = "x".join(map(str, choice.target[0][: problem.ndim]))
        raise InputError(f"@{'x'.join(map(str, text.size))}, but the recipes give {got}")
    return choice


def _global_miss(problem: Problem, picks: list[Choice]) -> str:
    """Which global constraint the reference breaks, with its numbers."""
    rules = problem.constraints
    base_p, base_m = prefix_cost(problem)
    params, macs = base_p + sum(c.params for c in picks), base_m + sum(c.macs for c in picks)
    if rules.max_params is not None and params > rules.max_params:
        return f"{params:,} params, over constraints.max_params = {rules.max_params:,}"
    if rules.max_macs is not None and macs > rules.max_macs:
        return f"{macs:,} MACs, over constraints.max_macs = {rules.max_macs:,}"
    if rules.receptive_field is not None:
        fields = [1 + sum(c.rf_growth[axis] for c in picks) for axis in range(problem.ndim)]
        return f"receptive field {fields}, outside constraints.receptive_field = {list(rules.receptive_field)}"
    return "its steps use different recipes (constraints.same_recipe = true)"
