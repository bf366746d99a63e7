"""Decoders that mirror an encoder: trajectories from the catalog, exact landings, several input sizes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from archsolve.build.emit import emit_source
from archsolve.build.modules import DesignNet, build
from archsolve.build.summary import cross_check, summary_table
from archsolve.cli.commands import main
from archsolve.core.recipe import AxisRecipe
from archsolve.design.checks import write_text
from archsolve.design.design import BuildOptions, Design, make_step
from archsolve.errors import InfeasibleError, InputError
from archsolve.problem.problem import load, loads
from archsolve.problem.saved import design_from_dict, dumps_design, loads_design
from archsolve.solve import solve

LoadSource = Callable[[Path], ModuleType]

PROBLEMS = Path(__file__).parents[2] / "problems"

UNET = """
name = "u"
[encoder]
inputs = ["{size}"]
channels = 3
steps = [
    {{ op = "conv", channels = 8, kernel = 3, padding = 1 }},
    {{ op = "max_pool", kernel = 2 }},
    {{ op = "conv", channels = 16, kernel = 3, padding = 1 }},
    {{ op = "max_pool", kernel = 2 }},
    {{ op = "conv", channels = 32, kernel = 3, padding = 1 }},
]
[decoder]
ops = "conv_transpose"
skip = "{skip}"
[search]
kernel = [1, 4]
stride = [1, 2]
padding = [0, 2]
output_padding = [0, 1]
per_axis = true
"""


def encoder_sizes_in_torch(size: tuple[int, int]) -> list[tuple[int, int]]:
    """The encoder's spatial sizes, from torch itself."""
    x = torch.zeros(1, 3, *size)
    layers = [
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 16, 3, padding=1),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1),
    ]
    sizes = [tuple(x.shape[2:])]
    for layer in layers:
        x = layer(x)
        sizes.append(tuple(x.shape[2:]))
    return sizes  # type: ignore[return-value]


@pytest.mark.parametrize("size", [(101, 75), (64, 64), (33, 17)])
def test_decoder_lands_on_the_encoder_sizes_torch_computes(size: tuple[int, int]) -> None:
    problem = loads(UNET.format(size=f"{size[0]}x{size[1]}", skip="concat"))
    sizes = encoder_sizes_in_torch(size)
    # Decoder steps mirror the two pools: bottleneck -> size before pool 2 -> size before pool 1.
    assert [s.fixed for s in problem.sizes] == [sizes[4], sizes[2], sizes[0]]
    solution = solve(problem, top=3)
    assert solution.count >= 1
    for candidate in solution.candidates:
        decoder = [layer for layer in candidate.design.layers[len(problem.prefix[0].layers) :]]
        assert decoder  # the design holds encoder and decoder
        assert candidate.design.outputs[-1][1:] == size


def test_skip_channels_are_concatenated() -> None:
    problem = loads(UNET.format(size="101x75", skip="concat"))
    candidate = solve(problem, top=1).candidates[0]
    # last decoder step gives 8 channels (mirroring conv 1) and joins conv 1's 8: 16 out
    assert candidate.design.out_shape == (16, 101, 75)
    add = loads(UNET.format(size="101x75", skip="add"))
    assert solve(add, top=1).candidates[0].design.out_shape == (8, 101, 75)


def test_plain_x2_decoder_cannot_serve_odd_sizes() -> None:
    text = (
        UNET.format(size="101x75", skip="concat") + "\n[search.step.1]\nkernel = 2\npadding = 0\noutput_padding = 0\n"
    )
    with pytest.raises(InfeasibleError, match="step 1"):
        solve(loads(text))


MULTI = """
name = "m"
[encoder]
inputs = [{inputs}]
channels = 3
steps = [{{ op = "conv", channels = 8, kernel = 3, stride = 2, padding = 1 }},
         {{ op = "conv", channels = 16, kernel = 3, stride = 2, padding = 1 }}]
[decoder]
ops = "conv_transpose"
[search]
kernel = {kernel}
stride = 2
padding = {padding}
output_padding = [0, 1]
"""


def test_several_sizes_need_run_time_output_size() -> None:
    problem = loads(MULTI.format(inputs="96, 100, 101, 128", kernel="[1, 4]", padding="[0, 2]"))
    solution = solve(problem, top=5)
    assert solution.count >= 1
    for candidate in solution.candidates:
        decoder = candidate.design.steps[len(problem.prefix) :]
        assert any(layer.size_from is not None for step in decoder for layer in step.layers)
        for index, step in enumerate(decoder):
            layer = step.layers[0]
            a = layer.axes[0]
            module = torch.nn.ConvTranspose2d(
                1, 1, a.kernel, a.stride, a.padding, a.output_padding, dilation=a.dilation
            )
            sources = problem.sizes[index].fixed[::2]  # type: ignore[index]
            targets = problem.sizes[index + 1].fixed[::2]  # type: ignore[index]
            for n, want in zip(sources, targets, strict=True):
                x = torch.zeros(1, 1, n, n)
                if layer.size_from is None:
                    assert module(x).shape[-1] == want  # one fixed output_padding serves every size
                else:
                    assert module(x, output_size=[want, want]).shape[-1] == want  # torch accepts it


def test_one_fixed_output_padding_is_used_where_it_fits() -> None:
    # 96 and 128 both halve exactly: k3 s2 p1 op1 serves both without run-time sizing.
    problem = loads(MULTI.format(inputs="96, 128", kernel="[1, 4]", padding="[0, 2]"))
    solution = solve(problem, top=50)
    assert any(all(layer.size_from is None for layer in c.design.layers) for c in solution.candidates)


def test_conflicting_sizes_are_named() -> None:
    # k4 s2: 50 -> 100 needs padding 1, 51 -> 101 needs padding 2; no single layer serves both.
    problem = loads(
        MULTI.format(inputs="100, 101", kernel="4", padding="[1, 2]").replace(
            'steps = [{ op = "conv", channels = 8, kernel = 3, stride = 2, padding = 1 },\n'
            '         { op = "conv", channels = 16, kernel = 3, stride = 2, padding = 1 }]',
            'steps = [{ op = "conv", channels = 8, kernel = 3, stride = 2, padding = 1 }]',
        )
    )
    with pytest.raises(InfeasibleError) as info:
        solve(problem)
    text = str(info.value)
    assert "inputs 1 and 2 conflict" in text and "50x50 → 100x100" in text and "51x51 → 101x101" in text


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('[encoder]\ninputs = []\nchannels = 3\nsteps = [{ op = "conv", channels = 4, kernel = 3 }]', "encoder.inputs"),
        ('[encoder]\ninputs = ["10x"]\nsteps = [{ op = "conv", channels = 4, kernel = 3 }]', "encoder.inputs[0]"),
        (
            '[encoder]\ninputs = [32]\nsteps = [{ op = "conv", channels = 4, kernel = 3, stride = 1, padding = 1 }]',
            "no step changes the size",
        ),
        ('[encoder]\ninputs = [32]\nsteps = [{ op = "convv", channels = 4 }]', "did you mean 'conv'"),
        ('[encoder]\ninputs = [32]\nsteps = [{ op = "conv", kernel = 3, stride = 2 }]', "needs its output channel"),
        ('[encoder]\ninputs = [32]\nsteps = [{ op = "conv", channels = 4, kernal = 3 }]', "did you mean 'kernel'"),
        ('[encoder]\ninputs = [4]\nsteps = [{ op = "conv", channels = 4, kernel = 9, stride = 2 }]', "torch rejects"),
        (
            '[encoder]\ninputs = [32]\nsteps = [{ op = "conv", channels = 4, kernel = 3, stride = 2 }]\n'
            '[decoder]\nskip = "sum"',
            "decoder.skip",
        ),
        (
            'sizes = [1, 2]\n[encoder]\ninputs = [32]\nsteps = [{ op = "conv", channels = 4, kernel = 3, stride = 2 }]',
            "sizes: not with [encoder]",
        ),
        (
            "[encoder]\ninputs = [32, 33]\n"
            'steps = [{ op = "conv", channels = 4, kernel = 3, stride = 2, padding = "same" }]',
            "one torch layer cannot serve both",
        ),
    ],
)
def test_bad_encoder_tables(table: str, expected: str) -> None:
    with pytest.raises(InputError) as info:
        loads(table)
    assert expected in str(info.value)


@pytest.mark.parametrize("name", ["unet_101x75", "unet_multisize", "resnet_decoder_200"])
def test_bundled_encoder_problems_solve(name: str) -> None:
    problem = load(PROBLEMS / f"{name}.toml")
    solution = solve(problem, top=3)
    assert solution.count >= 1
    for candidate in solution.candidates:
        assert candidate.design.outputs[len(problem.prefix) - 1] == problem.prefix[-1].out_shape


# ------------------------------------------------------------------------------------------------
# Built, emitted and saved: every declared input size runs and lands where the problem says
# ------------------------------------------------------------------------------------------------

#: Each bundled encoder problem's declared input sizes (its [encoder] inputs) and what its decoder gives back:
#: the input's size, with the decoder's own last channels plus, for a concat skip, the encoder output it joins.
DECLARED: dict[str, tuple[list[tuple[int, int]], int, int]] = {
    # name: (inputs, input channels, output channels)
    "unet_101x75": ([(101, 75)], 3, 32 + 32),  # last step gives 32 (conv 1's) and concatenates conv 1's 32
    "unet_multisize": ([(96, 96), (100, 100), (101, 101), (128, 128)], 3, 3),  # no skip at the input itself
    "resnet_decoder_200": ([(200, 200)], 3, 64),  # out_channels = 64, skip = "none"
}


def step_outputs(net: DesignNet, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The net's output and every step's own output (its last module's, before the step's merge)."""
    seen: list[torch.Tensor] = []
    handles = [step[-1].register_forward_hook(lambda _m, _i, y: seen.append(y)) for step in net.steps]  # type: ignore[index]
    try:
        with torch.no_grad():
            y = net(x)
    finally:
        for handle in handles:
            handle.remove()
    return y, seen


def check_forward(design: Design, size: tuple[int, int], c_in: int, c_out: int) -> None:
    """At ``size``: the output has the input's size, each decoder step lands on the encoder output it
    mirrors (the one it takes its run-time size from, or the one its skip joins), and skips match."""
    net = build(design).eval()
    x = torch.randn(1, c_in, *size)
    y, own = step_outputs(net, x)
    assert tuple(y.shape) == (1, c_out, *size)
    outputs: list[torch.Tensor] = []
    for i, step in enumerate(design.steps):
        merged = own[i]
        if step.merge is not None:
            skip = x if step.merge.source == -1 else outputs[step.merge.source]
            assert skip.shape[2:] == own[i].shape[2:]
            if step.merge.how == "add":
                assert skip.shape == own[i].shape
            else:
                merged = torch.cat([skip, own[i]], dim=1)
        outputs.append(merged)
        for layer in step.layers:
            if layer.size_from is not None:
                target = x if layer.size_from == -1 else outputs[layer.size_from]
                assert own[i].shape[2:] == target.shape[2:]


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_bundled_encoder_designs_run_at_every_declared_size(name: str) -> None:
    inputs, c_in, c_out = DECLARED[name]
    problem = load(PROBLEMS / f"{name}.toml")
    solution = solve(problem, top=3)
    for candidate in solution.candidates:
        design = candidate.design
        # The solved decoder's declared last size is the input's, for every input.
        last = problem.sizes[-1].fixed
        assert last == tuple(v for size in inputs for v in size)
        for size in inputs:
            check_forward(design, size, c_in, c_out)


def test_several_sizes_use_output_size_from_the_mirrored_tensor() -> None:
    design = solve(load(PROBLEMS / "unet_multisize.toml"), top=1).candidates[0].design
    sized = [
        (i, layer.size_from)
        for i, step in enumerate(design.steps)
        for layer in step.layers
        if layer.size_from is not None
    ]
    assert sized == [(3, 1), (4, 0), (5, -1)]  # conv 2's, conv 1's and the input's sizes
    # Its recipe's output_padding is 96's: called without output_size, the last layer misses 101 (51 -> 102).
    net = build(design).eval()
    convt = net.steps[5][0]  # type: ignore[index]
    assert isinstance(convt, nn.ConvTranspose2d)
    with torch.no_grad():
        sizes = {n: convt(torch.zeros(1, 64, m, m)).shape[-1] for n, m in ((96, 48), (101, 51))}
    assert sizes[96] == 96 and sizes[101] != 101


FRESH_INTERPRETER = r"""
import importlib.util, json, sys
import torch

out = {}
for key, (path, shapes) in json.loads(sys.argv[1]).items():
    spec = importlib.util.spec_from_file_location(key, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (name,) = module.__all__
    model = getattr(module, name)().eval()
    with torch.no_grad():
        out[key] = [list(model(torch.randn(*shape)).shape) for shape in shapes]
out["archsolve_imported"] = any(m.split(".")[0] == "archsolve" for m in sys.modules)
print(json.dumps(out))
"""


@pytest.mark.slow  # a new interpreter
def test_emitted_encoder_decoders_run_at_every_declared_size_in_a_fresh_interpreter(tmp_path: Path) -> None:
    jobs = {}
    for name, (inputs, c_in, _) in DECLARED.items():
        design = solve(load(PROBLEMS / f"{name}.toml"), top=1).candidates[0].design
        path = write_text(tmp_path / f"{name}.py", emit_source(design))
        jobs[name] = (str(path), [(1, c_in, *size) for size in inputs])
    done = subprocess.run(
        [sys.executable, "-c", FRESH_INTERPRETER, json.dumps(jobs)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert results.pop("archsolve_imported") is False
    for name, (inputs, _, c_out) in DECLARED.items():
        assert results[name] == [[1, c_out, *size] for size in inputs], name
    # Issue 6's done-when, literally.
    assert results["unet_101x75"] == [[1, 64, 101, 75]]
    assert results["unet_multisize"] == [[1, 3, 96, 96], [1, 3, 100, 100], [1, 3, 101, 101], [1, 3, 128, 128]]


def test_emitted_multisize_model_is_the_built_one_at_every_size(tmp_path: Path, load_source: LoadSource) -> None:
    design = solve(load(PROBLEMS / "unet_multisize.toml"), top=1).candidates[0].design
    module = load_source(write_text(tmp_path / "multisize.py", emit_source(design)))
    (name,) = module.__all__
    emitted = getattr(module, name)()
    built = build(design)
    assert repr(emitted.steps) == repr(built.steps)
    emitted.load_state_dict(built.state_dict(), strict=True)
    emitted.eval()
    built.eval()
    for n in (96, 100, 101, 128):
        x = torch.randn(1, 3, n, n)
        with torch.no_grad():
            torch.testing.assert_close(emitted(x), built(x))


def test_cli_solve_emit_save_then_build(tmp_path: Path, load_source: LoadSource) -> None:
    emitted, saved, rebuilt = tmp_path / "X.py", tmp_path / "X.toml", tmp_path / "Y.py"
    runner = CliRunner()
    first = runner.invoke(
        main,
        ["solve", str(PROBLEMS / "unet_multisize.toml"), "--no-rank", "--emit", str(emitted), "--save", str(saved)],
    )
    assert first.exit_code == 0, first.output
    second = runner.invoke(main, ["build", str(saved), "-o", str(rebuilt)])
    assert second.exit_code == 0, second.output
    # The saved design keeps the run-time sizes, so the rebuilt file is the emitted one.
    assert "output_size_from = -1" in saved.read_text(encoding="utf-8")
    assert rebuilt.read_text(encoding="utf-8") == emitted.read_text(encoding="utf-8")
    module = load_source(rebuilt)
    (name,) = module.__all__
    model = getattr(module, name)().eval()
    with torch.no_grad():
        for n in (96, 100, 101, 128):
            assert model(torch.randn(2, 3, n, n)).shape == (2, 3, n, n)


@pytest.mark.parametrize("name", sorted(DECLARED))
@pytest.mark.parametrize("fmt", [".toml", ".json"])
def test_saved_encoder_designs_round_trip_exactly(name: str, fmt: str) -> None:
    for candidate in solve(load(PROBLEMS / f"{name}.toml"), top=3).candidates:
        design = candidate.design
        assert loads_design(dumps_design(design, fmt), fmt) == design


def test_summary_cross_check_passes_with_run_time_sizes() -> None:
    design = solve(load(PROBLEMS / "unet_multisize.toml"), top=1).candidates[0].design
    rows = summary_table(design)
    cross_check(design, rows)  # raises where torch (meta device, first input size) disagrees
    sized = [row for row in rows if row.layer is not None and row.layer.size_from is not None]
    assert [row.inputs[1] for row in sized] == ["size of relu_2", "size of relu_1", "size of input"]


def _multisize_saved() -> dict[str, Any]:
    design = solve(load(PROBLEMS / "unet_multisize.toml"), top=1).candidates[0].design
    return json.loads(dumps_design(design, ".json"))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["steps"][3]["layers"][0].update(output_size_from=2),
            r"steps\[3\].layers\[0\]: output_size from steps\[2\] is 12x12 but the recipe gives 24x24",
        ),
        (
            lambda d: d["steps"][3]["layers"][0].update(output_size_from=3),
            r"output_size source 3 is not an earlier step",
        ),
        (
            lambda d: d["steps"][3]["layers"][0].update(output_size_from=-2),
            r"output_size_from: expected an integer >= -1",
        ),
        (lambda d: d["steps"][3]["layers"][0].update(output_size_from="y1"), r"output_size_from: expected an integer"),
        (lambda d: d["steps"][0]["layers"][0].update(output_size_from=-1), r"conv takes no output_size"),
    ],
)
def test_saved_run_time_sizes_are_checked(edit: Any, message: str) -> None:
    data = _multisize_saved()
    edit(data)
    with pytest.raises(InputError, match=message):
        design_from_dict(data)


def test_solve_json_names_skips_and_run_time_sizes() -> None:
    result = CliRunner().invoke(main, ["solve", str(PROBLEMS / "unet_multisize.toml"), "--no-rank", "--json"])
    assert result.exit_code == 0, result.output
    candidate = json.loads(result.stdout)["winner"]
    assert set(candidate) == {"params", "macs", "throughput", "layers", "variants"}
    layers = candidate["layers"]
    by_step: dict[int, list[dict[str, Any]]] = {}
    for layer in layers:
        by_step.setdefault(layer["step"], []).append(layer)
    merges = {step: entries[-1]["merge"] for step, entries in by_step.items() if "merge" in entries[-1]}
    assert merges == {3: {"source": 1, "how": "concat"}, 4: {"source": 0, "how": "concat"}}
    assert all("merge" not in layer for entries in by_step.values() for layer in entries[:-1])
    # A reader can follow the concat: the next step takes the skip's channels plus the step's own.
    for step, merge in merges.items():
        own = by_step[step][-1]["out_shape"]
        skip = by_step[merge["source"]][-1]["out_shape"]
        assert by_step[step + 1][0]["in_shape"] == [skip[0] + own[0], *own[1:]]
    sized = {layer["step"]: layer["output_size_from"] for layer in layers if "output_size_from" in layer}
    assert sized == {3: 1, 4: 0, 5: -1}
    for step, source in sized.items():
        target = [3, 96, 96] if source == -1 else by_step[source][-1]["out_shape"]
        assert by_step[step][0]["out_shape"][1:] == target[1:]


@pytest.mark.parametrize("sequence", [False, True])
def test_emitted_run_time_sizes_read_the_spatial_axes(sequence: bool, tmp_path: Path, load_source: LoadSource) -> None:
    """The emitted forward passes output_size= through the per-frame wrapper; sizes come from the last axes."""
    r = AxisRecipe(kernel=3, stride=2, padding=1)
    options = BuildOptions(norm="batch", activation="relu")
    down = make_step(["conv"], (2, 16, 16), [(r, r)], 4, options, True, False)
    up = make_step(["conv_transpose"], (4, 8, 8), [(r._replace(output_padding=1),) * 2], 2, options, False, True)
    up = replace(up, layers=(replace(up.layers[0], size_from=-1), *up.layers[1:]))
    design = Design("down up", (down, up), options, sequence)
    module = load_source(write_text(tmp_path / f"down_up_{sequence}.py", emit_source(design)))
    emitted = module.DownUp()
    built = build(design)
    emitted.load_state_dict(built.state_dict(), strict=True)
    emitted.eval()
    built.eval()
    lead = (2, 3) if sequence else (2,)
    for size in ((16, 16), (17, 15), (9, 12)):
        x = torch.randn(*lead, 2, *size)
        with torch.no_grad():
            y = emitted(x)
            torch.testing.assert_close(y, built(x))
        assert y.shape == x.shape
