"""Problem files: every bad file gives every issue at once, naming key and value; good files load."""

from __future__ import annotations

import pytest

from archsolve.errors import InputError
from archsolve.problem.problem import load, loads

GOOD = """
name = "g"
sizes = [1, 4, 8]
channels = [16, 8, 3]
ops = "conv_transpose"
"""


def issues_of(text: str, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(InputError) as info:
        loads(text, source="p.toml", overrides=overrides)
    return str(info.value)


def test_good_file_loads_with_defaults() -> None:
    problem = loads(GOOD)
    assert problem.name == "g"
    assert [s.fixed for s in problem.sizes] == [(1, 1), (4, 4), (8, 8)]
    assert problem.steps == ((("conv_transpose",),), (("conv_transpose",),))
    assert problem.constraints.no_gaps is True
    assert problem.objective == "params"


def test_per_axis_sizes_set_the_dimension() -> None:
    problem = loads('sizes = [[4, 6], [8, 12]]\nops = "conv_transpose"')
    assert problem.ndim == 2 and problem.sizes[1].fixed == (8, 12)
    problem = loads('dims = 3\nsizes = [4, 8]\nops = "conv_transpose"')
    assert problem.sizes[0].fixed == (4, 4, 4)


def test_free_sizes_and_channels() -> None:
    problem = loads(
        'sizes = [4, "?", {min = 10, max = 20}, 32]\nchannels = [3, "?", "?", 1]\nops = "conv_transpose"\n'
        "[search]\nchannels = [8, 32]\nmultiple_of = 8\nsize = [2, 64]"
    )
    assert problem.sizes[1].free and (problem.sizes[1].low, problem.sizes[1].high) == (2, 64)
    assert (problem.sizes[2].low, problem.sizes[2].high) == (10, 20)
    assert tuple(problem.channel_options(1)) == (8, 16, 24, 32)


def test_composite_ops_and_step_overrides() -> None:
    problem = loads(
        'sizes = [8, 16, 32]\nops = ["upsample+conv", "conv+pixel_shuffle"]\n'
        "[search]\nkernel = [1, 5]\n[search.step.2]\nkernel = 3\n"
    )
    assert problem.steps == ((("upsample", "conv"),), (("conv", "pixel_shuffle"),))
    assert problem.ranges[0].kernel == (1, 5) and problem.ranges[1].kernel == (3, 3)


def test_alternative_kinds_per_step() -> None:
    problem = loads(
        'sizes = [8, 16, 32]\nops = ["conv_transpose | upsample+conv", ["pixel_shuffle", "conv_transpose"]]'
    )
    assert problem.steps == (
        (("conv_transpose",), ("upsample", "conv")),
        (("pixel_shuffle",), ("conv_transpose",)),
    )
    assert "conv_transpose | upsample+conv" in problem.step_label(0)


def test_overrides_replace_keys() -> None:
    problem = loads(GOOD, overrides=("search.kernel=[4, 4]", "objective.minimize=macs"))
    assert problem.ranges[0].kernel == (4, 4)
    assert problem.objective == "macs"


def test_every_error_is_reported_at_once() -> None:
    text = GOOD + '\n[search]\nkernal = [1, 4]\nstride = [3, 1]\n[objective]\nminimize = "speed"\n'
    message = issues_of(text)
    assert "search.kernal" in message and "did you mean 'kernel'" in message
    assert "search.stride" in message
    assert "objective.minimize" in message
    assert message.count("p.toml") == 3


BAD_FILES = [
    ("not toml at all = = =", "not valid TOML"),
    ('sizes = [1, 4]\nops = "conv"\nnmae = "x"', "nmae: unknown key; did you mean 'name'"),
    ('ops = "conv"', "sizes: missing"),
    ('sizes = 4\nops = "conv"', "sizes: expected a list of at least two sizes"),
    ('sizes = [4]\nops = "conv"', "sizes: expected a list of at least two sizes"),
    ('sizes = [4, 0]\nops = "conv"', "sizes[1]: expected an integer >= 1, got 0"),
    ('sizes = [4, -3]\nops = "conv"', "sizes[1]: expected an integer >= 1, got -3"),
    ('sizes = [4, "big"]\nops = "conv"', "sizes[1]: expected a positive integer, [h, w] or '?', got 'big'"),
    ('sizes = [4, 2.5]\nops = "conv"', "sizes[1]: expected an integer"),
    ('sizes = ["?", 4]\nops = "conv"', "sizes[0]: the first and last sizes must be given"),
    ('sizes = [[4, 4], [8, 8, 8]]\nops = "conv"', "sizes[1]: expected 2 per-axis sizes"),
    ('sizes = [4, {min = 9, max = 2}, 8]\nops = "conv"', "sizes[1]: expected min <= max"),
    ('sizes = [4, {mn = 2}, 8]\nops = "conv"', "sizes[1].mn: unknown key; did you mean 'min'"),
    ('sizes = [4, 8]\nops = "conv"\ndims = 4', "dims: expected an integer in [1, 3], got 4"),
    ('sizes = [4, 8]\nops = "convv"', "unknown op kind 'convv'; did you mean 'conv'"),
    ('sizes = [4, 8]\nops = ["conv", "conv"]', "ops: expected one kind or a list of 1"),
    ("sizes = [4, 8]\nops = 3", "ops: expected one kind or a list of 1"),
    ("sizes = [4, 8]", "ops: missing"),
    ('sizes = [4, 8]\nops = "upsample+pixel_shufle"', "did you mean 'pixel_shuffle'"),
    ('sizes = [4, 8]\nops = "conv | maxpool"', "unknown op kind 'maxpool'; did you mean 'max_pool'"),
    ("sizes = [4, 8]\nops = [[]]", "ops[0]: expected a kind such as"),
    ('dims = 3\nsizes = [4, 8]\nops = "pixel_shuffle"', "pixel_shuffle supports (2,)D inputs only"),
    ('sizes = [4, 8]\nops = "conv"\nchannels = [3]', "channels: expected a list of 2 channel counts"),
    ('sizes = [4, 8]\nops = "conv"\nchannels = ["?", 3]', "channels[0]: the input channel count must be given"),
    ('sizes = [4, 8]\nops = "conv"\nchannels = [3, 0]', "channels[1]: expected an integer >= 1, got 0"),
    ('sizes = [4, 8]\nops = "conv"\nsearch = 3', "search: expected a table [search]"),
    ('sizes = [4, 8]\nops = "conv"\n[search]\nkernel = [0, 3]', "search.kernel: expected 1 <= low <= high"),
    ('sizes = [4, 8]\nops = "conv"\n[search]\nkernel = [5, 3]', "search.kernel: expected 1 <= low <= high"),
    ('sizes = [4, 8]\nops = "conv"\n[search]\nkernel = "big"', "search.kernel: expected an integer or an inclusive"),
    ('sizes = [4, 8]\nops = "conv"\n[search]\npadding = [-1, 2]', "search.padding: expected 0 <= low <= high"),
    ('sizes = [4, 8]\nops = "conv"\n[search]\npadding = "full"', "search.padding: expected one of 'same', 'valid'"),
    (
        'sizes = [4, 8]\nops = "conv"\n[search]\nstride = [1, 2, 3]',
        "search.stride: expected an integer or an inclusive",
    ),
    ('sizes = [4, 8]\nops = "conv"\n[search]\nceil_mode = "yes"', "search.ceil_mode: expected true, false"),
    ('sizes = [4, 8]\nops = "conv"\n[search]\nper_axis = 1', "search.per_axis: expected true or false"),
    ('sizes = [4, 8]\nops = "conv"\n[search]\ntime_limit = 0', "search.time_limit: expected a positive number"),
    ('sizes = [4, 8]\nops = "conv"\n[search]\nmultiple_of = 0', "search.multiple_of: expected an integer >= 1"),
    ('sizes = [4, 8]\nops = "conv"\n[search.step.2]\nkernel = 3', "search.step.2: expected a step number 1..1"),
    ('sizes = [4, 8]\nops = "conv"\n[search.step.1]\nkernal = 3', "search.step.1.kernal: unknown key"),
    (
        'sizes = [4, 8]\nops = "conv"\n[constraints]\nmax_params = -1',
        "constraints.max_params: expected an integer >= 0",
    ),
    ('sizes = [4, 8]\nops = "conv"\n[constraints]\nmax_param = 10', "did you mean 'max_params'"),
    ('sizes = [4, 8]\nops = "conv"\n[constraints]\nno_gaps = "no"', "constraints.no_gaps: expected true or false"),
    (
        'sizes = [4, 8]\nops = "conv"\n[constraints]\nreceptive_field = [70, 10]',
        "constraints.receptive_field: expected 1 <= low",
    ),
    (
        'sizes = [4, 8]\nops = "conv"\n[objective]\nminimize = "flops"',
        "objective.minimize: expected one of 'params', 'macs'",
    ),
    ('sizes = [4, 8]\nops = "conv"\n[objective]\nmaximize = "params"', "objective.maximize: unknown key"),
    ('sizes = [4, 8]\nops = "conv"\n[rank]\ntrials = 0', "rank.trials: 0: expected an integer >= 1"),
    (
        'sizes = [4, 8]\nops = "conv"\n[rank]\ndevice = "gpu"',
        "rank.device: expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got 'gpu'",
    ),
    ('sizes = [4, 8]\nops = "conv"\n[rank]\ndtype = "float64"', "rank.dtype: unknown dtype 'float64'"),
    ('sizes = [4, 8]\nops = "conv"\n[rank]\nmode = "training"', "did you mean 'train'"),
    ('sizes = [4, 8]\nops = "conv"\n[build]\nnorm = "layer"', "build.norm: expected one of"),
    ('sizes = [4, 8]\nops = "conv"\n[build]\nactivation = "relu6"', "did you mean 'relu'"),
    ('sizes = [4, 8]\nops = "conv"\n[build]\nbias = "sometimes"', "build.bias: expected true, false or 'auto'"),
    ('sizes = [4, 8]\nops = "conv"\n[build]\nnegative_slope = "x"', "build.negative_slope: expected a number"),
    ('sizes = [4, 8]\nops = "conv"\n[biuld]\nnorm = "batch"', "biuld: unknown key; did you mean 'build'"),
    ('name = ""\nsizes = [4, 8]\nops = "conv"', "name: expected a non-empty string"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_FILES, ids=[e for _, e in BAD_FILES])
def test_bad_file_names_key_and_expectation(text: str, expected: str) -> None:
    assert expected in issues_of(text)


@pytest.mark.parametrize("override", ["kernel", "=3", "search.kernel.x=3"])
def test_bad_override(override: str) -> None:
    message = issues_of(GOOD + "\n[search]\nkernel = [1, 4]\n", (override,))
    assert "--set" in message or "search.kernel" in message


def test_missing_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="no such file"):
        load(tmp_path / "nope.toml")


def test_every_bundled_problem_loads() -> None:
    from pathlib import Path

    files = sorted(Path(__file__).parents[2].joinpath("problems").glob("*.toml"))
    assert len(files) >= 12
    for path in files:
        assert load(path).n_steps >= 1
