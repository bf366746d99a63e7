"""archsolve.build: designs become torch modules whose shapes and counts are torch's own.

Goldens come from the seeds: the PyTorch DCGAN tutorial's networks (seed 001) written out literally
here, the tutorial's parameter counts, and seed 000's ConvLSTM shapes.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from archsolve.build.modules import DesignNet, Frames, activation_module, build, build_meta
from archsolve.core.recipe import AxisRecipe
from archsolve.design.design import BuildOptions, Design, Merge, Step, make_step
from archsolve.design.layer import Layer
from archsolve.errors import InputError
from helpers.seed_designs import convlstm_encoder_decoder, dcgan_discriminator, dcgan_generator, keras_seed_003


def torch_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def tutorial_generator() -> nn.Sequential:
    """Seed 001, verbatim (nz=100, ngf=64, nc=3)."""
    nz, ngf, nc = 100, 64, 3
    return nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
        nn.BatchNorm2d(ngf * 8),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf * 4),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf * 2),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
        nn.Tanh(),
    )


def tutorial_discriminator() -> nn.Sequential:
    """Seed 001, verbatim (nc=3, ndf=64)."""
    nc, ndf = 3, 64
    return nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 2),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 4),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 8),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
        nn.Sigmoid(),
    )


def flat_modules(net: DesignNet) -> list[nn.Module]:
    return [m for step in net.steps for m in step.children()]


def same_as_tutorial(design: Design, tutorial: nn.Sequential, x: torch.Tensor) -> None:
    """Module for module the tutorial's layers; with the tutorial's weights, the tutorial's output."""
    net = build(design)
    ours, theirs = flat_modules(net), list(tutorial)
    assert [type(m) for m in ours] == [type(m) for m in theirs]
    for a, b in zip(ours, theirs, strict=True):
        # ReLU(True) vs ReLU() differ only in inplace, which changes neither result nor parameters.
        assert repr(a).replace(", inplace=True", "").replace("inplace=True", "") == repr(b).replace(
            ", inplace=True", ""
        ).replace("inplace=True", "")
    tutorial.eval()
    net.eval()
    net.load_state_dict(dict(zip(net.state_dict(), tutorial.state_dict().values(), strict=True)))
    with torch.no_grad():
        torch.testing.assert_close(net(x), tutorial(x))


def test_dcgan_generator_is_the_tutorials() -> None:
    design = dcgan_generator()
    net = build(design)
    assert torch_params(net) == 3_576_704 == torch_params(tutorial_generator())
    assert design.params.trainable == 3_576_704
    assert net(torch.randn(2, 100, 1, 1)).shape == (2, 3, 64, 64)
    same_as_tutorial(design, tutorial_generator(), torch.randn(2, 100, 1, 1))


def test_dcgan_discriminator_is_the_tutorials() -> None:
    design = dcgan_discriminator()
    net = build(design)
    assert torch_params(net) == 2_765_568 == torch_params(tutorial_discriminator())
    assert design.params.trainable == 2_765_568
    assert net(torch.randn(2, 3, 64, 64)).shape == (2, 1, 1, 1)
    same_as_tutorial(design, tutorial_discriminator(), torch.randn(2, 3, 64, 64))


@pytest.mark.slow  # over a second: outside the fast set (-m "not slow"), still in CI
def test_convlstm_encoder_decoder_keeps_seed_000_shapes() -> None:
    design = convlstm_encoder_decoder()
    with torch.no_grad():
        # The seed's own batch, on the meta device (shapes without the ~3 TMAC of arithmetic)...
        assert build_meta(design)(torch.empty(16, 10, 1, 64, 64, device="meta")).shape == (16, 10, 1, 64, 64)
        # ...and a real run on a short sequence.
        net = build(design)
        assert net(torch.randn(1, 2, 1, 64, 64)).shape == (1, 2, 1, 64, 64)
    assert torch_params(net) == design.params.trainable
    # The seed's per-stage shapes: (C, H, W) after each encoder and decoder stage.
    assert [s.out_shape for s in design.steps] == [
        (16, 64, 64),
        (64, 64, 64),
        (64, 32, 32),
        (96, 32, 32),
        (96, 16, 16),
        (96, 16, 16),
        (96, 32, 32),
        (96, 32, 32),
        (96, 64, 64),
        (64, 64, 64),
        (16, 64, 64),
        (1, 64, 64),
    ]


def test_sequence_layers_fold_time_but_convlstm_sees_it() -> None:
    net = build(convlstm_encoder_decoder())
    first, cell = net.steps[0][0], net.steps[1][0]  # type: ignore[index]
    assert isinstance(first, Frames) and isinstance(first.layer, nn.Conv2d)
    assert not isinstance(cell, Frames)


def test_keras_seed_003_builds_with_its_skips() -> None:
    design = keras_seed_003()
    net = build(design)
    assert net(torch.randn(1, 3, 128, 128)).shape == (1, 85, 128, 128)
    # Keras's printed totals (seed 003): 87,829 trainable; 128 non-trainable = BN's moving mean and variance.
    assert torch_params(net) == 87_829
    assert sum(b.numel() for b in net.buffers() if b.is_floating_point()) == 128


def test_concat_puts_the_skip_first_and_add_sums() -> None:
    conv = AxisRecipe(kernel=3, padding=1)
    plain = BuildOptions(norm="none", activation="none")
    first = make_step(["conv"], (2, 5, 5), [(conv, conv)], 3, plain, True, False)
    second = make_step(["conv"], (3, 5, 5), [(conv, conv)], 2, plain, False, True, merge=Merge(-1, "add"))
    design = Design("skips", (first, second), plain)
    net = build(design)
    x = torch.randn(1, 2, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(net(x), x + net.steps[1](net.steps[0](x)))

    cat = Design("cat", (first, make_step(["conv"], (3, 5, 5), [(conv, conv)], 4, plain, False, True, Merge(0))))
    assert cat.out_shape == (7, 5, 5)
    net = build(cat)
    with torch.no_grad():
        y0 = net.steps[0](x)
        torch.testing.assert_close(net(x), torch.cat([y0, net.steps[1](y0)], dim=1))


@pytest.mark.parametrize(
    ("word", "cls"),
    [("relu", nn.ReLU), ("gelu", nn.GELU), ("silu", nn.SiLU), ("tanh", nn.Tanh), ("sigmoid", nn.Sigmoid)],
)
def test_activation_words(word: str, cls: type[nn.Module]) -> None:
    assert type(activation_module(word)) is cls


def test_leaky_relu_takes_the_slope_and_none_adds_nothing() -> None:
    module = activation_module("leaky_relu", 0.1)
    assert isinstance(module, nn.LeakyReLU) and module.negative_slope == 0.1
    assert activation_module("none") is None


def _conv(in_shape: tuple[int, ...], c_out: int) -> Layer:
    r = AxisRecipe(kernel=3, padding=1)
    return Layer.make("conv", in_shape, (r, r), c_out)


def test_design_refuses_steps_that_do_not_chain() -> None:
    with pytest.raises(InputError, match=r"steps\[1\] takes \[4, 8, 8\] but receives \[3, 8, 8\]"):
        Design("bad", (Step((_conv((2, 8, 8), 3),)), Step((_conv((4, 8, 8), 3),))))


@pytest.mark.parametrize(
    ("merge", "message"),
    [
        (Merge(1), r"merge source 1 is not an earlier step"),
        (Merge(-2), r"merge source -2"),
        (Merge(-1, "add"), r"add with output -1: 2 and 3 channels differ"),
    ],
)
def test_design_refuses_bad_merges(merge: Merge, message: str) -> None:
    with pytest.raises(InputError, match=message):
        Design("bad", (Step((_conv((2, 8, 8), 3),), merge=merge),))


def test_concat_needs_equal_sizes() -> None:
    pool = Layer.make("max_pool", (3, 8, 8), (AxisRecipe(kernel=2, stride=2),) * 2)
    with pytest.raises(InputError, match="sizes 8x8 and 4x4 differ"):
        Design("bad", (Step((_conv((2, 8, 8), 3),)), Step((pool,), merge=Merge(0))))


def test_unknown_merge_and_activation_words() -> None:
    with pytest.raises(InputError, match="did you mean 'concat'"):
        Merge(0, "concatenate")
    with pytest.raises(InputError, match="did you mean 'relu'"):
        Step((_conv((2, 8, 8), 3),), activation="rlu")


def test_convlstm_needs_a_sequence_design() -> None:
    r = AxisRecipe(kernel=3, padding=1)
    cell = Layer.make("conv_lstm", (2, 8, 8), (r, r), 4)
    with pytest.raises(InputError, match="sequence = true"):
        Design("bad", (Step((cell,)),))
    assert Design("ok", (Step((cell,)),), sequence=True).out_shape == (4, 8, 8)


# ------------------------------------------------------------------------------------------------
# Transposed convs sized at run time (Layer.size_from): one design for several input sizes
# ------------------------------------------------------------------------------------------------


def down_up(sequence: bool = False) -> Design:
    """conv k3 s2 p1 halves (rounding up), and a transposed conv k3 s2 p1 takes the input's size back at run time."""
    r = AxisRecipe(kernel=3, stride=2, padding=1)
    plain = BuildOptions(norm="none", activation="relu")
    down = Layer.make("conv", (2, 16, 16), (r, r), 4)
    up = Layer.make("conv_transpose", (4, 8, 8), (r._replace(output_padding=1),) * 2, 2, size_from=-1)
    return Design("down-up", (Step((down,), "relu"), Step((up,))), plain, sequence)


@pytest.mark.parametrize("size", [(16, 16), (17, 15), (9, 12)])
def test_run_time_output_size_gives_back_every_input_size(size: tuple[int, int]) -> None:
    net = build(down_up()).eval()
    x = torch.randn(2, 2, *size)
    conv, convt = net.steps[0][0], net.steps[1][0]  # type: ignore[index]
    assert isinstance(conv, nn.Conv2d) and isinstance(convt, nn.ConvTranspose2d)
    with torch.no_grad():
        # torch's own call: the transposed conv told the input's size picks its output_padding per axis.
        expected = convt(torch.relu(conv(x)), output_size=list(size))
        torch.testing.assert_close(net(x), expected)
    assert expected.shape == (2, 2, *size)


def test_run_time_output_size_over_a_time_axis() -> None:
    plain, frames = build(down_up()).eval(), build(down_up(sequence=True)).eval()
    assert isinstance(frames.steps[1][0], Frames)  # type: ignore[index]
    frames.load_state_dict(dict(zip(frames.state_dict(), plain.state_dict().values(), strict=True)))
    x = torch.randn(2, 3, 2, 17, 15)  # (B, T, C, H, W): the size comes from the last two axes, not T or C
    with torch.no_grad():
        y = frames(x)
        assert y.shape == x.shape
        for t in range(3):
            torch.testing.assert_close(y[:, t], plain(x[:, t]))


def test_run_time_size_on_the_meta_device_agrees_with_the_catalog() -> None:
    from archsolve.build.summary import cross_check

    cross_check(down_up())
    cross_check(down_up(sequence=True))


def test_design_refuses_bad_run_time_sizes() -> None:
    r = AxisRecipe(kernel=3, stride=2, padding=1)
    down = Layer.make("conv", (2, 16, 16), (r, r), 4)
    up = Layer.make("conv_transpose", (4, 8, 8), (r._replace(output_padding=1),) * 2, 2)
    with pytest.raises(InputError, match=r"steps\[1\].layers\[0\]: output_size from steps\[0\] is 8x8 but the recipe"):
        Design("bad", (Step((down,)), Step((replace(up, size_from=0),))))
    with pytest.raises(InputError, match="output_size source 1 is not an earlier step"):
        Design("bad", (Step((down,)), Step((replace(up, size_from=1),))))
    with pytest.raises(InputError, match="conv takes no output_size"):
        Design("bad", (Step((replace(down, size_from=-1),)),))


# ------------------------------------------------------------------------------------------------
# Every bundled problem builds, and its forward pass gives the sizes the problem declares
# ------------------------------------------------------------------------------------------------

PROBLEMS = Path(__file__).parents[2] / "problems"
#: Designs up to this many MACs per sample run on real CPU tensors; bigger ones on the meta device (shapes only).
REAL_MACS = 120_000_000


@pytest.mark.parametrize("path", sorted(PROBLEMS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_bundled_problem_builds_to_its_declared_sizes(path: Path) -> None:
    from archsolve.build.summary import cross_check
    from archsolve.problem.problem import load
    from archsolve.solve import solve

    problem = load(path)
    design = solve(problem, top=1).candidates[0].design
    cross_check(design)
    real = design.macs <= REAL_MACS
    device = "cpu" if real else "meta"
    net = build(design) if real else build_meta(design)
    net.eval()
    own: list[torch.Tensor] = []
    handles = [step[-1].register_forward_hook(lambda _m, _i, y: own.append(y)) for step in net.steps]  # type: ignore[index]
    lead = (1, 2) if design.sequence else (1,)
    with torch.no_grad():
        y = net(torch.randn(*lead, *design.in_shape, device=device))
    for handle in handles:
        handle.remove()
    assert tuple(y.shape) == (*lead, *design.out_shape)
    assert y.device.type == device
    # Boundary b of the problem is the output of design step len(prefix) + b - 1 (its own, before any skip).
    first = len(problem.prefix)
    ndim = problem.ndim
    shapes = [tuple(t.shape[len(lead) :]) for t in own]
    boundaries = [design.in_shape if first == 0 else shapes[first - 1], *shapes[first:]]
    assert len(boundaries) == problem.n_steps + 1
    for b, shape in enumerate(boundaries):
        spec, channels = problem.sizes[b], problem.channels[b]
        if spec.fixed is not None:
            assert shape[1:] == spec.fixed[:ndim], (b, shape)  # several inputs: the first input's sizes
        else:
            assert spec.allows(shape[1:])
        if channels is not None:
            assert shape[0] == channels, (b, shape)
