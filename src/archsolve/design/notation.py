"""The compact recipe notation: the one owner of how a design is written as one line of text.

Tables print it and problem files read it back (``reference = "…"``), so a row
pasted from a table names the same design::

    conv_transpose k4 s1 | conv_transpose k4 s2 p1 | upsample ×2 + conv k3 p1 →64 @8x8

Grammar
    A design is its steps joined by ``|``; a run of equal steps is written
    once with its count in front (``16× residual_block k1``, or ``16x``).
    A step is its layers joined by
    ``+`` (a composite such as ``upsample+conv``), optionally followed by
    ``→C`` (or ``->C``: the step's output channels) and ``@HxW`` (its output
    size), printed where the problem leaves them free.  A layer is its kind
    followed by tokens, each a field's short name and value, fields at their
    defaults left out:

    ======  =========================  ======  ==========================
    ``k``   kernel                     ``op``  output_padding
    ``s``   stride                     ``d``   dilation
    ``p``   padding                    ``pe``  one extra trailing zero (Keras ``same``)
    ``×``   upsample scale (or ``x``)  ``r``   pixel (un)shuffle factor
    ``g``   groups                     ``ceil`` ceil_mode
    ======  =========================  ======  ==========================

    A value is one integer for every axis or one per axis joined by ``x``
    (``k3x5``: kernel 3 on the first axis, 5 on the second).

The norms the builder inserts after a weighted layer are not written (the
problem's ``[build]`` decides them).  Nothing here imports torch or z3.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..catalog import KINDS
from ..catalog.norm import NORM_KINDS
from ..core.recipe import AxisRecipe
from ..core.table import Column
from ..errors import InputError, unknown
from .design import Design, Step
from .layer import Layer

#: Short token name → the name the catalog describes the field by (:meth:`OpKind.describe`).
SHORT = {
    "k": "kernel",
    "s": "stride",
    "p": "padding",
    "op": "output_padding",
    "d": "dilation",
    "×": "scale",
    "r": "factor",
}
LONG = {name: short for short, name in SHORT.items()}
#: Described fields left out of the text at these values.
DEFAULTS: dict[str, Any] = {"padding": 0, "output_padding": 0, "dilation": 1, "ceil_mode": False}
NORMS = frozenset(name for name in NORM_KINDS.values() if name is not None)

_TOKEN = re.compile(r"^(op|pe|k|s|p|d|r|g|×|x)(\d+(?:x\d+)*)$")
_CHANNELS = re.compile(r"^(?:→|->)(\d+)$")
_SIZE = re.compile(r"^@(\d+(?:x\d+)*)$")
_REPEAT = re.compile(r"^\s*(\d+)\s*[×x]\s+(.*)$", re.DOTALL)

#: The largest count a run of equal steps may be written with (``16× …``).
MAX_REPEAT = 1000
#: Between a design's steps; tables break a long design only here.
STEP_SEPARATOR = " | "


@dataclass(frozen=True)
class LayerText:
    """One parsed layer: its kind and the fields written, each one value or one per axis."""

    op: str
    fields: tuple[tuple[str, tuple[int, ...]], ...] = ()  # described field name → values
    pad_extra: tuple[int, ...] = (0,)
    groups: int = 1

    def axes(self, ndim: int) -> tuple[AxisRecipe, ...]:
        """The per-axis recipes on ``ndim`` axes; InputError when a per-axis value has another length."""
        kind = KINDS[self.op]
        per_axis: list[dict[str, Any]] = [{} for _ in range(ndim)]
        for name, values in (*self.fields, ("pad_extra", self.pad_extra)):
            if len(values) not in (1, ndim):
                raise InputError(f"{self.op}: {len(values)} values for {name} on a {ndim}-axis input")
            for axis in range(ndim):
                per_axis[axis][name] = values[0] if len(values) == 1 else values[axis]
        recipes = []
        for given in per_axis:
            extra = given.pop("pad_extra")
            recipes.append(kind.from_description(given)._replace(pad_extra=extra))
        return tuple(recipes)


@dataclass(frozen=True)
class StepText:
    """One parsed step: its layers, and the output channels and size where the text gives them."""

    layers: tuple[LayerText, ...]
    channels: int | None = None
    size: tuple[int, ...] | None = None

    @property
    def ops(self) -> tuple[str, ...]:
        return tuple(layer.op for layer in self.layers)

    def recipes(self, ndim: int) -> tuple[tuple[AxisRecipe, ...], ...]:
        """Per layer, per axis: the recipes the solver and :func:`archsolve.design.design.make_step` take."""
        return tuple(layer.axes(ndim) for layer in self.layers)


class Trajectory(Protocol):
    """What the formatter needs from a problem: which boundaries it leaves free, and its fixed prefix."""

    @property
    def channels(self) -> Sequence[int | None]: ...

    @property
    def sizes(self) -> Sequence[Any]: ...  # each with a ``free`` flag

    @property
    def prefix(self) -> Sequence[Step]: ...


# ------------------------------------------------------------------------------------------------
# Formatting
# ------------------------------------------------------------------------------------------------


def _values(value: Any) -> str:
    return "x".join(map(str, value)) if isinstance(value, list) else str(value)


def layer_text(layer: Layer) -> str:
    """``conv_transpose k4 s2 p1``: the kind, then each described field not at its default."""
    parts = [layer.op]
    for name, value in layer.recipe().items():
        if DEFAULTS.get(name) == value:
            continue
        if name == "ceil_mode":
            parts.append("ceil")
        else:
            parts.append(f"{LONG.get(name, name)}{_values(value)}")
    extra = [a.pad_extra for a in layer.axes]
    if any(extra):
        parts.append(f"pe{_values(extra if len(set(extra)) > 1 else extra[0])}")
    if layer.groups != 1:
        parts.append(f"g{layer.groups}")
    return " ".join(parts)


def _written(step: Step, inserted_norm: bool) -> list[Layer]:
    """The step's layers without the norm the builder put after its last weighted layer."""
    layers = list(step.layers)
    if inserted_norm:
        for i in range(len(layers) - 1, 0, -1):
            if layers[i].op in NORMS and layers[i - 1].kind.has_weights:
                del layers[i]
                break
    return layers


def step_text(step: Step, inserted_norm: bool = True, channels: bool = False, size: bool = False) -> str:
    """One step: its layers joined by `` + ``, then ``→C`` and ``@HxW`` when asked for."""
    text = " + ".join(layer_text(layer) for layer in _written(step, inserted_norm))
    if channels:
        text += f" →{step.out_shape[0]}"
    if size:
        text += f" @{'x'.join(map(str, step.out_shape[1:]))}"
    return text


def design_text(design: Design, problem: Trajectory | None = None) -> str:
    """The design on one line, steps joined by `` | ``, a run of equal steps as ``16× step``.

    With ``problem``, the steps it fixes (an encoder) are left out, and each step's
    channels and size are written where the problem leaves them free: the line is
    then what ``reference =`` reads back for that problem.
    """
    inserted = design.options.norm != "none"
    steps = design.steps
    if problem is None:
        texts = [step_text(step, inserted) for step in steps]
    else:
        skip = len(problem.prefix)
        texts = []
        for i, step in enumerate(steps[skip:]):
            free_c = problem.channels[i + 1] is None
            free_s = bool(problem.sizes[i + 1].free)
            texts.append(step_text(step, inserted, channels=free_c, size=free_s))
    runs: list[list[Any]] = []
    for text in texts:
        if runs and runs[-1][0] == text:
            runs[-1][1] += 1
        else:
            runs.append([text, 1])
    return STEP_SEPARATOR.join(text if count == 1 else f"{count}× {text}" for text, count in runs)


# ------------------------------------------------------------------------------------------------
# Parsing
# ------------------------------------------------------------------------------------------------


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split("x"))


def parse_layer(text: str) -> LayerText:
    """One layer, ``conv k3x5 s2 p1``; InputError naming the token that does not parse."""
    words = text.split()
    if not words:
        raise InputError("an empty layer (two '+' in a row, or one at an end)")
    op, tokens = words[0], words[1:]
    kind = KINDS.get(op)
    if kind is None:
        raise InputError(unknown("op kind", op, KINDS))
    described = kind.written_fields()
    fields: dict[str, tuple[int, ...]] = {}
    pad_extra: tuple[int, ...] = (0,)
    groups = 1
    for token in tokens:
        if token == "ceil" and "ceil_mode" in described:
            fields["ceil_mode"] = (1,)
            continue
        match = _TOKEN.match(token)
        if match is None:
            raise InputError(f"{op}: cannot read {token!r}; expected e.g. k4, s2, p1, op1, d2, ×2, r2, g2, pe1, ceil")
        short, values = match.group(1), _ints(match.group(2))
        if short == "pe":
            pad_extra = values
            continue
        if short == "g":
            if len(values) != 1:
                raise InputError(f"{op}: groups {token!r} is one number for the layer")
            groups = values[0]
            continue
        name = SHORT["×" if short == "x" else short]
        if name not in described:
            fits = ", ".join(LONG.get(n, n) for n in described if n != "ceil_mode") or "no fields"
            raise InputError(f"{op}: takes no {name} ({token!r}); it takes {fits}")
        if name in fields:
            raise InputError(f"{op}: {name} given twice")
        fields[name] = values
    return LayerText(op, tuple(fields.items()), pad_extra, groups)


def parse_step(text: str) -> StepText:
    """One step: layers joined by ``+``, with optional ``→C`` and ``@HxW`` at the end."""
    channels: int | None = None
    size: tuple[int, ...] | None = None
    kept: list[str] = []
    for word in text.replace("+", " + ").split():
        if (found := _CHANNELS.match(word)) is not None:
            channels = int(found.group(1))
        elif (found := _SIZE.match(word)) is not None:
            size = _ints(found.group(1))
        else:
            kept.append(word)
    layers = tuple(parse_layer(part) for part in " ".join(kept).split("+"))
    return StepText(layers, channels, size)


def parse_design(text: str) -> tuple[StepText, ...]:
    """A design line, steps joined by ``|``; InputError naming the step that does not parse."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("expected a design such as 'conv_transpose k4 s1 | conv_transpose k4 s2 p1'")
    steps: list[StepText] = []
    for i, part in enumerate(text.split("|")):
        count, written = 1, part
        if (repeat := _REPEAT.match(part)) is not None:
            count, written = int(repeat.group(1)), repeat.group(2)
        try:
            if not 1 <= count <= MAX_REPEAT:
                raise InputError(f"a step repeated {count} times; expected 1 to {MAX_REPEAT}")
            steps += [parse_step(written)] * count
        except InputError as exc:
            raise InputError(f"step {i + 1} ({part.strip()!r}): {exc}") from None
    return tuple(steps)


RECIPE = Column("recipe", separator=STEP_SEPARATOR)
