"""What a fix search returns: one recipe change (:class:`Change`) and the fix for one size (:class:`Fix`).

A leaf of its own, so the per-axis report can hold a fix without importing the search (no cycle).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .capture import call_label
from .graph import Edits


@dataclass(frozen=True)
class Change:
    """One recipe change: ``field`` of layer ``layer`` on tensor axis ``axis`` from ``old`` to ``new``.

    ``field`` is a recipe field (``padding``, ``output_padding``, ``ceil_mode``) or ``pad``
    (``new`` extra pixels at the end of the axis, negative: a crop) of the tensor ``layer``
    gives to the merge ``merge``.
    """

    layer: str
    op: str
    step: int
    field: str
    axis: int
    old: int | bool | str
    new: int | bool | str
    merge: str | None = None
    part: int | None = None
    line: str = ""  # file.py:N where the model's own forward makes the call ("" for a module)

    @property
    def in_forward(self) -> bool:
        """A call in the model's own code: only its source can change, so the fix is not applied and run."""
        return not self.layer

    @property
    def cost(self) -> int:
        """How big the change is: pixels of padding moved; a pad or crop costs two more than a recipe change."""
        if self.field == "output_size":
            return 0
        if self.field == "pad":
            return abs(int(self.new)) + 2
        return abs(int(self.new) - int(self.old))

    def text(self, names: Sequence[str]) -> str:
        name = names[self.axis] if self.axis < len(names) else f"axis {self.axis}"
        if self.field == "pad":
            how = f"pad by {self.new}" if int(self.new) > 0 else f"crop by {-int(self.new)}"
            source = call_label(self.layer, self.op, self.line)
            return f"{how} at the end of {name} the output of {source} before {self.merge}"
        if self.field == "output_size":
            return (
                f"{self.layer} (conv_transpose): call it with output_size= the size of the output of {self.new} "
                f"(the other side of {self.merge})"
            )
        return f"{call_label(self.layer, self.op, self.line)}: {self.field} on {name} {self.old} → {self.new}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "op": self.op,
            "field": self.field,
            "tensor_axis": self.axis,
            "old": self.old,
            "new": self.new,
            "merge": self.merge,
            "line": self.line or None,
        }


@dataclass(frozen=True)
class Fix:
    """Changes that make ``size`` run; ``output`` the output shape they give there."""

    size: int
    axis: int
    names: tuple[str, ...]
    changes: tuple[Change, ...]
    output: tuple[int, ...] | None
    expected: int | None
    keeps: int
    ran: int
    verified: bool | None = None
    verified_output: tuple[int, ...] | None = None
    note: str | None = None
    title: str | None = None  # "H=W=100" for the fix of every axis at once
    checked_on: str = "meta"  # where it was applied and run: "CPU" (and meta) or "meta"
    edits: Edits | None = field(default=None, compare=False, repr=False)  # the graph edits the changes make

    def lines(self) -> list[str]:
        n = self.title or f"{self.names[self.axis]}={self.size}"
        if not self.changes:
            return [f"fix for {n}: none found ({self.note or 'no recipe change makes it run'})"]
        head = f"fix for {n}:"
        body = [f"  - {c.text(self.names)}" for c in self.changes]
        if self.verified is None:
            forward = [c for c in self.changes if c.in_forward]
            where = ", ".join(sorted({c.line for c in forward if c.line})) or "the model's forward"
            check = f"; UNVERIFIED: a call in the model's own code ({where}) is not applied and run — edit it there"
        else:
            check = f"; applied to the model and run on {self.checked_on}: {'ok' if self.verified else 'FAILED'}"
        kept = "" if self.title else f"; still runs {self.keeps} of the {self.ran} sizes that ran"
        tail = f"  output {list(self.output or ())}{kept}" + check
        return [head, *body, tail] + ([f"  ({self.note})"] if self.note else [])

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "changes": [c.to_dict() for c in self.changes],
            "output": list(self.output) if self.output else None,
            "expected": self.expected,
            "keeps": self.keeps,
            "of": self.ran,
            "verified": self.verified,
            "checked_on": self.checked_on if self.verified is not None else None,
            "note": self.note,
        }
