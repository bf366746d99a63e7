"""``--fix SIZE --emit``: an archsolve design with its fix applied, re-made at SIZE, as PyTorch source.

The fix's changes name modules ``steps.i.j`` of the built design: layer j of step i.  Recipe
changes edit that layer's axis recipe; ``output_size=`` makes it take its size from the merge
partner at run time (the design's ``size_from``).  Every layer is then re-made through
:meth:`Layer.make` at the new input size, so the catalog checks the fixed design as it checks
any other, and the source comes from the same emitter as ``archsolve build``.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..design.design import Design, Step
from ..design.layer import Layer
from ..errors import InfeasibleError, InputError

if TYPE_CHECKING:
    from .fixes import Change
    from .report import CheckResult

_MODULE = re.compile(r"^steps\.(\d+)\.(\d+)$")


def fixed_design(design: Design, result: CheckResult, size: int) -> Design:
    """``design`` with the fix for ``size`` on every ``?`` axis, re-made with those axes at ``size``."""
    changes: list[Change] = []
    if result.joint is not None:  # several axes: the fix printed for all of them at once
        if not result.joint.changes or not result.joint.verified:
            raise InfeasibleError(f"no fix found for {result.joint.title}", [result.joint.note or "not verified"])
        changes += result.joint.changes
    for axis in result.axes if result.joint is None else ():
        if axis.fix is None or axis.fix.size != size or not axis.fix.changes:
            raise InfeasibleError(
                f"no fix found for {axis.name}={size}",
                [axis.fix.note if axis.fix is not None and axis.fix.note else
                 f"{axis.name}={size} " + ("runs already" if axis.verdict(size).out else "fails")],
            )
        changes += axis.fix.changes
    edits: dict[tuple[int, int], dict[int, dict[str, Any]]] = {}
    size_from: dict[tuple[int, int], int] = {}
    for change in changes:
        found = _MODULE.match(change.layer)
        if found is None or change.field == "pad":
            raise InputError(
                f"the fix changes {change.layer or 'the model'} ({change.field}), "
                "which an archsolve design cannot express"
            )
        key = (int(found[1]), int(found[2]))
        if change.field == "output_size":
            source = re.match(r"^steps\.(\d+)", str(change.new))
            size_from[key] = int(source[1]) if source else -1
        else:
            edits.setdefault(key, {}).setdefault(change.axis - 1, {})[change.field] = change.new
    spatial_axes = [a.axis - 1 for a in result.axes]  # (N, C, ...) input axes → (C, ...) design axes
    in_shape = list(design.in_shape)
    for a in spatial_axes:
        in_shape[a] = size
    return _remake(design, tuple(in_shape), edits, size_from)


def _remake(
    design: Design,
    in_shape: tuple[int, ...],
    edits: dict[tuple[int, int], dict[int, dict[str, Any]]],
    size_from: dict[tuple[int, int], int],
) -> Design:
    outputs: list[tuple[int, ...]] = []
    steps: list[Step] = []
    shape = in_shape
    for i, step in enumerate(design.steps):
        layers: list[Layer] = []
        for j, layer in enumerate(step.layers):
            axes = list(layer.axes)
            for axis, fields in edits.get((i, j), {}).items():
                axes[axis - 1] = axes[axis - 1]._replace(**fields)
            source = size_from.get((i, j), layer.size_from)
            if source is not None:
                target = in_shape if source == -1 else outputs[source]
                axes = _landing(layer, shape, axes, target)
            try:
                layers.append(
                    Layer.make(
                        layer.op,
                        shape,
                        axes,
                        layer.out_shape[0],
                        groups=layer.groups,
                        bias=layer.bias,
                        mode=layer.mode,
                        norm=layer.norm,
                        size_from=source,
                    )
                )
            except InputError as exc:
                raise InfeasibleError(f"steps[{i}] {layer.op} does not take the fixed size", [str(exc)]) from None
            shape = layers[-1].out_shape
        new = Step(tuple(layers), step.activation, step.merge)
        steps.append(new)
        if step.merge is not None:
            skip = in_shape if step.merge.source == -1 else outputs[step.merge.source]
            shape = step.merge.out_shape(shape, skip)
        outputs.append(shape)
    return replace(design, steps=tuple(steps))


def _landing(layer: Layer, shape: tuple[int, ...], axes: list, target: tuple[int, ...]) -> list:  # type: ignore[type-arg]
    """The output_padding torch picks for ``output_size=`` the target's spatial size."""
    kind = layer.kind
    out = []
    for r, n, t in zip(axes, shape[1:], target[1:], strict=True):
        low = kind.out_size(r._replace(output_padding=0), n, len(axes))
        out.append(r._replace(output_padding=t - low) if low is not None and 0 <= t - low < r.stride else r)
    return out


def fixed_source(design: Design, result: CheckResult, size: int) -> str:
    """The fixed design's source, once its model, built and run, gives the output the fix printed."""
    from ..build.emit import emit_source
    from .runner import ModelRunner
    from .target import design_model

    fixed = fixed_design(design, result, size)
    printed = result.joint if result.joint is not None else result.axes[0].fix
    assert printed is not None
    lead = [int(n) for n in result.input.split("x")[: len(result.input.split("x")) - len(design.in_shape)]]
    shape = (*lead, *fixed.in_shape)
    runner = ModelRunner(design_model(fixed))
    out = runner.cpu(shape) if runner.cpu_fits_params() else runner(shape)
    got = out[0] if isinstance(out, tuple) else None
    if got != printed.output:
        raise InfeasibleError(
            f"the emitted model does not give the output printed for the fix at {list(shape)}",
            [f"printed {list(printed.output or ())}, the emitted model: "
             + (str(list(got)) if got is not None else getattr(out, "reason", "fails"))],
        )
    return emit_source(fixed)
