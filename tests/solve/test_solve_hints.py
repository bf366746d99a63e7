"""Hints that work: every suggestion is re-solved under every rule, and following it once solves (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from archsolve.errors import InfeasibleError
from archsolve.problem.problem import load, loads
from archsolve.solve import Candidate, solve

PROBLEMS = Path(__file__).parents[2] / "problems"


def _hint(error: InfeasibleError) -> list[str]:
    """The hint as ``--set`` overrides (it reads "it becomes possible with KEY = VALUE [and KEY = VALUE]")."""
    text = str(error)
    assert "it becomes possible with " in text, text
    line = text.split("it becomes possible with ")[1].splitlines()[0].strip()
    return [part.replace(" = ", "=", 1) for part in line.split(" and ")]


def _runs(candidate: Candidate, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> None:
    """The best design, built layer by layer in torch, takes ``in_shape`` to ``out_shape``."""
    x = torch.randn(1, *in_shape)
    with torch.no_grad():
        for layer in candidate.design.layers:
            x = layer.build().eval()(x)
    assert tuple(x.shape[1:]) == out_shape


def test_non_square_mirrored_decoder_is_told_per_axis() -> None:
    # unet_101x75 with one recipe for both axes: 12x9 → 25x18 needs different kernels per axis.  The old hint
    # widened search.kernel step after step ([1, 5], [1, 6], ... [1, 11]) without ever solving.
    path = PROBLEMS / "unet_101x75.toml"
    with pytest.raises(InfeasibleError) as info:
        solve(load(path, ["search.per_axis=false"]), top=1)
    overrides = _hint(info.value)
    assert overrides == ["search.per_axis=true"]
    assert solve(load(path, ["search.per_axis=false", *overrides]), top=1).count > 0


CONV = 'name = "conv-4-13"\nsizes = [4, 13]\nchannels = [8, 8]\nops = "conv"\n[search]\nstride = [2, 2]\n'


def test_conv_4_to_13_stride_2_gets_a_hint_the_default_rules_accept() -> None:
    # The old hint, search.padding = [0, 11], reaches 13 only with output pixels that see nothing but
    # padding, which the default rules refuse.
    with pytest.raises(InfeasibleError) as info:
        solve(loads(CONV), top=1)
    overrides = _hint(info.value)
    assert "search.padding=[0, 11]" not in overrides
    with pytest.raises(InfeasibleError):
        solve(loads(CONV, overrides=["search.padding=[0, 11]"]), top=1)  # still refused: why the hint changed
    solution = solve(loads(CONV, overrides=overrides), top=1)
    _runs(solution.candidates[0], (8, 4, 4), (8, 13, 13))


def test_free_size_range_hint_names_search_size() -> None:
    text = 'dims = 1\nsizes = [16000, "?", "?", 250]\nchannels = [1, 32, 64, 128]\nops = "conv"\n'
    with pytest.raises(InfeasibleError) as info:
        solve(loads(text, overrides=["search.size=[1, 1024]"]), top=1)
    overrides = _hint(info.value)
    assert overrides[0].startswith("search.size=")
    solution = solve(loads(text, overrides=["search.size=[1, 1024]", *overrides]), top=1)
    _runs(solution.candidates[0], (1, 16000), (128, 250))


def test_a_widened_range_hint_solves_a_multi_step_problem() -> None:
    # Every step needs a 5-wide window (16 → 12 → 8, valid convs): kernel 5, or kernel 3 with dilation 2.
    text = 'sizes = [16, 12, 8]\nchannels = [3, 4, 5]\nops = "conv"\n'
    text += "[search]\nkernel = [1, 3]\nstride = 1\npadding = 0\n"
    with pytest.raises(InfeasibleError) as info:
        solve(loads(text), top=1)
    overrides = _hint(info.value)
    assert overrides in (["search.dilation=[1, 2]"], ["search.kernel=[1, 5]"])  # one setting, the least widening
    solution = solve(loads(text, overrides=overrides), top=1)
    _runs(solution.candidates[0], (3, 16, 16), (5, 8, 8))
