"""Whole-model forward passes: on the meta device (shapes only), and on CPU where only real values tell.

The user's model is never run itself.  The meta runs use a structural copy (every parameter and
buffer on the meta device); the CPU runs a copy with the model's own weights where it has them
(zeros where it was built on the meta device), made only when its memory, estimated from the
traced shapes, fits :data:`CPU_BYTES`.  CPU runs are what the meta device cannot answer (index
ops such as unpooling check their index values only there) and, for small models, what is
cheaper than the graph: the same forward a brute-force run makes.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..errors import first_line
from .capture import Trace, call, caller_line_of, module_stack, record, tensors_in
from .graph import Failure, Shapes

#: The most memory a CPU forward may take (values of every call at once, weights included).
CPU_BYTES = 1 << 30

#: Shapes of every call's outputs in call order, the input first: what a forward looked like inside.
Log = list[tuple[int, ...]]


def meta_copy(model: nn.Module) -> nn.Module:
    """The model with every parameter and buffer on the meta device: a structural copy, no data copied.

    Forward passes may change a model (a list of deep-supervision heads, running stats), and
    ``functional_call`` does not always put tied weights back; the user's model is never run.
    """
    memo: dict[int, Any] = {}
    for module in model.modules():
        for p in module.parameters(recurse=False):
            memo.setdefault(id(p), nn.Parameter(p.detach().to("meta"), requires_grad=p.requires_grad))
        for b in module.buffers(recurse=False):
            memo.setdefault(id(b), b.detach().to("meta"))
    return copy.deepcopy(model, memo)


def cpu_copy(model: nn.Module) -> nn.Module:
    """The model on CPU: its own weights where it has them, zeros (unit variances) where they are on meta."""
    memo: dict[int, Any] = {}
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            memo.setdefault(id(p), nn.Parameter(_cpu_values(p, name), requires_grad=False))
        for name, b in module.named_buffers(recurse=False):
            memo.setdefault(id(b), _cpu_values(b, name))
    return copy.deepcopy(model, memo)


def _cpu_values(t: torch.Tensor, name: str) -> torch.Tensor:
    if t.device.type != "meta":
        return t.detach().to("cpu", copy=True)
    filled = torch.zeros(t.shape, dtype=t.dtype)
    return filled + 1 if name == "running_var" else filled


def model_bytes(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))


class ShapeLog(TorchFunctionMode):
    """Every call's output shapes during a forward (and :func:`call`'s fast inference batch norm)."""

    def __init__(self, log: Log | None) -> None:
        super().__init__()
        self.log = log

    def __torch_function__(
        self, func: Callable[..., Any], types: Any, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        out = call(func, args, kwargs or {})
        if self.log is not None:
            self.log.extend(tuple(t.shape) for t in tensors_in(out))
        return out


class ModelRunner:
    """Forward passes of one model on the meta device or on CPU, naming the module (and line) where one fails."""

    def __init__(self, model: nn.Module) -> None:
        self.source = model
        self.model = meta_copy(model)  # ours: the hooks naming the running module stay on it
        self.runs = 0
        self.cpu_runs = 0
        self._cpu: nn.Module | None = None
        self._stacks: dict[int, list[tuple[str, nn.Module]]] = {}
        self.cpu_seconds: float | None = None  # one CPU forward at the reference size, once measured

    def stack(self, model: nn.Module) -> list[tuple[str, nn.Module]]:
        """The running-module stack of one of our copies, its hooks installed once (per-run hooks cost more
        than a small model's whole CPU forward)."""
        found = self._stacks.get(id(model))
        if found is None:
            found = self._stacks[id(model)] = module_stack(model)
        found.clear()  # a forward that raised leaves its modules on the stack
        return found

    def forward(self, x: torch.Tensor) -> Any:
        return self.model(x)

    def __call__(self, shape: tuple[int, ...], log: Log | None = None) -> Shapes | Failure:
        """One forward on the meta device at ``shape``: the output shapes, or where it fails."""
        self.runs += 1
        return self._run(self.model, torch.empty(shape, device="meta"), log)

    def cpu_model(self) -> nn.Module:
        """The CPU copy, made on first use."""
        if self._cpu is None:
            self._cpu = cpu_copy(self.source)
            self._cpu.eval()
        return self._cpu

    def cpu(self, shape: tuple[int, ...], log: Log | None = None) -> Shapes | Failure:
        """One forward on CPU on zeros of ``shape``."""
        model = self.cpu_model()
        self.cpu_runs += 1
        return self._run(model, torch.zeros(shape), log)

    def _run(self, model: nn.Module, x: torch.Tensor, log: Log | None) -> Shapes | Failure:
        if log is not None:
            log.append(tuple(x.shape))
        stack = self.stack(model)
        # The mode costs more than a small CPU forward: only on meta (fast batch norm) or to log shapes.
        mode = ShapeLog(log) if log is not None or x.device.type == "meta" else contextlib.nullcontext()
        try:
            with torch.no_grad(), mode:
                out = model(x)
        except Exception as exc:  # torch's (or the model's) verdict on this shape
            where, module = stack[-1] if stack else ("", model)
            line = caller_line_of(exc) if module is model else ""
            return Failure(-1, where, type(module).__name__, None, (), first_line(exc), line)
        return tuple(tuple(t.shape) for t in tensors_in(out))

    def cpu_fits(self, trace: Trace, scale: float) -> bool:
        """Whether a CPU forward at ``scale`` times the traced input's elements fits :data:`CPU_BYTES`."""
        values = sum(math.prod(s) * 4 for s in trace.shapes)
        return model_bytes(self.model) + values * max(scale, 1.0) <= CPU_BYTES

    def cpu_fits_params(self) -> bool:
        """Whether the weights alone leave room for a CPU forward (no trace to estimate the values from)."""
        return model_bytes(self.model) * 4 <= CPU_BYTES

    def time_cpu(self, shape: tuple[int, ...], log: Log) -> tuple[Shapes | Failure, float]:
        self.cpu_model()
        start = time.perf_counter()
        out = self.cpu(shape, log)
        self.cpu_seconds = time.perf_counter() - start
        return out, self.cpu_seconds

    def trace(self, shape: tuple[int, ...]) -> Trace | Failure:
        """The graph of one forward pass at ``shape``, or where that pass fails."""
        self.runs += 1
        stack = self.stack(self.model)
        try:
            return record(self.forward, shape, stack, self.model)
        except Exception as exc:  # torch's (or the model's) verdict on this shape
            where, module = stack[-1] if stack else ("", self.model)
            line = caller_line_of(exc) if module is self.model else ""
            return Failure(-1, where, type(module).__name__, None, (), first_line(exc), line)
