"""``constraints.where``: the language's errors, the DCGAN family, halving channels, explanations, lower bounds.

Counts are checked against the solver without ``where`` filtered by the items' meaning written out
here, or against the same problem with the channels written out (whose counts the brute-force tests
check against torch); the random cases against torch itself are in tests/problem/test_where_bruteforce.py.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from unittest import mock

import pytest
from click.testing import CliRunner

from archsolve.cli.commands import main
from archsolve.errors import InfeasibleError, InputError
from archsolve.problem.problem import Problem, load, loads
from archsolve.solve import crossing, model, solve
from archsolve.solve.choices import count_line, solution_json
from archsolve.solve.deadline import Deadline
from archsolve.solve.solver import Solver

ROOT = Path(__file__).parents[2]
DCGAN = ROOT / "problems" / "dcgan_generator.toml"
FAMILY = ["kernel[1:] == kernel[1]", "stride[1:] == 2", "padding[1:] == (kernel[1:] - stride[1:]) // 2"]
TWO_STEPS = 'sizes = [1, 4, 8]\nchannels = [4, 4, 3]\nops = "conv_transpose"\n'


def where_override(items: list[str]) -> str:
    return "constraints.where=[" + ", ".join(json.dumps(item) for item in items) + "]"


@pytest.mark.parametrize(
    ("item", "position", "words"),
    [
        ("kernel[5] == 1", 8, "out of range"),
        ("kernel[0] / 2 == 1", 11, "//"),
        ("kernal[0] == 1", 1, "did you mean 'kernel'"),
        ("kernel[0] +", 12, "unexpected end"),
        ("kernel[0]", 1, "is a number"),
        ("(kernel[0] == 1", 16, "expected ')'"),
        ("kernel[0:] == kernel[1:]", 12, "different numbers of steps"),
        ("kernel[0] == 1 && stride[0] == 1", 16, "use and, or, not"),
        ("axis(kernel[0], 2) == 1", 17, "axis 2 out of range"),
        ("kernel[1:1] == 3", 1, "selects none"),
        ("sum(kernel[*] == 1) > 0", 15, "a condition where a number is needed"),
    ],
)
def test_a_bad_expression_names_file_key_expression_and_character(item: str, position: int, words: str) -> None:
    with pytest.raises(InputError) as caught:
        loads(TWO_STEPS + f"[constraints]\nwhere = [{json.dumps(item)}]\n", source="gen.toml")
    text = str(caught.value)
    assert f'gen.toml: constraints.where[0]: "{item}" at character {position}:' in text
    assert words in text


def test_a_bad_expression_exits_2_in_one_message(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(TWO_STEPS + '[constraints]\nwhere = ["kernel[0] <= 4", "stride[0] === 2"]\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["solve", str(path), "--no-rank"])
    assert result.exit_code == 2
    assert 'constraints.where[1]: "stride[0] === 2" at character 13' in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_the_api_takes_where() -> None:
    problem = Problem.create(sizes=[1, 4, 8], channels=[4, 4, 3], ops="conv_transpose", where=["stride[1] == 2"])
    assert [item.text for item in problem.constraints.where] == ["stride[1] == 2"]
    assert all(choice.step.layers[0].recipe()["stride"] == 2 for choice in solve(problem).tables[1])


def meets_family(candidate: object) -> bool:
    """The three DCGAN items, read as docs/problems.md says (steps from 0, every axis alike here)."""
    recipes = [choice.recipes[0][0] for choice in candidate.choices]  # type: ignore[attr-defined]
    return all(
        r.kernel == recipes[1].kernel and r.stride == 2 and r.padding == (r.kernel - r.stride) // 2 for r in recipes[1:]
    )


def test_dcgan_family_lists_the_tutorial_design_and_its_exact_count() -> None:
    problem = load(DCGAN, overrides=[where_override(FAMILY)])
    solution = solve(problem, top=20)
    assert not solution.count_is_lower_bound
    listed = [c.choices for c in solution.candidates]
    tutorial = [
        c for c in solution.candidates if solution.reference is not None and c.choices == solution.reference.choices
    ]
    assert tutorial, "the tutorial's k4 s1 | 4x k4 s2 p1 is one of the family"
    # Every design of the problem without where, filtered by the items' meaning: the same designs.
    plain = load(DCGAN)
    everything = solve(plain, top=10**6)
    assert len(everything.candidates) == everything.count
    kept = [c for c in everything.candidates if meets_family(c)]
    assert solution.count == len(kept) > 0
    assert listed == [c.choices for c in kept][:20]


HALVING = """
name = "halving"
sizes = [4, 8, 16, 32]
channels = [256, {c1}, {c2}, 3]
ops = "conv_transpose"
[search]
channels = [8, 256]
multiple_of = 8
kernel = [1, 6]
stride = [1, 3]
padding = [0, 3]
output_padding = [0, 2]
[constraints]
{where}
"""


def test_free_channels_halving_each_step_count_as_the_written_out_channels() -> None:
    where = 'where = ["channels[0] == in_channels[0] // 2", "channels[1:-1] == channels[:-2] // 2"]'
    free = solve(loads(HALVING.format(c1='"?"', c2='"?"', where=where)), top=20)
    fixed = solve(loads(HALVING.format(c1=128, c2=64, where="")), top=20)
    assert free.count == fixed.count > 0 and not free.count_is_lower_bound
    assert [c.choices for c in free.candidates] == [c.choices for c in fixed.candidates]
    assert free.seconds < 10  # the figure is <= 2 s on an idle machine; this bounds a loaded one


def test_an_infeasible_where_is_explained_by_its_expression() -> None:
    problem = load(DCGAN, overrides=[where_override(["kernel[1:] == kernel[1]", "kernel[2] != kernel[3]"])])
    with pytest.raises(InfeasibleError) as caught:
        solve(problem)
    text = str(caught.value)
    assert 'constraints.where[1] "kernel[2] != kernel[3]"' in text
    assert 'dropping constraints.where[1] "kernel[2] != kernel[3]" leaves designs' in text


def test_an_infeasible_bound_gets_the_bound_that_solves() -> None:
    problem = load(DCGAN, overrides=[where_override(["sum(params) <= 1000000"])])
    smallest = solve(load(DCGAN), top=1).candidates[0].params
    with pytest.raises(InfeasibleError) as caught:
        solve(problem)
    assert f"with the bound {smallest:,} instead of 1,000,000" in str(caught.value)


def test_a_step_emptied_by_where_names_the_items(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        TWO_STEPS + '[search]\nkernel = [1, 4]\n[constraints]\nwhere = ["stride[1] == 2", "padding[1] == 3"]\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["solve", str(path), "--no-rank"])
    assert result.exit_code == 1
    assert "is ruled out by constraints.where" in result.stderr
    assert 'dropping constraints.where[1] "padding[1] == 3" leaves' in result.stderr


def test_a_stopped_enumeration_says_at_least() -> None:
    problem = load(DCGAN, overrides=[where_override(["kernel[1:] == kernel[1]"])])
    solver = Solver(problem, 60)
    layers = solver.reachable()
    exact, done = model.count_enumerated(problem, layers, solver.deadline)
    assert done and exact == crossing.count_across(problem, layers, solver.deadline)
    stopped, done = model.count_enumerated(problem, layers, Deadline(1e-9))
    assert not done and stopped < exact
    by_dp = solve(problem, top=1)
    with mock.patch.object(crossing, "STATE_CAP", 0):  # every cross-step count by enumeration
        solution = solve(problem, top=1)
    assert solution.count == by_dp.count and not solution.count_is_lower_bound
    lower = type(solution)(problem, stopped, solution.candidates, solution.tables, count_is_lower_bound=True)
    assert f"at least {stopped:,} valid design" in count_line(lower)
    assert solution_json(lower)["count_is_lower_bound"] is True


@pytest.mark.slow  # over a second: outside the fast set (-m "not slow"), still in CI
def test_the_documented_examples_parse_and_mean_what_they_say() -> None:
    doc = (ROOT / "docs" / "problems.md").read_text(encoding="utf-8")
    block = doc.split("### `where`")[1].split("```toml")[1].split("```")[0]
    items = [line.split('"')[1] for line in block.splitlines() if line.strip().startswith('"')]
    assert len(items) == 7
    problem = Problem.create(
        sizes=[4, 8, 16, 32],
        channels=[32, "?", "?", 4],
        ops="conv_transpose",
        where=items[3:],
        search={"channels": [4, 32], "multiple_of": 4},
    )
    solution = solve(problem, top=20)
    assert solution.candidates
    for c in solution.candidates:
        recipes = [choice.recipes[0][0] for choice in c.choices]
        assert c.choices[1].step.out_shape[0] == c.choices[0].step.out_shape[0] // 2
        assert sum(r.dilation > 1 for r in recipes) <= 2
        assert all(b.kernel <= a.kernel for a, b in itertools.pairwise(recipes))
    load(DCGAN, overrides=[where_override(items)])  # all seven check against the 5-step DCGAN problem


@pytest.mark.parametrize(
    "item",
    ["kernel[0] == 1__0", "kernel[0] == " + "9" * 40, "*".join(["kernel[0]"] * 250) + " == 1", "(" * 100 + "1"],
)
def test_hostile_expressions_are_input_errors(item: str) -> None:
    with pytest.raises(InputError, match=r"constraints.where\[0\]"):
        loads(TWO_STEPS + f"[constraints]\nwhere = [{json.dumps(item)}]\n")


def test_deep_but_allowed_expressions_solve_without_recursion_errors() -> None:
    item = " * ".join(["kernel[0]"] * 150) + " >= 1"
    solution = solve(loads(TWO_STEPS + f"[constraints]\nwhere = [{json.dumps(item)}]\n"), top=1)
    assert solution.count == solve(loads(TWO_STEPS), top=1).count
