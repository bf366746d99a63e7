"""``reference = "…"``: the design to beat, in the notation the tables print, checked like any design."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from archsolve.build.modules import build_meta
from archsolve.design.notation import design_text
from archsolve.errors import InputError
from archsolve.problem.problem import load, loads
from archsolve.solve import SolutionSpace, Solver, solve
from archsolve.solve.reference import reference_candidate
from helpers.seed_designs import convlstm_encoder_decoder, dcgan_discriminator, dcgan_generator

PROBLEMS = Path(__file__).parents[2] / "problems"
DCGAN = str(PROBLEMS / "dcgan_generator.toml")


@pytest.mark.parametrize("path", sorted(PROBLEMS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_bundled_problem_carries_a_reference_that_fits(path: Path) -> None:
    problem = load(path)
    assert problem.reference, "no reference"
    reference = reference_candidate(problem, Solver(problem).tables)
    assert reference is not None
    net = build_meta(reference.design).eval()  # shapes on the meta device: torch itself checks the chain
    lead = (1, 2) if reference.design.sequence else (1,)
    with torch.no_grad():
        y = net(torch.zeros(*lead, *reference.design.in_shape, device="meta"))
    assert tuple(y.shape[len(lead) :]) == reference.design.out_shape
    assert tuple(y.shape[len(lead) + 1 :]) == problem.sizes[-1].fixed[: problem.ndim]


@pytest.mark.parametrize(
    ("name", "seed"),
    [
        ("dcgan_generator", dcgan_generator),
        ("dcgan_discriminator", dcgan_discriminator),
        ("convlstm_encoder_decoder", convlstm_encoder_decoder),
    ],
)
def test_the_reference_is_the_seeds_own_design(name: str, seed: Callable[[], object]) -> None:
    problem = load(PROBLEMS / f"{name}.toml")
    reference = reference_candidate(problem, Solver(problem).tables)
    assert reference is not None
    expected = seed()
    layers = [(layer.op, layer.in_shape, layer.out_shape, layer.axes) for layer in expected.layers]  # type: ignore[attr-defined]
    assert [(layer.op, layer.in_shape, layer.out_shape, layer.axes) for layer in reference.design.layers] == layers


def test_the_tutorial_generator_has_the_tutorials_parameter_count() -> None:
    solution = solve(load(DCGAN), top=1)
    assert solution.reference is not None
    assert solution.reference.design.params.trainable == 3_576_704  # the PyTorch DCGAN tutorial's count


@pytest.mark.parametrize(
    "name", ["dcgan_generator", "upsample_x2_x4_x8", "unet_101x75", "cyclegan_generator", "keras_autoencoder"]
)
def test_a_printed_row_pasted_back_is_the_same_design(name: str) -> None:
    problem = load(PROBLEMS / f"{name}.toml")
    solution = solve(problem, top=8)
    for candidate in solution.candidates:
        row = design_text(candidate.design, problem)  # what the solve table prints in its recipe column
        pasted = load(PROBLEMS / f"{name}.toml", [f"reference={json.dumps(row)}"])
        reference = reference_candidate(pasted, Solver(pasted).tables)
        assert reference is not None and reference.choices == candidate.choices, row


def test_free_channels_are_written_and_read_back() -> None:
    head = 'sizes = [4, "?", 16]\nchannels = [8, "?", 3]\nops = "upsample+conv"\n'
    tail = "[search]\nkernel = [1, 3]\nscale = [1, 4]\nchannels = [4, 8]\nmultiple_of = 4\n"
    problem = loads(head + tail)
    for candidate in solve(problem, top=5).candidates:
        row = design_text(candidate.design, problem)
        assert "→" in row and "@" in row  # the free boundary's channels and size
        pasted = loads(head + f"reference = {json.dumps(row)}\n" + tail)
        reference = reference_candidate(pasted, Solver(pasted).tables)
        assert reference is not None and reference.choices == candidate.choices, row
    missing = loads(head + 'reference = "upsample ×2 + conv k3 p1 | upsample ×2 + conv k3 p1"\n' + tail)
    with pytest.raises(InputError, match="reference: step 1: the problem leaves these channels free"):
        reference_candidate(missing, Solver(missing).tables)


def test_the_space_offers_the_reference_as_picks() -> None:
    solution = solve(load(DCGAN), top=1)
    space = SolutionSpace(solution)
    picks = space.reference()
    assert picks is not None and solution.reference is not None
    assert space.design(picks) == solution.reference.design


@pytest.mark.parametrize(
    ("reference", "says"),
    [
        ("conv_transpose k4 s1 | 4× conv_transpose k4 s2", "step 2: gives 10x10, the problem wants 8x8"),
        ("conv_transpose k4 s1 | 3× conv_transpose k4 s2 p1", "4 steps, but the problem has 5"),
        ("conv k4 s1 | 4× conv_transpose k4 s2 p1", "step 1: conv is not one of this step's kinds"),
        ("conv_transpose k4 s1 | 3× conv_transpose k4 s2 p1 | conv_transpose k3 s2 p1 op1", "no_checkerboard"),
        ("conv_transpose k4 s1 | 3× conv_transpose k4 s2 p1 | conv_transpose k1 s2 op1", "no_dead_pixels"),
        ("conv_transpose k4 s1 | conv_transpose k3 s3 p3 d2 | 3× conv_transpose k4 s2 p1", "constraints.faithful"),
        ("conv_transpose k4 s1 | 4× conv_transpose k4 s2 p1 →7", "step 2: →7, but the problem fixes 256 channels"),
        ("conv_transpose k4 q1 | 4× conv_transpose k4 s2 p1", "cannot read 'q1'"),
    ],
)
def test_a_reference_that_misses_is_an_input_error_naming_file_and_key(
    reference: str, says: str, cli: Callable[..., object]
) -> None:
    run = cli("solve", DCGAN, "--no-rank", "--set", f"reference={json.dumps(reference)}")
    assert run.code == 2  # type: ignore[attr-defined]
    assert "dcgan_generator.toml: reference" in run.err and says in run.err, run.err  # type: ignore[attr-defined]
    assert "Traceback" not in run.err  # type: ignore[attr-defined]


def test_a_reference_over_budget_names_the_constraint(cli: Callable[..., object]) -> None:
    run = cli("solve", DCGAN, "--no-rank", "--set", "constraints.max_params=2000000")
    assert run.code == 2 and "over constraints.max_params = 2,000,000" in run.err  # type: ignore[attr-defined]


def test_solve_shows_and_exports_the_reference(cli: Callable[..., object]) -> None:
    text = cli("solve", DCGAN, "--no-rank", "--top", "1")
    assert "reference: conv_transpose k4 s1 | 4× conv_transpose k4 s2 p1 (3,578,624 params" in text.out  # type: ignore[attr-defined]
    data = json.loads(cli("solve", DCGAN, "--no-rank", "--top", "1", "--json").out)  # type: ignore[attr-defined]
    assert data["reference"]["recipe"] == "conv_transpose k4 s1 | 4× conv_transpose k4 s2 p1"
    assert data["reference"]["params"] == 3_578_624
