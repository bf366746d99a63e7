"""`archsolve solve`: exit codes, JSON contract, one-line errors, no torch on --no-rank."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from archsolve.cli.commands import main

ROOT = Path(__file__).parents[2]
DCGAN = str(ROOT / "problems" / "dcgan_generator.toml")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_json_follows_the_contract() -> None:
    code, out, _ = run("solve", DCGAN, "--no-rank", "--top", "3", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["problem"] == "dcgan-generator"
    # The raw count (brute force over torch layers) with the design rules off; folding accounts for the rest.
    rules = ("no_dead_pixels", "no_identity", "faithful", "no_constant_output", "no_wasted_resampling", "no_duplicates")
    rules_off = [f"constraints.{r}=false" for r in rules]
    _, raw, _ = run("solve", DCGAN, "--no-rank", "--top", "1", "--json", *(a for r in rules_off for a in ("--set", r)))
    assert json.loads(raw)["count"] == 22_695 and json.loads(raw)["folded"] == 0
    _, unfolded, _ = run("solve", DCGAN, "--no-rank", "--top", "1", "--json", "--set", rules_off[-1])
    assert data["folded"] > 0 and data["count"] + data["folded"] == json.loads(unfolded)["count"]
    assert len(data["candidates"]) == 3
    first = data["candidates"][0]
    assert set(first) == {"params", "macs", "throughput", "layers", "variants"}
    assert first["throughput"] is None
    assert data["winner"] == first
    layer = first["layers"][0]
    assert layer["op"] == "conv_transpose" and layer["in_shape"] == [100, 1, 1] and layer["out_shape"][0] == 512
    for key in ("kernel", "stride", "padding", "output_padding", "dilation", "params"):
        assert isinstance(layer[key], int)
    assert sum(layer["params"] for layer in first["layers"]) == first["params"]


def test_table_output_names_count_and_recipes() -> None:
    code, out, _ = run("solve", DCGAN, "--no-rank", "--top", "2")
    assert code == 0
    assert "valid designs (" in out and "functional duplicates folded" in out
    assert "conv_transpose k4 s1" in out


@pytest.mark.slow  # over a second: outside the fast set (-m "not slow"), still in CI
def test_infeasible_problem_exits_1_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('sizes = [16, 100]\nops = "conv_transpose"\n[search]\nkernel = [1, 4]\nstride = [1, 2]\n')
    code, out, err = run("solve", str(path), "--no-rank")
    assert code == 1
    assert "step 1" in err and "nearest reachable" in err
    assert "Traceback" not in err + out


def test_time_limit_exits_3(tmp_path: Path) -> None:
    code, _, err = run("solve", str(ROOT / "problems" / "acgan_generator.toml"), "--no-rank", "--time-limit", "0.0001")
    assert code == 3
    assert "time limit" in err


BAD = [
    (["solve"], "Missing argument"),
    (["solve", "missing.toml", "--no-rank"], "no such file"),
    (["solve", DCGAN, "--no-rank", "--top", "0"], "--top"),
    (["solve", DCGAN, "--no-rank", "--top", "many"], "--top"),
    (["solve", DCGAN, "--no-rank", "--time-limit", "-1"], "--time-limit"),
    (["solve", DCGAN, "--no-rank", "--set", "search.kernal=3"], "did you mean 'kernel'"),
    (["solve", DCGAN, "--no-rank", "--set", "nonsense"], "expected KEY=VALUE"),
    (["solve", DCGAN, "--no-rank", "--set", "search.kernel=[0, 3]"], "search.kernel"),
    (["solve", DCGAN, "--no-rank", "--device", "gpu"], "rank.device"),
    (["solve", DCGAN, "--no-rank", "--trials", "0"], "--trials"),
    (["solve", DCGAN, "--no-rnak"], "No such option"),
]


@pytest.mark.parametrize(("args", "expected"), BAD, ids=[" ".join(a[1:]) or "no-args" for a, _ in BAD])
def test_bad_input_is_one_line_exit_2(args: list[str], expected: str) -> None:
    code, out, err = run(*args)
    assert code == 2, (code, out, err)
    assert expected in err
    assert "Traceback" not in err + out


def test_bad_problem_file_reports_every_issue(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('sizes = [4, 0]\nops = "convv"\n[search]\nkernal = 3\n')
    code, _, err = run("solve", str(path), "--no-rank")
    assert code == 2
    assert "sizes[1]" in err and "'convv'" in err and "search.kernal" in err


@pytest.mark.slow  # a new interpreter
def test_no_rank_does_not_import_torch_or_optuna() -> None:
    code = (
        "import sys\nfrom archsolve.cli.commands import main\n"
        f"try:\n    main(['solve', {DCGAN!r}, '--no-rank', '--json'])\n"
        "except SystemExit as e:\n    assert e.code in (0, None)\n"
        "print(' '.join(m for m in ('torch', 'optuna') if m in sys.modules) or 'light')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("light")


@pytest.mark.slow  # a new interpreter
def test_real_process_exit_codes() -> None:
    exe = Path(sys.executable).parent / "archsolve"
    ok = subprocess.run([str(exe), "solve", DCGAN, "--no-rank", "--top", "1"], capture_output=True, text=True)
    assert ok.returncode == 0 and "valid designs" in ok.stdout
    bad = subprocess.run([str(exe), "solve", DCGAN, "--no-rank", "--set", "ops=3"], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and bad.stderr.startswith("error:")


def test_ranking_flags_keep_characters_outside_the_bmp(tmp_path: Path) -> None:
    from archsolve import api

    problem = tmp_path / "p.toml"
    problem.write_text('name = "p"\nsizes = [4, 8]\nchannels = [8, 4]\nops = "conv_transpose"\n')
    flags = {"study": "s😀 \"q\" \\", "results_dir": str(tmp_path / "r😀"), "storage": None}
    loaded = api.load_problem(str(problem), rank=flags)
    assert loaded.rank.study_name == "s😀 \"q\" \\"
    assert loaded.rank.results_dir == tmp_path / "r😀"
