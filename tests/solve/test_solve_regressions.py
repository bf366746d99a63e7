"""Wrong answers hostile input found (issue #10), each checked against the real torch layers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from archsolve.build.emit import emit_source
from archsolve.build.modules import build
from archsolve.cli.commands import main
from archsolve.errors import InfeasibleError
from archsolve.problem.problem import loads
from archsolve.solve import solve

PROBLEMS = Path(__file__).parents[2] / "problems"


def torch_params(module: nn.Module) -> int:
    """Trainable parameters plus BatchNorm running statistics (Keras' count), read off the module."""
    stats = sum(b.numel() for name, b in module.named_buffers() if name.endswith(("running_mean", "running_var")))
    return sum(p.numel() for p in module.parameters()) + stats


def test_groups_is_a_real_field_from_recipe_to_emitted_source() -> None:
    problem = loads(
        'sizes = [8, 8]\nchannels = [4, 8]\nops = "conv"\n'
        '[search]\ngroups = 2\nkernel = [1, 3]\n[build]\nnorm = "none"\n'
    )
    solution = solve(problem, top=5)
    assert solution.candidates
    for candidate in solution.candidates:
        net = build(candidate.design).eval()
        convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
        assert [c.groups for c in convs] == [2]
        assert torch_params(net) == candidate.params
        assert net(torch.randn(1, 4, 8, 8)).shape == (1, 8, 8, 8)
        assert candidate.design.to_dict()["layers"][0]["groups"] == 2
        assert "groups=2" in emit_source(candidate.design)


def test_keras_same_on_a_non_square_input_is_one_layer_with_per_axis_padding() -> None:
    """7x10 -> 4x5 with ``padding = "same"``: Keras builds k2, k3, k4 at stride 2 as one layer (TF pads
    the odd totals on the trailing side); each must come out 4x5 in torch, not only k1."""
    problem = loads(
        'sizes = [[7, 10], [4, 5]]\nchannels = [3, 8]\nops = "conv"\n'
        '[search]\npadding = "same"\nkernel = [1, 4]\nstride = [1, 3]\n[build]\nnorm = "none"\n'
    )
    solution = solve(problem, top=50)
    kernels = set()
    for candidate in solution.candidates:
        (layer,) = candidate.design.layers
        kernels.add(layer.axes[0].kernel)
        # TF "same": out = ceil(n / s) on every axis
        assert [-(-n // a.stride) for n, a in zip((7, 10), layer.axes, strict=True)] == [4, 5]
        out = build(candidate.design).eval()(torch.randn(1, 3, 7, 10))
        assert out.shape == (1, 8, 4, 5)
    assert kernels >= {2, 3, 4}


def test_json_keeps_pad_extra(tmp_path: Path) -> None:
    """7 -> 4 with k2 s2 "same": TF pads one zero at the end; without pad_extra torch gives 3."""
    path = tmp_path / "p.toml"
    path.write_text(
        'sizes = [7, 4]\nchannels = [3, 8]\nops = "conv"\n'
        '[search]\npadding = "same"\nkernel = 2\nstride = 2\n[build]\nnorm = "none"\n'
    )
    result = CliRunner().invoke(main, ["solve", str(path), "--no-rank", "--json"])
    assert result.exit_code == 0, result.output
    (layer,) = json.loads(result.stdout)["candidates"][0]["layers"]
    assert layer["padding"] == 0 and layer["pad_extra"] == 1
    padded = nn.Sequential(nn.ConstantPad2d((0, 1, 0, 1), 0.0), nn.Conv2d(3, 8, 2, 2))
    assert padded(torch.randn(1, 3, 7, 7)).shape[2:] == (4, 4)
    assert nn.Conv2d(3, 8, 2, 2)(torch.randn(1, 3, 7, 7)).shape[2:] == (3, 3)  # what dropping it gave


def residual_problem(no_gaps: bool) -> str:
    return (
        'sizes = [3, 3]\nchannels = [4, 4]\nops = "residual_block"\n'
        "[search]\nkernel = 2\ndilation = 4\npadding = [0, 4]\n"
        f"[constraints]\nno_gaps = {str(no_gaps).lower()}\nno_dead_pixels = false\n"
    )


def test_residual_block_reports_gaps() -> None:
    """k2 d4 p2 keeps 3x3 but its convs never read the middle row and column (the input gradient says so)."""
    conv = nn.Conv2d(1, 1, 2, padding=2, dilation=4, bias=False)
    x = torch.randn(1, 1, 3, 3, requires_grad=True)
    conv(x).sum().backward()
    assert x.grad is not None and x.grad[0, 0, 1].abs().sum() == 0
    with pytest.raises(InfeasibleError, match="no_gaps"):
        solve(loads(residual_problem(no_gaps=True)))
    assert solve(loads(residual_problem(no_gaps=False))).count == 1


def test_bias_auto_drops_conv_biases_before_norms_in_residual_blocks() -> None:
    problem = loads('sizes = [8, 8]\nchannels = [16, 16]\nops = "residual_block"\n[search]\nkernel = 3\n')
    candidate = solve(problem, top=1).candidates[0]
    net = build(candidate.design).eval()
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 2 and all(c.bias is None for c in convs)
    assert torch_params(net) == candidate.params


def test_the_budget_hint_counts_the_encoder() -> None:
    """The smallest design's parameters, encoder included, read off the torch module."""
    lines = (PROBLEMS / "unet_101x75.toml").read_text().splitlines()
    text = "\n".join(line for line in lines if not line.startswith("reference"))  # its seed design is not asked
    smallest = solve(loads(text), top=1).candidates[0]
    size = torch_params(build(smallest.design))
    assert size == smallest.params
    tight = loads(text, overrides=[f"constraints.max_params={size - 1}"])
    with pytest.raises(InfeasibleError) as caught:
        solve(tight, top=1)
    assert f"the smallest design has {size:,} params" in str(caught.value)
