"""A whole design: the steps of a trajectory as concrete layers, with the options that surround them."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..catalog import KINDS
from ..catalog.base import ParamCount
from ..catalog.norm import NORM_KINDS
from ..catalog.resample import Upsample
from ..core.recipe import AxisRecipe
from ..core.sizes import format_size, spatial_text
from ..errors import InputError, Issue, unknown
from .checks import Checker, not_one_of, show
from .layer import Layer

ACTIVATIONS = ("relu", "leaky_relu", "gelu", "silu", "none")
OUTPUT_ACTIVATIONS = ("tanh", "sigmoid", "none")
#: Activations a step may end with (the builder's ``[build]`` words and the output ones).
STEP_ACTIVATIONS = ("relu", "leaky_relu", "gelu", "silu", "tanh", "sigmoid", "none")
#: How a skip connection joins an earlier output: channel concat (U-Net), elementwise sum (ResNet), or
#: concat after a center crop of the earlier output to the step's size (the 2015 U-Net's valid convolutions).
MERGE_HOWS = ("concat", "add", "crop")


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
        """Every field checked here, once; InputError with one issue per bad field, named by the field."""
        issues = []
        words = {
            "norm": tuple(NORM_KINDS),
            "activation": ACTIVATIONS,
            "output_activation": OUTPUT_ACTIVATIONS,
            "upsample_mode": tuple(Upsample.MODES),
        }
        for key, options in words.items():
            value = getattr(self, key)
            if not isinstance(value, str) or value not in options:
                issues.append(Issue(key, not_one_of(value, options)))
        for key in ("norm_first", "norm_last"):
            if not isinstance(getattr(self, key), bool):
                issues.append(Issue(key, f"expected true or false, got {show(getattr(self, key))}"))
        if self.bias != "auto" and not isinstance(self.bias, bool):
            issues.append(Issue("bias", f"expected true, false or 'auto', got {show(self.bias)}"))
        slope = self.negative_slope
        if isinstance(slope, bool) or not isinstance(slope, int | float) or not math.isfinite(slope):
            issues.append(Issue("negative_slope", f"expected a number, got {show(slope)}"))
        else:
            object.__setattr__(self, "negative_slope", float(slope))  # a file's 0 is the float 0.0
        if issues:
            raise InputError(issues)

    @classmethod
    def read(cls, check: Checker, table: Any) -> BuildOptions:
        """``[build]`` of a problem file or a saved design: unknown keys and bad values recorded in ``check``.

        The values check themselves (:meth:`__post_init__`); the fields that pass are kept.
        """
        if not isinstance(table, dict):
            check.add("build", f"expected a table [build], got {show(table)}")
            return cls()
        keys = tuple(cls.__dataclass_fields__)
        check.keys(table, keys, "build.")
        values = {key: table[key] for key in keys if key in table}
        try:
            return cls(**values)
        except InputError as exc:
            for issue in exc.issues:
                check.add(f"build.{issue.where}", issue.message)
            bad = {issue.where for issue in exc.issues}
            return cls(**{key: value for key, value in values.items() if key not in bad})

    def normed(self, first: bool, last: bool) -> bool:
        """Whether a step at this position gets a norm after its weighted layer."""
        if self.norm == "none":
            return False
        return not ((first and not self.norm_first) or (last and not self.norm_last))

    def bias_for(self, normed: bool) -> bool:
        return (not normed) if self.bias == "auto" else bool(self.bias)


@dataclass(frozen=True)
class Merge:
    """A skip connection: a step's output joined with an earlier output (U-Net, ResNet).

    ``source`` is an earlier step's index (its output after its activation and
    its own merge), or -1 for the design input.  ``concat`` puts the skip first,
    ``torch.cat([skip, x], channel_axis)`` as Keras's ``concatenate([conv1, up1])``
    and U-Net do; ``add`` needs equal shapes; ``crop`` center-crops the skip to the
    step's spatial size first, then concatenates (Ronneberger et al. 2015: the
    skip must be at least as large on every axis, larger by an even number, so
    the crop is centred).  This is the one place that knows the shape a merge gives.
    """

    source: int
    how: str = "concat"

    def __post_init__(self) -> None:
        if self.how not in MERGE_HOWS:
            raise InputError(unknown("merge", self.how, MERGE_HOWS))

    def out_shape(self, own: Sequence[int], skip: Sequence[int]) -> tuple[int, ...]:
        """Shape after joining ``own`` (the step's output) with ``skip``; InputError where torch would fail."""
        own, skip = tuple(own), tuple(skip)
        if self.how == "crop":
            if any(s < o or (s - o) % 2 for s, o in zip(skip[1:], own[1:], strict=True)):
                raise InputError(
                    f"crop of output {self.source}: {spatial_text(skip)} cannot be center-cropped to "
                    f"{spatial_text(own)} (each axis must be at least as large, larger by an even number)"
                )
            return (skip[0] + own[0], *own[1:])
        if own[1:] != skip[1:]:
            raise InputError(
                f"{self.how} with output {self.source}: sizes {spatial_text(skip)} and {spatial_text(own)} differ "
                "(tensors must match except in the channel dimension)"
            )
        if self.how == "add":
            if own[0] != skip[0]:
                raise InputError(f"add with output {self.source}: {skip[0]} and {own[0]} channels differ")
            return own
        return (skip[0] + own[0], *own[1:])


@dataclass(frozen=True)
class Step:
    """One step of the trajectory: its op layers, with the norm the builder inserts.

    ``activation`` is the activation that follows the step (``none`` where none does);
    ``merge`` joins the step's output with an earlier one (after the activation).
    ``out_shape`` is the layers' output, before the merge: see :attr:`Design.outputs`.
    """

    layers: tuple[Layer, ...]
    activation: str = "none"
    merge: Merge | None = None

    def __post_init__(self) -> None:
        if not self.layers:
            raise InputError("a step needs at least one layer")
        if self.activation not in STEP_ACTIVATIONS:
            raise InputError(unknown("activation", self.activation, STEP_ACTIVATIONS))
        for before, after in zip(self.layers, self.layers[1:], strict=False):
            if before.out_shape != after.in_shape:
                raise InputError(
                    f"{after.op} takes {list(after.in_shape)} but {before.op} before it gives {list(before.out_shape)}"
                )

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
    merge: Merge | None = None,
    groups: int = 1,
) -> Step:
    """The layers of one step (a kind or a composite such as ``upsample+conv``).

    The weighted layer's channel count is worked back from ``out_channels``
    through the channel rules of the ops after it (a pixel shuffle needs C·r²).
    ``groups`` applies to the step's convolutions (``nn.ConvNd(groups=...)``).
    """
    weighted = [i for i, op in enumerate(ops) if KINDS[op].has_weights]
    normed_at = weighted[-1] if weighted and KINDS[ops[weighted[-1]]].normed else None
    normed = normed_at is not None and options.normed(first, last)
    targets = _channel_targets(ops, axes, out_channels)
    layers: list[Layer] = []
    shape = tuple(in_shape)
    chosen = {"mode": options.upsample_mode, "norm": options.norm}  # what [build] sets for layer_options
    for i, (op, recipe) in enumerate(zip(ops, axes, strict=True)):
        kind = KINDS[op]
        opts: dict[str, Any] = {name: chosen[name] for name in kind.layer_options}
        if kind.has_weights:
            # A block with its own norms normalises after each of its convs, so "auto" drops their biases too.
            own_norm = "norm" in kind.layer_options and options.norm != "none"
            opts["bias"] = options.bias_for((normed and i == normed_at) or own_norm)
        if kind.takes_groups and groups != 1:
            opts["groups"] = groups
        layer = _layer(op, shape, tuple(recipe), targets[i], tuple(sorted(opts.items())))
        layers.append(layer)
        shape = layer.out_shape
        if normed and i == normed_at:
            norm_kind = NORM_KINDS[options.norm]
            assert norm_kind is not None
            layers.append(_layer(norm_kind, shape, (AxisRecipe(),) * (len(shape) - 1), None, ()))
    activation = options.activation if normed_at is not None else "none"
    if last:
        activation = options.output_activation
    return Step(tuple(layers), activation, merge)


@functools.lru_cache(maxsize=65536)
def _layer(
    op: str, shape: tuple[int, ...], axes: tuple[AxisRecipe, ...], channels: int | None, options: tuple[Any, ...]
) -> Layer:
    """:meth:`Layer.make`, remembered: a solver's steps share most layers (the same upsample before every
    channel count, the same norm after every input count), and layers are frozen values."""
    return Layer.make(op, shape, axes, channels, **dict(options))


def clear_layer_cache() -> None:
    """Forget remembered layers (benchmarks time a fresh process's work)."""
    _layer.cache_clear()


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


@dataclass(frozen=True, repr=False)
class Design:
    """A solved design: steps from the input shape to the output shape, ready to count, build or save."""

    name: str
    steps: tuple[Step, ...]
    options: BuildOptions = field(default_factory=BuildOptions)
    #: Input carries a time axis, (B, T, C, *spatial); per-frame layers fold T into the batch.
    sequence: bool = False

    def __post_init__(self) -> None:
        """Refuse designs whose steps do not chain: each step takes what the one before gives."""
        if not self.steps:
            raise InputError(f"design {self.name!r} has no steps")
        shapes: list[tuple[int, ...]] = []
        for i, step in enumerate(self.steps):
            where = f"steps[{i}]"
            receives = shapes[-1] if shapes else step.in_shape
            if step.in_shape != receives:
                raise InputError(f"{where} takes {list(step.in_shape)} but receives {list(receives)}")
            if not self.sequence and any(KINDS[layer.op].takes_sequence for layer in step.layers):
                raise InputError(f"{where}: conv_lstm runs over a time axis; set sequence = true")
            for j, layer in enumerate(step.layers):
                if layer.size_from is not None:
                    self._check_size_from(f"{where}.layers[{j}]", layer, i, shapes)
            merge = step.merge
            if merge is None:
                shapes.append(step.out_shape)
                continue
            if not -1 <= merge.source < i:
                raise InputError(f"{where}: merge source {merge.source} is not an earlier step (0..{i - 1}) or -1")
            skip = self.in_shape if merge.source == -1 else shapes[merge.source]
            try:
                shapes.append(merge.out_shape(step.out_shape, skip))
            except InputError as exc:
                raise InputError(f"{where}: {exc}") from None

    def _check_size_from(self, where: str, layer: Layer, index: int, shapes: Sequence[tuple[int, ...]]) -> None:
        """A run-time ``output_size=`` must name an earlier output whose size the recipe gives at this input."""
        source = layer.size_from
        assert source is not None
        if not layer.kind.takes_output_size:
            raise InputError(f"{where}: {layer.op} takes no output_size (only transposed convs do)")
        if not -1 <= source < index:
            raise InputError(f"{where}: output_size source {source} is not an earlier step (0..{index - 1}) or -1")
        target = self.in_shape if source == -1 else shapes[source]
        if tuple(target[1:]) != tuple(layer.out_shape[1:]):
            named = "the input" if source == -1 else f"steps[{source}]"
            raise InputError(
                f"{where}: output_size from {named} is {spatial_text(target)} "
                f"but the recipe gives {spatial_text(layer.out_shape)}"
            )

    def __repr__(self) -> str:
        shapes = " → ".join(format_size(shape) for shape in (self.in_shape, *self.outputs))
        return f"<Design {self.name!r}: {shapes}, {self.params.total:,} params, {self.macs:,} MACs>"

    @property
    def layers(self) -> tuple[Layer, ...]:
        return tuple(layer for step in self.steps for layer in step.layers)

    @property
    def in_shape(self) -> tuple[int, ...]:
        return self.steps[0].in_shape

    @property
    def outputs(self) -> tuple[tuple[int, ...], ...]:
        """Per step, the shape later steps see: the step's output after its merge (skip connection)."""
        shapes: list[tuple[int, ...]] = []
        for step in self.steps:
            merge = step.merge
            if merge is None:
                shapes.append(step.out_shape)
            else:
                skip = self.in_shape if merge.source == -1 else shapes[merge.source]
                shapes.append(merge.out_shape(step.out_shape, skip))
        return tuple(shapes)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.outputs[-1]

    @property
    def params(self) -> ParamCount:
        return sum((step.params for step in self.steps), ParamCount())

    @property
    def macs(self) -> int:
        return sum(step.macs for step in self.steps)

    def to_dict(self, throughput: float | None = None) -> dict[str, Any]:
        """A candidate in the JSON contract of ``archsolve solve --json``.

        Each layer names its ``step`` (the index that ``output_size_from`` and merge
        sources refer to); a step's last layer carries the step's skip connection as
        ``"merge": {"source": k, "how": "concat"}`` (k = -1: the design input), joined
        after the step's activation.
        """
        layers: list[dict[str, Any]] = []
        for i, step in enumerate(self.steps):
            for j, layer in enumerate(step.layers):
                entry = {**layer.to_dict(), "step": i}
                if step.merge is not None and j == len(step.layers) - 1:
                    entry["merge"] = {"source": step.merge.source, "how": step.merge.how}
                layers.append(entry)
        return {
            "params": self.params.total,
            "macs": self.macs,
            "throughput": throughput,
            "layers": layers,
        }
