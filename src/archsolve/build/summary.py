"""A Keras-style summary that counts right: layer, output shape, parameters, MACs.

Rows come from the op catalog (no torch needed); :func:`cross_check` builds
the module on the meta device and refuses any row torch disagrees with.  BN
running statistics count as non-trainable, as Keras counts them; transposed
convs cost C_in·C_out·k^n MACs per *input* position (the catalog's rule, which
torch's FlopCounterMode agrees with and torchinfo does not).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..catalog.base import ParamCount
from ..core.console import PIPE_WIDTH
from ..core.display import Shown
from ..core.sizes import batch_shape_text
from ..core.table import Column, Table
from ..design.design import Design, Step
from ..design.layer import Layer
from ..design.notation import step_text
from ..errors import BuildError


@dataclass(frozen=True)
class SummaryRow:
    """One line of the table: a layer, an activation, a merge, or the input."""

    name: str
    #: Catalog kind (``conv``), activation word (``relu``), merge word (``concat``) or ``input``.
    kind: str
    #: Index of the design step the row belongs to (-1 for the input).
    step: int
    #: One sample's shape, channels first (one frame's for sequence designs).
    output_shape: tuple[int, ...]
    params: ParamCount
    macs: int
    #: Rows this one reads where it is not simply the row before: the two sides of a merge, or a transposed
    #: conv's input and ``size of ROW``, the output whose size it takes at run time (``output_size=``).
    inputs: tuple[str, ...] = ()
    layer: Layer | None = None


def summary_table(design: Design) -> tuple[SummaryRow, ...]:
    """The rows of ``design``'s summary, every number taken from the op catalog."""
    counts: Counter[str] = Counter()

    def name_for(kind: str) -> str:
        counts[kind] += 1
        return f"{kind}_{counts[kind]}"

    rows = [SummaryRow("input", "input", -1, design.in_shape, ParamCount(), 0)]
    output_names = {-1: "input"}
    outputs = design.outputs
    for i, step in enumerate(design.steps):
        for layer in step.layers:
            reads = () if layer.size_from is None else (rows[-1].name, f"size of {output_names[layer.size_from]}")
            rows.append(
                SummaryRow(name_for(layer.op), layer.op, i, layer.out_shape, layer.params, layer.macs, reads, layer)
            )
        if step.activation != "none":
            rows.append(SummaryRow(name_for(step.activation), step.activation, i, step.out_shape, ParamCount(), 0))
        if step.merge is not None:
            sides = (output_names[step.merge.source], rows[-1].name)
            rows.append(SummaryRow(name_for(step.merge.how), step.merge.how, i, outputs[i], ParamCount(), 0, sides))
        output_names[i] = rows[-1].name
    return tuple(rows)


def totals(rows: Sequence[SummaryRow]) -> tuple[ParamCount, int]:
    """Parameters (trainable and non-trainable) and MACs of all rows."""
    return sum((row.params for row in rows), ParamCount()), sum(row.macs for row in rows)


def cross_check(design: Design, rows: Sequence[SummaryRow] | None = None) -> None:
    """Build ``design`` on the meta device and raise BuildError where torch disagrees with the rows.

    Checks every layer's output shape, the design's output shape, trainable
    parameters against ``module.parameters()``, non-trainable ones against the
    floating-point buffers, and MACs against torch's FlopCounterMode.
    """
    from .modules import trace

    rows = summary_table(design) if rows is None else rows
    measured = trace(design)
    problems: list[str] = []
    layer_rows = [row for row in rows if row.layer is not None]
    for row, shape in zip(layer_rows, measured.layer_shapes, strict=True):
        if row.output_shape != shape:
            problems.append(f"{row.name}: catalog shape {list(row.output_shape)}, torch {list(shape)}")
    if design.out_shape != measured.out_shape:
        problems.append(f"output: catalog shape {list(design.out_shape)}, torch {list(measured.out_shape)}")
    params, macs = totals(rows)
    if params.trainable != measured.trainable:
        problems.append(f"trainable parameters: catalog {params.trainable:,}, torch {measured.trainable:,}")
    if params.non_trainable != measured.non_trainable:
        problems.append(
            f"non-trainable parameters: catalog {params.non_trainable:,}, torch buffers {measured.non_trainable:,}"
        )
    if macs != measured.macs:
        problems.append(f"MACs per sample: catalog {macs:,}, torch FlopCounterMode {measured.macs:,}")
    if problems:
        raise BuildError(f"{design.name}: summary disagrees with the built module:\n  " + "\n  ".join(problems))


def describe_layer(layer: Layer) -> str:
    """``conv_transpose 100→512 kernel=4 stride=1 padding=0 output_padding=0 dilation=1, no bias``."""
    fields = [f"{key}={value}" for key, value in layer.recipe().items()]
    extra = [a.pad_extra for a in layer.axes]
    if any(extra):
        fields.append(f"pad_extra={extra[0] if len(set(extra)) == 1 else extra}")
    if layer.groups != 1:
        fields.append(f"groups={layer.groups}")
    fields += [f"{name}={getattr(layer, name)}" for name in layer.kind.layer_options]
    head = f"{layer.op} {layer.in_shape[0]}→{layer.out_shape[0]}"
    text = " ".join([head, *fields])
    if layer.kind.has_weights and not layer.bias:
        text += ", no bias"
    if layer.size_from is not None:
        source = "the input" if layer.size_from == -1 else f"steps[{layer.size_from}]"
        text += f", output_size from {source} at run time"
    return text


#: Bytes per value in the size estimates (float32, what ``build`` makes).
FLOAT_BYTES = 4
MB = 1e6  # torchinfo's megabyte


@dataclass(frozen=True)
class Sizes:
    """Memory a batch needs, in bytes, estimated as torchinfo estimates it (float32).

    ``forward_backward``: the output of every layer with parameters, twice (kept
    for the backward pass, and its gradient); ``params``: parameters and buffers
    (the running statistics), what the weights occupy.
    """

    input: int
    forward_backward: int
    params: int

    @property
    def total(self) -> int:
        return self.input + self.forward_backward + self.params

    @classmethod
    def of(cls, design: Design, rows: Sequence[SummaryRow], batch_size: int = 1, time_steps: int = 1) -> Sizes:
        per = batch_size * (time_steps if design.sequence else 1) * FLOAT_BYTES
        outputs = sum(math.prod(row.output_shape) for row in rows if row.params.total)
        params, _ = totals(rows)
        return cls(math.prod(design.in_shape) * per, 2 * outputs * per, params.total * FLOAT_BYTES)

    def lines(self) -> list[str]:
        return [
            f"Input size (MB): {self.input / MB:.2f}",
            f"Forward/backward pass size (MB): {self.forward_backward / MB:.2f}",
            f"Params size (MB): {self.params / MB:.2f}",
            f"Estimated Total Size (MB): {self.total / MB:.2f}",
        ]


def summary_view(design: Design, rows: Sequence[SummaryRow] | None = None, batch_size: int = 1) -> Table:
    """The table: a tree of steps and their layers, output shapes, params, MACs; totals and sizes below."""
    rows = summary_table(design) if rows is None else rows
    per = "frame" if design.sequence else "sample"
    linked = any(row.inputs for row in rows)
    columns = [
        Column("Layer (step › layer)"),
        Column("Output Shape"),
        Column("Param #", "right"),
        Column("Non-trainable", "right"),
        Column(f"MACs / {per}", "right"),
    ]
    if linked:
        columns.append(Column("Connected to", wrap=True))

    def cells(name: str, row: SummaryRow) -> tuple[str, ...]:
        non_trainable = f"{row.params.non_trainable:,}" if row.params.non_trainable else ""
        numbers = (f"{row.params.trainable:,}", non_trainable, f"{row.macs:,}")
        out = (name, batch_shape_text(row.output_shape, design.sequence), *numbers)
        return (*out, ", ".join(row.inputs)) if linked else out

    def heading(index: int, step: Step) -> tuple[str, ...]:
        """A step's own line: its compact recipe and its output (after any merge)."""
        recipe = step_text(step, inserted_norm=design.options.norm != "none")
        shape = batch_shape_text(design.outputs[index], design.sequence)
        return (f"step {index + 1}: {recipe}", shape, *[""] * (len(columns) - 2))

    body = [cells(row.name, row) for row in rows if row.step == -1]
    rules = [len(body) - 1]
    for index, step in enumerate(design.steps):
        members = [row for row in rows if row.step == index]
        body.append(heading(index, step))
        body += [cells(("└─ " if j == len(members) - 1 else "├─ ") + row.name, row) for j, row in enumerate(members)]
        rules.append(len(body) - 1)
    params, macs = totals(rows)
    sizes = Sizes.of(design, rows, batch_size)
    notes = (
        f"Total params: {params.total:,} ({params.total * FLOAT_BYTES / MB:.2f} MB)",
        f"Trainable params: {params.trainable:,}",
        f"Non-trainable params: {params.non_trainable:,}",
        f"MACs per {per}: {macs:,}",
        "MACs as torch's FlopCounterMode counts them (FLOPs / 2): a transposed conv costs C_in·C_out·k^n per input"
        " position (torchinfo counts output positions, 3–4× more).",
        *sizes.lines(),
        f"Sizes for a batch of {batch_size}{' frame' if design.sequence else ''}, float32; forward/backward: outputs of"
        " the layers with parameters, ×2 for gradients (torchinfo's estimate).",
    )
    return Table(
        tuple(columns), tuple(body), title=f'Model: "{design.name}"', notes=notes, rules_after=tuple(rules[:-1])
    )


def render_summary(design: Design, rows: Sequence[SummaryRow] | None = None, width: int = PIPE_WIDTH) -> str:
    """The table as plain text (what a pipe gets); the command line draws :func:`summary_view` for its terminal."""
    from ..core.console import render

    return render(summary_view(design, rows), width)


@dataclass(frozen=True, repr=False)
class Summary(Shown):
    """A design's summary: its rows, their totals, and whether torch confirmed them (:func:`cross_check`).

    ``str()`` gives the table; notebooks render it through ``_repr_html_``.
    """

    design: Design
    rows: tuple[SummaryRow, ...]
    checked: bool = False

    @property
    def params(self) -> ParamCount:
        return totals(self.rows)[0]

    @property
    def macs(self) -> int:
        return totals(self.rows)[1]

    def text(self) -> str:
        return render_summary(self.design, self.rows)

    def table(self) -> Table:
        return summary_view(self.design, self.rows)

    def __repr__(self) -> str:
        return f"<Summary {self.design.name!r}: {self.params.total:,} params, {self.macs:,} MACs>"

    def to_dict(self) -> dict[str, Any]:
        """The ``summary --json`` form (docs/json.md), without the version field."""
        params, macs = totals(self.rows)
        return {
            "design": self.design.name,
            "sequence": self.design.sequence,
            "in_shape": list(self.design.in_shape),
            "out_shape": list(self.design.out_shape),
            "checked": self.checked,
            "rows": [
                {
                    "name": row.name,
                    "kind": row.kind,
                    "step": row.step,
                    "output_shape": list(row.output_shape),
                    "params": row.params.total,
                    "trainable": row.params.trainable,
                    "non_trainable": row.params.non_trainable,
                    "macs": row.macs,
                    "inputs": list(row.inputs),
                }
                for row in self.rows
            ],
            "params": {"total": params.total, "trainable": params.trainable, "non_trainable": params.non_trainable},
            "macs": macs,
        }


def summarize(design: Design, check: bool = True) -> Summary:
    """The summary of ``design``; with ``check``, every row confirmed against torch on the meta device."""
    rows = summary_table(design)
    if check:
        cross_check(design, rows)
    return Summary(design, rows, checked=check)
