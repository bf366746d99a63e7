"""A top list worth reading: designs one step apart from a listed one are folded under it (issue 16, item 5)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archsolve
from archsolve.problem.problem import load, loads
from archsolve.solve import Candidate, solve

PROBLEMS = Path(__file__).parents[2] / "problems"


def _apart(a: Candidate, b: Candidate) -> int:
    """Steps in which two designs differ, read from their torch-facing layers (recipes and shapes)."""
    return sum(x.layers != y.layers for x, y in zip(a.design.steps, b.design.steps, strict=True))


def _key(c: Candidate) -> tuple[object, ...]:
    return tuple(s.layers for s in c.design.steps)


def test_dcgan_top_10_lists_ten_ideas_none_one_step_from_another() -> None:
    problem = load(PROBLEMS / "dcgan_generator.toml")
    folded = solve(problem, top=10, expand=False)
    plain = solve(problem, top=10, expand=True)
    assert folded.count == plain.count  # folding is presentation
    assert len(folded.candidates) == 10
    for i, a in enumerate(folded.candidates):
        for b in folded.candidates[:i]:
            assert _apart(a, b) >= 2
        for v in a.variants:
            assert _apart(a, v) == 1
    assert any(c.variants for c in folded.candidates)
    assert folded.candidates[0].design == plain.candidates[0].design


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.sampled_from(["[1, 4, 8, 16]", "[2, 4, 8]", "[4, 8, 16, 32]", "[16, 8, 4, 2]"]),
    top=st.integers(1, 6),
    objective=st.sampled_from(["params", "macs"]),
)
def test_ideas_and_their_variants_are_the_best_designs_in_order(sizes: str, top: int, objective: str) -> None:
    ops = "conv" if sizes.startswith("[16") else "conv_transpose"
    text = (
        f'sizes = {sizes}\nops = "{ops}"\n[search]\nkernel = [1, 4]\nstride = [1, 2]\npadding = [0, 1]\n'
        f'[objective]\nminimize = "{objective}"\n'
    )
    folded = solve(loads(text), top=top, expand=False)
    shown = [c for head in folded.candidates for c in (head, *head.variants)]
    plain = solve(loads(text), top=len(shown), expand=True)
    # Every design up to the last listed idea is an idea or a variant of one, nothing skipped or invented.
    assert sorted(map(_key, shown), key=str) == sorted(map(_key, plain.candidates), key=str)
    ideas = folded.candidates
    assert len(ideas) == top or len(shown) == folded.count  # fewer ideas only when the designs run out
    for i, head in enumerate(ideas):
        assert all(_apart(head, other) != 1 for other in ideas[:i])
        # A variant folds under the first idea it is one step from.
        for v in head.variants:
            assert _apart(head, v) == 1 and all(_apart(other, v) != 1 for other in ideas[:i])


def test_cli_expand_and_json_variants(cli: Callable[..., object]) -> None:
    dcgan = str(PROBLEMS / "dcgan_generator.toml")
    folded = cli("solve", dcgan, "--no-rank", "--top", "10", "--json")
    expanded = cli("solve", dcgan, "--no-rank", "--top", "10", "--json", "--expand")
    a, b = json.loads(folded.out), json.loads(expanded.out)  # type: ignore[attr-defined]
    assert a["count"] == b["count"] and not a["expanded"] and b["expanded"]
    assert sum(c["variants"] for c in a["candidates"]) > 0 and all(c["variants"] == 0 for c in b["candidates"])
    assert a["candidates"][0]["layers"] == b["candidates"][0]["layers"]
    text = cli("solve", dcgan, "--no-rank", "--top", "10")
    assert text.code == 0 and "--expand lists them" in text.out  # type: ignore[attr-defined]


def test_api_default_folds() -> None:
    solution = archsolve.solve(PROBLEMS / "dcgan_generator.toml", top=5)
    assert not solution.expanded and any(c.variants for c in solution.candidates)
    assert archsolve.solve(PROBLEMS / "dcgan_generator.toml", top=5, expand=True).expanded


def test_one_step_designs_are_never_folded() -> None:
    solution = solve(loads('sizes = [8, 16]\nops = "conv_transpose"\n'), top=5, expand=False)
    assert len(solution.candidates) == 5 and not any(c.variants for c in solution.candidates)
