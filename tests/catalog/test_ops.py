"""The op catalog on the seeds' own layers, with golden numbers from the seeds or from torch.

The random contract over every kind lives in ``tests/catalog/test_ops_contract.py``.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from archsolve import catalog as ops
from archsolve.core.recipe import AxisRecipe, Ranges
from archsolve.design.layer import Layer
from archsolve.errors import InputError


def square(ndim: int = 2, **fields: int) -> list[AxisRecipe]:
    return [AxisRecipe(**fields)] * ndim  # type: ignore[arg-type]


def torch_counts(module: nn.Module) -> tuple[int, int]:
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    state = sum(b.numel() for name, b in module.named_buffers() if not name.endswith("num_batches_tracked"))
    return trainable, state


# --- looking kinds up -------------------------------------------------------------------------------


def test_kind_lookup_and_did_you_mean() -> None:
    assert ops.kind("conv_transpose") is ops.KINDS["conv_transpose"]
    with pytest.raises(InputError, match="did you mean 'conv_transpose'"):
        ops.kind("conv_tranpose")
    with pytest.raises(InputError, match="unknown op kind"):
        ops.kind("zzz")


def test_every_kind_has_a_distinct_name_and_order() -> None:
    assert list(ops.KIND_ORDER) == list(ops.KINDS)
    assert all(k.name == name for name, k in ops.KINDS.items())


# --- seed 003: a Keras summary (Conv2D / BatchNorm / Conv2DTranspose, padding same) --------------------


def test_seed_003_keras_summary_parameters() -> None:
    """con1 1792, batch_normalization_1 256 (128 of them non-trainable), deconv1 73792, score1 12117."""
    con1 = Layer.make("conv", (3, 128, 128), square(kernel=3, padding=1), out_channels=64)
    bn = Layer.make("batch_norm", con1.out_shape, square())
    deconv1 = Layer.make("conv_transpose", (128, 128, 128), square(kernel=3, padding=1), out_channels=64)
    score1 = Layer.make("conv_transpose", deconv1.out_shape, square(kernel=3, padding=1), out_channels=21)
    assert con1.params.total == 1792 and con1.out_shape == (64, 128, 128)
    assert (bn.params.trainable, bn.params.non_trainable) == (128, 128)
    assert deconv1.params.total == 73792 and deconv1.out_shape == (64, 128, 128)
    assert score1.params.total == 12117
    total = con1.params + bn.params + deconv1.params + score1.params
    assert (total.total, total.trainable, total.non_trainable) == (87957, 87829, 128)


def test_seed_003_enlarge_rule_64_to_128() -> None:
    """F=4, S=2, P=1 takes 64 to 128 (seed 003's worked example), in torch and in the catalog."""
    r = AxisRecipe(kernel=4, stride=2, padding=1)
    assert ops.KINDS["conv_transpose"].out_size(r, 64) == 128
    assert nn.ConvTranspose2d(3, 3, 4, 2, 1)(torch.zeros(1, 3, 64, 64)).shape[-1] == 128


def test_batch_norm_counts_2c_trainable_and_2c_running_statistics() -> None:
    for ndim in (1, 2, 3):
        layer = Layer.make("batch_norm", (64, *[4] * ndim), square(ndim))
        module = layer.build()
        assert torch_counts(module) == (128, 128)
        assert (layer.params.trainable, layer.params.non_trainable) == (128, 128)


# --- seed 000: the ConvLSTM encoder ---------------------------------------------------------------------


def test_seed_000_convlstm_shapes_small() -> None:
    """(16,10,16,64,64) → CLSTM_cell(input 16, filter 5, features 64) → (16,10,64,64,64); here batch 2, T 3, 16x16."""
    layer = Layer.make("conv_lstm", (16, 16, 16), square(kernel=5, padding=2), out_channels=64)
    assert layer.out_shape == (64, 16, 16)
    with torch.no_grad():
        y = layer.build()(torch.randn(2, 3, 16, 16, 16))
    assert tuple(y.shape) == (2, 3, 64, 16, 16)


@pytest.mark.parametrize(("c_in", "hidden"), [(16, 64), (64, 96), (96, 96)])
def test_convlstm_gates_are_one_conv_from_c_in_plus_hidden_to_4_hidden(c_in: int, hidden: int) -> None:
    """The seed's three cells: parameters equal those of one Conv2d(C_in + C_h, 4·C_h, 5)."""
    layer = Layer.make("conv_lstm", (c_in, 8, 8), square(kernel=5, padding=2), out_channels=hidden)
    gates = nn.Conv2d(c_in + hidden, 4 * hidden, 5, padding=2)
    assert layer.params.trainable == torch_counts(gates)[0] == torch_counts(layer.build())[0]
    assert layer.params.non_trainable == 0


def test_convlstm_refuses_a_size_changing_gate_conv() -> None:
    """Kernel 5 without padding shrinks the state: the catalog refuses it, and so does the running cell."""
    with pytest.raises(InputError):
        Layer.make("conv_lstm", (16, 8, 8), square(kernel=5), out_channels=64)
    unchecked = Layer("conv_lstm", (16, 8, 8), (64, 8, 8), tuple(square(kernel=5)))
    with pytest.raises(RuntimeError):
        unchecked.build()(torch.randn(1, 2, 16, 8, 8))


# --- residual blocks with every norm --------------------------------------------------------------------


@pytest.mark.parametrize("norm", sorted(ops.NORM_KINDS))
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_residual_block_counts_with_each_norm(norm: str, ndim: int) -> None:
    layer = Layer.make("residual_block", (8, *[5] * ndim), square(ndim, kernel=3, padding=1), norm=norm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = layer.build().eval()
        y = module(torch.randn(1, 8, *[5] * ndim))
    assert tuple(y.shape[1:]) == layer.out_shape == layer.in_shape
    assert (layer.params.trainable, layer.params.non_trainable) == torch_counts(module)


def test_instance_norm_refuses_a_single_pixel() -> None:
    """torch: "Expected more than 1 spatial element": the catalog names it for the whole shape."""
    with pytest.raises(InputError, match="more than one spatial value"):
        Layer.make("instance_norm", (4, 1, 1), square())
    with pytest.raises(ValueError):
        torch.nn.InstanceNorm2d(4)(torch.randn(2, 4, 1, 1))
    wide = Layer.make("instance_norm", (4, 1, 2), square())
    wide.build()(torch.randn(2, 4, 1, 2))


@pytest.mark.parametrize(("channels", "refused"), [(32, True), (8, True), (64, False), (3, False)])
def test_group_norm_needs_two_values_per_group(channels: int, refused: bool) -> None:
    try:
        torch.nn.GroupNorm(ops.GroupNorm.groups(channels), channels).eval()(torch.randn(1, channels, 1, 1))
        torch_refuses = False
    except ValueError:
        torch_refuses = True
    assert torch_refuses == refused
    if refused:
        with pytest.raises(InputError, match="more than one value per group"):
            Layer.make("group_norm", (channels, 1, 1), square())
    else:
        Layer.make("group_norm", (channels, 1, 1), square()).build().eval()(torch.randn(1, channels, 1, 1))


# --- enumeration ----------------------------------------------------------------------------------------


def test_recipes_are_distinct_sorted_and_solve_is_their_subset() -> None:
    kind = ops.KINDS["conv_transpose"]
    ranges = Ranges(kernel=(1, 6), stride=(1, 3), padding=(0, 3), output_padding=(0, 2), dilation=(1, 2))
    listed = kind.recipes(10, ranges)
    recipes = [r for r, _ in listed]
    assert recipes == sorted(recipes) and len(set(recipes)) == len(recipes)
    assert set(kind.solve(10, 20, ranges)) == {r for r, out in listed if out == 20}
    for r, out in listed:
        y = nn.ConvTranspose1d(1, 1, r.kernel, r.stride, r.padding, r.output_padding, dilation=r.dilation)(
            torch.zeros(1, 1, 10)
        )
        assert y.shape[-1] == out


def test_param_count_adds_up() -> None:
    total = ops.ParamCount(3, 1) + ops.ParamCount(4, 2)
    assert (total.trainable, total.non_trainable, total.total) == (7, 3, 10)
