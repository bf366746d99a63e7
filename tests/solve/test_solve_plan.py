"""Free sizes that just work, and the memory cap decided before any table is built (issue 16, item 7)."""

from __future__ import annotations

import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsolve.errors import InfeasibleError, InputError
from archsolve.problem.problem import loads
from archsolve.solve import Solver, solve
from archsolve.solve.tables import TooLarge

AUDIO = 'name = "audio"\ndims = 1\nsizes = [16000, "?", "?", 250]\nchannels = [1, 32, 64, 128]\nops = "conv"\n'


def test_audio_encoder_solves_with_the_default_size_range_and_runs_in_torch() -> None:
    started = time.process_time()  # CPU time: a loaded test machine stretches the wall clock, not the work
    solution = solve(loads(AUDIO), top=3)
    assert time.process_time() - started < 5.0  # issue 16: within 5 s with the defaults (under 1 s idle)
    assert solution.count > 0
    for candidate in solution.candidates:
        x = torch.randn(1, 1, 16000)
        with torch.no_grad():
            for layer in candidate.design.layers:
                x = layer.build().eval()(x)
        assert tuple(x.shape) == (1, 128, 250)  # torch, not the catalog, says the design lands


def test_the_default_range_of_a_free_size_keeps_every_design() -> None:
    # The derived range must hold every size a design can pass: the same count as a range wide enough
    # to hold all of them (16000 → 250 in three convs cannot pass a size above 16016 or below 246).
    narrowed = solve(loads(AUDIO), top=0)
    wide = solve(loads(AUDIO + "[search]\nsize = [240, 16100]\n"), top=0)
    assert narrowed.count == wide.count
    free = [s for s in narrowed.problem.sizes if s.fixed is None]
    assert all(s.low > 1 and s.high < 16100 for s in free)  # and it is narrower than the wide one


@pytest.mark.slow  # over a second: outside the fast set (-m "not slow"), still in CI
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=st.integers(2, 16),
    last=st.integers(1, 16),
    kind=st.sampled_from(["conv", "conv_transpose", "max_pool", "conv | upsample"]),
    free=st.integers(1, 2),
)
def test_derived_ranges_lose_no_design(first: int, last: int, kind: str, free: int) -> None:
    sizes = ", ".join([str(first), *['"?"'] * free, str(last)])
    text = (
        f'dims = 1\nsizes = [{sizes}]\nchannels = [{", ".join(["2"] * (free + 2))}]\nops = "{kind}"\n'
        "[search]\nkernel = [1, 3]\nstride = [1, 2]\npadding = [0, 1]\noutput_padding = [0, 1]\nscale = [1, 2]\n"
    )
    try:
        derived = solve(loads(text), top=0).count
    except InfeasibleError:
        derived = 0
    try:
        # One step at most doubles a size and adds 2 (conv_transpose k3 s2 op1): from 16, two free sizes stay <= 70.
        wide = solve(loads(text + "size = [1, 80]\n"), top=0).count
    except InfeasibleError:
        wide = 0
    assert derived == wide


UNET = """
name = "unet-default-ranges"
[encoder]
inputs = [572]
channels = 1
steps = [
    { op = "conv", channels = 64, kernel = 3 }, { op = "conv", channels = 64, kernel = 3 },
    { op = "max_pool", kernel = 2 },
    { op = "conv", channels = 128, kernel = 3 }, { op = "conv", channels = 128, kernel = 3 },
    { op = "max_pool", kernel = 2 },
    { op = "conv", channels = 256, kernel = 3 }, { op = "conv", channels = 256, kernel = 3 },
    { op = "max_pool", kernel = 2 },
    { op = "conv", channels = 512, kernel = 3 }, { op = "conv", channels = 512, kernel = 3 },
    { op = "max_pool", kernel = 2 },
    { op = "conv", channels = 1024, kernel = 3 }, { op = "conv", channels = 1024, kernel = 3 },
]
[decoder]
skip = "crop"
ops = ["conv_transpose", "conv", "conv"]
head = "conv"
out_channels = 2
out_size = 388
"""


@pytest.mark.slow  # over a second: outside the fast set (-m "not slow"), still in CI
def test_memory_cap_is_decided_before_any_table_and_its_numbers_add_up() -> None:
    solver = Solver(loads(UNET), time_limit=120)
    with pytest.raises(TooLarge) as info:
        solver.solve(top=1)
    assert solver.tables.held == 0  # refused before a single choice was built
    message = str(info.value)
    # "R recipe rows from S input sizes x C output channel count make N choices on top of M ..."
    words = message.replace(",", "").split()
    rows = int(words[words.index("recipe") - 1])
    channels = int(words[words.index("output") - 1])
    made = int(words[words.index("make") + 1])
    before = int(words[words.index("top") + 2])
    assert rows * channels == made
    assert made + before > 150_000
    assert "search.size" not in message  # a decoder's free sizes follow its encoder, not search.size


@pytest.mark.slow  # over a second: outside the fast set (-m "not slow"), still in CI
def test_memory_message_names_search_size_where_free_sizes_make_the_states() -> None:
    text = (
        'sizes = [256, "?", "?", "?", 256]\nchannels = [3, 8, 8, 8, 8]\nops = "conv | conv_transpose"\n'
        "[search]\nkernel = [1, 8]\npadding = [0, 8]\n"
    )
    solver = Solver(loads(text), time_limit=120)
    with pytest.raises(InputError) as info:
        solver.solve(top=1)
    assert solver.tables.held == 0
    assert "search.size" in str(info.value) and "input sizes" in str(info.value)
