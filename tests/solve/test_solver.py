"""The solver: candidates run in real torch, explanations, constraints, time limits."""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path

import pytest
import torch

from archsolve.errors import InfeasibleError, SolverTimeout
from archsolve.problem.problem import load, loads
from archsolve.solve import Candidate, solve

PROBLEMS = Path(__file__).parents[2] / "problems"


def run_layers(candidate: Candidate, sequence: bool, batch: int = 1, steps: int = 2) -> torch.Tensor:
    """Run each layer's own torch module in turn (what PyTorch accepts is the judge)."""
    shape = candidate.design.in_shape
    x = torch.randn(batch, steps, *shape) if sequence else torch.randn(batch, *shape)
    with torch.no_grad():
        for layer in candidate.design.layers:
            module = layer.build().eval()
            if sequence and not layer.kind.takes_sequence:
                y = module(x.flatten(0, 1))
                x = y.unflatten(0, (batch, steps))
            else:
                x = module(x)
            want = layer.out_shape
            got = tuple(x.shape[2:] if sequence else x.shape[1:])
            assert got == want, f"{layer.op}: torch gives {got}, the catalog says {want}"
            torch_params = sum(p.numel() for p in module.parameters())
            assert torch_params == layer.params.trainable
    return x


def test_dcgan_generator_top_20_run_in_torch() -> None:
    problem = load(PROBLEMS / "dcgan_generator.toml")
    solution = solve(problem, top=20)
    assert len(solution.candidates) == 20
    for candidate in solution.candidates:
        out = run_layers(candidate, sequence=False)
        assert tuple(out.shape) == (1, 3, 64, 64)
        for layer in candidate.design.layers:
            assert not layer.checkerboard  # no_checkerboard = true in the file
            assert not layer.gaps  # no_gaps defaults to true
        assert candidate.params <= 4_000_000


@pytest.mark.parametrize("path", sorted(PROBLEMS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_problem_solves_and_its_best_designs_run(path: Path) -> None:
    problem = load(path)
    solution = solve(problem, top=2)
    assert solution.count >= 1
    if problem.prefix:
        return  # encoder–decoder designs (skips, run-time sizes) run whole in tests/problem/test_encoder.py
    for candidate in solution.candidates:
        if problem.sequence or max(max(s.fixed or (0,)) for s in problem.sizes) > 128:
            # Large or sequence problems: check shapes on the meta device only.
            check_meta(candidate, problem.sequence)
        else:
            run_layers(candidate, problem.sequence)


def check_meta(candidate: Candidate, sequence: bool) -> None:
    shape = candidate.design.in_shape
    x = torch.empty(1, 2, *shape, device="meta") if sequence else torch.empty(1, *shape, device="meta")
    for layer in candidate.design.layers:
        with torch.device("meta"):
            module = layer.build()
        per_frame = sequence and not layer.kind.takes_sequence
        x = module(x.flatten(0, 1)).unflatten(0, (1, 2)) if per_frame else module(x)
        assert tuple(x.shape[2:] if sequence else x.shape[1:]) == layer.out_shape


def test_ties_are_broken_in_the_documented_order() -> None:
    solution = solve(load(PROBLEMS / "dcgan_generator.toml"), top=20)
    keys = [(c.params, c.macs, tuple(choice.order for choice in c.choices)) for c in solution.candidates]
    assert keys == sorted(keys)
    assert len({k[2] for k in keys}) == len(keys)


# --- explanations -----------------------------------------------------------------------------------


def test_impossible_step_names_the_step_and_the_nearest_sizes() -> None:
    problem = loads(
        'sizes = [16, 32, 100]\nchannels = [3, 8, 3]\nops = "conv_transpose"\n'
        "[search]\nkernel = [1, 4]\nstride = [1, 2]\npadding = [0, 1]\noutput_padding = [0, 1]\n"
    )
    with pytest.raises(InfeasibleError) as info:
        solve(problem)
    text = str(info.value)
    assert "step 2" in text and "32 → 100" in text
    # From 32 with k<=4, s<=2: the largest output is (32-1)*2 + 3 + 1 + 1 = 67.
    assert "nearest reachable" in text and "67" in text


def test_budget_conflict_is_named_with_the_smallest_design() -> None:
    problem = loads(
        'sizes = [1, 4, 8]\nchannels = [100, 64, 3]\nops = "conv_transpose"\n'
        "[search]\nkernel = [1, 4]\nstride = [1, 2]\npadding = [0, 1]\n[constraints]\nmax_params = 1000\n"
    )
    with pytest.raises(InfeasibleError) as info:
        solve(problem)
    text = str(info.value)
    assert "constraints.max_params = 1,000" in text
    assert "smallest design has" in text


def test_no_gaps_rule_explains_itself() -> None:
    # 8 -> 16 with kernel 1 only: k1 s2 op1 reaches 16 but leaves every other pixel unwritten.
    problem = loads('sizes = [8, 16]\nops = "conv_transpose"\n[search]\nkernel = 1\nstride = 2\n')
    with pytest.raises(InfeasibleError) as info:
        solve(problem)
    assert "constraints.no_gaps = true" in str(info.value)
    assert "constraints.no_dead_pixels = true" in str(info.value)  # an unwritten output sees only padding too
    relaxed = loads(
        'sizes = [8, 16]\nops = "conv_transpose"\n[search]\nkernel = 1\nstride = 2\n'
        "[constraints]\nno_gaps = false\nno_dead_pixels = false\n"
    )
    assert solve(relaxed).count == 1


def test_receptive_field_conflict() -> None:
    problem = loads(
        'sizes = [64, 32, 16]\nops = "conv"\n[search]\nkernel = [1, 3]\nstride = 2\npadding = [0, 1]\n'
        "[constraints]\nreceptive_field = 70\n"
    )
    with pytest.raises(InfeasibleError) as info:
        solve(problem)
    assert "receptive_field" in str(info.value)


def test_widening_a_range_is_suggested() -> None:
    # k5 s2 p0 op0: (16-1)*2 + 4 + 1 = 35; padding 1 would give 33, padding 2 gives 31 — none is 32,
    # but output_padding 1 with padding 2 gives 32.
    problem = loads(
        'sizes = [16, 32]\nops = "conv_transpose"\n[search]\nkernel = 5\nstride = 2\npadding = 0\noutput_padding = 0\n'
    )
    with pytest.raises(InfeasibleError) as info:
        solve(problem)
    text = str(info.value)
    suggestion = text.split("it becomes possible with ")[1].strip()
    overrides = [part.replace(" = ", "=") for part in suggestion.split(" and ")]
    widened = loads(
        'sizes = [16, 32]\nops = "conv_transpose"\n[search]\nkernel = 5\nstride = 2\npadding = 0\noutput_padding = 0\n',
        overrides=overrides,
    )
    assert solve(widened).count >= 1


# --- constraints against brute force over the catalog's own tables ------------------------------------


def test_same_recipe_counts_designs_sharing_kernel_stride_padding() -> None:
    text = 'sizes = [4, 8, 16]\nops = "conv_transpose"\n[search]\nkernel = [1, 4]\nstride = [1, 2]\npadding = [0, 1]\n'
    free = solve(loads(text), top=0)
    same = solve(loads(text + "[constraints]\nsame_recipe = true\n"), top=50)
    tables = free.tables
    pairs = [
        (a, b)
        for a, b in itertools.product(*tables)
        if (a.recipes[0][0].kernel, a.recipes[0][0].stride, a.recipes[0][0].padding)
        == (b.recipes[0][0].kernel, b.recipes[0][0].stride, b.recipes[0][0].padding)
    ]
    assert same.count == len(pairs) > 0
    for candidate in same.candidates:
        first, second = (layer for layer in candidate.design.layers if layer.op == "conv_transpose")
        assert (first.axes[0].kernel, first.axes[0].stride, first.axes[0].padding) == (
            second.axes[0].kernel,
            second.axes[0].stride,
            second.axes[0].padding,
        )


@pytest.mark.slow  # over a second: outside the fast set (-m "not slow"), still in CI
def test_free_sizes_count_every_route() -> None:
    text = (
        'sizes = [8, "?", 32]\nops = "conv_transpose"\n'
        "[search]\nkernel = [1, 4]\nstride = [1, 2]\npadding = [0, 1]\nsize = [1, 64]\n"
    )
    solution = solve(loads(text), top=3)
    # Brute force over fixed middle sizes, each solved on its own.
    total = 0
    for middle in range(1, 65):
        fixed = text.replace('"?"', str(middle))
        with contextlib.suppress(InfeasibleError):
            total += solve(loads(fixed), top=0).count
    assert solution.count == total > 0


def test_per_axis_lets_each_axis_choose() -> None:
    base = (
        'sizes = [[8, 8], [16, 15]]\nops = "conv_transpose"\n'
        "[search]\nkernel = [1, 4]\nstride = [1, 2]\npadding = [0, 1]\n"
    )
    with pytest.raises(InfeasibleError):
        solve(loads(base))
    per_axis = solve(loads(base + "per_axis = true\n"), top=3)
    rows = solve(loads('sizes = [8, 16]\nops = "conv_transpose"\ndims = 1\n' + base.split("\n", 2)[2]), top=0).count
    cols = solve(loads('sizes = [8, 15]\nops = "conv_transpose"\ndims = 1\n' + base.split("\n", 2)[2]), top=0).count
    assert per_axis.count == rows * cols
    for candidate in per_axis.candidates:
        assert tuple(run_layers(candidate, sequence=False).shape[2:]) == (16, 15)


def test_time_limit_ends_with_a_clear_error() -> None:
    problem = load(PROBLEMS / "acgan_generator.toml")
    with pytest.raises(SolverTimeout, match="time limit"):
        solve(problem, time_limit=1e-4)


# --- the solver as the ranker's search space -----------------------------------------------------------


def test_solution_space_offers_exactly_the_valid_designs() -> None:
    from archsolve.solve import SolutionSpace

    text = (
        'sizes = [4, 8, 16]\nchannels = [8, 8, 3]\nops = "conv_transpose"\n'
        "[search]\nkernel = [1, 4]\nstride = [1, 2]\npadding = [0, 2]\noutput_padding = [0, 1]\n"
        "[constraints]\nmax_params = 700\n"
    )
    problem = loads(text)
    solution = solve(problem, top=3)
    space = SolutionSpace(solution)
    options = space.step_options()
    valid = [p for p in itertools.product(*(range(len(o)) for o in options)) if space.design(p) is not None]
    assert len(valid) == solution.count  # every combination the count includes, and no other
    for picks in valid:
        assert space.design(picks).params.total <= 700  # type: ignore[union-attr]
    pool = list(space.candidates(limit=len(valid)))
    assert len(pool) == len(set(pool)) == len(valid)
    assert pool[0] == space.picks(solution.candidates[0].choices)


def test_alternative_kinds_count_as_the_sum_of_their_designs() -> None:
    base = (
        "sizes = [8, 16]\nchannels = [4, 4]\nops = OPS\n"
        "[search]\nkernel = [1, 4]\nstride = [1, 2]\npadding = [0, 1]\noutput_padding = [0, 1]\nscale = [1, 2]\n"
    )
    alone = [solve(loads(base.replace("OPS", f'"{ops}"')), top=0).count for ops in ("conv_transpose", "upsample+conv")]
    both = solve(loads(base.replace("OPS", '"conv_transpose | upsample+conv"')), top=50)
    assert both.count == sum(alone) > 0
    kinds = {tuple(layer.op for layer in c.design.layers if layer.op != "batch_norm") for c in both.candidates}
    assert kinds == {("conv_transpose",), ("upsample", "conv")}
    for candidate in both.candidates:
        assert tuple(run_layers(candidate, sequence=False).shape) == (1, 4, 16, 16)
