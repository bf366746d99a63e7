"""Stage 5: the smallest change to named layers that makes a failing size run with the expected output.

Candidates are the catalog's own recipes (:meth:`OpKind.recipes`) for each conv, transposed conv
and pool the size passes through, keeping kernel, stride and dilation (the weights stay the
same): another ``padding``, ``output_padding`` or ``ceil_mode``; and, at the merge where sizes
meet, a pad or crop of one side.  Each is tried by running the compiled graph at the failing
size; a fix of one change beats two, one that keeps every size that ran before beats one that
does not, then the smaller change wins.  The winner is then applied to the real model (module
attributes, or a pad/crop hook) and run on the meta device.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..core.recipe import AxisRecipe, Ranges
from .fixes import Change, Fix
from .graph import BroadcastStep, CatalogStep, CatStep, Diverged, Edits, Failure, KeepStep, OutputSize, Step
from .program import Program

if TYPE_CHECKING:
    from .report import AxisReport
    from .runner import ModelRunner
    from .target import InputShape

#: Fix searches stop after this many graph runs.
MAX_TRIES = 4000
#: Fixes whose effect on the sizes that ran before is measured (the fewest layers, smallest first).
KEPT_TRIED = 12
#: Recipe changes tried from each partial fix: those of the layers nearest the failure.
NEAREST = 24


def _names(rank: int) -> tuple[str, ...]:
    from .report import axis_name

    return tuple(axis_name(a, rank) for a in range(rank))


def recipe_edits(
    program: Program, shape: tuple[int, ...], axis: int, edits: Edits
) -> Iterator[tuple[Edits, tuple[Change, ...]]]:
    """Every single recipe change (same kernel, stride, dilation) the catalog allows at the sizes reached."""
    env, outcome = program.env_at(shape, edits)
    stop = outcome.step if isinstance(outcome, Failure) else len(program.steps)
    for step in program.layers():
        if (
            step.index > stop
            or not isinstance(step, CatalogStep)
            or step.kind.name not in ("conv", "conv_transpose", "max_pool", "avg_pool")
        ):
            continue
        source = env[step.source]
        if not source:
            continue
        spatial = axis - (len(source) - step.ndim)
        if not 0 <= spatial < step.ndim:
            continue
        current = step.recipes(env, edits)
        if current is None:
            continue
        r = current[spatial]
        # The catalog says which fields the kind has and which values torch accepts (a pool's padding
        # limit among them): these ranges are only wide enough to hold every fix worth listing.
        pool = "ceil_mode" in step.kind.search_fields
        ranges = Ranges(
            kernel=(r.kernel, r.kernel),
            stride=(r.stride, r.stride),
            dilation=(r.dilation, r.dilation),
            padding=(0, max(r.kernel, r.padding)),
            output_padding=(0, max(r.stride, r.dilation) - 1),
            ceil_mode=(False, True) if pool else (False,),
        )
        for alt, _ in step.kind.recipes(source[len(source) - step.ndim + spatial], ranges, step.ndim):
            if alt == r or (pool and alt.ceil_mode != r.ceil_mode and alt._replace(ceil_mode=r.ceil_mode) != r):
                continue  # ceil_mode is one flag for every axis: changed alone
            new = list(current)
            if alt.ceil_mode != r.ceil_mode:
                new = [a._replace(ceil_mode=alt.ceil_mode) for a in current]
            else:
                new[spatial] = alt
            changes = tuple(
                Change(
                    step.node.where,
                    step.kind.name,
                    step.index,
                    name,
                    axis,
                    getattr(r, name),
                    getattr(alt, name),
                    line=step.node.line,
                )
                for name in ("padding", "output_padding", "ceil_mode")
                if getattr(alt, name) != getattr(r, name)
            )
            yield {**edits, step.index: new}, changes


def merge_edits(program: Program, failure: Failure, edits: Edits) -> Iterator[tuple[Edits, tuple[Change, ...]]]:
    """At the merge where sizes met: a transposed conv feeding one side called with ``output_size=`` the
    other side's size, or a pad or crop of one side to the other's size."""
    step = next((s for s in program.layers() if s.index == failure.step), None)
    if not isinstance(step, CatStep | BroadcastStep) or failure.axis is None:
        return
    producers = {v: s for s in program.layers() for v in s.outputs}
    merge = step.node.label
    parts = [(i, p) for i, p in enumerate(step.parts) if isinstance(p, int)]
    for part, vid in parts:
        mine = failure.sizes[part]
        for other_part, other_vid in parts:
            other = failure.sizes[other_part]
            if other == mine or (isinstance(step, BroadcastStep) and other == 1):
                continue
            conv_t = _feeding_conv_transpose(producers, vid)
            if conv_t is not None and conv_t.index not in edits:
                source = producers.get(other_vid)
                yield (
                    {**edits, conv_t.index: OutputSize(other_vid)},
                    (
                        Change(
                            conv_t.node.where,
                            "conv_transpose",
                            conv_t.index,
                            "output_size",
                            failure.axis,
                            "none",
                            source.node.label if source is not None else "the input",
                            merge,
                            other_vid,
                        ),
                    ),
                )
            producer = producers.get(vid)
            merged = dict(edits.get(step.index) or {})
            merged[part] = (failure.axis, other - mine)
            yield (
                {**edits, step.index: merged},
                (
                    Change(
                        producer.node.where if producer else "",
                        producer.op if producer else "input",
                        producer.index if producer else -1,
                        "pad",
                        failure.axis,
                        0,
                        other - mine,
                        merge,
                        part,
                        producer.node.line if producer else "",
                    ),
                ),
            )


def _feeding_conv_transpose(producers: dict[int, Step], vid: int) -> CatalogStep | None:
    """The layer taking ``output_size=`` (a transposed conv) whose output reaches ``vid`` unchanged in shape."""
    step = producers.get(vid)
    while isinstance(step, KeepStep):
        step = producers.get(step.source)
    if isinstance(step, CatalogStep) and step.kind.takes_output_size:
        return step
    return None


def find_fix(
    report: AxisReport,
    programs: Sequence[Program],
    runner: ModelRunner,
    shape: InputShape,
    size: int,
    model: nn.Module,
    exact_output: bool = True,
) -> AxisReport:
    """``report`` with the smallest fix for ``size`` (searched on the graph that holds there, verified on the model)."""
    axis = report.axis
    sizes = dict(report.reference)
    at = shape.at({**sizes, axis: size})
    rank = len(at)
    names = _names(rank)
    # The output should keep the input size where the model mostly does (a U-Net), else follow its formula.
    if report.keeps.count * 2 >= report.runs.count:
        expected: int | None = size
    else:
        expected = report.output(size) if report.output.exact else None
    if expected is not None and expected < 1:
        expected = None  # the formula has no output here: any size that runs will do
    if not exact_output:
        expected = None
    ran = [n for n in report.runs.sizes]
    tries = 0

    def good(edits: Edits) -> tuple[int, ...] | None:
        nonlocal tries
        tries += 1
        out = program.run(at, edits)
        if isinstance(out, tuple) and len(out[0]) == rank and (expected is None or out[0][axis] == expected):
            return out[0]
        return None

    program = next((p for p in programs if not isinstance(p.run(at), Diverged)), programs[0])
    first = program.run(at)
    verdict = report.verdict(size) if report.low <= size <= report.high else None
    runs = verdict.out if verdict is not None else (first if isinstance(first, tuple) else None)

    def none(note: str) -> AxisReport:
        return replace(report, fix=Fix(size, axis, names, (), None, expected, 0, len(ran), note=note))

    if runs is not None:
        if len(runs[0]) == rank and runs[0][axis] == size:
            return none(f"{names[axis]}={size} runs already and keeps its size: nothing to fix")
        if not exact_output:
            return none(f"{names[axis]}={size} runs already")
        # It runs, but the output does not keep the size: the fix sought is one that keeps it.
        expected = size
        if isinstance(first, tuple):
            first = Failure(len(program.steps), "", "output", axis, (first[0][axis],), "output size")
    if not isinstance(first, Failure):
        why = verdict.failure.reason if verdict is not None and verdict.failure is not None else "?"
        return none(f"the graph runs this size but the model does not ({why}); no fix searched")
    found: list[tuple[tuple[Change, ...], Edits, tuple[int, ...]]] = []
    frontier: list[tuple[tuple[Change, ...], Edits, Failure]] = [((), {}, first)]
    for _depth in range(3):
        next_frontier: list[tuple[tuple[Change, ...], Edits, Failure]] = []
        for changes, edits, failure in frontier:
            # output_size= first (it serves every size), then recipe changes, then a pad or crop.
            # Layers nearest the failure first: the sizes meeting there come from them.
            recipes = sorted(
                recipe_edits(program, at, axis, edits), key=lambda c: (failure.step - c[1][0].step, _cost(c[1]))
            )[:NEAREST]
            candidates = sorted([*merge_edits(program, failure, edits), *recipes], key=lambda c: _cost(c[1]))
            for new_edits, change in candidates:
                if tries > MAX_TRIES:
                    break
                out = good(new_edits)
                if out is not None:
                    found.append(((*changes, *change), new_edits, out))
                    continue
                after = program.run(at, new_edits)
                if isinstance(after, tuple) and len(after[0]) == rank:
                    # Runs, but lands elsewhere: a later layer may still bring it to the expected size.
                    after = Failure(len(program.steps), "", "output", axis, (after[0][axis],), "output size")
                if isinstance(after, Failure) and after.step > failure.step:
                    next_frontier.append(((*changes, *change), new_edits, after))
        if found:
            break
        # The partial fixes that get furthest through the model first, the smallest among them.
        frontier = sorted(next_frontier, key=lambda f: (-f[2].step, _cost(f[0])))[:40]
    if not found and expected is not None:
        # Nothing lands on the expected size: settle for running, and say so.
        relaxed = find_fix(report, programs, runner, shape, size, model, exact_output=False)
        if relaxed.fix is not None and relaxed.fix.changes:
            note = f"no change gives {names[axis]}={expected} out; this one gives {relaxed.fix.output}"
            return replace(relaxed, fix=replace(relaxed.fix, note=note))
    if not found:
        return replace(report, fix=Fix(size, axis, names, (), None, expected, 0, len(ran)))

    def kept(edits: Edits) -> int:
        return sum(isinstance(program.run(shape.at({**sizes, axis: n}), edits), tuple) for n in ran)

    found.sort(key=lambda f: (_layers(f[0]), _cost(f[0])))
    # The fix that keeps the most sizes that ran wins, then the fewest layers, then the smallest change.
    scored = sorted(((-kept(e), _layers(c), _cost(c), c, e, o) for c, e, o in found[:KEPT_TRIED]), key=lambda t: t[:3])
    minus_kept, _, _, changes, edits, out = scored[0]
    verified, real, where = verify(runner, at, changes, program, edits)
    ok = real is not None and len(real) == rank and (expected is None or real[axis] == expected)
    return replace(
        report,
        fix=Fix(
            size,
            axis,
            names,
            changes,
            out,
            expected,
            -minus_kept,
            len(ran),
            None if verified is None else bool(verified and ok),
            real,
            checked_on=where,
            edits=edits,
        ),
    )


def joint_fix(
    reports: Sequence[AxisReport], programs: Sequence[Program], runner: ModelRunner, shape: InputShape, size: int
) -> Fix | None:
    """The fixes of every ``?`` axis at once, at the shape with every one of them at ``size`` (what ``--emit``
    writes), run on the graph and verified on the model; None with fewer than two axes fixed at ``size``."""
    fixes = [r.fix for r in reports]
    if len(reports) < 2 or any(f is None or f.size != size or f.edits is None for f in fixes):
        return None
    at = shape.at({r.axis: size for r in reports})
    names = _names(len(at))
    title = "=".join(r.name for r in reports) + f"={size}"
    changes = tuple(c for f in fixes if f is not None for c in f.changes)
    program = next((p for p in programs if not isinstance(p.run(at), Diverged)), programs[0])
    env, _ = program.env_at(at)
    edits: Edits = {}
    for f in fixes:
        assert f is not None and f.edits is not None
        for index, edit in f.edits.items():
            if index not in edits:
                edits[index] = edit
                continue
            combined = _combine(program, index, edits[index], edit, env)
            if combined is None:
                return Fix(size, reports[0].axis, names, (), None, None, 0, 0, title=title,
                           note=f"the axes' fixes change {changes[0].layer or 'one call'} in ways that conflict")
            edits[index] = combined
    out = program.run(at, edits)
    if not isinstance(out, tuple):
        reason = out.reason if isinstance(out, Failure) else "a branch of the model flips"
        return Fix(size, reports[0].axis, names, (), None, None, 0, 0, title=title,
                   note=f"the axes' fixes together do not run at {list(at)}: {reason}")
    verified, real, where = verify(runner, at, changes, program, edits)
    ok = None if verified is None else bool(verified and real == out[0])
    return Fix(size, reports[0].axis, names, changes, out[0], size, 0, 0, ok, real, title=title,
               checked_on=where, edits=edits)


def _combine(program: Program, index: int, a: Any, b: Any, env: Any) -> Any:
    """Two axes' edits of one step as one (None: they conflict)."""
    if isinstance(a, OutputSize) or isinstance(b, OutputSize):
        return a if a == b else None
    if isinstance(a, dict) and isinstance(b, dict):
        return None if set(a) & set(b) else {**a, **b}
    step = next(s for s in program.layers() if s.index == index)
    if not isinstance(step, CatalogStep) or not isinstance(a, list) or not isinstance(b, list):
        return None
    base = step.recipes(env, {}) or []
    return [x if x != r else y for x, y, r in zip(a, b, base, strict=True)]


def _layers(changes: Sequence[Change]) -> int:
    return len({c.step for c in changes})


def _cost(changes: Sequence[Change]) -> int:
    return sum(c.cost for c in changes)


def verify(
    runner: ModelRunner,
    shape: tuple[int, ...],
    changes: Sequence[Change],
    program: Program,
    edits: Edits,
) -> tuple[bool | None, tuple[int, ...] | None, str]:
    """Apply ``changes`` to the model's meta copy and (where it fits in memory) its CPU copy, run each once at
    ``shape``, undo them: (ran on both, output shape, where).  None: a change cannot be applied (a call in
    the model's own forward)."""
    env, _ = program.env_at(shape, edits)
    copies: list[tuple[str, nn.Module, Callable[[tuple[int, ...]], Any]]] = [("meta", runner.model, runner)]
    if runner.cpu_fits(program.trace, math.prod(shape) / max(1, math.prod(program.trace.shapes[0]))):
        copies.append(("CPU", runner.cpu_model(), runner.cpu))
    out: Any = None
    for _name, model, run in copies:
        undo: list[Any] = []
        try:
            for change in changes:
                if not _apply(model, change, program, undo, env):
                    return None, None, "meta"
            out = run(shape)
        finally:
            for action in reversed(undo):
                action()
        if isinstance(out, Failure):
            return False, None, " and ".join(n for n, _, _ in copies)
    return True, out[0], " and ".join(n for n, _, _ in copies)


def _apply(model: nn.Module, change: Change, program: Program, undo: list[Any], env: Any) -> bool:
    if not change.layer:
        return False  # a call in the model's own forward: only its source can change
    try:
        module = model.get_submodule(change.layer)
    except AttributeError:
        return False
    if change.field == "output_size":
        step = next(s for s in program.layers() if s.index == change.step)
        sizes = list(env[step.outputs[0]][-getattr(step, "ndim", 2) :])

        def sized(mod: nn.Module, args: Any, kwargs: dict[str, Any]) -> Any:
            return args, {**kwargs, "output_size": sizes}

        handle = module.register_forward_pre_hook(sized, with_kwargs=True)
        undo.append(handle.remove)
        return True
    if change.field == "pad":
        axis, delta = change.axis, int(change.new)

        def hook(mod: nn.Module, args: Any, out: Any) -> Any:
            if not isinstance(out, torch.Tensor):
                return out
            # F.pad lists (before, after) pairs from the last axis back: ours is the (R-1-axis)-th pair.
            order = [0] * (2 * (out.dim() - axis))
            order[2 * (out.dim() - 1 - axis) + 1] = delta
            return torch.nn.functional.pad(out, order)

        handle = module.register_forward_hook(hook)
        undo.append(handle.remove)
        return True
    step = next(s for s in program.layers() if s.index == change.step)
    assert isinstance(step, CatalogStep)
    spatial = change.axis - (len(step.prefix_in))
    attribute = change.field
    if not hasattr(module, attribute):
        return False
    old = getattr(module, attribute)
    if attribute == "ceil_mode":
        setattr(module, attribute, bool(change.new))
    else:
        values = list(old) if isinstance(old, tuple | list) else [old] * step.ndim
        values[spatial] = int(change.new)
        setattr(module, attribute, tuple(values))
    undo.append(lambda: setattr(module, attribute, old))
    return True


__all__ = ["AxisRecipe", "find_fix"]
