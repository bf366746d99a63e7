"""Decoders that mirror an encoder: trajectories from the catalog, exact landings, several input sizes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from archsolve.errors import InfeasibleError, InputError
from archsolve.problem import load, loads
from archsolve.solver import solve

PROBLEMS = Path(__file__).parent.parent / "problems"

UNET = """
name = "u"
[encoder]
inputs = ["{size}"]
channels = 3
steps = [
    {{ op = "conv", channels = 8, kernel = 3, padding = 1 }},
    {{ op = "max_pool", kernel = 2 }},
    {{ op = "conv", channels = 16, kernel = 3, padding = 1 }},
    {{ op = "max_pool", kernel = 2 }},
    {{ op = "conv", channels = 32, kernel = 3, padding = 1 }},
]
[decoder]
ops = "conv_transpose"
skip = "{skip}"
[search]
kernel = [1, 4]
stride = [1, 2]
padding = [0, 2]
output_padding = [0, 1]
per_axis = true
"""


def encoder_sizes_in_torch(size: tuple[int, int]) -> list[tuple[int, int]]:
    """The encoder's spatial sizes, from torch itself."""
    x = torch.zeros(1, 3, *size)
    layers = [
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.MaxPool2d(2), torch.nn.Conv2d(8, 16, 3, padding=1),
        torch.nn.MaxPool2d(2), torch.nn.Conv2d(16, 32, 3, padding=1),
    ]
    sizes = [tuple(x.shape[2:])]
    for layer in layers:
        x = layer(x)
        sizes.append(tuple(x.shape[2:]))
    return sizes  # type: ignore[return-value]


@pytest.mark.parametrize("size", [(101, 75), (64, 64), (33, 17)])
def test_decoder_lands_on_the_encoder_sizes_torch_computes(size: tuple[int, int]) -> None:
    problem = loads(UNET.format(size=f"{size[0]}x{size[1]}", skip="concat"))
    sizes = encoder_sizes_in_torch(size)
    # Decoder steps mirror the two pools: bottleneck -> size before pool 2 -> size before pool 1.
    assert [s.fixed for s in problem.sizes] == [sizes[4], sizes[2], sizes[0]]
    solution = solve(problem, top=3)
    assert solution.count >= 1
    for candidate in solution.candidates:
        decoder = [layer for layer in candidate.design.layers[len(problem.prefix[0].layers) :]]
        assert decoder  # the design holds encoder and decoder
        assert candidate.design.outputs[-1][1:] == size


def test_skip_channels_are_concatenated() -> None:
    problem = loads(UNET.format(size="101x75", skip="concat"))
    candidate = solve(problem, top=1).candidates[0]
    # last decoder step gives 8 channels (mirroring conv 1) and joins conv 1's 8: 16 out
    assert candidate.design.out_shape == (16, 101, 75)
    add = loads(UNET.format(size="101x75", skip="add"))
    assert solve(add, top=1).candidates[0].design.out_shape == (8, 101, 75)


def test_plain_x2_decoder_cannot_serve_odd_sizes() -> None:
    text = UNET.format(size="101x75", skip="concat") + "\n[search.step.1]\nkernel = 2\npadding = 0\noutput_padding = 0\n"
    with pytest.raises(InfeasibleError, match="step 1"):
        solve(loads(text))


MULTI = """
name = "m"
[encoder]
inputs = [{inputs}]
channels = 3
steps = [{{ op = "conv", channels = 8, kernel = 3, stride = 2, padding = 1 }},
         {{ op = "conv", channels = 16, kernel = 3, stride = 2, padding = 1 }}]
[decoder]
ops = "conv_transpose"
[search]
kernel = {kernel}
stride = 2
padding = {padding}
output_padding = [0, 1]
"""


def test_several_sizes_need_run_time_output_size() -> None:
    problem = loads(MULTI.format(inputs="96, 100, 101, 128", kernel="[1, 4]", padding="[0, 2]"))
    solution = solve(problem, top=5)
    assert solution.count >= 1
    for candidate in solution.candidates:
        decoder = candidate.design.steps[len(problem.prefix) :]
        assert any(layer.size_from is not None for step in decoder for layer in step.layers)
        for index, step in enumerate(decoder):
            layer = step.layers[0]
            a = layer.axes[0]
            module = torch.nn.ConvTranspose2d(1, 1, a.kernel, a.stride, a.padding, a.output_padding, dilation=a.dilation)
            sources = problem.sizes[index].fixed[::2]  # type: ignore[index]
            targets = problem.sizes[index + 1].fixed[::2]  # type: ignore[index]
            for n, want in zip(sources, targets, strict=True):
                x = torch.zeros(1, 1, n, n)
                if layer.size_from is None:
                    assert module(x).shape[-1] == want  # one fixed output_padding serves every size
                else:
                    assert module(x, output_size=[want, want]).shape[-1] == want  # torch accepts it


def test_one_fixed_output_padding_is_used_where_it_fits() -> None:
    # 96 and 128 both halve exactly: k3 s2 p1 op1 serves both without run-time sizing.
    problem = loads(MULTI.format(inputs="96, 128", kernel="[1, 4]", padding="[0, 2]"))
    solution = solve(problem, top=50)
    assert any(all(layer.size_from is None for layer in c.design.layers) for c in solution.candidates)


def test_conflicting_sizes_are_named() -> None:
    # k4 s2: 50 -> 100 needs padding 1, 51 -> 101 needs padding 2; no single layer serves both.
    problem = loads(MULTI.format(inputs="100, 101", kernel="4", padding="[1, 2]").replace(
        'steps = [{ op = "conv", channels = 8, kernel = 3, stride = 2, padding = 1 },\n'
        '         { op = "conv", channels = 16, kernel = 3, stride = 2, padding = 1 }]',
        'steps = [{ op = "conv", channels = 8, kernel = 3, stride = 2, padding = 1 }]',
    ))
    with pytest.raises(InfeasibleError) as info:
        solve(problem)
    text = str(info.value)
    assert "inputs 1 and 2 conflict" in text and "50x50 → 100x100" in text and "51x51 → 101x101" in text


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('[encoder]\ninputs = []\nchannels = 3\nsteps = [{ op = "conv", channels = 4, kernel = 3 }]',
         "encoder.inputs"),
        ('[encoder]\ninputs = ["10x"]\nsteps = [{ op = "conv", channels = 4, kernel = 3 }]', "encoder.inputs[0]"),
        ('[encoder]\ninputs = [32]\nsteps = [{ op = "conv", channels = 4, kernel = 3, stride = 1, padding = 1 }]',
         "no step changes the size"),
        ('[encoder]\ninputs = [32]\nsteps = [{ op = "convv", channels = 4 }]', "did you mean 'conv'"),
        ('[encoder]\ninputs = [32]\nsteps = [{ op = "conv", kernel = 3, stride = 2 }]', "needs its output channel"),
        ('[encoder]\ninputs = [32]\nsteps = [{ op = "conv", channels = 4, kernal = 3 }]', "did you mean 'kernel'"),
        ('[encoder]\ninputs = [4]\nsteps = [{ op = "conv", channels = 4, kernel = 9, stride = 2 }]', "torch rejects"),
        ('[encoder]\ninputs = [32]\nsteps = [{ op = "conv", channels = 4, kernel = 3, stride = 2 }]\n'
         '[decoder]\nskip = "sum"', "decoder.skip"),
        ('sizes = [1, 2]\n[encoder]\ninputs = [32]\nsteps = [{ op = "conv", channels = 4, kernel = 3, stride = 2 }]',
         "sizes: not with [encoder]"),
        ('[encoder]\ninputs = [32, 33]\nsteps = [{ op = "conv", channels = 4, kernel = 3, stride = 2, padding = "same" }]',
         "one torch layer cannot serve both"),
    ],
)
def test_bad_encoder_tables(table: str, expected: str) -> None:
    with pytest.raises(InputError) as info:
        loads(table)
    assert expected in str(info.value)


@pytest.mark.parametrize("name", ["unet_101x75", "unet_multisize", "resnet_decoder_200"])
def test_bundled_encoder_problems_solve(name: str) -> None:
    problem = load(PROBLEMS / f"{name}.toml")
    solution = solve(problem, top=3)
    assert solution.count >= 1
    for candidate in solution.candidates:
        assert candidate.design.outputs[len(problem.prefix) - 1] == problem.prefix[-1].out_shape
