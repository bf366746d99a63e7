"""Stage 3a: the recorded graph as a program over shapes, run once per input size.

Each recorded call becomes one step that computes its outputs' shapes from its inputs':

- **catalog** steps (conv, conv_transpose, max/avg pool, upsample by an integer scale,
  pixel (un)shuffle) ask the op catalog (:mod:`archsolve.catalog`) for every axis;
- **merge** steps (``cat``, ``+`` and other broadcasting element-wise calls) check the sizes
  that meet there;
- **shape-keeping** steps (activations, batch norm, dropout) copy their input's shape;
- every other call is a **meta** step: the call itself, replayed on meta tensors of the new
  shapes (cheap: one op, no weights), cached by its input shapes.

A recorded :class:`~archsolve.check.capture.Guard` that no longer holds means the model's
Python would take another branch: the program answers :class:`Diverged` and the caller
runs the whole model on the meta device instead.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..catalog import KINDS
from ..catalog.base import OpKind
from ..core.recipe import AxisRecipe
from ..errors import first_line
from .capture import Env, Guard, Node, Trace, Tracked, call, call_label, has_tracked, tensors_in


@dataclass(frozen=True)
class Failure:
    """Where a size breaks: the step, the tensor axis (None when not one axis) and the sizes meeting there."""

    step: int
    where: str
    op: str
    axis: int | None
    sizes: tuple[int, ...]
    reason: str
    line: str = ""  # file.py:N of a call in the model's own code

    @property
    def label(self) -> str:
        return call_label(self.where, self.op, self.line)


@dataclass(frozen=True)
class Diverged:
    """A size-dependent branch of the model's Python flips here: the graph cannot stand in for the model."""

    guard: Guard


@dataclass(frozen=True)
class OutputSize:
    """A fix-search edit: the transposed conv called with ``output_size=`` the spatial size of value ``source``."""

    source: int


Shapes = tuple[tuple[int, ...], ...]
Outcome = Shapes | Failure | Diverged

#: Per-step recipe changes tried by the fix search: step index → per-axis recipes, or merge-input padding.
Edits = dict[int, Any]


class Step(ABC):
    """One compiled call: ``run`` writes its outputs' shapes into ``env`` or says why it cannot."""

    category: ClassVar[str]

    def __init__(self, node: Node) -> None:
        self.node = node
        self.index = node.index
        self.inputs = node.inputs
        self.outputs = node.outputs

    @property
    def op(self) -> str:
        return self.node.name

    def fail(self, axis: int | None, sizes: Sequence[int], reason: str) -> Failure:
        return Failure(self.index, self.node.where, self.op, axis, tuple(sizes), reason, self.node.line)

    @abstractmethod
    def run(self, env: Env, edits: Edits) -> Failure | Diverged | None: ...


def bind_args(node: Node, names: Sequence[str], defaults: dict[str, Any]) -> dict[str, Any]:
    """Positional and keyword arguments of a recorded call, by name."""
    bound = dict(defaults)
    bound.update(zip(names, node.args, strict=False))
    bound.update({k: v for k, v in node.kwargs.items() if k in names})
    return bound


def per_axis(value: Any, ndim: int) -> list[Any]:
    """``3`` or ``(3, 5)`` as one value per axis (torch's convention)."""
    if isinstance(value, list | tuple):
        return list(value) if len(value) == ndim else [value[0]] * ndim
    return [value] * ndim


def _evaluate(value: Any, env: Env) -> Any:
    """A recorded argument at the sizes in ``env``: Tracked ints recomputed, containers rebuilt."""
    if isinstance(value, Tracked):
        return value.fn(env)
    if isinstance(value, torch.Size):
        return tuple(_evaluate(v, env) for v in value)
    if isinstance(value, list | tuple):
        return type(value)(_evaluate(v, env) for v in value)
    if isinstance(value, dict):
        return {k: _evaluate(v, env) for k, v in value.items()}
    if isinstance(value, slice):
        return slice(_evaluate(value.start, env), _evaluate(value.stop, env), _evaluate(value.step, env))
    return value


def is_dynamic(value: Any) -> bool:
    """Whether a recorded argument holds sizes read from a traced tensor (recomputed per size)."""
    return has_tracked(value)


class CatalogStep(Step):
    """A layer the catalog knows: each spatial axis through ``kind.out_size``; channels as traced."""

    category = "catalog"

    def __init__(
        self,
        node: Node,
        kind: OpKind,
        ndim: int,
        recipes: Callable[[Env], list[AxisRecipe] | None],
        dynamic: bool,
        trace: Trace,
        replay: ReplayStep,
    ) -> None:
        super().__init__(node)
        self.kind, self.ndim = kind, ndim
        self.recipes_at = recipes
        self.static = None if dynamic else recipes(trace.shapes)
        self.source = node.inputs[0]
        shape_in = trace.shapes[self.source]
        self.prefix_in = shape_in[: len(shape_in) - ndim]
        self.prefixes_out = [trace.shapes[v][: len(trace.shapes[v]) - ndim] for v in node.outputs]
        self.replay = replay
        self.memo: dict[tuple[int, ...], Any] = {}

    @property
    def op(self) -> str:
        return self.kind.name

    def recipes(self, env: Env, edits: Edits) -> list[AxisRecipe] | None:
        edit = edits.get(self.index)
        base = self.static if self.static is not None else self.recipes_at(env)
        if isinstance(edit, OutputSize):
            return None if base is None else self.sized(base, env, edit.source)
        if edit is not None:
            return list(edit)
        return base

    def sized(self, base: list[AxisRecipe], env: Env, source: int) -> list[AxisRecipe] | None:
        """Torch's run-time choice for ``output_size=``: the output_padding that lands on the size, if in range."""
        target, given = env[source], env[self.source]
        if len(target) < self.ndim:
            return None
        out = []
        for r, n, t in zip(base, given[-self.ndim :], target[-self.ndim :], strict=True):
            low = self.kind.out_size(r._replace(output_padding=0), n, self.ndim)
            op = -1 if low is None or not 0 <= t - low < r.stride else t - low  # -1: torch's ValueError
            out.append(r._replace(output_padding=op))
        return out

    def run(self, env: Env, edits: Edits) -> Failure | Diverged | None:
        shape = env[self.source]
        if self.static is not None and not edits:
            # The hot path: a fixed recipe, memoised by the spatial sizes it sees.
            found = self.memo.get(shape)
            if found is None:
                found = self.compute(shape, self.static)
                self.memo[shape] = found
        else:
            found = self.compute(shape, self.recipes(env, edits), env, edits)
        if isinstance(found, Failure):
            return found
        if not isinstance(found, tuple):  # _REPLAY
            return self.replay.run(env, edits)
        for v, p in zip(self.outputs, self.prefixes_out, strict=True):
            env[v] = (*p, *found)
        return None

    def compute(
        self,
        shape: tuple[int, ...],
        recipes: list[AxisRecipe] | None,
        env: Env | None = None,
        edits: Edits | None = None,
    ) -> tuple[int, ...] | Failure | object:
        cut = len(shape) - self.ndim
        if shape[:cut] != self.prefix_in or recipes is None:
            return _REPLAY  # channels or batch changed: only torch knows
        out = []
        out_size, ndim = self.kind.out_size, self.ndim
        for axis, (r, n) in enumerate(zip(recipes, shape[cut:], strict=True)):
            size = out_size(r, n, ndim)
            if size is None:
                field = ", ".join(f"{k}={v}" for k, v in self.kind.describe(r).items())
                return self.fail(cut + axis, (n,), f"{self.kind.name} ({field}) cannot take size {n}")
            out.append(size)
        return tuple(out)


#: A catalog step's answer when torch itself must be asked.
_REPLAY = object()


class InterpolateStep(Step):
    """``F.interpolate``: to ``size=`` (possibly taken from another tensor), or by an integer scale (catalog)."""

    category = "catalog"
    UPSAMPLE = KINDS["upsample"]

    def __init__(self, node: Node, trace: Trace, replay: ReplayStep) -> None:
        super().__init__(node)
        args = bind_args(
            node,
            ("input", "size", "scale_factor", "mode", "align_corners", "recompute_scale_factor"),
            {"size": None, "scale_factor": None, "recompute_scale_factor": None},
        )
        self.source = node.inputs[0]
        rank = len(trace.shapes[self.source])
        self.ndim = rank - 2
        self.size = args["size"]
        self.scales: list[int] | None = None
        if self.size is None and args["scale_factor"] is not None and not args["recompute_scale_factor"]:
            scales = per_axis(args["scale_factor"], self.ndim)
            if all(float(s).is_integer() and s >= 1 for s in scales):
                self.scales = [int(s) for s in scales]
        self.replay = replay

    @property
    def op(self) -> str:
        return "upsample" if self.scales is not None else "interpolate"

    @property
    def decided(self) -> bool:
        return self.size is not None or self.scales is not None

    def run(self, env: Env, edits: Edits) -> Failure | Diverged | None:
        shape = env[self.source]
        if self.size is not None:
            sizes = per_axis(_evaluate(self.size, env), self.ndim)
            if any(s < 1 for s in sizes):
                return self.replay.run(env, edits)
            env[self.outputs[0]] = (*shape[:2], *sizes)
            return None
        if self.scales is None:
            return self.replay.run(env, edits)
        out = []
        for axis, (s, n) in enumerate(zip(self.scales, shape[2:], strict=True)):
            size = self.UPSAMPLE.out_size(AxisRecipe(stride=s), n, self.ndim)
            if size is None:
                return self.fail(axis + 2, (n,), f"upsample by {s} cannot take size {n}")
            out.append(size)
        env[self.outputs[0]] = (*shape[:2], *out)
        return None


class CatStep(Step):
    """``torch.cat``: every size but the joined axis must agree."""

    category = "merge"

    def __init__(self, node: Node, trace: Trace) -> None:
        super().__init__(node)
        args = bind_args(node, ("tensors", "dim"), {"dim": 0})
        self.dim = int(args["dim"])
        self.parts: list[int | tuple[int, ...]] = []
        ids = node.traced
        for t in args["tensors"]:
            self.parts.append(ids.get(id(t), tuple(t.shape)))

    def run(self, env: Env, edits: Edits) -> Failure | Diverged | None:
        shapes = [env[p] if isinstance(p, int) else p for p in self.parts]
        shapes = _padded(self.index, shapes, edits)
        rank = len(shapes[0])
        dim = self.dim % rank
        for axis in range(rank):
            if axis == dim:
                continue
            sizes = [s[axis] for s in shapes]
            if len(set(sizes)) > 1:
                return self.fail(axis, sizes, f"torch.cat on axis {dim} needs equal sizes on axis {axis}")
        out = list(shapes[0])
        out[dim] = sum(s[dim] for s in shapes)
        env[self.outputs[0]] = tuple(out)
        return None


def _padded(index: int, shapes: list[tuple[int, ...]], edits: Edits) -> list[tuple[int, ...]]:
    """Merge inputs after a pad/crop edit (``{part: (axis, delta)}``) of the fix search."""
    edit = edits.get(index)
    if not edit:
        return shapes
    out = list(shapes)
    for part, (axis, delta) in edit.items():
        s = list(out[part])
        s[axis] += delta
        out[part] = tuple(s)
    return out


class BroadcastStep(Step):
    """Element-wise calls (``+``, ``*``, ``torch.where``): sizes broadcast (equal, or one of them 1)."""

    category = "merge"

    def __init__(self, node: Node, trace: Trace) -> None:
        super().__init__(node)
        self.parts: list[int | tuple[int, ...]] = []
        for t in tensors_in((node.args, node.kwargs)):
            v = node.traced.get(id(t))
            self.parts.append(v if v is not None else tuple(t.shape))
        self.inplace = node.name.endswith("_") and not node.name.endswith("__")

    def run(self, env: Env, edits: Edits) -> Failure | Diverged | None:
        shapes = _padded(self.index, [env[p] if isinstance(p, int) else p for p in self.parts], edits)
        rank = max(len(s) for s in shapes)
        out = []
        for back in range(rank, 0, -1):
            sizes = [s[len(s) - back] for s in shapes if len(s) >= back]
            wide = {n for n in sizes if n != 1}
            if len(wide) > 1:
                return self.fail(rank - back, sizes, f"{self.op}: sizes on axis {rank - back} must match or be 1")
            out.append(wide.pop() if wide else 1)
        if self.inplace and tuple(out) != shapes[0]:
            return self.fail(None, (), f"{self.op} in place cannot grow its tensor")
        for v in self.outputs:
            env[v] = tuple(out)
        return None


class KeepStep(Step):
    """Calls whose output has their first input's shape (activations, batch norm in eval, dropout)."""

    category = "shape-keeping"

    def __init__(self, node: Node, replay: ReplayStep | None = None) -> None:
        super().__init__(node)
        self.source = node.inputs[0]
        # Norms over each sample's own values (instance, group) need more than one value per statistic:
        # the one size rule of these calls, left to torch by replaying the call where it can bite.
        self.replay = replay

    def run(self, env: Env, edits: Edits) -> Failure | Diverged | None:
        shape = env[self.source]
        if self.replay is not None and math.prod(shape[2:]) <= 1:
            return self.replay.run(env, edits)
        for v in self.outputs:
            env[v] = shape
        return None


class GuardStep:
    """A recorded branch: the program stops with :class:`Diverged` where it flips."""

    category = "guard"

    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    def run(self, env: Env, edits: Edits) -> Diverged | None:
        return None if self.guard.check(env) else Diverged(self.guard)


class ReplayStep(Step):
    """Any other call, run again on meta tensors of the new shapes (the catalog does not know it)."""

    category = "meta"

    def __init__(self, node: Node, trace: Trace) -> None:
        super().__init__(node)
        self.dtypes = {v: trace.dtypes[v] for v in node.inputs}
        self.cache: dict[Any, tuple[tuple[int, ...], ...] | str] = {}
        self.dynamic = is_dynamic((node.args, node.kwargs))
        self.calls = 0
        name = node.name
        self.inplace = (
            name == "__setitem__" or (name.endswith("_") and not name.endswith("__")) or name.startswith("__i")
        )

    def run(self, env: Env, edits: Edits) -> Failure | Diverged | None:
        shapes = tuple(env[v] for v in self.inputs)
        args, kwargs = (self.node.args, self.node.kwargs)
        if self.dynamic:
            args, kwargs = _evaluate(args, env), _evaluate(kwargs, env)
            key: Any = (shapes, repr((args, kwargs)))
        else:
            key = shapes
        found = self.cache.get(key)
        if found is None:
            found = self.call(args, kwargs, env)
            self.cache[key] = found
        if isinstance(found, str):
            return self.fail(None, (), found)
        if len(found) != len(self.outputs):  # unbind, split, chunk by a size: the graph's structure changes here
            text = f"{self.op} returned {len(found)} tensors, not {len(self.outputs)} as traced"
            return Diverged(Guard(lambda env: False, self.node.label, text))
        for v, s in zip(self.outputs, found, strict=True):
            env[v] = s
        return None

    def call(self, args: Any, kwargs: Any, env: Env) -> tuple[tuple[int, ...], ...] | str:
        self.calls += 1
        swap = {key: torch.empty(env[v], dtype=self.dtypes[v], device="meta") for key, v in self.node.traced.items()}
        target = self.node.args[0] if self.node.args else None
        if self.inplace and isinstance(target, torch.Tensor) and id(target) not in swap:
            # Written in place: a constant tensor of the model's gets a stand-in, never the write.
            swap[id(target)] = torch.empty(target.shape, dtype=target.dtype, device="meta")
        args, kwargs = _swap(args, swap), _swap(kwargs, swap)
        try:
            with torch.no_grad():
                result = call(self.node.func, args, kwargs)  # recurrent layers on CPU zeros: see call()
        except Exception as exc:  # torch's verdict on this shape, whatever its type
            return first_line(exc)
        if result is None and self.inplace and args and isinstance(args[0], torch.Tensor):
            return (tuple(args[0].shape),)  # __setitem__: the target, its shape unchanged
        return tuple(tuple(t.shape) for t in tensors_in(result))


def _swap(value: Any, swap: dict[int, torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        return swap.get(id(value), value)
    if isinstance(value, torch.Size):
        return value
    if isinstance(value, list | tuple):
        return type(value)(_swap(v, swap) for v in value)
    if isinstance(value, dict):
        return {k: _swap(v, swap) for k, v in value.items()}
    return value
