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

from ..packages import make_callable
from .target import InputShape, parse_range

if TYPE_CHECKING:
    from torch import nn

    from .report import CheckResult

__all__ = ["check"]

make_callable(__name__)  # archsolve.check(...) calls archsolve.api.check: one object under the name


def check(
    model: nn.Module,
    input_shape: str | tuple[int | None, ...],
    size_range: tuple[int, int] | str = (1, 1024),
    *,
    fix: int | None = None,
    time_limit: float = 300.0,
    name: str | None = None,
) -> CheckResult:
    """Analyse every size of every ``?`` axis of ``input_shape`` (``"1x3x?x?"``) within ``size_range``.

    The model runs on the meta device only (no weights computed, the model itself untouched,
    batch norms in eval mode).  ``fix``: a size to find the smallest fix for (default: the first
    size that fails above the smallest one that runs).  Raises InputError (exit 2) when the
    model runs at no size, SolverTimeout (exit 3) past ``time_limit`` seconds.
    """
    from .decide import decide_all, verdict_of
    from .fix import find_fix
    from .report import AxisReport, CheckResult

    start = time.monotonic()
    shape = InputShape.parse(input_shape)
    low, high = parse_range(size_range)
    label = name or type(model).__name__
    if not shape.free:
        from .decide import ModelRunner, evaluating

        runner = ModelRunner(model)
        with evaluating(runner.model):
            out = runner(shape.at({}))
        single = verdict_of(0, out, "meta")
        return CheckResult(label, str(shape), {}, (), {}, runner.runs, 0, time.monotonic() - start, single)
    programs, runner, reference, results = decide_all(model, shape, low, high, time_limit)
    rank = len(shape.dims)
    axes = []
    for axis, (verdicts, decider) in results.items():
        report = AxisReport.build(axis, rank, low, high, reference, verdicts, decider.diverged, decider.disagreed)
        target = fix if fix is not None else report.first_failure()
        if target is not None and low <= target <= high and report.verdict(target).out is None and report.runs.sizes:
            report = find_fix(report, programs, runner, shape, target, runner.model)
        axes.append(report)
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
    )
