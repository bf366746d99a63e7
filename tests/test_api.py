"""The public API: ``import archsolve`` alone takes a problem built in code to a ranked, built, emitted model."""

from __future__ import annotations

import doctest
import importlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import archsolve

ROOT = Path(__file__).parent.parent
FreshPython = Callable[..., subprocess.CompletedProcess[str]]

#: Modules whose docstring examples are part of the suite (run from the repository root).
DOCTESTED = ("archsolve", "archsolve.api", "archsolve.sizes", "archsolve.problem", "archsolve.check")


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


def test_import_loads_no_heavy_dependency(fresh_python: FreshPython) -> None:
    code = (
        "import sys, archsolve\n"
        "[getattr(archsolve, name) for name in archsolve.__all__ if name != 'build']  # build is the torch stage\n"
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


def test_stage_modules_are_the_api_functions_when_called(fresh_python: FreshPython) -> None:
    """Whichever is imported first, ``archsolve.solve`` is the package and, called, the API's solve."""
    code = (
        "import archsolve.solve.solver, archsolve.rank.ranker, archsolve.build, archsolve.summary, archsolve\n"
        "from archsolve.solve import Solution\n"
        "p = archsolve.Problem.create(sizes=[1, 4], channels=[16, 8], ops='conv_transpose')\n"
        "s = archsolve.solve(p, top=1)\n"
        "assert isinstance(s, Solution) and archsolve.solve.Solution is Solution\n"
        "assert archsolve.summary(s, check=False).params.total == s.best.params.total\n"
        "assert archsolve.explore(4, 8).count > 0\n"
    )
    done = fresh_python(code)
    assert done.returncode == 0, done.stderr


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
    with pytest.raises(archsolve.InputError, match="did you mean 'trials'"):
        archsolve.rank(solution, trails=3)


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
