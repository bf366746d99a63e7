"""``archsolve check`` on MONAI's networks (an outside package): every claim against the model run on CPU.

The closed forms are checked as stated (membership and output formulas evaluated at every size),
the failing layers against the module torch was running when it raised, and each fix is applied
to the real model by hand and run.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from archsolve.check import check as check_model
from archsolve.check.report import CheckResult
from helpers.check_brute import brute, run_at

nets = pytest.importorskip("monai.networks.nets")

HIGH = 64
SHAPE = "1x1x?x32"

MODELS: dict[str, Callable[[], torch.nn.Module]] = {
    "UNet": lambda: nets.UNet(
        spatial_dims=2, in_channels=1, out_channels=2, channels=(4, 8, 16, 32), strides=(2, 2, 2), num_res_units=1
    ),
    "BasicUNet": lambda: nets.BasicUNet(spatial_dims=2, in_channels=1, out_channels=2, features=(4, 4, 8, 8, 16, 4)),
    "SegResNet": lambda: nets.SegResNet(spatial_dims=2, in_channels=1, out_channels=2, init_filters=8),
    "AttentionUnet": lambda: nets.AttentionUnet(
        spatial_dims=2, in_channels=1, out_channels=2, channels=(4, 8, 16), strides=(2, 2)
    ),
    "DynUNet": lambda: nets.DynUNet(
        spatial_dims=2,
        in_channels=1,
        out_channels=2,
        kernel_size=[3, 3, 3, 3],
        strides=[1, 2, 2, 2],
        upsample_kernel_size=[2, 2, 2],
    ),
}
#: What the check says, written down once it was confirmed against the runs below (the text is the claim).
FORMS = {
    "UNet": ("H ≡ 0 or 7 (mod 8), H ≥ 7", "8·⌊(H + 1) / 8⌋"),
    "BasicUNet": ("H ≥ 16", "H"),
    "SegResNet": ("H ∈ {1} or H = 8·k, k ≥ 1", "8·⌈H / 8⌉"),
    "AttentionUnet": ("H ∈ {1} or H = 4·k, k ≥ 1", "4·⌈H / 4⌉"),
    "DynUNet": ("H = 8·k, k ≥ 1", "H"),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def checked(request: pytest.FixtureRequest) -> tuple[str, torch.nn.Module, CheckResult]:
    torch.manual_seed(0)
    model = MODELS[request.param]().eval()
    return request.param, model, check_model(model, SHAPE, (1, HIGH))


@pytest.mark.slow
def test_claims_agree_with_running_every_size(checked) -> None:  # type: ignore[no-untyped-def]
    name, model, result = checked
    h = result.axis("H")
    real = brute(model, (1, 1, None, 32), 2, range(1, HIGH + 1), h.reference)
    runs = [r.size for r in real if r.out is not None]
    assert list(h.runs.sizes) == runs
    assert all((n in h.runs) == (n in runs) for n in range(1, HIGH + 1))  # the closed form, as stated
    assert h.output.exact and all(h.output(r.size) == r.out[2] for r in real if r.out is not None)
    assert [v.out[0] if v.out else None for v in h.verdicts] == [r.out for r in real]
    for v, r in zip(h.verdicts, real, strict=True):
        if r.out is None:
            assert v.failure is not None and v.failure.where == r.module, (name, r.size)
    assert (h.runs.text("H"), h.output.text("H")) == FORMS[name]


@pytest.mark.slow
def test_fix_applied_by_hand_runs(checked) -> None:  # type: ignore[no-untyped-def]
    name, model, result = checked
    fix = result.axis("H").fix
    if fix is None:  # every size above the smallest that runs runs (BasicUNet pads)
        assert name == "BasicUNet"
        return
    assert fix.changes and fix.verified, name
    size = fix.size
    assert run_at(model, (1, 1, size, 32))[0] is None
    saved = []
    hooks = []
    for change in fix.changes:
        module = model.get_submodule(change.layer)
        if change.field == "output_size":  # the size of the other side's tensor, read as the model runs
            skip = model.get_submodule(str(change.new).split(" (")[0])
            seen: dict[str, list[int]] = {}
            hooks.append(
                skip.register_forward_hook(lambda m, a, o, seen=seen: seen.__setitem__("size", list(o.shape[2:])))
            )
            hooks.append(
                module.register_forward_pre_hook(
                    lambda m, a, k, seen=seen: (a, {**k, "output_size": seen["size"]}), with_kwargs=True
                )
            )
        elif change.field == "pad":  # pad (or crop) that module's output at the end of the axis
            delta = int(change.new)
            hooks.append(
                module.register_forward_hook(lambda m, a, o, d=delta: torch.nn.functional.pad(o, (0, 0, 0, d)))
            )
        else:
            old = getattr(module, change.field)
            saved.append((module, change.field, old))
            values = list(old) if isinstance(old, tuple) else [old, old]
            values[change.axis - 2] = change.new
            setattr(module, change.field, tuple(values) if change.field != "ceil_mode" else change.new)
    try:
        out, where = run_at(model, (1, 1, size, 32))
    finally:
        for h in hooks:
            h.remove()
        for module, field, old in saved:
            setattr(module, field, old)
    assert out is not None, (name, where)
    assert out[2] == fix.output[2] if fix.output else True
