"""Ground truth for the ``archsolve check`` tests: run the real model at every size and note what happens."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Run:
    size: int
    out: tuple[int, ...] | None  # the first output's shape where it runs
    module: str | None  # path of the innermost module running when it failed ("" for the model's own forward)


def run_at(model: nn.Module, shape: tuple[int, ...], device: str = "cpu") -> tuple[tuple[int, ...] | None, str | None]:
    stack: list[str] = []
    handles = []

    def pop(module: nn.Module, args: object, out: object) -> None:  # returns None: the output stays
        stack.pop()

    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(lambda m, a, name=name: stack.append(name)))
        handles.append(module.register_forward_hook(pop))
    try:
        with torch.no_grad():
            out = model(torch.zeros(shape, device=device))
    except Exception:
        return None, stack[-1] if stack else ""
    finally:
        for h in handles:
            h.remove()
    first = out if isinstance(out, torch.Tensor) else next(t for t in out if isinstance(t, torch.Tensor))
    return tuple(first.shape), None


def brute(
    model: nn.Module,
    dims: tuple[int | None, ...],
    axis: int,
    sizes: Iterable[int],
    others: dict[int, int],
    device: str = "cpu",
) -> list[Run]:
    """Every size of ``axis`` (the other ``?`` axes at ``others``), run for real."""
    model.eval()
    runs = []
    for n in sizes:
        shape = tuple(n if i == axis else (others[i] if d is None else d) for i, d in enumerate(dims))
        out, module = run_at(model, shape, device)
        runs.append(Run(n, out, module))
    return runs
