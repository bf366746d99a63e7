"""The op catalog: the only code that knows a layer kind's arithmetic.

One class per kind holds, in one place, its per-axis output-size rule, the
rules PyTorch enforces at run time, its parameter and MAC counts and its
torch builder.  Solver, counter, builder and
CLI all ask this module; nothing else repeats a formula.

Torch is imported inside the methods that need it, so that listing
recipes (``archsolve explore``) stays light.

The kinds live in one module per family (``base``, ``conv``, ``pool``, ``resample``, ``norm``, ``blocks``);
this package is their one registry.
"""

from __future__ import annotations

from ..errors import InputError, unknown
from .base import (
    LayerFields,
    OpKind,
    PaddedKind,
    ParamCount,
    clear_recipe_cache,
)
from .blocks import ConvLSTM, ResidualBlock, SameConvBlock
from .conv import CONV, Conv, ConvTranspose
from .norm import NORM_KINDS, NORM_LAYERS, BatchNorm, GroupNorm, InstanceNorm, norm_module, norm_params
from .pool import AvgPool, MaxPool, Pool
from .resample import PixelShuffle, PixelUnshuffle, Upsample

#: Every kind, by name, in the order recipes are listed.
KINDS: dict[str, OpKind] = {
    kind.name: kind
    for kind in (
        CONV,
        ConvTranspose(),
        MaxPool(),
        AvgPool(),
        Upsample(),
        PixelShuffle(),
        PixelUnshuffle(),
        *NORM_LAYERS.values(),
        ResidualBlock(),
        ConvLSTM(),
    )
}

KIND_ORDER = {name: i for i, name in enumerate(KINDS)}


def kind(name: str) -> OpKind:
    """The catalog entry for ``name``; InputError naming the nearest kind otherwise."""
    try:
        return KINDS[name]
    except KeyError:
        raise InputError(unknown("op kind", name, KINDS)) from None


__all__ = [
    "CONV",
    "KINDS",
    "KIND_ORDER",
    "NORM_KINDS",
    "NORM_LAYERS",
    "AvgPool",
    "BatchNorm",
    "Conv",
    "ConvLSTM",
    "ConvTranspose",
    "GroupNorm",
    "InstanceNorm",
    "LayerFields",
    "MaxPool",
    "OpKind",
    "PaddedKind",
    "ParamCount",
    "PixelShuffle",
    "PixelUnshuffle",
    "Pool",
    "ResidualBlock",
    "SameConvBlock",
    "Upsample",
    "clear_recipe_cache",
    "kind",
    "norm_module",
    "norm_params",
]
