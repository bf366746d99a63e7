"""Every command speaks JSON with a format version, and takes encoder/decoder problems wherever it takes a problem."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from archsolve.build.modules import build
from archsolve.core.formats import JSON_VERSION
from archsolve.problem.problem import load
from archsolve.solve import solve

PROBLEMS = Path(__file__).parents[2] / "problems"
UNET = str(PROBLEMS / "unet_101x75.toml")
DCGAN = str(PROBLEMS / "dcgan_generator.toml")
Cli = Callable[..., Any]  # conftest's cli fixture: (code, out, err)


@pytest.mark.parametrize(
    "args",
    [
        ("explore", "16", "32"),
        ("solve", DCGAN, "--no-rank", "--top", "2"),
        ("build", DCGAN),
        ("summary", DCGAN),
    ],
)
def test_every_command_prints_versioned_json(cli: Cli, args: tuple[str, ...]) -> None:
    code, out, err = cli(*args, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert next(iter(data)) == "version" and data["version"] == JSON_VERSION


def test_summary_of_an_encoder_decoder_problem_matches_torch(cli: Cli) -> None:
    code, out, err = cli("summary", UNET, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["checked"] is True
    assert data["in_shape"] == [3, 101, 75]
    design = solve(load(UNET), top=1).candidates[0].design
    net = build(design)  # the expected numbers come from the torch module, not from the table
    assert data["params"]["trainable"] == sum(p.numel() for p in net.parameters())
    assert tuple(net(torch.zeros(1, 3, 101, 75)).shape[1:]) == tuple(data["out_shape"])


def test_build_of_an_encoder_decoder_problem_writes_runnable_source(
    cli: Cli, tmp_path: Path, load_source: Callable[[Path], object]
) -> None:
    out = tmp_path / "x.py"
    code, text, err = cli("build", UNET, "-o", str(out), "--json")
    assert code == 0, err
    data = json.loads(text)
    assert data["output"] == str(out) and data["source"] == out.read_text(encoding="utf-8")
    module = load_source(out)
    model = getattr(module, data["class"])()
    assert tuple(model(torch.zeros(1, 3, 101, 75)).shape) == (1, *data["out_shape"])
    assert sum(p.numel() for p in model.parameters()) == data["params"]["trainable"]


def test_a_problem_is_never_mistaken_for_a_saved_design(cli: Cli, tmp_path: Path) -> None:
    code, out, err = cli("summary", UNET)
    assert code == 0, err
    assert "unknown key" not in err and "Total params" in out
