"""Stage 3b: compile a :class:`~archsolve.check.capture.Trace` into a :class:`Program` and run it per size.

Recognition is by the torch function the model called (``torch.conv2d``, ``F.max_pool2d``,
``F.interpolate``...); the arithmetic is the op catalog's, which this module only feeds
with the call's arguments.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from ..catalog import KINDS
from ..catalog.base import OpKind
from ..core.recipe import AxisRecipe
from .capture import RECURRENT, Env, Guard, Node, Trace, int_fn
from .graph import (
    BroadcastStep,
    CatalogStep,
    CatStep,
    Diverged,
    Edits,
    Failure,
    GuardStep,
    InterpolateStep,
    KeepStep,
    Outcome,
    ReplayStep,
    Step,
    bind_args,
    is_dynamic,
    per_axis,
)

_CONV = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
_CONV_T = ("input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation")
_POOL = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode")
_AVG = ("input", "kernel_size", "stride", "padding", "ceil_mode")

#: Element-wise calls whose output is the broadcast of their tensor inputs.
BROADCAST = frozenset(
    f"{prefix}{name}{suffix}"
    for name in (
        "add",
        "sub",
        "mul",
        "div",
        "truediv",
        "true_divide",
        "floor_divide",
        "floordiv",
        "pow",
        "maximum",
        "minimum",
        "where",
        "rsub",
        "fmod",
        "remainder",
        "and",
        "or",
        "xor",
    )
    for prefix, suffix in (("", ""), ("", "_"), ("__", "__"), ("__r", "__"), ("__i", "__"))
)

#: Calls whose output has their first tensor input's shape, whatever the size.
KEEP = frozenset(
    {
        *(
            f"{n}{s}"
            for n in (
                "relu",
                "relu6",
                "leaky_relu",
                "gelu",
                "silu",
                "sigmoid",
                "tanh",
                "elu",
                "selu",
                "celu",
                "softplus",
                "softsign",
                "hardtanh",
                "hardswish",
                "hardsigmoid",
                "mish",
                "logsigmoid",
                "tanhshrink",
                "threshold",
                "rrelu",
                "prelu",
                "dropout",
                "dropout1d",
                "dropout2d",
                "dropout3d",
                "alpha_dropout",
                "feature_alpha_dropout",
                "feature_dropout",
                "neg",
                "exp",
                "log",
                "abs",
                "sqrt",
                "rsqrt",
                "sin",
                "cos",
                "clamp",
                "clamp_min",
                "clamp_max",
                "square",
                "reciprocal",
                "sign",
                "round",
                "floor",
                "ceil",
                "clip",
                "erf",
                "exp2",
                "log1p",
                "expm1",
                "nan_to_num",
                "fill",
                "zero",
                "sigmoid",
                "normal",
                "uniform",
                "bernoulli",
                "requires_grad",
            )
            for s in ("", "_")
        ),
        "batch_norm",
        "softmax",
        "log_softmax",
        "softmin",
        "normalize",
        "local_response_norm",
        "channel_shuffle",
        "clone",
        "contiguous",
        "detach",
        "float",
        "half",
        "double",
        "bfloat16",
        "to",
        "type",
        "type_as",
        "__neg__",
        "__pos__",
        "__abs__",
        "__invert__",
        "logical_not",
        "sigmoid",
        "dropout_",
    }
)
#: Calls that read an index tensor's values (and, on CPU only, raise where one is out of range) or whose
#: output size depends on values.
INDEX_OPS = frozenset(
    {
        *(f"max_unpool{d}d" for d in (1, 2, 3)),
        "gather", "scatter", "scatter_", "scatter_add", "scatter_add_", "scatter_reduce", "index_select", "take",
        "take_along_dim", "embedding", "embedding_bag", "index_put", "index_put_", "index_add", "index_add_",
        "index_copy", "index_copy_", "nonzero", "masked_select", "unique", "bincount", "one_hot",
        "repeat_interleave",
    }
)
#: Norms over each sample's own values: shape-keeping, with torch's more-than-one-value rule replayed.
KEEP_STATISTICS = frozenset({"instance_norm", "group_norm"})


class Program:
    """Steps in call order; :meth:`run` gives the output shapes at one input shape, or why not."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.steps: list[Step | GuardStep] = [_compile(s, trace) for s in trace.steps]
        self.size = len(trace.shapes)
        self.outputs = trace.outputs

    def run(self, shape: tuple[int, ...], edits: Edits | None = None) -> Outcome:
        return self.env_at(shape, edits)[1]

    def env_at(self, shape: tuple[int, ...], edits: Edits | None = None) -> tuple[Env, Outcome]:
        """The shapes of every value at ``shape`` (as far as the program got) and the outcome there."""
        env: Env = [()] * self.size
        env[0] = shape
        edits = edits or {}
        for step in self.steps:
            verdict = step.run(env, edits)
            if verdict is not None:
                return env, verdict
        return env, tuple(env[v] for v in self.outputs)

    def layers(self) -> list[Step]:
        return [s for s in self.steps if isinstance(s, Step)]

    def census(self) -> dict[str, dict[str, int]]:
        """How many calls each part decides, by category and op: catalog, merge, shape-keeping, meta."""
        counts: dict[str, Counter[str]] = {}
        for step in self.layers():
            category = step.category
            if isinstance(step, InterpolateStep) and not step.decided:
                category = "meta"
            counts.setdefault(category, Counter())[step.op] += 1
        return {k: dict(sorted(v.items())) for k, v in sorted(counts.items())}

    def value_checked(self) -> list[str]:
        """Calls whose CPU kernels check the values of an index tensor, which the meta device cannot see."""
        return [
            s.node.label
            for s in self.layers()
            if s.node.name in INDEX_OPS or (s.node.name == "__getitem__" and len(s.node.inputs) > 1)
        ]

    def export_blocker(self) -> str | None:
        """A call torch.export cannot follow with one Dim (it specializes or refuses the size), if any:
        a recurrent layer (its sequence length), a ceil-mode pool (torch's guard on its last window)."""
        for step in self.layers():
            if step.node.name in RECURRENT:
                return f"{step.node.label} (torch.export fixes a recurrent layer's sequence length)"
            if isinstance(step, CatalogStep) and step.static and any(r.ceil_mode for r in step.static):
                return f"{step.node.label} with ceil_mode (torch.export refuses the guard on its last window)"
        return None

    def meta_calls(self) -> int:
        """Single-call meta-device replays run so far (the calls the catalog could not decide)."""
        total = 0
        for step in self.layers():
            replay = step if isinstance(step, ReplayStep) else getattr(step, "replay", None)
            if isinstance(replay, ReplayStep):
                total += replay.calls
        return total


def _compile(item: Node | Guard, trace: Trace) -> Step | GuardStep:
    if isinstance(item, Guard):
        return GuardStep(item)
    node = item
    replay = ReplayStep(node, trace)
    name = node.name
    if not node.inputs:
        return replay
    rank = len(trace.shapes[node.inputs[0]])
    base = name.removesuffix("_with_indices")
    if base[:-2] in ("conv", "conv_transpose", "max_pool", "avg_pool") and base[-2:] in ("1d", "2d", "3d"):
        ndim = int(base[-2])
        built = _layer(node, base[:-2], ndim, trace)
        if built is not None and rank in (ndim + 1, ndim + 2):
            kind, recipes, dynamic = built
            return CatalogStep(node, kind, ndim, recipes, dynamic, trace, replay)
        return replay
    if name in ("pixel_shuffle", "pixel_unshuffle") and rank >= 3:
        factor = bind_args(node, ("input", "factor"), {})["factor"]
        if isinstance(factor, int) and not is_dynamic(factor):
            recipe = AxisRecipe(stride=int(factor))
            return CatalogStep(node, KINDS[name], 2, lambda env: [recipe, recipe], False, trace, replay)
        return replay
    if name == "interpolate" and rank >= 3:
        return InterpolateStep(node, trace, replay)
    if name in ("cat", "concat", "concatenate"):
        return CatStep(node, trace)
    if name in BROADCAST:
        return BroadcastStep(node, trace)
    if name in KEEP:
        return KeepStep(node)
    if name in KEEP_STATISTICS:
        return KeepStep(node, replay)
    return replay


def _layer(
    node: Node, family: str, ndim: int, trace: Trace
) -> tuple[OpKind, Callable[[Env], list[AxisRecipe] | None], bool] | None:
    """The catalog kind of a conv/pool call and how to read its per-axis recipes (None: not readable)."""
    if family in ("conv", "conv_transpose"):
        args = bind_args(
            node,
            _CONV if family == "conv" else _CONV_T,
            {"stride": 1, "padding": 0, "dilation": 1, "output_padding": 0},
        )
        weight = args.get("weight")
        if weight is None or node.traced.get(id(weight)) is not None:
            return None  # weights computed from the input: their shape is the model's business
        kernels = list(weight.shape[2:])
        padding = args["padding"]
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                return None
            dilations = per_axis(args["dilation"], ndim)
            pads = [(d * (k - 1)) if padding == "same" else 0 for k, d in zip(kernels, dilations, strict=True)]

            def fixed(env: Env) -> list[AxisRecipe] | None:
                return [
                    AxisRecipe(kernel=k, stride=int(s), padding=p // 2, dilation=int(d), pad_extra=p % 2)
                    for k, s, d, p in zip(kernels, per_axis(args["stride"], ndim), dilations, pads, strict=True)
                ]

            return KINDS["conv"], fixed, False
        fields = {
            "kernel": kernels,
            "stride": args["stride"],
            "padding": padding,
            "dilation": args["dilation"],
            "output_padding": args["output_padding"] if family == "conv_transpose" else 0,
        }
        kind = KINDS[family]
    else:
        args = bind_args(
            node,
            _POOL if family == "max_pool" else _AVG,
            {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False},
        )
        stride = args["stride"]
        if stride is None or (isinstance(stride, list | tuple) and not stride):
            stride = args["kernel_size"]
        fields = {
            "kernel": args["kernel_size"],
            "stride": stride,
            "padding": args["padding"],
            "dilation": args["dilation"],
            "ceil_mode": args["ceil_mode"],
        }
        kind = KINDS[family]
    dynamic = is_dynamic(fields)
    fns = {name: [int_fn(v) for v in per_axis(value, ndim)] for name, value in fields.items()}
    names = list(fns)

    def recipes(env: Env) -> list[AxisRecipe] | None:
        out = []
        for axis in range(ndim):
            values: dict[str, Any] = {name: fns[name][axis](env) for name in names}
            values = {k: bool(v) if k == "ceil_mode" else int(v) for k, v in values.items()}
            out.append(AxisRecipe(**values))
        return out

    return kind, recipes, dynamic


def first_failure(outcomes: Sequence[Outcome]) -> Failure | None:
    return next((o for o in outcomes if isinstance(o, Failure)), None)


__all__ = ["Diverged", "Failure", "Program"]
