"""A whole design: the steps of a trajectory as concrete layers, with the options that surround them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import InputError, unknown
from .layer import Layer
from .ops import NORM_KINDS, KINDS, ParamCount
from .recipe import AxisRecipe

ACTIVATIONS = ("relu", "leaky_relu", "gelu", "silu", "none")
OUTPUT_ACTIVATIONS = ("tanh", "sigmoid", "none")
#: Kinds after which the builder puts a norm and an activation.
NORMED_KINDS = ("conv", "conv_transpose")


@dataclass(frozen=True)
class BuildOptions:
    """``[build]``: what surrounds each step's weighted layer in the built module.

    ``bias="auto"`` drops the bias wherever a norm follows (it would be cancelled).
    ``norm_first``/``norm_last`` say whether the first and last steps get a norm;
    the PyTorch DCGAN tutorial has neither on the discriminator's input layer nor
    on the generator's output layer.
    """

    norm: str = "batch"
    activation: str = "relu"
    negative_slope: float = 0.2
    output_activation: str = "none"
    bias: bool | Literal["auto"] = "auto"
    norm_first: bool = True
    norm_last: bool = False
    upsample_mode: str = "nearest"

    def __post_init__(self) -> None:
        problems = []
        if self.norm not in NORM_KINDS:
            problems.append(unknown("norm", self.norm, NORM_KINDS))
        if self.activation not in ACTIVATIONS:
            problems.append(unknown("activation", self.activation, ACTIVATIONS))
        if self.output_activation not in OUTPUT_ACTIVATIONS:
            problems.append(unknown("output_activation", self.output_activation, OUTPUT_ACTIVATIONS))
        if problems:
            raise InputError("; ".join(problems))

    def normed(self, first: bool, last: bool) -> bool:
        """Whether a step at this position gets a norm after its weighted layer."""
        if self.norm == "none":
            return False
        return not ((first and not self.norm_first) or (last and not self.norm_last))

    def bias_for(self, normed: bool) -> bool:
        return (not normed) if self.bias == "auto" else bool(self.bias)


@dataclass(frozen=True)
class Step:
    """One step of the trajectory: its op layers, with the norm the builder inserts.

    ``activation`` is the activation that follows the step (``none`` where none does).
    """

    layers: tuple[Layer, ...]
    activation: str = "none"

    @property
    def in_shape(self) -> tuple[int, ...]:
        return self.layers[0].in_shape

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.layers[-1].out_shape

    @property
    def params(self) -> ParamCount:
        return sum((layer.params for layer in self.layers), ParamCount())

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)


def make_step(
    ops: Sequence[str],
    in_shape: Sequence[int],
    axes: Sequence[Sequence[AxisRecipe]],
    out_channels: int,
    options: BuildOptions,
    first: bool,
    last: bool,
) -> Step:
    """The layers of one step (a kind or a composite such as ``upsample+conv``).

    The weighted layer's channel count is worked back from ``out_channels``
    through the channel rules of the ops after it (a pixel shuffle needs C·r²).
    """
    weighted = [i for i, op in enumerate(ops) if KINDS[op].has_weights]
    normed_at = weighted[-1] if weighted and ops[weighted[-1]] in NORMED_KINDS else None
    normed = normed_at is not None and options.normed(first, last)
    targets = _channel_targets(ops, axes, out_channels)
    layers: list[Layer] = []
    shape = tuple(in_shape)
    for i, (op, recipe) in enumerate(zip(ops, axes, strict=True)):
        opts: dict[str, Any] = {}
        if KINDS[op].has_weights:
            opts["bias"] = options.bias_for(normed and i == normed_at)
        if op == "upsample":
            opts["mode"] = options.upsample_mode
        if op == "residual_block":
            opts["norm"] = options.norm
        layer = Layer.make(op, shape, recipe, targets[i], **opts)
        layers.append(layer)
        shape = layer.out_shape
        if normed and i == normed_at:
            norm_kind = NORM_KINDS[options.norm]
            assert norm_kind is not None
            layers.append(Layer.make(norm_kind, shape, [AxisRecipe()] * (len(shape) - 1)))
    activation = options.activation if normed_at is not None else "none"
    if last:
        activation = options.output_activation
    return Step(tuple(layers), activation)


def _channel_targets(ops: Sequence[str], axes: Sequence[Sequence[AxisRecipe]], out_channels: int) -> list[int | None]:
    """Requested out channels per op of a step (None where the kind decides)."""
    targets: list[int | None] = [None] * len(ops)
    want: int | None = out_channels
    for i in reversed(range(len(ops))):
        kind = KINDS[ops[i]]
        if want is None:
            break
        if kind.keeps_channels:
            continue
        if kind.has_weights:
            targets[i] = want
            break
        want = kind.channels_before(want, axes[i])
    return targets


@dataclass(frozen=True)
class Design:
    """A solved design: steps from the input shape to the output shape, ready to count, build or save."""

    name: str
    steps: tuple[Step, ...]
    options: BuildOptions = field(default_factory=BuildOptions)
    #: Input carries a time axis, (B, T, C, *spatial); per-frame layers fold T into the batch.
    sequence: bool = False

    @property
    def layers(self) -> tuple[Layer, ...]:
        return tuple(layer for step in self.steps for layer in step.layers)

    @property
    def in_shape(self) -> tuple[int, ...]:
        return self.steps[0].in_shape

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.steps[-1].out_shape

    @property
    def params(self) -> ParamCount:
        return sum((step.params for step in self.steps), ParamCount())

    @property
    def macs(self) -> int:
        return sum(step.macs for step in self.steps)

    def to_dict(self, throughput: float | None = None) -> dict[str, Any]:
        """A candidate in the JSON contract of ``archsolve solve --json``."""
        return {
            "params": self.params.total,
            "macs": self.macs,
            "throughput": throughput,
            "layers": [layer.to_dict() for layer in self.layers],
        }


def trajectory_text(shapes: Sequence[Sequence[int]]) -> str:
    """``1x1 → 4x4 → 8x8`` for docstrings and tables."""
    return " → ".join("x".join(str(v) for v in shape[1:]) for shape in shapes)


def numel(shape: Sequence[int]) -> int:
    return math.prod(shape)
