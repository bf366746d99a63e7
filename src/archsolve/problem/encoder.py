"""Decoders that mirror an encoder: ``[encoder]`` + ``[decoder]`` tables → a trajectory problem.

The encoder is given recipe by recipe; its size trajectory per axis and per
input size comes from the op catalog.  Each encoder step that changes the size
gets a decoder step, in reverse, that must land exactly on the size the encoder
step started from — for every declared input size at once — optionally joined
(concat or add) with the encoder output of that size, as U-Net does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..catalog import KINDS
from ..core.recipe import PADDING_WORDS, AxisRecipe
from ..core.sizes import format_size, parse_size, spread
from ..design.checks import INT64_MAX, Checker, read_ops
from ..design.design import BuildOptions, Merge, Step, make_step
from ..errors import InputError

ENCODER_KEYS = ("inputs", "channels", "steps")
DECODER_KEYS = ("ops", "skip", "channels", "out_channels", "head", "out_size")
STEP_KEYS = ("op", "channels", "kernel", "stride", "padding", "output_padding", "dilation", "ceil_mode", "scale")
SKIPS = ("concat", "add", "crop", "none")


@dataclass(frozen=True)
class Mirror:
    """What an encoder contributes to a problem: fixed prefix steps and the decoder's targets."""

    prefix: tuple[Step, ...]  # the encoder, built at the first input size
    inputs: tuple[tuple[int, ...], ...]  # spatial size of each declared input
    sizes: tuple[tuple[int, ...], ...]  # per decoder boundary: sizes of every input, concatenated
    channels: tuple[int, ...]  # per decoder boundary: own output channels (bottleneck first)
    merges: tuple[Merge | None, ...]  # per decoder step
    size_from: tuple[int, ...]  # per decoder step: design step whose output has the target size (-1: input)
    skip_shapes: tuple[tuple[int, ...] | None, ...]  # per decoder step: the skip's shape at the first input
    #: Per decoder boundary: None where ``sizes`` fixes it, else the (low, high) a free size lies in.
    free: tuple[tuple[int, int] | None, ...] = ()

    def boundaries(self) -> list[tuple[tuple[int, ...], tuple[int, int] | None]]:
        """Per decoder boundary: its sizes and, where free, the bounds a free size lies in."""
        free = self.free or (None,) * len(self.sizes)
        return list(zip(self.sizes, free, strict=True))


def read_mirror(
    check: Checker, encoder: Mapping[str, Any], decoder: Mapping[str, Any], ndim: int | None, build: BuildOptions
) -> tuple[Mirror | None, int, tuple[tuple[tuple[str, ...], ...], ...]]:
    """Check the tables and compute the encoder trajectory; returns (mirror, ndim, decoder ops)."""
    check.keys(encoder, ENCODER_KEYS, "encoder.")
    check.keys(decoder, DECODER_KEYS, "decoder.")
    raw_inputs = encoder.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        check.add("encoder.inputs", f'expected a list of input sizes such as ["101x75", 128], got {raw_inputs!r}')
        return None, ndim or 2, ()
    inputs: list[tuple[int, ...]] = []
    for i, value in enumerate(raw_inputs):
        try:
            inputs.append(parse_size(value))
        except InputError as exc:
            check.add(f"encoder.inputs[{i}]", str(exc))
    lengths = {len(s) for s in inputs if len(s) > 1}
    ndim = ndim or (lengths.pop() if len(lengths) == 1 else 2)
    inputs = [spread(s, ndim) for s in inputs]
    for i, size in enumerate(inputs):
        if len(size) != ndim:
            check.add(f"encoder.inputs[{i}]", f"expected {ndim} per-axis sizes, got {format_size(size)}")
    channels = check.integer(encoder.get("channels", 3), "encoder.channels", 1) or 1
    raw_steps = encoder.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        check.add(
            "encoder.steps",
            'expected a list of steps such as [{ op = "conv", channels = 64, kernel = 3, stride = 2, padding = 1 }]',
        )
        return None, ndim, ()
    if check.issues:
        return None, ndim, ()

    parsed = [_encoder_step(check, f"encoder.steps[{i}]", step, ndim) for i, step in enumerate(raw_steps)]
    if check.issues:
        return None, ndim, ()
    # Build the encoder for every input; the first input's steps are the design's prefix.
    trajectories: list[list[tuple[int, ...]]] = []
    prefix: list[Step] = []
    for x, size in enumerate(inputs):
        shape: tuple[int, ...] = (channels, *size)
        shapes = [shape]
        for i, (op, axes, c_out, word) in enumerate(parsed):
            try:
                resolved = _resolve_word(op, axes, word, shape[1:])
                if x > 0 and resolved != prefix[i].layers[0].axes:
                    raise InputError(
                        f"padding {word!r} needs torch padding {_pads(resolved)} here but "
                        f"{_pads(prefix[i].layers[0].axes)} at {format_size(inputs[0])}; "
                        "one torch layer cannot serve both"
                    )
                step = make_step((op,), shape, (resolved,), c_out or shape[0], build, first=i == 0, last=False)
            except InputError as exc:
                check.add(f"encoder.steps[{i}]", f"at input {format_size(size)}: {exc}")
                return None, ndim, ()
            shape = step.out_shape
            shapes.append(shape)
            if x == 0:
                prefix.append(step)
        trajectories.append(shapes)

    changing = [j for j in range(len(parsed)) if any(t[j + 1][1:] != t[j][1:] for t in trajectories)]
    if not changing:
        check.add("encoder.steps", "no step changes the size, so there is nothing for a decoder to mirror")
        return None, ndim, ()
    skip = decoder.get("skip", "concat")
    skip = check.choice(skip, "decoder.skip", SKIPS) or "none"
    out_channels = check.integer(decoder.get("out_channels", channels), "decoder.out_channels", 1) or channels
    if skip == "crop":
        return _crop_mirror(check, decoder, parsed, trajectories, tuple(prefix), tuple(inputs), ndim, out_channels)
    for key in ("head", "out_size"):
        if key in decoder:
            check.add(f"decoder.{key}", 'only with skip = "crop"; other decoders end on the encoder\'s input size')
    targets = list(reversed(changing))  # decoder step d lands on the size encoder step targets[d] started from
    own = _decoder_channels(check, decoder.get("channels", "mirror"), targets, trajectories[0], out_channels)
    ops = read_ops(check, decoder.get("ops", "conv_transpose"), len(targets), ndim, key="decoder.ops")
    if check.issues:
        return None, ndim, ()

    sizes = [tuple(v for t in trajectories for v in t[-1][1:])]
    merges: list[Merge | None] = []
    size_from: list[int] = []
    skip_shapes: list[tuple[int, ...] | None] = []
    for d, j in enumerate(targets):
        sizes.append(tuple(v for t in trajectories for v in t[j][1:]))
        source = j - 1  # encoder step whose output has that size (-1: the input itself)
        size_from.append(source)
        if skip == "none" or source < 0:
            merges.append(None)
            skip_shapes.append(None)
            continue
        skip_shape = trajectories[0][j]
        if skip == "add" and skip_shape[0] != own[d + 1]:
            check.add(
                "decoder.skip", f"add needs decoder step {d + 1} to give {skip_shape[0]} channels, not {own[d + 1]}"
            )
        merges.append(Merge(source, skip))
        skip_shapes.append(skip_shape)
    mirror = Mirror(
        prefix=tuple(prefix),
        inputs=tuple(inputs),
        sizes=tuple(sizes),
        channels=tuple(own),
        merges=tuple(merges),
        size_from=tuple(size_from),
        skip_shapes=tuple(skip_shapes),
    )
    return mirror, ndim, tuple(ops)


def _crop_mirror(
    check: Checker,
    decoder: Mapping[str, Any],
    parsed: Sequence[tuple[str, tuple[AxisRecipe, ...], int | None, str | None]],
    trajectories: Sequence[Sequence[tuple[int, ...]]],
    prefix: tuple[Step, ...],
    inputs: tuple[tuple[int, ...], ...],
    ndim: int,
    out_channels: int,
) -> tuple[Mirror | None, int, tuple[tuple[tuple[str, ...], ...], ...]]:
    """The 2015 U-Net's decoder: one level per downsampling encoder step, skips center-cropped.

    Each encoder step with a stride above 1 starts a level; in reverse order, each
    level is the steps of ``ops`` (a list is one level's steps), the first of them
    joined with the encoder tensor that entered that downsampling step, cropped to
    its size.  Sizes between the steps are free: the recipes decide them, and a
    level's first step must land on a size the skip can be center-cropped to.
    ``head`` adds last steps (such as a 1x1 conv to the classes) after the levels;
    ``out_size`` is the output size the decoder must end on (smaller than the input).
    """
    if len(inputs) != 1:
        check.add("decoder.skip", "crop serves one input size; the crops differ between sizes")
        return None, ndim, ()
    levels = [j for j, (_, axes, _, _) in enumerate(parsed) if any(a.stride > 1 for a in axes)]
    if not levels:
        check.add("encoder.steps", "crop mirrors the downsampling steps (stride above 1), and there are none")
        return None, ndim, ()
    raw = decoder.get("ops", "conv_transpose")
    pattern = read_ops(check, raw, len(raw) if isinstance(raw, list) else 1, ndim, key="decoder.ops")
    raw_head = decoder.get("head", [])
    head = read_ops(check, raw_head, len(raw_head) if isinstance(raw_head, list) else 1, ndim, key="decoder.head")
    shapes = trajectories[0]
    out_size: tuple[int, ...] | None = None
    if "out_size" not in decoder:
        check.add("decoder.out_size", "missing: a crop decoder ends where its recipes do; give it, e.g. out_size = 388")
    else:
        try:
            out_size = spread(parse_size(decoder["out_size"]), ndim)
        except InputError as exc:
            check.add("decoder.out_size", str(exc))
    n_steps = len(levels) * len(pattern) + len(head)
    wanted: list[int] = []
    for j in reversed(levels):
        wanted += [shapes[j][0]] * len(pattern)  # each level gives the channels of the skip it joins
    wanted += [shapes[-1][0]] * len(head)
    wanted[-1] = out_channels
    given = decoder.get("channels", "mirror")
    if given != "mirror":
        if not isinstance(given, list) or len(given) != n_steps:
            check.add("decoder.channels", f"expected 'mirror' or a list of {n_steps} channel counts, got {given!r}")
        else:
            wanted = [check.integer(v, f"decoder.channels[{i}]", 1) or 1 for i, v in enumerate(given)]
    if check.issues or out_size is None:
        return None, ndim, ()
    largest = max(max(shape[1:]) for shape in shapes)
    merges: list[Merge | None] = []
    skip_shapes: list[tuple[int, ...] | None] = []
    free: list[tuple[int, int] | None] = [None]
    for j in reversed(levels):
        skip_shape = shapes[j]
        for part in range(len(pattern)):
            merges.append(Merge(j - 1, "crop") if part == 0 and j > 0 else None)
            skip_shapes.append(skip_shape if part == 0 and j > 0 else None)
            free.append((1, max(skip_shape[1:]) if part == 0 else largest))
    for _ in head:
        merges.append(None)
        skip_shapes.append(None)
        free.append((1, largest))
    free[-1] = None  # the decoder ends on out_size
    mirror = Mirror(
        prefix=prefix,
        inputs=inputs,
        sizes=(tuple(shapes[-1][1:]),) + ((),) * (n_steps - 1) + (out_size,),
        channels=(shapes[-1][0], *wanted),
        merges=tuple(merges),
        size_from=(-1,) * n_steps,
        skip_shapes=tuple(skip_shapes),
        free=tuple(free),
    )
    ops = [ops for _ in levels for ops in pattern] + list(head)
    return mirror, ndim, tuple(ops)


def _encoder_step(
    check: Checker, where: str, step: Any, ndim: int
) -> tuple[str, tuple[AxisRecipe, ...], int | None, str | None]:
    if not isinstance(step, dict):
        check.add(where, f'expected a table such as {{ op = "conv", kernel = 3 }}, got {step!r}')
        return "conv", (AxisRecipe(),) * ndim, None, None
    check.keys(step, STEP_KEYS, f"{where}.")
    op = step.get("op")
    if not isinstance(op, str) or op not in KINDS:
        check.choice(op, f"{where}.op", tuple(KINDS))
        return "conv", (AxisRecipe(),) * ndim, None, None
    kind = KINDS[op]
    c_out = None
    if "channels" in step:
        c_out = check.integer(step["channels"], f"{where}.channels", 1)
    elif kind.has_weights and not kind.keeps_channels:
        check.add(f"{where}.channels", f"{op} needs its output channel count")
    per_axis: dict[str, list[Any]] = {}
    word = None
    for key in ("kernel", "stride", "padding", "output_padding", "dilation", "scale"):
        if key not in step:
            continue
        value = step[key]
        if key == "padding" and isinstance(value, str):
            word = check.choice(value, f"{where}.padding", PADDING_WORDS)
            continue
        values = value if isinstance(value, list) else [value] * ndim
        if len(values) != ndim or any(
            isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= INT64_MAX for v in values
        ):
            check.add(f"{where}.{key}", f"expected a non-negative integer or {ndim} of them, got {value!r}")
            continue
        per_axis["stride" if key == "scale" else key] = values
    if kind.stride_defaults_to_kernel and "stride" not in per_axis and "kernel" in per_axis:
        per_axis["stride"] = per_axis["kernel"]  # torch's pooling default: stride = kernel
    ceil = step.get("ceil_mode", False)
    if not isinstance(ceil, bool):
        check.add(f"{where}.ceil_mode", f"expected true or false, got {ceil!r}")
        ceil = False
    axes = tuple(AxisRecipe(**{k: v[a] for k, v in per_axis.items()}, ceil_mode=ceil) for a in range(ndim))
    return op, axes, c_out, word


def _resolve_word(
    op: str, axes: tuple[AxisRecipe, ...], word: str | None, size: Sequence[int]
) -> tuple[AxisRecipe, ...]:
    """Keras padding words become explicit torch padding at one input size, through the catalog."""
    from ..catalog.base import PaddedKind

    kind = KINDS[op]
    if word is None:
        return axes
    if not isinstance(kind, PaddedKind):
        raise InputError(f"{op} takes no padding word")
    resolved = []
    for a, n in zip(axes, size, strict=True):
        fixed = kind.keras_padding(a, n, word)
        if fixed is None:
            raise InputError(f"padding {word!r} has no torch equivalent for {op} kernel {a.kernel} stride {a.stride}")
        resolved.append(fixed)
    return tuple(resolved)


def _pads(axes: Sequence[AxisRecipe]) -> str:
    return "/".join(f"{a.padding}+{a.pad_extra}" if a.pad_extra else str(a.padding) for a in axes)


def _decoder_channels(
    check: Checker, value: Any, targets: Sequence[int], shapes: Sequence[tuple[int, ...]], out_channels: int
) -> list[int]:
    bottleneck = shapes[-1][0]
    if value == "mirror":
        own = [bottleneck]
        for j in targets:
            # Each step gives the channels of the encoder output it lands beside; at the input, out_channels.
            own.append(out_channels if j == 0 else shapes[j][0])
        return own
    if not isinstance(value, list) or len(value) != len(targets):
        check.add("decoder.channels", f"expected 'mirror' or a list of {len(targets)} channel counts, got {value!r}")
        return [bottleneck] * (len(targets) + 1)
    return [bottleneck] + [check.integer(v, f"decoder.channels[{i}]", 1) or 1 for i, v in enumerate(value)]
