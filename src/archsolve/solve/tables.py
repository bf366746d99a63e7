"""Step tables: every choice the op catalog accepts for a step, from one boundary state.

A step's choices come from recipe *chains* per axis (one recipe per op of a
possibly composite step, with the sizes it passes), intersected over every
declared input's entries, crossed with the allowed output channels.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Hashable
from dataclasses import replace
from typing import Any, NamedTuple

from ..catalog import KINDS
from ..catalog.base import clear_recipe_cache
from ..catalog.conv import ConvTranspose
from ..core.recipe import AxisRecipe, Ranges
from ..core.sizes import format_size
from ..design.design import clear_layer_cache, make_step
from ..errors import InputError
from ..problem.problem import Problem
from .choices import Choice, Row, State
from .deadline import Deadline

#: Field combinations one op may try from one input size (after clipping to the sizes): ~0.3 s of work.
CANDIDATE_CAP = 200_000
#: Recipe sequences one composite step may hold on one axis, and rows one step may hold (memory).
CHAIN_CAP = 200_000
#: Choices (rows x channel counts) the tables may hold in all: each is a few KiB with its layers.
CHOICE_CAP = 150_000


class TooLarge(InputError):
    """The ranges allow more work than the solver bounds; the message names what to narrow."""


Chain = tuple[tuple[AxisRecipe, ...], tuple[int, ...]]


def op_recipes(
    op: str, n: int, ranges: Ranges, ndim: int, high: int | None, deadline: Deadline | None = None
) -> tuple[tuple[AxisRecipe, int], ...]:
    """The catalog's recipes of ``op`` from size ``n`` with outputs up to ``high``, the ranges clipped first.

    Raises :class:`TooLarge` naming the widest range when even the clipped ranges allow more than
    :data:`CANDIDATE_CAP` combinations.
    """
    kind = KINDS[op]
    clipped = kind.clip(ranges, n, high)
    count = kind.candidate_count(clipped)
    if count > CANDIDATE_CAP:
        names = [kind.range_of.get(f, f) for f in kind.search_fields if f != "ceil_mode"]
        name = max(names, key=lambda f: len(clipped.span(f)))
        low, top = getattr(clipped, name)
        raise TooLarge(
            f"search.{name}: {op} from size {n} has {count:,} recipes to try even with the ranges clipped to the "
            f"sizes ({name} [{low}, {top}]); narrow search.{name}"
        )
    check = None if deadline is None else functools.partial(deadline.check, "listing recipes")
    recipes = kind.recipes(n, clipped, ndim, check)
    return recipes if high is None else tuple(item for item in recipes if item[1] <= high)


def recipe_chains(
    ops: tuple[str, ...], ranges: Ranges, n: int, ndim: int, high: int | None = None, deadline: Deadline | None = None
) -> tuple[Chain, ...]:
    """Every recipe sequence through a (possibly composite) step on one axis, with the sizes it passes.

    ``high`` bounds the last op's output; earlier ops' outputs are bounded by what the ops after them
    can bring down to ``high`` (the catalog's ``max_input``), so nothing is enumerated that cannot land.
    """
    key = (ops, ranges, n, ndim, high)
    if key not in _CHAINS:
        if len(_CHAINS) >= 8192:
            _CHAINS.clear()  # a bound, not an LRU: solves reuse their own entries right away
        _CHAINS[key] = _list_chains(ops, ranges, n, ndim, high, deadline)
    return _CHAINS[key]


_CHAINS: dict[tuple[tuple[str, ...], Ranges, int, int, int | None], tuple[Chain, ...]] = {}


def clear_caches() -> None:
    """Forget listed recipes (benchmarks time a fresh process's work)."""
    _CHAINS.clear()
    clear_recipe_cache()
    clear_layer_cache()


def _list_chains(
    ops: tuple[str, ...], ranges: Ranges, n: int, ndim: int, high: int | None, deadline: Deadline | None
) -> tuple[Chain, ...]:
    highs: list[int | None] = [high]
    for op in reversed(ops[1:]):
        highs.append(KINDS[op].max_input(ranges, highs[-1]))
    highs.reverse()
    chains: list[Chain] = [((), (n,))]
    for op, top in zip(ops, highs, strict=True):
        grown: list[Chain] = []
        for recipes, sizes in chains:
            if deadline is not None:
                deadline.check("listing recipes")
            for r, out in op_recipes(op, sizes[-1], ranges, ndim, top, deadline):
                grown.append(((*recipes, r), (*sizes, out)))
            if len(grown) > CHAIN_CAP:
                raise TooLarge(
                    f"ops: {'+'.join(ops)} from size {n} has over {CHAIN_CAP:,} recipe sequences; "
                    "narrow the search ranges (search.kernel, search.stride, search.padding, search.scale)"
                )
        chains = grown
    return tuple(chains)


class Refused(InputError):
    """Torch refuses one choice (its layers, channels or skip): the table leaves it out."""


class RowFacts(NamedTuple):
    """What a row's recipes and sizes decide whatever the channel counts (see :class:`Choice`)."""

    checkerboard: bool
    gaps: bool
    growth: tuple[int, ...]
    jump: tuple[int, ...]
    shared: tuple[int, ...]
    dead: bool
    identity: bool
    signature: Any
    unfaithful: bool
    wasted: bool
    vary: tuple[bool, ...]  # per size entry, whether the step's output can vary along its axis (before a merge)


def row_facts(
    problem: Problem,
    ops: tuple[str, ...],
    recipes: tuple[tuple[AxisRecipe, ...], ...],
    sizes: tuple[tuple[int, ...], ...],
    source: State,
    runtime: bool,
) -> RowFacts:
    """The design-rule flags, vary state and receptive growth of one row from ``source``, asked of the catalog.

    Alike for every channel count, so the tables compute them once per row.
    """
    ndim = problem.ndim
    parts = list(enumerate(zip(ops, recipes, strict=True)))
    unfaithful = not all(KINDS[op].faithful(per[e % ndim], n) for j, (op, per) in parts for e, n in enumerate(sizes[j]))
    directions = [{KINDS[op].resampling(per[a]) for op, per in zip(ops, recipes, strict=True)} for a in range(ndim)]
    wasted = any({1, -1} <= seen for seen in directions)
    vary = list(source[3])
    for e in range(len(vary)):
        for j, (op, per) in parts:
            vary[e] = KINDS[op].varies(per[e % ndim], sizes[j][e], vary[e])
    checker = any(KINDS[op].checkerboard(r) for _, (op, per) in parts for r in per)
    gaps = any(KINDS[op].gaps(per[e % ndim], n) for j, (op, per) in parts for e, n in enumerate(sizes[j]))
    dead = any(KINDS[op].dead_pixels(per[e % ndim], n) for j, (op, per) in parts for e, n in enumerate(sizes[j]))
    identity = any(all(KINDS[op].identity(per[e % ndim], n) for e, n in enumerate(sizes[j])) for j, (op, per) in parts)
    # Run-time sized layers let torch pick output_padding per call: they are never folded.
    signature = None if runtime else (ops, _signature(ndim, ops, recipes, sizes))
    tracked = problem.constraints.receptive_field is not None
    growth, new_jump = _receptive(ops, recipes, source[2]) if tracked else ((), ())
    shared = _shared(ops, recipes) if problem.constraints.same_recipe else ()
    return RowFacts(checker, gaps, growth, new_jump, shared, dead, identity, signature, unfaithful, wasted, tuple(vary))


def _signature(
    ndim: int, ops: tuple[str, ...], recipes: tuple[tuple[AxisRecipe, ...], ...], sizes: tuple[tuple[int, ...], ...]
) -> tuple[tuple[Hashable, ...], ...]:
    """Per layer, the catalog's signature on every axis of every declared input (``Choice.signature``)."""
    return tuple(
        tuple(KINDS[op].signature(per[e % ndim], n) for e, n in enumerate(sizes[j]))
        for j, (op, per) in enumerate(zip(ops, recipes, strict=True))
    )


def _receptive(
    ops: tuple[str, ...], recipes: tuple[tuple[AxisRecipe, ...], ...], jump: tuple[int, ...]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(receptive growth per axis, the jump after the step), from the jump before it."""
    growth = [0] * len(jump)
    current = list(jump)
    for op, per in zip(ops, recipes, strict=True):
        for axis, r in enumerate(per):
            rule = KINDS[op].receptive(r)
            if rule is None:
                raise InputError(
                    f"constraints.receptive_field: {op} has no receptive-field rule; "
                    "use it only with conv, pool and shape-keeping steps"
                )
            extent, stride = rule
            growth[axis] += extent * current[axis]
            current[axis] *= stride
    return tuple(growth), tuple(current)


def _shared(ops: tuple[str, ...], recipes: tuple[tuple[AxisRecipe, ...], ...]) -> tuple[int, ...]:
    """The first weighted layer's kernel, stride and padding per axis (``constraints.same_recipe``)."""
    for op, per in zip(ops, recipes, strict=True):
        if KINDS[op].has_weights:
            return tuple(v for r in per for v in (r.kernel, r.stride, r.padding))
    return ()


def sized_at_run_time(problem: Problem, index: int, ops: tuple[str, ...]) -> ConvTranspose | None:
    """The transposed conv of step ``index`` that may take ``output_size=`` at run time, or None.

    Only a lone op that takes it, with several declared inputs and a fixed target size.
    """
    kind = KINDS[ops[0]]
    if problem.inputs < 2 or len(ops) != 1 or not kind.takes_output_size or problem.sizes[index + 1].fixed is None:
        return None
    assert isinstance(kind, ConvTranspose)  # the kinds that take output_size= have its size_range
    return kind


def run_time_spans(
    kind: ConvTranspose, base: AxisRecipe, size: tuple[int, ...], target: tuple[int, ...]
) -> list[tuple[int, int]] | None:
    """Per input size, the output sizes ``output_size=`` accepts for ``base``, when each holds its target."""
    spans = [kind.size_range(base, n) for n in size]
    found = [s for s, want in zip(spans, target, strict=True) if s is not None and s[0] <= want <= s[1]]
    return found if len(found) == len(spans) else None


class RecipeRows:
    """Each step's recipe rows: the recipes and passed sizes of one alternative landing on the step's sizes.

    Channel-free, so the memory plan (:func:`archsolve.solve.plan.check_memory`) counts them before
    any choice is built.
    """

    def __init__(self, problem: Problem, deadline: Deadline) -> None:
        self.problem = problem
        self.deadline = deadline

    def rows(self, index: int, ops: tuple[str, ...], size: tuple[int, ...]) -> list[Row]:
        """Recipe rows of one alternative (a kind or composite) landing on the step's target sizes.

        A state's sizes hold every declared input's axes (entry ``e`` is axis
        ``e % ndim``); one recipe must be valid for all of them.
        """
        problem = self.problem
        ranges, ndim = problem.ranges[index], problem.ndim
        spec = problem.sizes[index + 1]
        entries: list[dict[tuple[AxisRecipe, ...], tuple[int, ...]]] = []
        for e, n in enumerate(size):
            high = spec.fixed[e] if spec.fixed is not None else spec.high
            allowed = {}
            for chain, passed in recipe_chains(ops, ranges, n, ndim, high, self.deadline):
                reached = passed[-1]
                if (spec.fixed[e] == reached) if spec.fixed is not None else (spec.low <= reached <= spec.high):
                    allowed[chain] = passed
            entries.append(allowed)
            self.deadline.check("building tables")
        rows: list[Row] = []
        if problem.per_axis:
            per_axis = [sorted(set.intersection(*(set(d) for d in entries[a::ndim]))) for a in range(ndim)]
            if math.prod(len(keys) for keys in per_axis) > CHAIN_CAP:
                raise TooLarge(
                    f"search.per_axis: {' x '.join(str(len(k)) for k in per_axis)} per-axis recipes make over "
                    f"{CHAIN_CAP:,} layers; narrow the search ranges or set search.per_axis = false"
                )
            for keys in itertools.product(*per_axis):
                recipes = tuple(tuple(keys[a][j] for a in range(ndim)) for j in range(len(ops)))
                sizes = tuple(tuple(d[keys[e % ndim]][j] for e, d in enumerate(entries)) for j in range(len(ops) + 1))
                rows.append((recipes, sizes, False))
                if len(rows) % 4096 == 0:
                    self.deadline.check("building tables")
        else:
            rows = self._shared_rows(ops, entries, ranges.padding_word is not None)
            kind = sized_at_run_time(problem, index, ops)
            if kind is not None and spec.fixed is not None:
                rows += self._runtime_rows(kind, ranges, size, spec.fixed, {r[0] for r, _, _ in rows})
        return rows

    def _shared_rows(
        self, ops: tuple[str, ...], entries: list[dict[tuple[AxisRecipe, ...], tuple[int, ...]]], word: bool
    ) -> list[Row]:
        """Rows of one layer alike on every axis.  With a padding word (Keras ``same``/``valid``) "alike"
        means kernel, stride and dilation: the word resolves torch's padding per axis, possibly uneven."""
        ndim = self.problem.ndim

        def shape(chain: tuple[AxisRecipe, ...]) -> tuple[AxisRecipe, ...]:
            return tuple(r._replace(padding=0, output_padding=0, pad_extra=0) for r in chain) if word else chain

        keyed = [{shape(chain): (chain, passed) for chain, passed in d.items()} for d in entries]
        rows: list[Row] = []
        for key in sorted(set.intersection(*(set(d) for d in keyed))):
            axes = [keyed[a][key][0] for a in range(ndim)]
            if any(d[key][0] != axes[e % ndim] for e, d in enumerate(keyed)):
                continue  # several input sizes on one axis need one padding
            recipes = tuple(tuple(axes[a][j] for a in range(ndim)) for j in range(len(ops)))
            sizes = tuple(tuple(d[key][1][j] for d in keyed) for j in range(len(ops) + 1))
            rows.append((recipes, sizes, False))
        return rows

    def _runtime_rows(
        self,
        kind: ConvTranspose,
        ranges: Ranges,
        size: tuple[int, ...],
        target: tuple[int, ...],
        fixed: set[tuple[AxisRecipe, ...]],
    ) -> list[Row]:
        """Transposed convs that reach every input's size only with ``output_size=`` at run time.

        Torch then picks output_padding per call, accepting sizes from the op=0 size up to stride − 1
        more (whatever the dilation): the catalog's :meth:`ConvTranspose.size_range` says which.
        """
        ndim = self.problem.ndim
        reach = max(target) + max(ranges.stride[1], 1)  # output_size= accepts up to stride - 1 above op=0
        listed = op_recipes(kind.name, size[0], ranges, ndim, reach, self.deadline)
        bases = {r._replace(output_padding=0) for r, _ in listed}
        rows: list[Row] = []
        for base in sorted(bases):
            spans = run_time_spans(kind, base, size, target)
            if spans is None:
                continue
            reference = base._replace(output_padding=target[0] - spans[0][0])
            if (reference,) in fixed:
                continue  # one fixed output_padding already serves every size
            rows.append((((reference,) * ndim,), (tuple(size), tuple(target)), True))
        return rows


class Tables:
    """Each step's choices from a boundary state, through the op catalog only, cached and bounded.

    A choice is a recipe row (:class:`RecipeRows`) with one output channel count, its layers built
    and its row's facts (:func:`row_facts`) attached; torch's refusals are left out.
    """

    def __init__(self, problem: Problem, deadline: Deadline) -> None:
        self.problem = problem
        self.deadline = deadline
        self.recipe_rows = RecipeRows(problem, deadline)
        self._cache: dict[tuple[int, State], list[Choice]] = {}
        self.held = 0  # choices in the cache, bounded by CHOICE_CAP

    def choices(self, index: int, source: State) -> list[Choice]:
        """Every valid choice for step ``index`` from ``source`` (cached); TooLarge names the step."""
        key = (index, source)
        if key not in self._cache:
            try:
                self._cache[key] = self._build(index, source)
            except TooLarge as exc:
                raise TooLarge(f"{self.problem.step_label(index)}: {exc}") from None
            self.held += len(self._cache[key])
        return self._cache[key]

    def _build(self, index: int, source: State) -> list[Choice]:
        """Every valid choice for step ``index`` from ``source``, over the step's alternative kinds."""
        problem = self.problem
        out: list[Choice] = []
        last = index == problem.n_steps - 1
        options = problem.channel_options(index + 1)
        for ops in problem.steps[index]:
            rows = self.recipe_rows.rows(index, ops, source[0])
            if self.held + len(out) + len(rows) * len(options) > CHOICE_CAP:
                raise TooLarge(
                    f"{self.held + len(out):,} choices built so far plus {len(rows):,} recipes x {len(options):,} "
                    f"channel counts would hold over {CHOICE_CAP:,} choices in memory; "
                    "narrow search.size, search.channels or the search ranges"
                )
            for recipes, sizes, runtime in rows:
                self.deadline.check("building tables")
                facts = row_facts(problem, ops, recipes, sizes, source, runtime)  # alike for every channel count
                for c_out in options:
                    try:
                        out.append(self._choice(index, source, ops, recipes, sizes, c_out, last, runtime, facts))
                    except Refused:
                        continue  # torch refuses this channel count or recipe here
        out.sort(key=lambda c: c.order)
        return out

    def choice_for(
        self, index: int, source: State, ops: tuple[str, ...], recipes: tuple[tuple[AxisRecipe, ...], ...], c_out: int
    ) -> Choice:
        """The choice for one written step (a reference design's) from ``source``, whatever the search ranges.

        InputError says why when torch refuses a layer or the step misses the problem's sizes.
        """
        problem = self.problem
        ndim = problem.ndim
        sizes = [tuple(source[0])]
        for op, per in zip(ops, recipes, strict=True):
            reached = []
            for e, n in enumerate(sizes[-1]):
                out = KINDS[op].out_size(per[e % ndim], n, ndim)
                if out is None:
                    fields = " ".join(f"{k}={v}" for k, v in KINDS[op].describe(per[e % ndim]).items())
                    raise InputError(f"torch rejects {op} {fields} on an input of size {n}")
                reached.append(out)
            sizes.append(tuple(reached))
        spec = problem.sizes[index + 1]
        runtime = False
        if not spec.allows(sizes[-1]):
            # Several input sizes: a transposed conv may take its output size at run time (output_size=).
            kind = sized_at_run_time(problem, index, ops)
            if kind is not None and spec.fixed is not None:
                base = recipes[0][0]._replace(output_padding=0)
                runtime = run_time_spans(kind, base, sizes[0], spec.fixed) is not None
            if not runtime:
                raise InputError(f"gives {format_size(sizes[-1])}, the problem wants {spec} after this step")
            assert spec.fixed is not None
            sizes = [sizes[0], tuple(spec.fixed)]
        return self._choice(index, source, ops, recipes, tuple(sizes), c_out, index == problem.n_steps - 1, runtime)

    def _choice(
        self,
        index: int,
        source: State,
        ops: tuple[str, ...],
        recipes: tuple[tuple[AxisRecipe, ...], ...],
        sizes: tuple[tuple[int, ...], ...],
        c_out: int,
        last: bool,
        runtime: bool,
        facts: RowFacts | None = None,
    ) -> Choice:
        """One row with ``c_out`` channels as a choice; :class:`Refused` where torch refuses it."""
        problem = self.problem
        size, channels = source[0], source[1]
        ndim = problem.ndim
        merge = problem.merge(index)
        try:
            step = make_step(
                ops,
                (channels, *size[:ndim]),
                recipes,
                c_out,
                problem.build,
                index == 0 and not problem.prefix,
                last,
                merge,
                problem.groups,
            )
            if runtime:
                layers = (replace(step.layers[0], size_from=problem.size_from[index]), *step.layers[1:])
                step = replace(step, layers=layers)
            merged = step.out_shape[0]
            if merge is not None:
                skip = problem.skip_shapes[index]
                assert skip is not None
                merged = merge.out_shape(step.out_shape, skip)[0]
        except InputError as exc:
            raise Refused(exc.issues) from None
        if step.out_shape[0] != c_out:
            raise Refused(f"gives {step.out_shape[0]} channels, not {c_out}")
        if facts is None:
            facts = row_facts(problem, ops, recipes, sizes, source, runtime)
        vary = facts.vary
        if merge is not None and vary:
            # A skip joined here varies where it has two pixels (the encoder side it comes from is not
            # tracked: counted as varying, the rule stays on the safe side of rejecting).
            skip_size = problem.skip_shapes[index]
            assert skip_size is not None
            vary = tuple(v or skip_size[1 + e % ndim] >= 2 for e, v in enumerate(vary))
        constant = last and any(not v and n >= 2 for v, n in zip(vary, sizes[-1], strict=False))
        target: State = (tuple(sizes[-1]), merged, facts.jump, vary)
        return Choice(
            step=step,
            recipes=recipes,
            source=source,
            target=target,
            params=step.params.total,
            macs=step.macs,
            rf_growth=facts.growth,
            checkerboard=facts.checkerboard,
            gaps=facts.gaps,
            shared=facts.shared,
            dead=facts.dead,
            identity=facts.identity,
            signature=facts.signature,
            unfaithful=facts.unfaithful,
            wasted=facts.wasted,
            constant=constant,
        )
