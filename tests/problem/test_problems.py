"""Each bundled problem solves, and the design its seed document prints is among the valid ones.

The pins below are read off the seeds (../shared/seeds/); pinning every step to them must leave
exactly the seed's design, built by the solver from the problem's own ranges and rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from archsolve.problem.problem import load
from archsolve.solve import solve

PROBLEMS = Path(__file__).parents[2] / "problems"

Pin = dict[str, Any]


def conv(k: int, s: int = 1, p: int = 0, **more: int) -> Pin:
    return {"kernel": k, "stride": s, "padding": p, "dilation": 1, **more}


def deconv(k: int, s: int, p: int, op: int = 0) -> Pin:
    return {"kernel": k, "stride": s, "padding": p, "output_padding": op, "dilation": 1}


BLOCK3 = {"kernel": 3, "padding": 1, "dilation": 1}
LSTM5 = {"kernel": 5, "padding": 2, "dilation": 1}

SEED_DESIGNS: dict[str, list[Pin]] = {
    # seed 001: ConvTranspose2d(nz, ngf*8, 4, 1, 0) then (4, 2, 1) four times
    "dcgan_generator": [deconv(4, 1, 0)] + [deconv(4, 2, 1)] * 4,
    # seed 001: Conv2d(nc, ndf, 4, 2, 1) four times, then Conv2d(ndf*8, 1, 4, 1, 0)
    "dcgan_discriminator": [conv(4, 2, 1)] * 4 + [conv(4, 1, 0)],
    # seed 002: N = (227 - 11 + 2x0)/4 + 1 = 55
    "alexnet_conv1": [conv(11, 4, 0)],
    # seed 002: Conv2D 3x3 same, MaxPooling2D 2x2 same, ..., UpSampling2D 2x2
    "keras_autoencoder": [
        {"kernel": 3, "stride": 1},
        {"kernel": 2, "stride": 2},
        {"kernel": 3, "stride": 1},
        {"kernel": 2, "stride": 2},
        {"kernel": 3, "stride": 1},
        {"scale": 2},
        {"kernel": 3, "stride": 1},
        {"scale": 2},
        {"kernel": 3, "stride": 1},
    ],
    # seed 002: conv2d_transpose(kernel_size=5, strides=2, padding='same')
    "tf_dcgan_generator": [{"kernel": 5, "stride": 2}] * 4,
    # seed 002: 16 residual blocks, Conv(3_256_1) + pixel shuffle x2 three times, Conv(9_3_1)
    "acgan_generator": [BLOCK3] * 16 + [conv(3, 1, 1, scale=2)] * 3 + [conv(9, 1, 4)],
    # seed 002: Conv(4,32,2), 2 residual, Conv(4,64,2), 2 residual, Conv(4,128,2), Conv(3,*,2) x3
    "acgan_discriminator": [conv(4, 2, 1), BLOCK3, BLOCK3, conv(4, 2, 1), BLOCK3, BLOCK3, conv(4, 2, 1)]
    + [conv(3, 2, 1)] * 3,
    # CycleGAN: c7s1-64, d128, d256, R256 x9, u128, u64, c7s1-3
    "cyclegan_generator": [conv(7, 1, 3), conv(3, 2, 1), conv(3, 2, 1)]
    + [BLOCK3] * 9
    + [deconv(3, 2, 1, 1)] * 2
    + [conv(7, 1, 3)],
    # seed 004: DeconvLayer(kernel 4, stride 2, padding 1, output_padding 0) x3
    "resnet50_decoder": [deconv(4, 2, 1)] * 3,
    # seed 000: conv [1,16,3,1,1], CLSTM filter 5, conv [64,64,3,2,1], ...; deconv 4/2/1; final convs
    "convlstm_encoder_decoder": [
        conv(3, 1, 1),
        LSTM5,
        conv(3, 2, 1),
        LSTM5,
        conv(3, 2, 1),
        LSTM5,
        deconv(4, 2, 1),
        LSTM5,
        deconv(4, 2, 1),
        LSTM5,
        conv(3, 1, 1),
        conv(1, 1, 0),
    ],
    # seed 003: F = 2f, S = f, P = f/2 for f = 2, 4, 8
    "upsample_x2_x4_x8": [deconv(4, 2, 1), deconv(8, 4, 2), deconv(16, 8, 4)],
}


def pinned(name: str, pins: list[Pin]) -> list[str]:
    return [f"search.step.{i + 1}.{key}={value}" for i, pin in enumerate(pins) for key, value in pin.items()]


@pytest.mark.parametrize("name", sorted(SEED_DESIGNS))
def test_seed_design_is_valid_and_unique_once_pinned(name: str) -> None:
    pins = SEED_DESIGNS[name]
    problem = load(PROBLEMS / f"{name}.toml", pinned(name, pins))
    solution = solve(problem, top=2)
    assert solution.count == 1
    (candidate,) = solution.candidates
    for choice, pin in zip(candidate.choices, pins, strict=True):
        for key, value in pin.items():
            # scale is the last op's factor (upsample, pixel shuffle); the rest describe the first op
            recipe = choice.recipes[-1][0] if key == "scale" else choice.recipes[0][0]
            assert getattr(recipe, "stride" if key == "scale" else key) == value, (name, key)


def test_dcgan_generator_tutorial_design_counts_like_torch() -> None:
    # The PyTorch DCGAN tutorial's generator has 3,576,704 parameters (issue #4's golden figure).
    problem = load(PROBLEMS / "dcgan_generator.toml", pinned("dcgan_generator", SEED_DESIGNS["dcgan_generator"]))
    (candidate,) = solve(problem).candidates
    trainable = sum(layer.params.trainable for layer in candidate.design.layers)
    assert trainable == 3_576_704


def test_tf_same_padding_maps_to_torch_padding_and_output_padding() -> None:
    problem = load(PROBLEMS / "tf_dcgan_generator.toml", pinned("tf", SEED_DESIGNS["tf_dcgan_generator"]))
    (candidate,) = solve(problem).candidates
    x = torch.zeros(1, 512, 4, 4)
    for layer in candidate.design.layers:
        x = layer.build()(x)
    assert tuple(x.shape) == (1, 3, 64, 64)  # TF 'same' with stride 2 doubles: 4 -> 64 in four steps


def receptive_field_in_torch(candidate: Any, size: int) -> int:
    """Width of the input region one central output pixel depends on (all-ones weights, autograd)."""
    x = torch.ones(1, candidate.design.in_shape[0], size, size, requires_grad=True)
    y = x
    for layer in candidate.design.layers:
        module = layer.build()
        for p in module.parameters():
            torch.nn.init.constant_(p, 1.0)
        if layer.op in ("batch_norm", "instance_norm", "group_norm"):
            continue
        y = module(y)
    centre = y.shape[-1] // 2
    y[0, 0, centre, centre].backward()
    cols = (x.grad[0].abs().sum(dim=(0, 1)) > 0).nonzero()
    return int(cols.max() - cols.min() + 1)


def test_patchgan_designs_see_70_pixels() -> None:
    solution = solve(load(PROBLEMS / "cyclegan_discriminator.toml"), top=3)
    assert solution.count >= 1
    for candidate in solution.candidates:
        assert receptive_field_in_torch(candidate, 256) == 70


@pytest.mark.slow  # a new interpreter
@pytest.mark.parametrize(
    ("name", "params", "in_shape", "out_shape"),
    [
        # Issue #4's golden figures: the PyTorch DCGAN tutorial's models as torch counts them.
        ("dcgan_generator", 3_576_704, (2, 100, 1, 1), (2, 3, 64, 64)),
        ("dcgan_discriminator", 2_765_568, (2, 3, 64, 64), (2, 1, 1, 1)),
    ],
)
def test_pinned_dcgan_problems_emit_the_tutorial_models(
    name: str, params: int, in_shape: tuple[int, ...], out_shape: tuple[int, ...], tmp_path: Path
) -> None:
    import subprocess
    import sys

    from archsolve.build.emit import emit_source

    problem = load(PROBLEMS / f"{name}.toml", pinned(name, SEED_DESIGNS[name]))
    (candidate,) = solve(problem).candidates
    path = tmp_path / "model.py"
    path.write_text(emit_source(candidate.design))
    script = (
        "import importlib.util, sys, torch\n"
        f"spec = importlib.util.spec_from_file_location('model', {str(path)!r})\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "assert 'archsolve' not in sys.modules\n"
        "model = getattr(mod, mod.__all__[0])().eval()\n"
        f"y = model(torch.randn{in_shape})\n"
        "print(sum(p.numel() for p in model.parameters()), tuple(y.shape))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert int(out[0]) == params
    assert tuple(int(v) for v in " ".join(out[1:]).strip("()").split(",") if v.strip()) == out_shape
