"""``archsolve check`` on every bundled problem's emitted model: the reported sets are exactly the sizes that run.

Each emitted model is run at every size of each ``?`` axis on the meta device (torch's own shape
checks, no weights), the other axes at the sizes the check held them at.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archsolve.check import check as check_model
from archsolve.check.target import InputShape, design_model, load_design
from helpers.check_brute import brute

PROBLEMS = sorted((Path(__file__).parents[2] / "problems").glob("*.toml"))


def shape_of(design) -> str:  # type: ignore[no-untyped-def]
    lead = ["1", "2"] if design.sequence else ["1"]
    return "x".join([*lead, str(design.in_shape[0]), *["?"] * (len(design.in_shape) - 1)])


@pytest.mark.slow
@pytest.mark.parametrize("path", PROBLEMS, ids=[p.stem for p in PROBLEMS])
def test_reported_sets_are_the_sizes_that_run(path: Path) -> None:
    design = load_design(str(path))
    model = design_model(design)
    high = max(64, *design.in_shape[1:]) + 8
    shape = shape_of(design)
    result = check_model(model, shape, (1, high))
    dims = InputShape.parse(shape).dims
    for report in result.axes:
        real = brute(model, dims, report.axis, range(1, high + 1), report.reference, device="meta")
        assert list(report.runs.sizes) == [r.size for r in real if r.out is not None], report.name
        assert [v.out[0] if v.out else None for v in report.verdicts] == [r.out for r in real]
        declared = design.in_shape[report.axis - len(dims) + len(design.in_shape)]
        assert declared in report.runs.sizes  # the size it was designed for


def test_unet_101x75_forms_and_fix_emitted(cli, tmp_path: Path, load_source) -> None:  # type: ignore[no-untyped-def]
    problem = str(Path(__file__).parents[2] / "problems" / "unet_101x75.toml")
    out = tmp_path / "fixed.py"
    run = cli("check", problem, "--input", "1x3x?x?", "--range", "1:128", "--fix", "100", "--emit", str(out), "--json")
    assert run.code == 0, run.err
    data = json.loads(run.out)
    h, w = data["axes"]
    # Three 2x2 max pools floor 101 to 12; each decoder step lands back on the odd encoder size.
    assert h["runs"]["text"] == "H = 8·k + 5, k ≥ 1" and w["runs"]["text"] == "W = 8·k + 3, k ≥ 1"
    assert h["keeps_size"]["text"] == h["runs"]["text"] and h["output"]["text"] == "H"
    assert h["fix"]["verified"] and w["fix"]["verified"]
    module = load_source(out)
    model = getattr(module, module.__all__[0])()
    import torch

    y = model.eval()(torch.zeros(1, 3, 100, 100))
    assert y.shape[-2:] == (100, 100)
    # What is written is the model printed: the fix of both axes at once, at 100x100, run there.
    joint = data["joint_fix"]
    assert joint["verified"] and joint["output"] == list(y.shape)
    assert {(c["layer"], c["field"]) for c in joint["changes"]} == {
        (c["layer"], c["field"]) for axis in (h, w) for c in axis["fix"]["changes"]
    }
