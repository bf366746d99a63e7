"""``archsolve check`` on forward code that does more than call layers (issue 20), against CPU brute force.

Every model of ``check_models_real`` (and ``check_models``) is run at every size of the range on CPU;
the check must agree at every size, whichever way it decides (the graph, or a forward per size).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from archsolve.check import check as check_model
from archsolve.check.report import AxisReport
from archsolve.check.target import InputShape
from helpers.check_brute import brute
from helpers.check_models import CASES
from helpers.check_models_real import REAL_CASES, NumelFC, TwoCats, UpNoSize

TESTS = Path(__file__).parent.parent


def wrong(model: torch.nn.Module, shape: str, high: int, method: str) -> list[tuple[str, int, str]]:
    """Every size where the check and the CPU run disagree: (axis, size, what)."""
    result = check_model(model, shape, (1, high), method=method)
    dims = InputShape.parse(shape).dims
    bad = []
    for report in result.axes:
        real = brute(model, dims, report.axis, range(1, high + 1), report.reference)
        for r, v in zip(real, report.verdicts, strict=True):
            claimed = v.out[0] if v.out else None
            if claimed != r.out:
                bad.append((report.name, r.size, f"check {claimed}, torch {r.out}"))
            elif r.out is None and (v.failure is None or v.failure.where != r.module):
                bad.append((report.name, r.size, f"blamed {v.failure}, torch failed in {r.module!r}"))
    return bad


#: Cases over ~20 s on a loaded machine (an LSTM per size): run with the slow tests.
SLOW = {"CRNN"}


@pytest.mark.parametrize("method", ["auto", "graph"])
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in sorted(REAL_CASES)]
)
def test_no_wrong_accept_or_reject(name: str, method: str) -> None:
    factory, shape, high = REAL_CASES[name]
    torch.manual_seed(0)
    assert wrong(factory().eval(), shape, high, method) == []


@pytest.mark.parametrize("name", sorted(CASES))
def test_hand_models_by_forwards(name: str) -> None:
    factory, shape = CASES[name]
    torch.manual_seed(0)
    assert wrong(factory().eval(), shape, 32, "run") == []


def test_numel_failure_is_blamed_on_the_linear_layer() -> None:
    h = check_model(NumelFC(), "1x1x?x16", (1, 32), method="graph").axis("H")
    assert h.runs.sizes == (15, 16)
    assert {b.where for b in h.breaks} == {"fc"}


def test_two_cats_are_told_apart_by_line() -> None:
    h = check_model(TwoCats(), "1x2x?x8", (1, 32), method="graph").axis("H")
    labels = {b.label for b in h.breaks}
    assert len(labels) == 2 and all("cat at check_models_real.py:" in label for label in labels)


def test_a_loop_over_a_size_is_followed_not_frozen() -> None:
    result = check_model(REAL_CASES["RowLoop"][0](), "1x1x?x4", (1, 32), method="graph")
    h = result.axis("H")
    assert h.runs.text("H") == "every H in 1..32"
    assert any("a loop over range" in text for _, text in h.diverged)


def test_the_fix_that_keeps_every_size_wins() -> None:
    fix = check_model(UpNoSize(), "1x1x?x16", (1, 32), fix=7, method="graph").axis("H").fix
    assert fix is not None and fix.verified and fix.checked_on == "meta and CPU"
    assert [c.field for c in fix.changes] == ["output_size"] and fix.keeps == fix.ran == 16


def test_a_fix_of_a_call_in_forward_is_unverified_and_names_its_line() -> None:
    factory, shape, high = REAL_CASES["InplaceBuffer"]
    result = check_model(factory(), shape, (1, high), fix=3, method="graph")
    fix = result.axis("H").fix
    assert fix is not None and fix.changes and fix.verified is None
    text = result.text()
    assert "UNVERIFIED" in text and "max_pool at check_models_real.py:" in text


def test_a_size_that_runs_gets_a_fix_that_keeps_it() -> None:
    # 2 -> 1 -> 2: a stride-2 conv and transposed conv; H = 3 runs (out 2) but does not keep its size.
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3, stride=2, padding=1), torch.nn.ConvTranspose2d(1, 1, 2, 2))
    fix = check_model(net, "1x1x?x8", (1, 16), fix=3).axis("H").fix
    assert fix is not None and fix.changes and fix.verified and fix.output is not None
    assert fix.output[2] == 3


def test_a_fixed_shape_that_fails_exits_1(cli) -> None:  # type: ignore[no-untyped-def]
    bad = cli("check", f"{TESTS / 'helpers/check_models.py'}:TinyUNet", "--input", "1x3x7x8")
    assert bad.code == 1 and "fails at" in bad.out
    good = cli("check", f"{TESTS / 'helpers/check_models.py'}:TinyUNet", "--input", "1x3x8x8", "--json")
    assert good.code == 0 and json.loads(good.out)["single"]["runs"] is True


def test_unpool_is_confirmed_on_cpu() -> None:
    result = check_model(REAL_CASES["Unpool"][0](), "1x1x?x?", (1, 24), method="graph")
    w = result.axis("W")
    assert w.decided["cpu"] == 24 and w.why_run is not None and "max_unpool2d" in w.why_run


def export_spec(model: torch.nn.Module, shape: str, report: AxisReport) -> None:
    """torch.export.export with the reported Dim on the axis, at a size inside it that runs (the others held)."""
    code = report.spec()["code"]
    found = re.search(r"min=(\d+), max=(\d+)", code)
    assert found is not None, code
    derived = re.search(r"= (\d+) \* _\w+(?: \+ (\d+))?$", code)
    m, r = (int(derived[1]), int(derived[2] or 0)) if derived else (1, 0)
    inside = [n for n in report.runs.sizes if int(found[1]) <= (n - r) // m <= int(found[2]) and (n - r) % m == 0]
    assert inside, code
    names: dict[str, object] = {"torch": torch}
    exec(code, names)
    dims = InputShape.parse(shape).dims
    at = tuple(
        inside[len(inside) // 2] if i == report.axis else (report.reference[i] if d is None else d)
        for i, d in enumerate(dims)
    )
    torch.export.export(model.eval(), (torch.zeros(at),), dynamic_shapes={"x": {report.axis: names[report.name]}})


def test_export_dim_of_a_single_strided_conv_is_accepted() -> None:
    model = REAL_CASES["Strided1"][0]()
    report = check_model(model, "1x1x?x16", (1, 64)).axis("H")
    assert report.spec()["code"] == 'H = torch.export.Dim("H", min=3, max=64)'
    export_spec(model, "1x1x?x16", report)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REAL_CASES) + sorted(CASES))
def test_every_reported_export_spec_is_accepted_by_torch_export(name: str) -> None:
    if name in REAL_CASES:
        factory, shape, high = REAL_CASES[name]
    else:
        (factory, shape), high = CASES[name], 48
    torch.manual_seed(0)
    model = factory().eval()
    result = check_model(model, shape, (1, high))
    for report in result.axes:
        code = report.spec()["code"]
        if code and "static" not in code:
            export_spec(model, shape, report)
