"""Tables fit 120 columns, never show two different designs as one row, and count in good English."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from archsolve.core.console import Pieces, make_console, plain_lines, print_table, render
from archsolve.core.table import Column, Table, plural
from archsolve.design.explore import explore, explore_ranges
from archsolve.design.notation import design_text, parse_design
from archsolve.problem.problem import load, loads
from archsolve.solve import solve
from archsolve.solve.choices import solution_table

PROBLEMS = sorted((Path(__file__).parents[2] / "problems").glob("*.toml"))
ARCHSOLVE = Path(sys.executable).parent / "archsolve"
ROOT_PROBLEMS = Path(__file__).parents[2] / "problems"


def widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


@pytest.mark.parametrize("path", PROBLEMS, ids=lambda p: p.stem)
def test_every_bundled_problem_fits_120_columns_and_its_rows_differ(path: Path) -> None:
    problem = load(path)
    solution = solve(problem, top=20)
    table = solution_table(solution)
    assert widest(render(table, 120)) <= 120
    assert widest(render(table, 80)) <= 80
    designs = [c.design for c in solution.candidates]
    texts = table.column("recipe")
    assert len(set(texts)) == len(set(designs)), "two different designs print as the same recipe"


def free_problem(sizes: str, channels: str) -> str:
    return f"""
name = "free"
sizes = {sizes}
channels = {channels}
ops = "conv_transpose"
[search]
kernel = [2, 4]
stride = [1, 2]
padding = [0, 1]
output_padding = 0
channels = [8, 32]
multiple_of = 8
"""


def test_free_channels_are_shown_so_designs_differ() -> None:
    solution = solve(loads(free_problem("[4, 8, 16]", '[16, "?", 3]')), top=50)
    designs = [c.design for c in solution.candidates]
    assert {d.steps[0].out_shape[0] for d in designs} == {8, 16, 24, 32}  # every multiple of 8 in [8, 32]
    texts = [design_text(d, solution.problem) for d in designs]
    assert len(set(texts)) == len(designs)
    for design, text in zip(designs, texts, strict=True):
        assert f"→{design.steps[0].out_shape[0]} |" in text
    # Without knowing what was chosen, the rows would collide: the check above is not vacuous.
    assert len({design_text(d) for d in designs}) < len(designs)


def test_free_sizes_are_shown_so_designs_differ() -> None:
    solution = solve(loads(free_problem('[4, "?", 16]', "[16, 8, 3]")), top=50)
    designs = [c.design for c in solution.candidates]
    middle = {d.steps[0].out_shape[1:] for d in designs}
    assert len(middle) > 1
    texts = [design_text(d, solution.problem) for d in designs]
    assert len(set(texts)) == len(designs)
    for design, text in zip(designs, texts, strict=True):
        assert " @" + "x".join(map(str, design.steps[0].out_shape[1:])) + " |" in text


def test_repeated_steps_are_written_once_with_their_count() -> None:
    solution = solve(load(Path(__file__).parents[2] / "problems" / "acgan_generator.toml"), top=1)
    design = solution.candidates[0].design
    text = design_text(design)
    assert text.startswith("16× residual_block")
    assert sum(step.layers[0].op == "residual_block" for step in design.steps) == 16
    parsed = parse_design(text)
    assert len(parsed) == len(design.steps)
    assert [s.ops[0] for s in parsed] == [step.layers[0].op for step in design.steps]


def test_long_recipes_break_between_steps_only() -> None:
    steps = [f"conv_transpose k{k} s2 p1" for k in range(2, 12)]
    cell = Pieces(" | ".join(steps), " | ")
    lines = list(cell.lines(60))
    assert all(len(line) <= 60 for line in lines)
    assert " ".join(lines).replace(" |", "|").split("| ") == [s for s in steps[:-1]] + [steps[-1]]


def test_explore_table_fits_and_counts_in_english() -> None:
    table = explore(16, 32, show_all=True).table()
    assert table.title == f"16 → 32: {len(table.rows)} recipes"
    default = explore(16, 32).table()
    assert default.title == f"16 → 32: {len(default.rows)} recipes (1 more breaks the default rules: --all lists them)"
    assert widest(render(default, 120)) <= 120
    assert widest(render(table, 120)) <= 120
    # 1 → 4 with kernel <= 4, stride 1, no padding: only ConvTranspose2d(k=4, s=1, p=0).
    alone = explore(1, 4, ["conv_transpose"], explore_ranges(max_kernel=4, max_stride=1, max_padding=0)).table()
    assert alone.rows == (("conv_transpose", "4", "1", "0", "0", "1", "-"),)
    assert alone.title == "1 → 4: 1 recipe"


@pytest.mark.parametrize(
    ("count", "noun", "expected"),
    [
        (1, "valid design", "1 valid design"),
        (0, "valid design", "0 valid designs"),
        (5_307_169_937_237, "valid design", "5,307,169,937,237 valid designs"),
        (1, "recipe", "1 recipe"),
        (2, "match", "2 matches"),
        (3, "study", "3 studies"),
        (2, "day", "2 days"),
    ],
)
def test_plural(count: int, noun: str, expected: str) -> None:
    assert plural(count, noun) == expected


@pytest.mark.slow  # a new interpreter
def test_one_valid_design_is_singular_on_the_command_line(tmp_path: Path) -> None:
    # 1 → 4 with every field pinned has exactly one recipe: ConvTranspose2d(k=4, s=1, p=0).
    problem = tmp_path / "one.toml"
    problem.write_text(
        'name = "one"\nsizes = [1, 4]\nchannels = [100, 3]\nops = "conv_transpose"\n'
        "[search]\nkernel = 4\nstride = 1\ndilation = 1\n"
    )
    done = subprocess.run([str(ARCHSOLVE), "solve", str(problem), "--no-rank"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "one: 1 valid design (" in done.stdout
    assert "best 1 by" in done.stdout
    assert "\x1b[" not in done.stdout


def test_rows_must_match_columns() -> None:
    with pytest.raises(ValueError):
        Table((Column("a"), Column("b")), (("1",),))


def _drawn_by_rich(table: Table, width: int) -> str:
    buffer = io.StringIO()
    print_table(make_console(buffer, width), table)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


@pytest.mark.parametrize("width", [60, 80, 100, 120, 200])
def test_plain_layout_is_what_rich_draws(width: int) -> None:
    """A pipe's tables skip rich when plain layout suffices; whenever it is used it is rich's drawing exactly."""
    from archsolve import api
    from archsolve.cli import report

    tables = [
        report.solution_table(api.solve(ROOT_PROBLEMS / "dcgan_generator.toml", top=20)),
        report.solution_table(api.solve(ROOT_PROBLEMS / "unet_101x75.toml", top=5)),
        api.explore(16, 32).table(),
        api.explore(16, 8).table(),
        Table(
            (Column("n", "right"), Column("steps", separator=" | "), Column("note")),
            (("1", " | ".join(["conv k3 s1 p1"] * 9), "x"), ("22", "conv k4 s2 p1", "→ 4×4")),
            title="synthetic",
            notes=("a note",),
        ),
    ]
    used = 0
    for table in tables:
        plain = plain_lines(table, width)
        if plain is not None:
            used += 1
            assert "\n".join(line.rstrip() for line in plain) == _drawn_by_rich(table, width)
        assert render(table, width) == _drawn_by_rich(table, width)
    assert used >= 3 if width >= 80 else used >= 1


def test_a_piped_line_is_written_as_rich_writes_it() -> None:
    from archsolve.core.console import Terminal

    for text in ("dcgan: 6,710 valid designs (0.1 s)", "tab\there", "wide 全角", ""):
        plain, drawn = io.StringIO(), io.StringIO()
        Terminal(stdout=plain).line(text)
        make_console(drawn).print(text, soft_wrap=True)
        assert plain.getvalue() == drawn.getvalue()
