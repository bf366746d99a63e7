"""``archsolve explore`` on the command line: output forms, exit codes, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from archsolve.cli.commands import main
from archsolve.core.recipe import AxisRecipe
from helpers.explore_bruteforce import bruteforce

ARCHSOLVE = Path(sys.executable).parent / "archsolve"
DONE_WHEN = [
    "16",
    "32",
    "--op",
    "conv_transpose",
    "--max-kernel",
    "8",
    "--max-stride",
    "4",
    "--max-padding",
    "4",
    "--max-dilation",
    "3",
    "--all",
    "--json",
]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["explore", *args])
    return result.exit_code, result.stdout, result.stderr


def as_recipes(data: dict) -> set[tuple[str, tuple[AxisRecipe, ...]]]:
    out = set()
    for r in data["recipes"]:
        axis = AxisRecipe(r["kernel"], r["stride"], r["padding"], r["output_padding"], r["dilation"])
        out.add((r["op"], (axis, axis)))
    return out


@pytest.mark.slow  # a new interpreter
def test_done_when_command_lists_the_20_recipes_torch_accepts() -> None:
    """The issue's check, as a real process: exactly the distinct layers a torch brute force finds."""
    done = subprocess.run([str(ARCHSOLVE), "explore", *DONE_WHEN], capture_output=True, text=True, check=True)
    data = json.loads(done.stdout)
    assert data["in"] == 16 and data["out"] == 32
    assert data["count"] == len(data["recipes"]) == 20
    assert as_recipes(data) == bruteforce("conv_transpose", (16, 16), (32, 32), 8, 4, 4, 3)
    flags = {"checkerboard", "gaps", "dead_pixels", "identity", "faithful"}
    assert all(
        set(r) == {"op", "kernel", "stride", "padding", "output_padding", "dilation", *flags} for r in data["recipes"]
    )
    assert {
        "op": "conv_transpose",
        "kernel": 4,
        "stride": 2,
        "padding": 1,
        "output_padding": 0,
        "dilation": 1,
        "checkerboard": False,
        "gaps": False,
        "dead_pixels": False,
        "identity": False,
        "faithful": True,
    } in data["recipes"]
    # Without --all the default rules leave some out, and say how many.
    default = json.loads(
        subprocess.run(
            [str(ARCHSOLVE), "explore", *DONE_WHEN[:-2], "--json"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert default["all"] is False and default["count"] + default["left_out"] == 20 and default["left_out"] > 0


def test_json_per_axis_sizes_are_lists() -> None:
    code, out, _ = run("16x8", "32x16", "--op", "conv_transpose", "--max-kernel", "4", "--max-stride", "2", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["in"] == [16, 8] and data["out"] == [32, 16]
    assert data["count"] == len(data["recipes"]) > 0


def test_table_by_default() -> None:
    code, out, err = run("16", "32")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("16 → 32: ") and lines[0].endswith(" more breaks the default rules: --all lists them)")
    assert lines[1].split()[:2] == ["op", "kernel"] and lines[1].split()[-1] == "flags"
    assert any(line.split()[-1] == "checkerboard" for line in lines[3:])  # k3 s2 p1 op1 is listed, flagged
    assert any(line.split()[:4] == ["conv_transpose", "4", "2", "1"] for line in lines)
    assert any(line.split()[0] == "upsample" for line in lines[3:])
    assert int(lines[0].split(": ")[1].split()[0]) == len(lines) - 3


def test_repeated_op_lists_both_kinds() -> None:
    code, out, _ = run("16", "8", "--op", "max_pool", "--op", "avg_pool", "--op", "max_pool", "--json")
    assert code == 0
    assert {r["op"] for r in json.loads(out)["recipes"]} == {"max_pool", "avg_pool"}


def test_nothing_fits_exits_1_with_the_nearest_sizes() -> None:
    code, out, err = run(
        "16", "1000", "--op", "conv_transpose", "--max-kernel", "4", "--max-stride", "2", "--max-padding", "1"
    )
    assert code == 1 and out == ""
    assert "no single layer maps 16 to 1000" in err and "nearest OUT reachable:" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["abc", "32"], "'abc' is not a size"),
        (["0", "32"], "at least 1"),
        (["16", "-3"], "-3 is not a size"),
        (["16x", "32"], "'16x' is not a size"),
        (["16x16x16x16", "8"], "is not a size"),
        (["16", "2.5"], "is not a size"),
        (["16x16", "8x8x8"], "differ in axes"),
        (["16", "32", "--max-kernel", "0"], "--max-kernel"),
        (["16", "32", "--max-stride", "0"], "--max-stride"),
        (["16", "32", "--max-padding", "-1"], "--max-padding"),
        (["16", "32", "--max-dilation", "x"], "--max-dilation"),
        (["16", "32", "--op", "conv_tranpose"], "did you mean 'conv_transpose'"),
        (["16", "32", "--max-kernal", "3"], "--max-kernel"),
        (["8x8x8", "4", "--op", "pixel_shuffle"], "2D"),
        (["16"], "OUT"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], needle: str) -> None:
    code, out, err = run(*args)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert needle in err
    assert "Traceback" not in err


def test_help_documents_the_defaults() -> None:
    code, out, _ = run("--help")
    assert code == 0
    for text in ("--max-kernel", "default: 8", "default: 4", "default: 1", "--op KIND", "--json", "norms"):
        assert text in out


@pytest.mark.slow  # a new interpreter
def test_real_process_bad_input_has_no_traceback() -> None:
    done = subprocess.run([str(ARCHSOLVE), "explore", "16", "abc"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


@pytest.mark.slow  # a new interpreter
def test_explore_command_imports_neither_torch_nor_z3_nor_optuna() -> None:
    """Neither JSON nor a piped table loads rich: the table fits 120 columns, so it is laid out plainly."""
    probe = "print(sorted(m for m in ('torch', 'z3', 'optuna', 'rich') if m in sys.modules), file=sys.stderr)"
    for args, expected in ((["16", "32", "--json"], "[]"), (["16", "32"], "[]")):
        run_it = f"main(['explore', *{args!r}], standalone_mode=False)"
        code = f"import sys; from archsolve.cli.commands import main\n{run_it}\n{probe}"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert done.stderr.strip() == expected


def test_only_rule_breaking_recipes_exit_1_and_point_to_all() -> None:
    """8 → 8 by upsampling is only the ×1 copy: left out by default (exit 1, saying why), listed with --all."""
    code, _, err = run("8", "8", "--op", "upsample")
    assert code == 1 and "none that the default rules keep" in err and "1 compute nothing" in err and "--all" in err
    code, out, _ = run("8", "8", "--op", "upsample", "--all", "--json")
    assert code == 0 and json.loads(out)["recipes"][0]["identity"] is True
