"""Normalisation: batch, instance and group norm, and the norms blocks insert."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.recipe import AxisRecipe, Ranges
from ..core.sizes import channels_text
from .base import LayerFields, OpKind, ParamCount, nd

if TYPE_CHECKING:
    import torch


class BatchNorm(OpKind):
    """``nn.BatchNormNd``: 2C trainable (γ, β) and 2C non-trainable (running mean, var), as Keras counts."""

    name = "batch_norm"
    keeps_channels = True
    is_norm = True

    def out_size(self, r: AxisRecipe, n: int, ndim: int = 2) -> int | None:
        return n if r == AxisRecipe() else None

    def max_input(self, ranges: Ranges, high: int | None) -> int | None:
        return high

    def params(self, layer: LayerFields) -> ParamCount:
        c = layer.in_shape[0]
        return ParamCount(2 * c, 2 * c)

    def build(self, layer: LayerFields) -> torch.nn.Module:
        return nd("BatchNorm", len(layer.axes))(layer.in_shape[0])


class InstanceNorm(BatchNorm):
    """``nn.InstanceNormNd`` with torch's defaults (no affine weights, no running stats): no parameters."""

    name = "instance_norm"

    def params(self, layer: LayerFields) -> ParamCount:
        return ParamCount()

    def shape_issue(self, layer: LayerFields) -> str | None:
        # Statistics are per sample and channel, in eval mode too (no running stats).
        if math.prod(layer.in_shape[1:]) <= 1:
            return f"{self.name} needs more than one spatial value per channel, got {channels_text(layer.in_shape)}"
        return None

    def build(self, layer: LayerFields) -> torch.nn.Module:
        return nd("InstanceNorm", len(layer.axes))(layer.in_shape[0])


class GroupNorm(BatchNorm):
    """``nn.GroupNorm`` (32 groups where they divide C, else the largest power of two that does): 2C weights."""

    name = "group_norm"

    def params(self, layer: LayerFields) -> ParamCount:
        return ParamCount(2 * layer.in_shape[0])

    @staticmethod
    def groups(channels: int) -> int:
        """Group count for ``channels``: 32 where it divides, else the largest smaller power of two that does."""
        return next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0)

    def shape_issue(self, layer: LayerFields) -> str | None:
        # Statistics are per sample and group, in eval mode too.
        c = layer.in_shape[0]
        if c // self.groups(c) * math.prod(layer.in_shape[1:]) <= 1:
            return f"{self.name} needs more than one value per group, got {channels_text(layer.in_shape)}"
        return None

    def build(self, layer: LayerFields) -> torch.nn.Module:
        return norm_module("group", layer.in_shape[0], len(layer.axes))


#: ``[build].norm`` words and the catalog kind each one inserts after a weighted layer.
def norm_module(norm: str, channels: int, ndim: int) -> torch.nn.Module:
    """The torch module for a ``[build].norm`` word; ``nn.Identity`` for ``none``."""
    from torch import nn

    if norm == "batch":
        return nd("BatchNorm", ndim)(channels)
    if norm == "instance":
        return nd("InstanceNorm", ndim)(channels)
    if norm == "group":
        return nn.GroupNorm(GroupNorm.groups(channels), channels)
    return nn.Identity()


NORM_KINDS = {"batch": "batch_norm", "instance": "instance_norm", "group": "group_norm", "none": None}

#: The norm kinds by name: the blocks that insert their own norms ask these, not the whole catalog.
NORM_LAYERS: dict[str, OpKind] = {kind.name: kind for kind in (BatchNorm(), InstanceNorm(), GroupNorm())}


def norm_params(norm: str, channels: int, twice: bool = False) -> ParamCount:
    """Parameters of the norm layer(s) of kind ``norm`` (a ``[build].norm`` word) over ``channels``."""
    name = NORM_KINDS[norm]
    if name is None:
        return ParamCount()
    one = NORM_LAYERS[name].params(_NormProbe(channels))  # type: ignore[arg-type]
    return one + one if twice else one


@dataclass(frozen=True)
class _NormProbe:
    """The one field a norm kind reads to count its parameters."""

    channels: int

    @property
    def in_shape(self) -> tuple[int]:
        return (self.channels,)
