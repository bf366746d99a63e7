"""Which input sizes a PyTorch model accepts, what comes out, where it breaks and the smallest fix.

One module per stage:

- :mod:`~archsolve.check.target`: the model (a Python target or an archsolve design) and the input shape;
- :mod:`~archsolve.check.capture`: the layer graph, learned from one forward pass on the meta device;
- :mod:`~archsolve.check.graph` and :mod:`~archsolve.check.program`: the graph as a program over shapes,
  the catalog's arithmetic where it knows the layer;
- :mod:`~archsolve.check.decide`: every size of every ``?`` axis, whole-model meta forwards only where
  the graph cannot decide;
- :mod:`~archsolve.check.describe`: size sets and output sizes in closed form, the ``torch.export`` spec;
- :mod:`~archsolve.check.fix`: the smallest recipe change that makes a failing size run;
- :mod:`~archsolve.check.report`: the result, as text and JSON (docs/check.md).

Example::

    >>> import torch
    >>> import archsolve
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU())
    >>> result = archsolve.check(net, "1x3x?x?", size_range=(1, 64))
    >>> result.axis("H").runs.text("H")
    'H ≥ 3'
    >>> result.axis("H").output.text("H")
    '⌊(H − 1) / 2⌋'
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .target import InputShape, parse_range

if TYPE_CHECKING:
    from torch import nn

    from .report import CheckResult

__all__ = ["check"]

#: How sizes are decided (docs/check.md).
METHODS = ("auto", "graph", "run")


def check(
    model: nn.Module,
    input_shape: str | tuple[int | None, ...],
    size_range: tuple[int, int] | str = (1, 1024),
    *,
    fix: int | None = None,
    time_limit: float = 300.0,
    name: str | None = None,
    method: str = "auto",
) -> CheckResult:
    """Analyse every size of every ``?`` axis of ``input_shape`` (``"1x3x?x?"``) within ``size_range``.

    The model itself is never run: a structural copy runs on the meta device (no weights computed,
    batch norms in eval mode) and, where the meta device cannot answer or a CPU forward per size is
    cheaper than the graph, a CPU copy (the model's weights, or zeros) runs on zeros; the report says
    which decided what.  ``fix``: a size to find the smallest fix for (default: the first size that
    fails above the smallest one that runs).  Raises InputError (exit 2) when the model runs at no
    size, SolverTimeout (exit 3) past ``time_limit`` seconds.  ``method``: ``auto`` (default),
    ``graph`` (the compiled graph wherever it can decide) or ``run`` (a forward per size, on CPU where
    it fits in memory), see docs/check.md.
    """
    from ..errors import InputError
    from .decide import decide_all, verdict_of
    from .fix import find_fix, joint_fix
    from .report import AxisReport, CheckResult

    if method not in METHODS:
        raise InputError(f"check: method {method!r}: expected one of {', '.join(METHODS)}")
    start = time.monotonic()
    shape = InputShape.parse(input_shape)
    low, high = parse_range(size_range)
    label = name or type(model).__name__
    if not shape.free:
        from .capture import Trace
        from .decide import evaluating
        from .runner import ModelRunner

        runner = ModelRunner(model)
        at = shape.at({})
        with evaluating(runner.model):
            trace = runner.trace(at)
            # Where a CPU forward fits, it has the last word (index ops check their values on CPU only).
            out = runner.cpu(at) if isinstance(trace, Trace) and runner.cpu_fits(trace, 1.0) else runner(at)
        single = verdict_of(0, out, "cpu" if runner.cpu_runs else "meta")
        return CheckResult(label, str(shape), {}, (), {}, runner.runs, 0, time.monotonic() - start, single,
                           cpu_forwards=runner.cpu_runs)
    programs, runner, reference, results = decide_all(model, shape, low, high, time_limit, method)
    rank = len(shape.dims)
    axes = []
    for axis, (verdicts, decider) in results.items():
        report = AxisReport.build(
            axis,
            rank,
            low,
            high,
            reference,
            verdicts,
            decider.diverged,
            decider.disagreed,
            decider.why_run,
            programs[0].export_blocker(),
        )
        target = fix if fix is not None else report.first_failure()
        asked = fix is not None  # a size asked for is looked at even where it runs (a fix that keeps its size)
        if (target is not None and low <= target <= high and report.runs.sizes
                and (asked or report.verdict(target).out is None)):
            report = find_fix(report, programs, runner, shape, target, runner.model)
        axes.append(report)
    joint = joint_fix(axes, programs, runner, shape, fix) if fix is not None else None
    return CheckResult(
        label,
        str(shape),
        reference,
        tuple(axes),
        programs[0].census(),
        runner.runs,
        sum(p.meta_calls() for p in programs),
        time.monotonic() - start,
        graphs=len(programs),
        joint=joint,
        cpu_forwards=runner.cpu_runs,
    )
