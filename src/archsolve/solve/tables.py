"""Step tables: every choice the op catalog accepts for a step, from one boundary state.

A step's choices come from recipe *chains* per axis (one recipe per op of a
possibly composite step, with the sizes it passes), intersected over every
declared input's entries, crossed with the allowed output channels.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import replace

from ..design import make_step
from ..errors import InputError
from ..ops import KINDS, ConvTranspose
from ..problem import Problem
from ..recipe import AxisRecipe, Ranges
from .choices import Choice, Row, State
from .deadline import Deadline


@functools.lru_cache(maxsize=8192)
def recipe_chains(
    ops: tuple[str, ...], ranges: Ranges, n: int, ndim: int
) -> tuple[tuple[tuple[AxisRecipe, ...], tuple[int, ...]], ...]:
    """Every recipe sequence through a (possibly composite) step on one axis, with the sizes it passes."""
    chains: list[tuple[tuple[AxisRecipe, ...], tuple[int, ...]]] = [((), (n,))]
    for op in ops:
        kind = KINDS[op]
        chains = [
            ((*recipes, r), (*sizes, out))
            for recipes, sizes in chains
            for r, out in kind.recipes(sizes[-1], ranges, ndim)
        ]
    return tuple(chains)


class Tables:
    """Builds each step's choices from a boundary state, through the op catalog only."""

    def __init__(self, problem: Problem, deadline: Deadline) -> None:
        self.problem = problem
        self.deadline = deadline
        self.track_rf = problem.constraints.receptive_field is not None
        self._cache: dict[tuple[int, State], list[Choice]] = {}

    def choices(self, index: int, source: State) -> list[Choice]:
        key = (index, source)
        if key not in self._cache:
            self._cache[key] = self._build(index, source)
        return self._cache[key]

    def _build(self, index: int, source: State) -> list[Choice]:
        """Every valid choice for step ``index`` from ``source``, over the step's alternative kinds."""
        problem = self.problem
        out: list[Choice] = []
        last = index == problem.n_steps - 1
        for ops in problem.steps[index]:
            for recipes, sizes, runtime in self._rows(index, ops, source[0]):
                self.deadline.check("building tables")
                for c_out in problem.channel_options(index + 1):
                    choice = self._choice(index, source, ops, recipes, sizes, c_out, last, runtime)
                    if choice is not None:
                        out.append(choice)
        out.sort(key=lambda c: c.order)
        return out

    def _rows(self, index: int, ops: tuple[str, ...], size: tuple[int, ...]) -> list[Row]:
        """Recipe rows of one alternative (a kind or composite) landing on the step's target sizes.

        A state's sizes hold every declared input's axes (entry ``e`` is axis
        ``e % ndim``); one recipe must be valid for all of them.
        """
        problem = self.problem
        ranges, ndim = problem.ranges[index], problem.ndim
        spec = problem.sizes[index + 1]
        entries: list[dict[tuple[AxisRecipe, ...], tuple[int, ...]]] = []
        for e, n in enumerate(size):
            allowed = {}
            for chain, passed in recipe_chains(ops, ranges, n, ndim):
                reached = passed[-1]
                if (spec.fixed[e] == reached) if spec.fixed is not None else (spec.low <= reached <= spec.high):
                    allowed[chain] = passed
            entries.append(allowed)
        rows: list[Row] = []
        if problem.per_axis:
            per_axis = [sorted(set.intersection(*(set(d) for d in entries[a::ndim]))) for a in range(ndim)]
            for keys in itertools.product(*per_axis):
                recipes = tuple(tuple(keys[a][j] for a in range(ndim)) for j in range(len(ops)))
                sizes = tuple(tuple(d[keys[e % ndim]][j] for e, d in enumerate(entries)) for j in range(len(ops) + 1))
                rows.append((recipes, sizes, False))
        else:
            for key in sorted(set.intersection(*(set(d) for d in entries))):
                recipes = tuple((key[j],) * ndim for j in range(len(ops)))
                sizes = tuple(tuple(d[key][j] for d in entries) for j in range(len(ops) + 1))
                rows.append((recipes, sizes, False))
            if problem.inputs > 1 and ops == ("conv_transpose",) and spec.fixed is not None:
                rows += self._runtime_rows(ranges, size, spec.fixed, {r[0] for r, _, _ in rows})
        return rows

    def _runtime_rows(
        self, ranges: Ranges, size: tuple[int, ...], target: tuple[int, ...], fixed: set[tuple[AxisRecipe, ...]]
    ) -> list[Row]:
        """Transposed convs that reach every input's size only with ``output_size=`` at run time.

        Torch then picks output_padding per call, accepting sizes from the op=0 size up to stride − 1
        more (whatever the dilation): the catalog's :meth:`ConvTranspose.size_range` says which.
        """
        kind = KINDS["conv_transpose"]
        ndim = self.problem.ndim
        assert isinstance(kind, ConvTranspose)
        bases = {r._replace(output_padding=0) for r, _ in kind.recipes(size[0], ranges, ndim)}
        rows: list[Row] = []
        for base in sorted(bases):
            spans = [kind.size_range(base, n) for n in size]
            if any(s is None or not s[0] <= want <= s[1] for s, want in zip(spans, target, strict=True)):
                continue
            low = spans[0][0] if spans[0] is not None else 0
            reference = base._replace(output_padding=target[0] - low)
            if (reference,) in fixed:
                continue  # one fixed output_padding already serves every size
            rows.append((((reference,) * ndim,), (tuple(size), tuple(target)), True))
        return rows

    def _choice(
        self,
        index: int,
        source: State,
        ops: tuple[str, ...],
        recipes: tuple[tuple[AxisRecipe, ...], ...],
        sizes: tuple[tuple[int, ...], ...],
        c_out: int,
        last: bool,
        runtime: bool = False,
    ) -> Choice | None:
        problem = self.problem
        size, channels, jump = source
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
            )
            if runtime:
                layers = (replace(step.layers[0], size_from=problem.size_from[index]), *step.layers[1:])
                step = replace(step, layers=layers)
            merged = step.out_shape[0]
            if merge is not None:
                skip = problem.skip_shapes[index]
                assert skip is not None
                merged = merge.out_shape(step.out_shape, skip)[0]
        except InputError:
            return None
        if step.out_shape[0] != c_out:
            return None
        checker = any(KINDS[op].checkerboard(r) for op, per in zip(ops, recipes, strict=True) for r in per)
        gaps = any(
            KINDS[op].gaps(per[e % ndim], n)
            for j, (op, per) in enumerate(zip(ops, recipes, strict=True))
            for e, n in enumerate(sizes[j])
        )
        growth, new_jump = self._receptive(ops, recipes, jump)
        shared = self._shared(ops, recipes) if problem.constraints.same_recipe else ()
        target: State = (tuple(sizes[-1]), merged, new_jump)
        return Choice(
            step=step,
            recipes=recipes,
            source=source,
            target=target,
            params=step.params.total,
            macs=step.macs,
            rf_growth=growth,
            checkerboard=checker,
            gaps=gaps,
            shared=shared,
        )

    def _receptive(
        self, ops: tuple[str, ...], recipes: tuple[tuple[AxisRecipe, ...], ...], jump: tuple[int, ...]
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        if not self.track_rf:
            return (), ()
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

    @staticmethod
    def _shared(ops: tuple[str, ...], recipes: tuple[tuple[AxisRecipe, ...], ...]) -> tuple[int, ...]:
        for op, per in zip(ops, recipes, strict=True):
            if KINDS[op].has_weights:
                return tuple(v for r in per for v in (r.kernel, r.stride, r.padding))
        return ()
