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

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..recipe import AxisRecipe, Ranges
from .graph import BroadcastStep, CatalogStep, CatStep, Edits, Failure, KeepStep, OutputSize, Step
from .program import Program

if TYPE_CHECKING:
    from .decide import ModelRunner
    from .report import AxisReport
    from .target import InputShape

#: Fix searches stop after this many graph runs.
MAX_TRIES = 4000
#: Fixes whose effect on the sizes that ran before is measured (the fewest layers, smallest first).
KEPT_TRIED = 12
#: Recipe changes tried from each partial fix: those of the layers nearest the failure.
NEAREST = 24


@dataclass(frozen=True)
class Change:
    """One recipe change: ``field`` of layer ``layer`` on tensor axis ``axis`` from ``old`` to ``new``.

    ``field`` is a recipe field (``padding``, ``output_padding``, ``ceil_mode``) or ``pad``
    (``new`` extra pixels at the end of the axis, negative: a crop) of the tensor ``layer``
    gives to the merge ``merge``.
    """

    layer: str
    op: str
    step: int
    field: str
    axis: int
    old: int | bool | str
    new: int | bool | str
    merge: str | None = None
    part: int | None = None

    @property
    def cost(self) -> int:
        """How big the change is: pixels of padding moved; a pad or crop costs two more than a recipe change."""
        if self.field == "output_size":
            return 0
        if self.field == "pad":
            return abs(int(self.new)) + 2
        return abs(int(self.new) - int(self.old))

    def text(self, names: Sequence[str]) -> str:
        name = names[self.axis] if self.axis < len(names) else f"axis {self.axis}"
        if self.field == "pad":
            how = f"pad by {self.new}" if int(self.new) > 0 else f"crop by {-int(self.new)}"
            return f"{how} at the end of {name} the output of {self.layer or '<model>'} ({self.op}) before {self.merge}"
        if self.field == "output_size":
            return (
                f"{self.layer} (conv_transpose): call it with output_size= the size of the output of {self.new} "
                f"(the other side of {self.merge})"
            )
        return f"{self.layer or '<model>'} ({self.op}): {self.field} on {name} {self.old} → {self.new}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "op": self.op,
            "field": self.field,
            "tensor_axis": self.axis,
            "old": self.old,
            "new": self.new,
            "merge": self.merge,
        }


@dataclass(frozen=True)
class Fix:
    """Changes that make ``size`` run; ``output`` the output shape they give there."""

    size: int
    axis: int
    names: tuple[str, ...]
    changes: tuple[Change, ...]
    output: tuple[int, ...] | None
    expected: int | None
    keeps: int
    ran: int
    verified: bool | None = None
    verified_output: tuple[int, ...] | None = None
    note: str | None = None

    def lines(self) -> list[str]:
        n = self.names[self.axis]
        if not self.changes:
            return [f"fix for {n}={self.size}: none found ({self.note or 'no recipe change makes it run'})"]
        head = f"fix for {n}={self.size}:"
        body = [f"  - {c.text(self.names)}" for c in self.changes]
        tail = f"  output {list(self.output or ())}; still runs {self.keeps} of the {self.ran} sizes that ran" + (
            "" if self.verified is None else f"; applied to the model and run: {'ok' if self.verified else 'FAILED'}"
        )
        return [head, *body, tail] + ([f"  ({self.note})"] if self.note else [])

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "changes": [c.to_dict() for c in self.changes],
            "output": list(self.output) if self.output else None,
            "expected": self.expected,
            "keeps": self.keeps,
            "of": self.ran,
            "verified": self.verified,
            "note": self.note,
        }


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
                Change(step.node.where, step.kind.name, step.index, name, axis, getattr(r, name), getattr(alt, name))
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

    from .graph import Diverged

    program = next((p for p in programs if not isinstance(p.run(at), Diverged)), programs[0])
    first = program.run(at)
    if not isinstance(first, Failure):
        return replace(
            report,
            fix=Fix(
                size,
                axis,
                names,
                (),
                None,
                expected,
                0,
                len(ran),
                note="the graph cannot decide this size; no fix searched",
            ),
        )
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
    scored = sorted(((_layers(c), -kept(e), _cost(c), c, e, o) for c, e, o in found[:KEPT_TRIED]), key=lambda t: t[:3])
    _, minus_kept, _, changes, edits, out = scored[0]
    verified, real = verify(model, runner, at, changes, program, edits)
    ok = real is not None and len(real) == rank and (expected is None or real[axis] == expected)
    return replace(
        report, fix=Fix(size, axis, names, changes, out, expected, -minus_kept, len(ran), verified and ok, real)
    )


def _layers(changes: Sequence[Change]) -> int:
    return len({c.step for c in changes})


def _cost(changes: Sequence[Change]) -> int:
    return sum(c.cost for c in changes)


def verify(
    model: nn.Module,
    runner: ModelRunner,
    shape: tuple[int, ...],
    changes: Sequence[Change],
    program: Program,
    edits: Edits,
) -> tuple[bool | None, tuple[int, ...] | None]:
    """Apply ``changes`` to the model, run it once on the meta device, undo them: (ran, output shape)."""
    undo: list[Any] = []
    env, _ = program.env_at(shape, edits)
    try:
        for change in changes:
            if not _apply(model, change, program, undo, env):
                return None, None
        out = runner(shape)
    finally:
        for action in reversed(undo):
            action()
    if isinstance(out, Failure):
        return False, None
    return True, out[0]


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


def fixed_recipes(changes: Sequence[Change], program: Program) -> dict[str, dict[str, Any]]:
    """The changes as module path → recipe field → per-axis values, for editing a design."""
    out: dict[str, dict[str, Any]] = {}
    for change in changes:
        step = next(s for s in program.layers() if s.index == change.step)
        if isinstance(step, CatalogStep):
            out.setdefault(change.layer, {})[change.field] = (change.axis - len(step.prefix_in), change.new)
    return out


__all__ = ["AxisRecipe", "Change", "Fix", "find_fix"]
