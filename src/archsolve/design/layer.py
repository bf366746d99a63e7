"""One concrete layer of a design: the value that owns every number about it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..catalog import kind
from ..catalog.base import OpKind, ParamCount
from ..core.recipe import AxisRecipe
from ..errors import InputError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Layer:
    """A layer kind with its per-axis recipes and the shapes it maps between.

    Shapes are ``(C, *spatial)`` for one sample.  Build through :meth:`make`,
    which asks the op catalog for the output shape and refuses what torch would.
    """

    op: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    axes: tuple[AxisRecipe, ...]
    groups: int = 1
    bias: bool = True
    mode: str = "nearest"
    norm: str = "none"
    #: Transposed conv called with ``output_size=`` the spatial size of this design step's output
    #: (-1: the input), so one layer serves several input sizes; None: a fixed output_padding.
    size_from: int | None = None

    @classmethod
    def make(
        cls,
        op: str,
        in_shape: Sequence[int],
        axes: Sequence[AxisRecipe],
        out_channels: int | None = None,
        **options: Any,
    ) -> Layer:
        """The layer ``op`` applied to ``in_shape``; InputError when torch would reject it."""
        k = kind(op)
        in_shape = tuple(int(v) for v in in_shape)
        axes = tuple(axes)
        ndim = len(in_shape) - 1
        if len(axes) != ndim:
            raise InputError(f"{op}: {len(axes)} axis recipes for a {ndim}D input")
        reason = k.layer_compatible(axes, ndim)
        if reason:
            raise InputError(reason)
        spatial = []
        for axis, (n, r) in enumerate(zip(in_shape[1:], axes, strict=True)):
            out = k.out_size(r, n, ndim)
            if out is None:
                raise InputError(f"{op}: torch rejects {_recipe_text(k, r)} on axis {axis} of size {n}")
            spatial.append(out)
        channels = k.channels_out(in_shape[0], out_channels, axes, options.get("groups", 1))
        layer = cls(op, in_shape, (channels, *spatial), axes, **options)
        issue = k.shape_issue(layer)
        if issue:
            raise InputError(issue)
        return layer

    @property
    def kind(self) -> OpKind:
        return kind(self.op)

    @property
    def ndim(self) -> int:
        return len(self.axes)

    @property
    def params(self) -> ParamCount:
        return self.kind.params(self)

    @property
    def macs(self) -> int:
        return self.kind.macs(self)

    @property
    def checkerboard(self) -> bool:
        return any(self.kind.checkerboard(a) for a in self.axes)

    @property
    def gaps(self) -> bool:
        return any(self.kind.gaps(a, n) for a, n in zip(self.axes, self.in_shape[1:], strict=True))

    def recipe(self) -> dict[str, Any]:
        """The kind's own fields, each an int when equal on every axis, else a list (PyTorch's convention)."""
        return self.kind.describe_axes(self.axes)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (docs/json.md): op, shapes, recipe fields, params."""
        return {
            "op": self.op,
            "in_shape": list(self.in_shape),
            "out_shape": list(self.out_shape),
            **self.recipe(),
            **({"groups": self.groups} if self.groups != 1 else {}),
            **self._pad_extra(),
            **{name: getattr(self, name) for name in self.kind.layer_options},
            **({"output_size_from": self.size_from} if self.size_from is not None else {}),
            "params": self.params.total,
        }

    def build(self) -> torch.nn.Module:
        return self.kind.build(self)

    def _pad_extra(self) -> dict[str, Any]:
        """Keras "same" padding's trailing zero per axis, where any axis has one (torch pads it with ConstantPad)."""
        extra = [a.pad_extra for a in self.axes]
        if not any(extra):
            return {}
        return {"pad_extra": extra[0] if len(set(extra)) == 1 else extra}


def _recipe_text(k: OpKind, r: AxisRecipe) -> str:
    return " ".join(f"{name}={value}" for name, value in k.describe(r).items()) or "the identity recipe"
