"""The public API: ``import archsolve`` alone takes a problem built in code to a ranked, built, emitted model."""

from __future__ import annotations

import doctest
import importlib
import inspect
import json
import pydoc
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import archsolve

ROOT = Path(__file__).parent.parent
FreshPython = Callable[..., subprocess.CompletedProcess[str]]

#: Modules whose docstring examples are part of the suite (run from the repository root).
DOCTESTED = ("archsolve", "archsolve.api", "archsolve.core.sizes", "archsolve.problem.problem", "archsolve.check")


@pytest.mark.parametrize("name", DOCTESTED)
def test_docstring_examples_run(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_every_public_function_shows_an_example() -> None:
    for name in archsolve.__all__:
        value = getattr(archsolve, name)
        if callable(value) and not isinstance(value, type):
            doc = archsolve.api.__dict__.get(name, value).__doc__ or ""
            assert ">>> " in doc, name


def test_all_names_resolve_and_dir_lists_them() -> None:
    assert set(archsolve.__all__) <= set(dir(archsolve))
    for name in archsolve.__all__:
        getattr(archsolve, name)
    with pytest.raises(AttributeError):
        archsolve.no_such_name  # noqa: B018


@pytest.mark.slow  # a new interpreter
def test_import_loads_no_heavy_dependency(fresh_python: FreshPython) -> None:
    code = (
        "import sys, archsolve\n"
        "[getattr(archsolve, name) for name in archsolve.__all__ if name not in ('build', 'CheckResult')]\n"
        "archsolve.explore(16, 32)\n"
        "archsolve.load_problem('problems/dcgan_generator.toml')\n"
        "heavy = [m for m in ('torch', 'z3', 'optuna') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = fresh_python(code)
    assert done.returncode == 0, done.stderr


SCRIPT = """
import json, pathlib, sys, tempfile
import archsolve

problem = archsolve.Problem.create(
    name="tiny-generator",
    sizes=[1, 4, 8],
    channels=[16, 8, 3],
    ops="conv_transpose",
    search={"kernel": [2, 4], "stride": [1, 2], "padding": [0, 1]},
    build={"output_activation": "tanh"},
)
solution = archsolve.solve(problem, top=5)
with tempfile.TemporaryDirectory() as tmp:
    result = archsolve.rank(solution, trials=3, batch_size=2, repeats=3, warmup=1, results_dir=tmp)
    net = archsolve.build(result)
    source = archsolve.emit_source(result, class_name="Tiny")
    path = pathlib.Path(tmp) / "tiny.py"
    path.write_text(source)
    print(archsolve.summary(result))
    print(json.dumps({
        "count": solution.count,
        "measured": len(result.candidates),
        "params": result.winner.design.params.trainable,
        "out": list(result.winner.design.out_shape),
        "source": source,
    }))
"""


@pytest.mark.slow  # a new interpreter
def test_a_script_goes_from_a_problem_in_code_to_an_emitted_model(fresh_python: FreshPython, tmp_path: Path) -> None:
    done = fresh_python(SCRIPT)
    assert done.returncode == 0, done.stderr
    *table, last = done.stdout.strip().splitlines()
    data = json.loads(last)
    assert data["measured"] == 3 and data["count"] >= 3
    assert f"{data['params']:,}" in "\n".join(table)  # the printed summary counts the winner's parameters
    namespace: dict[str, object] = {}
    exec(compile(data["source"], "tiny.py", "exec"), namespace)  # the emitted file, run here with real torch
    model = namespace["Tiny"]()
    assert isinstance(model, torch.nn.Module)
    y = model(torch.zeros(2, 16, 1, 1))
    assert list(y.shape[1:]) == data["out"] == [3, 8, 8]
    assert sum(p.numel() for p in model.parameters()) == data["params"]
    assert float(y.detach().abs().max()) <= 1.0  # tanh output, as [build] asked


@pytest.mark.slow  # a new interpreter
def test_the_api_names_stay_functions_whichever_is_imported_first(fresh_python: FreshPython) -> None:
    """``archsolve.solve`` is the API function even after the solver's package ``archsolve.solve`` loads."""
    code = (
        "import archsolve.solve.solver, archsolve.rank.ranker, archsolve.build.modules, archsolve.build.summary, "
        "archsolve\n"
        "import archsolve.check, archsolve.design.explore, inspect, sys, types\n"
        "from archsolve.solve import Solution\n"
        "for name in ('solve', 'rank', 'build', 'summary', 'check', 'explore'):\n"
        "    assert isinstance(getattr(archsolve, name), types.FunctionType), name\n"
        "for name in ('solve', 'rank', 'build', 'check'):  # the stage packages of the same names, loaded\n"
        "    assert isinstance(sys.modules['archsolve.' + name], types.ModuleType), name\n"
        "p = archsolve.Problem.create(sizes=[1, 4], channels=[16, 8], ops='conv_transpose')\n"
        "s = archsolve.solve(p, top=1)\n"
        "assert isinstance(s, Solution) and sys.modules['archsolve.solve'].Solution is Solution\n"
        "assert archsolve.summary(s, check=False).params.total == s.best.params.total\n"
        "assert archsolve.explore(4, 8).count > 0\n"
    )
    done = fresh_python(code)
    assert done.returncode == 0, done.stderr


#: The parameters each public function shows (inspect.signature, help()); README and docs call them so.
SIGNATURES = {
    "solve": ["problem", "top", "time_limit", "progress", "expand"],
    "explore": ["size_in", "size_out", "ops", "max_kernel", "max_stride", "max_padding", "max_dilation", "show_all"],
    "build": ["designs"],
    "summary": ["designs", "check"],
    "emit_source": ["designs", "class_name"],
    "save_design": ["designs", "path"],
    "load_design": ["path"],
    "load_problem": ["path", "overrides", "rank"],
    "check": ["model", "input_shape", "size_range", "fix", "time_limit", "name", "method"],
}


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_every_public_function_shows_its_real_parameters(name: str) -> None:
    function = getattr(archsolve, name)
    assert inspect.isfunction(function), name  # a function, not a callable module
    parameters = inspect.signature(function).parameters
    assert list(parameters) == SIGNATURES[name]
    assert not any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters.values())
    assert function.__module__ == "archsolve.api" and ">>> " in (function.__doc__ or "")  # its own docstring


def test_rank_shows_every_rank_key_as_a_keyword() -> None:
    from archsolve.problem.problem import RANK_TABLE

    parameters = inspect.signature(archsolve.rank).parameters
    assert next(iter(parameters)) == "designs"
    assert set(parameters) - {"designs", "progress"} == set(RANK_TABLE)
    assert all(p.kind is p.KEYWORD_ONLY for name, p in parameters.items() if name != "designs")


def test_help_shows_the_call_the_readme_makes() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = pydoc.render_doc(archsolve.solve, renderer=pydoc.plaintext)
    assert "solve(problem: 'Problem | str | Path', *, top: 'int' = 10" in shown
    assert "Count every valid design exactly" in shown
    for call in ("archsolve.solve(problem)", "archsolve.rank(solution, trials=8)", "archsolve.summary(result)"):
        assert call in readme
    assert "trials" in inspect.signature(archsolve.rank).parameters


def test_the_api_the_solver_and_the_command_line_agree_on_the_default_top() -> None:
    from archsolve.cli.commands import main
    from archsolve.solve.solver import Solver, solve

    api_top = inspect.signature(archsolve.solve).parameters["top"].default
    assert api_top == inspect.signature(solve).parameters["top"].default
    assert api_top == inspect.signature(Solver.solve).parameters["top"].default
    (option,) = [p for p in main.commands["solve"].params if p.name == "top"]  # type: ignore[attr-defined]
    assert option.default == api_top


def test_the_result_types_are_exported() -> None:
    problem = archsolve.Problem.create(sizes=[1, 4], channels=[16, 8], ops="conv_transpose")
    solution = archsolve.solve(problem, top=1)
    assert isinstance(solution, archsolve.Solution)
    assert isinstance(archsolve.summary(solution, check=False), archsolve.Summary)
    assert isinstance(archsolve.explore(4, 8), archsolve.Exploration)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))
    assert isinstance(archsolve.check(net, "1x3x?x8", size_range=(1, 8)), archsolve.CheckResult)
    assert {"Solution", "RankResult", "CheckResult", "Summary", "Exploration"} <= set(archsolve.__all__)
    from archsolve.rank import RankResult

    assert archsolve.RankResult is RankResult


def test_the_design_taking_functions_take_a_design_a_candidate_or_a_result_alike() -> None:
    problem = archsolve.Problem.create(name="tiny", sizes=[1, 4], channels=[16, 8], ops="conv_transpose")
    solution = archsolve.solve(problem, top=2)
    candidate = solution.candidates[0]
    by_design = archsolve.summary(candidate.design, check=False)
    for given in (candidate, solution, by_design, problem):
        assert archsolve.summary(given, check=False) == by_design, type(given).__name__
    assert archsolve.emit_source(candidate) == archsolve.emit_source(solution.best)
    x = torch.zeros(1, 16, 1, 1)
    torch.manual_seed(0)
    from_candidate = archsolve.build(candidate)(x)
    torch.manual_seed(0)
    assert torch.equal(from_candidate, archsolve.build(candidate.design)(x))


def test_results_print_readably_and_render_in_notebooks() -> None:
    problem = archsolve.Problem.create(name="tiny", sizes=[1, 4], channels=[16, 8], ops="conv_transpose")
    solution = archsolve.solve(problem, top=3)
    shown = [solution, archsolve.summary(solution, check=False), archsolve.explore(16, 32)]
    for value in shown:
        assert "\n" not in repr(value) and len(repr(value)) < 200
        assert str(value) != repr(value) and "\n" in str(value)
        assert value._repr_html_().startswith("<pre>")
    assert "tiny" in repr(solution.best) and "\n" not in repr(solution.best)
    assert repr(problem) == "Problem('tiny': 1x1 → 4x4, 1 step)"


def test_a_problem_built_in_code_is_checked_like_a_file() -> None:
    with pytest.raises(archsolve.InputError) as info:
        archsolve.Problem.create(sizes=[1, 0, 8], channels=[3, 8, "many"], ops="conv_tranpose")
    text = str(info.value)
    assert "<code>: sizes[1]" in text and "<code>: channels[2]" in text and "did you mean 'conv_transpose'" in text
    assert info.value.exit_code == 2


def test_rank_settings_are_checked_by_key() -> None:
    solution = archsolve.solve(archsolve.Problem.create(sizes=[1, 4], channels=[16, 8], ops="conv_transpose"))
    with pytest.raises(archsolve.InputError, match=r"rank\.batch_size"):
        archsolve.rank(solution, batch_size=0)
    with pytest.raises(TypeError, match="trails"):
        archsolve.rank(solution, trails=3)  # type: ignore[call-arg]


def test_the_error_tree_is_documented_with_exit_codes() -> None:
    doc = archsolve.__doc__ or ""
    for name in ("InputError", "InfeasibleError", "SolverTimeout", "BuildError", "MeasureError"):
        error = getattr(archsolve, name)
        assert issubclass(error, archsolve.ArchsolveError)
        line = next(line for line in doc.splitlines() if f"── {name}" in line)
        assert line.rstrip().endswith(f"({error.exit_code})")


def test_the_package_ships_type_information() -> None:
    assert (Path(archsolve.__file__).parent / "py.typed").is_file()
    assert 'archsolve = ["py.typed"]' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def test_every_result_has_a_short_one_line_repr_with_its_headline(tmp_path: Path) -> None:
    problem = archsolve.Problem.create(name="tiny", sizes=[2, 4], channels=[4, 2], ops="conv_transpose")
    solution = archsolve.solve(problem, top=2)
    best = solution.candidates[0]
    result = archsolve.rank(solution, trials=1, batch_size=1, repeats=3, warmup=1, results_dir=tmp_path)
    assert result.winner is not None
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.MaxPool2d(2))
    checked = archsolve.check(net, "1x3x?x8", size_range=(1, 20))
    runs = sum(1 for n in range(1, 21) if n >= 4)  # conv k=3 leaves n-2, the pool needs at least 2: n >= 4
    summary = archsolve.summary(best, check=False)
    expected = {
        "Candidate": (best, [f"{best.design.params.total:,} params", "'tiny'"]),
        "Solution": (solution, [f"{solution.count:,} valid designs"]),
        "RankResult": (result, ["1 measured", "the reference"]),
        f"Candidate #{result.winner.rank}": (result.winner, [f"{result.winner.throughput:,.1f} samples/s"]),
        "CheckResult": (checked, [f"H runs at {runs} of 20", "1x3x?x8"]),
        "Summary": (summary, [f"{summary.params.total:,} params"]),
        "Exploration": (archsolve.explore(16, 32), ["16 → 32"]),
        "Design": (best.design, [f"{best.design.macs:,} MACs"]),
    }
    for what, (value, headlines) in expected.items():
        shown = repr(value)
        assert shown.startswith(f"<{what}") and shown.endswith(">"), shown
        assert "\n" not in shown and len(shown) <= 120, shown
        for headline in headlines:
            assert headline in shown, (what, shown)
