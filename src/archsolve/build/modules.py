"""Design → torch module.

The op catalog builds every layer (:meth:`Layer.build`); this module only wires
them: the activation after each step, skip connections (:class:`Merge`), and
the time axis of sequence designs (per-frame layers see ``B·T`` frames, ConvLSTM
cells see the sequence).  :func:`trace` runs the built module on the meta device
so the summary can check the catalog's shapes, parameters and MACs against
torch's own.

Imports torch at module level: only the build, summary and emit paths import it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from ..catalog.torch_blocks import center_crop
from ..design.design import BuildOptions, Design, Step
from ..errors import ArchsolveError, BuildError


class Frames(nn.Module):
    """Runs a per-frame layer over a (B, T, C, *spatial) sequence by folding time into the batch."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        frames = x.flatten(0, 1)
        y = self.layer(frames) if output_size is None else self.layer(frames, output_size=output_size)
        return y.unflatten(0, x.shape[:2])


class DesignNet(nn.Module):
    """A built design: ``steps[i]`` holds step i's layers and activation; ``merges[i]`` its skip, if any.

    A merge is ``(source, how)``: ``source`` an earlier step (-1: the input),
    ``how`` ``"concat"`` (skip first, on the channel axis), ``"add"``, or ``"crop"``
    (the skip center-cropped to the step's size, then concatenated).
    ``sized[i]`` lists ``(j, source)`` pairs: module j of step i is a transposed
    conv called with ``output_size=`` the spatial size of output ``source`` (-1:
    the input), since no fixed output_padding serves every input size the design
    was solved for; torch picks it per call.
    """

    def __init__(
        self,
        steps: Sequence[nn.Module],
        merges: Sequence[tuple[int, str] | None],
        channel_axis: int = 1,
        sized: Sequence[Sequence[tuple[int, int]]] | None = None,
        spatial_dims: int = 2,
    ) -> None:
        super().__init__()
        self.steps = nn.ModuleList(steps)
        self.merges = tuple(merges)
        self.sized = tuple(tuple(pairs) for pairs in sized) if sized is not None else ((),) * len(self.merges)
        self.channel_axis = channel_axis
        self.spatial_dims = spatial_dims
        sources = [m[0] for m in self.merges if m is not None] + [source for pairs in self.sized for _, source in pairs]
        self._kept = frozenset(sources)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kept = {-1: x} if -1 in self._kept else {}
        for i, (step, merge, sized) in enumerate(zip(self.steps, self.merges, self.sized, strict=True)):
            if not sized:
                x = step(x)
            else:
                sizes = {j: list(kept[source].shape[-self.spatial_dims :]) for j, source in sized}
                for j, module in enumerate(cast(nn.Sequential, step)):
                    x = module(x, output_size=sizes[j]) if j in sizes else module(x)
            if merge is not None:
                source, how = merge
                skip = kept[source]
                if how == "crop":
                    skip = center_crop(skip, x, self.spatial_dims)
                x = skip + x if how == "add" else torch.cat([skip, x], dim=self.channel_axis)
            if i in self._kept:
                kept[i] = x
        return x


def activation_module(name: str, negative_slope: float = 0.2) -> nn.Module | None:
    """The module for a step's activation word (None for ``none``)."""
    if name == "none":
        return None
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    modules: dict[str, type[nn.Module]] = {
        "relu": nn.ReLU,
        "gelu": nn.GELU,
        "silu": nn.SiLU,
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
    }
    if name not in modules:
        raise BuildError(f"no module for activation {name!r}")
    return modules[name]()


def build(design: Design, options: BuildOptions | None = None) -> DesignNet:
    """The design as a torch module; ``options`` (default: the design's own) supply the LeakyReLU slope.

    Norms, biases and modes are already fixed in the design's layers; torch's own
    errors become :class:`BuildError`.
    """
    options = options or design.options
    steps: list[nn.Module] = []
    for i, step in enumerate(design.steps):
        modules: list[nn.Module] = []
        for layer in step.layers:
            try:
                module = layer.build()
            except ArchsolveError:
                raise
            except (RuntimeError, ValueError, TypeError) as exc:
                raise BuildError(f"steps[{i}] {layer.op}: torch refused the layer: {exc}") from exc
            if design.sequence and not layer.kind.takes_sequence:
                module = Frames(module)
            modules.append(module)
        activation = activation_module(step.activation, options.negative_slope)
        if activation is not None:
            modules.append(activation)
        steps.append(nn.Sequential(*modules))
    merges = [None if s.merge is None else (s.merge.source, s.merge.how) for s in design.steps]
    return DesignNet(
        steps,
        merges,
        channel_axis=2 if design.sequence else 1,
        sized=[run_time_sizes(step) for step in design.steps],
        spatial_dims=len(design.in_shape) - 1,
    )


def run_time_sizes(step: Step) -> tuple[tuple[int, int], ...]:
    """``(layer index, source)`` for each of the step's layers called with ``output_size=`` at run time.

    A layer's index is also its module's index in the built step: the
    activation comes after every layer.
    """
    return tuple((j, layer.size_from) for j, layer in enumerate(step.layers) if layer.size_from is not None)


def build_meta(design: Design, options: BuildOptions | None = None) -> DesignNet:
    """The module with meta tensors: shapes without memory, for checks and code generation."""
    with torch.device("meta"):
        return build(design, options)


def layer_modules(design: Design, net: DesignNet) -> list[nn.Module]:
    """The catalog-built module of every layer of ``design`` inside ``net``, in order (Frames unwrapped)."""
    found: list[nn.Module] = []
    for i, step in enumerate(design.steps):
        sequential = net.steps[i]
        assert isinstance(sequential, nn.Sequential)
        for j in range(len(step.layers)):
            module = sequential[j]
            found.append(module.layer if isinstance(module, Frames) else module)
    return found


@dataclass(frozen=True)
class Trace:
    """What torch itself says about a built design (shapes per sample: channels first, no batch or time)."""

    layer_shapes: tuple[tuple[int, ...], ...]
    out_shape: tuple[int, ...]
    trainable: int
    #: Floating-point buffers (BN running mean and var); integer counters such as num_batches_tracked are
    #: bookkeeping, not statistics, and Keras has no counterpart.
    non_trainable: int
    #: torch's FlopCounterMode FLOPs / 2, per sample (per frame for sequences).
    macs: int


def trace(design: Design, batch: int = 1, time: int = 2) -> Trace:
    """Build ``design`` on the meta device and run it once, recording torch's shapes, counts and MACs."""
    from torch.utils.flop_counter import FlopCounterMode

    # Eval mode: batch statistics need several samples, which is a training batch size, not a design property.
    net = build_meta(design).eval()
    ndims = [len(layer.in_shape) for layer in design.layers]
    shapes: list[tuple[int, ...] | None] = [None] * len(ndims)

    def recorder(index: int) -> object:
        def hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
            shapes[index] = tuple(output.shape[-ndims[index] :])

        return hook

    handles = [m.register_forward_hook(recorder(i)) for i, m in enumerate(layer_modules(design, net))]  # type: ignore[arg-type]
    lead = (batch, time) if design.sequence else (batch,)
    x = torch.empty(*lead, *design.in_shape, device="meta")
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            y = net(x)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise BuildError(f"{design.name}: the built module fails on input {tuple(x.shape)}: {exc}") from exc
    finally:
        for handle in handles:
            handle.remove()
    if tuple(y.shape[: len(lead)]) != lead:
        raise BuildError(f"{design.name}: output {tuple(y.shape)} lost the leading {lead} dimensions")
    return Trace(
        layer_shapes=tuple(s if s is not None else () for s in shapes),
        out_shape=tuple(y.shape[len(lead) :]),
        trainable=sum(p.numel() for p in net.parameters() if p.requires_grad),
        non_trainable=sum(p.numel() for p in net.parameters() if not p.requires_grad)
        + sum(b.numel() for b in net.buffers() if b.is_floating_point()),
        macs=counter.get_total_flops() // 2 // math.prod(lead),
    )
