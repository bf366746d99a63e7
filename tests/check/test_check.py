"""``archsolve check``: every claim compared with the real model run at every size of the range."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from archsolve.check import check as check_model
from archsolve.check.describe import describe_function, describe_set
from archsolve.check.target import InputShape
from helpers.check_brute import brute, run_at
from helpers.check_models import CASES, TinyUNet

TESTS = Path(__file__).parent.parent
LOW, HIGH = 1, 48


def assert_matches_brute(model: torch.nn.Module, shape: str, low: int, high: int, device: str = "cpu") -> None:
    result = check_model(model, shape, (low, high))
    dims = InputShape.parse(shape).dims
    for report in result.axes:
        real = brute(model, dims, report.axis, range(low, high + 1), report.reference, device)
        assert list(report.runs.sizes) == [r.size for r in real if r.out is not None], report.name
        for r, v in zip(real, report.verdicts, strict=True):
            assert v.size == r.size
            assert (v.out[0] if v.out else None) == r.out, (report.name, r.size)
            if r.out is None:
                assert v.failure is not None and v.failure.where == r.module, (report.name, r.size, v.failure)


@pytest.mark.parametrize("name", sorted(CASES))
def test_sets_outputs_and_failing_layers_agree_with_running_the_model(name: str) -> None:
    factory, shape = CASES[name]
    torch.manual_seed(0)
    assert_matches_brute(factory(), shape, LOW, HIGH)


def test_closed_forms_of_hand_models() -> None:
    unet = check_model(TinyUNet(), "1x3x?x16", (1, 64)).axis("H")
    assert unet.runs.text("H") == "H = 2·k, k ≥ 1"
    assert unet.keeps.text("H") == "H = 2·k, k ≥ 1"
    assert unet.output.text("H") == "H"
    assert unet.runs.dim("H")["code"] == '_H = torch.export.Dim("_H", min=1, max=32); H = 2 * _H'
    assert unet.spec()["code"] == '_H = torch.export.Dim("_H", min=2, max=32); H = 2 * _H'
    strided = check_model(CASES["Strided"][0](), "1x4x?x64", (1, 256)).axis("H")
    assert strided.runs.text("H") == "H ∈ {1} or H = 32·k, k ≥ 1"
    decoder = check_model(CASES["Decoder1d"][0](), "1x2x?", (1, 100)).axis(2)
    assert decoder.runs.text("L") == "every L in 1..100"
    assert decoder.output.text("L") == "2·L + 1"
    classifier = check_model(CASES["Classifier"][0](), "1x1x?x28", (1, 64)).axis("H")
    assert classifier.runs.sizes == (27, 28)  # ceil_mode pooling: 23 and 24 both pool to 12
    assert classifier.output_text() == "constant shape [1, 10]"


def test_the_issues_closed_forms() -> None:
    assert describe_set(range(32, 1025, 32), 1, 1024).text("H") == "H = 32·k, k ≥ 1"
    odd = [n for n in range(7, 1025) if n % 8 in (0, 7)]
    assert describe_set(odd, 1, 1024).text("H") == "H ≡ 0 or 7 (mod 8), H ≥ 7"
    assert describe_set([1, *range(8, 1025, 8)], 1, 1024).text("H") == "H ∈ {1} or H = 8·k, k ≥ 1"
    assert describe_set(range(5, 300), 1, 1024).text("H") == "H ≥ 5 and ≤ 299"
    assert describe_set([224], 1, 1024).text("H") == "H ∈ {224}"
    assert describe_function([(h, (h + 31) // 32) for h in range(1, 1025)]).text("H") == "⌈H / 32⌉"
    assert describe_function([(h, h // 32) for h in range(32, 1025, 32)]).text("H") == "H / 32"
    assert describe_function([(h, 4 * ((h + 1) // 4)) for h in range(3, 200)]).text("H") == "4·⌊(H + 1) / 4⌋"


def test_the_fix_applied_by_hand_makes_the_size_run_and_keep_its_size() -> None:
    model = TinyUNet()
    result = check_model(model, "1x3x?x16", (1, 32), fix=7)
    fix = result.axis("H").fix
    assert fix is not None and fix.changes and fix.verified
    assert run_at(model, (1, 3, 7, 16))[0] is None  # the check left the model as it was
    (change,) = fix.changes
    assert change.layer == "up" and change.field == "output_size"
    # Apply it ourselves: call the transposed conv with output_size= the skip's size.
    a = torch.relu(model.enc(torch.zeros(1, 3, 7, 16)))
    b = model.up(torch.relu(model.mid(model.pool(a))), output_size=a.shape[-2:])
    assert model.head(torch.cat([a, b], 1)).shape == (1, 1, 7, 16)
    assert fix.keeps == fix.ran == 16  # output_size= serves every even size too


def test_recipe_fix_applied_to_the_module_runs() -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3, stride=2), torch.nn.Conv2d(1, 1, 3, stride=2))
    result = check_model(net, "1x1x?x32", (1, 32), fix=6)
    fix = result.axis("H").fix
    assert fix is not None and fix.changes and fix.verified
    for change in fix.changes:
        module = net.get_submodule(change.layer)
        values = list(getattr(module, change.field))
        values[change.axis - 2] = change.new
        setattr(module, change.field, tuple(values))
    out, _ = run_at(net, (1, 1, 6, 32))
    assert out is not None and out[2] == fix.output[2]


def test_json_and_text(cli) -> None:  # type: ignore[no-untyped-def]
    run = cli(
        "check", f"{TESTS / 'helpers/check_models.py'}:TinyUNet", "--input", "1x3x?x?", "--range", "1:40", "--json"
    )
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert data["version"] == 1 and [a["name"] for a in data["axes"]] == ["H", "W"]
    h = data["axes"][0]
    assert h["runs"]["sizes"] == list(range(2, 41, 2))
    # H = 2 runs, but there the pooled size is 1, which torch.export specializes: the Dim starts at 4.
    assert h["export"]["code"] == '_H = torch.export.Dim("_H", min=2, max=20); H = 2 * _H'
    assert h["export"]["exact"] is False and "reaches 1" in h["export"]["note"]
    assert h["breaks"][0]["op"] == "cat" and h["breaks"][0]["meeting"] == [3, 2]
    text = cli("check", f"{TESTS / 'helpers/check_models.py'}:TinyUNet", "--input", "1x3x?x8", "--range", "1:40")
    assert text.code == 0 and "H = 2·k, k ≥ 1" in text.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["broken.py:Net"], "fails to import"),
        (["check_models.py:Nope"], "unknown name 'Nope'"),
        (["check_models.py:needs_arguments"], "needs arguments"),
        (["check_models.py:TinyUNet", "--input", "1x3x?"], "fails at every size"),
        (["check_models.py:Classifier", "--input", "1x1x?x5"], "fails at every size"),
        (["check_models.py:TinyUNet", "--input", "1x3xAx?"], "is not a size"),
        (["check_models.py:TinyUNet", "--kwargs", "[1]"], "--kwargs"),
        (["nosuch.py:Net"], "no such file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, tmp_path: Path, monkeypatch, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "broken.py").write_text("import torch\nraise ValueError('no model today')\n")
    (tmp_path / "check_models.py").write_text((TESTS / "helpers/check_models.py").read_text())
    monkeypatch.chdir(tmp_path)
    if "--input" not in args:
        args = [*args, "--input", "1x3x?x?"]
    run = cli("check", *args, "--range", "1:16")
    assert run.code == 2, run.out
    assert message in run.err and "Traceback" not in run.err and len(run.err.strip().splitlines()) == 1


@pytest.mark.slow
def test_export_dim_spec_is_accepted_by_torch_export() -> None:
    model = TinyUNet().eval()
    spec = check_model(model, "1x3x?x16", (1, 64)).axis("H").runs.dim("H")
    assert spec["exact"]
    names: dict[str, object] = {"torch": torch}
    exec(spec["code"], names)
    program = torch.export.export(model, (torch.zeros(1, 3, 16, 16),), dynamic_shapes={"x": {2: names["H"]}})
    assert program.module()(torch.zeros(1, 3, 30, 16)).shape == (1, 1, 30, 16)
