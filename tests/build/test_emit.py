"""archsolve.build.emit: the generated file is standalone and is the same network as build(design)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from torch import nn

from archsolve.build.emit import LEAF_CLASSES, _leaf_arguments, _module_source, class_name, emit_source
from archsolve.build.modules import build
from archsolve.cli.commands import main
from archsolve.core.recipe import AxisRecipe
from archsolve.design.checks import write_text
from archsolve.design.design import BuildOptions, Design, make_step
from archsolve.errors import BuildError, InputError
from archsolve.problem.saved import save_design
from helpers.seed_designs import ALL, random_designs

LoadSource = Callable[[Path], ModuleType]
SameNetwork = Callable[[Design, Path, torch.Tensor], None]

#: Inputs for a real forward pass: the seeds' sizes, with a short sequence for the ConvLSTM network.
INPUTS = {
    "dcgan_generator": (2, 100, 1, 1),
    "dcgan_discriminator": (2, 3, 64, 64),
    "keras_seed_003": (1, 3, 128, 128),
    "convlstm_encoder_decoder": (1, 1, 1, 64, 64),  # one frame: the recurrence is checked in-process
}

FRESH_INTERPRETER = r"""
import importlib.util, json, sys
import torch

torch.manual_seed(0)
out = {}
for key, (path, shape) in json.loads(sys.argv[1]).items():
    spec = importlib.util.spec_from_file_location(key, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (name,) = module.__all__
    model = getattr(module, name)()
    with torch.no_grad():
        y = model(torch.randn(*shape))
    out[key] = {
        "class": name,
        "shape": list(y.shape),
        "params": sum(p.numel() for p in model.parameters()),
        "buffers": sum(b.numel() for b in model.buffers() if b.is_floating_point()),
        "doc": module.__doc__,
        "archsolve_imported": any(m.split(".")[0] == "archsolve" for m in sys.modules),
    }
print(json.dumps(out))
"""


def residual_design(norm: str) -> Design:
    """A CycleGAN-style stem and residual block (the block is copied into the file as source)."""
    r = AxisRecipe(kernel=3, padding=1)
    options = BuildOptions(norm=norm)
    first = make_step(["conv"], (3, 8, 8), [(r, r)], 8, options, True, False)
    block = make_step(["residual_block"], (8, 8, 8), [(r, r)], 8, options, False, True)
    return Design(f"cyclegan {norm}", (first, block), options)


@pytest.mark.slow  # a new interpreter
def test_emitted_files_run_in_a_fresh_interpreter(tmp_path: Path) -> None:
    designs = {**ALL, "residual_group": lambda: residual_design("group")}
    inputs = {**INPUTS, "residual_group": (2, 3, 8, 8)}
    jobs = {}
    for key, make in designs.items():
        path = write_text(tmp_path / f"{key}.py", emit_source(make()))
        jobs[key] = (str(path), inputs[key])
    done = subprocess.run(
        [sys.executable, "-c", FRESH_INTERPRETER, json.dumps(jobs)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    for key, make in designs.items():
        design = make()
        net = build(design)
        got = results[key]
        assert not got["archsolve_imported"]
        assert got["class"] == class_name(design)
        lead = inputs[key][:2] if design.sequence else inputs[key][:1]
        assert tuple(got["shape"]) == (*lead, *design.out_shape)
        assert got["params"] == sum(p.numel() for p in net.parameters())
        assert got["buffers"] == sum(b.numel() for b in net.buffers() if b.is_floating_point())
        assert "→" in got["doc"] and "Recipe:" in got["doc"]
    assert results["dcgan_generator"]["params"] == 3_576_704
    assert results["dcgan_discriminator"]["params"] == 2_765_568
    assert results["dcgan_generator"]["shape"] == [2, 3, 64, 64]
    assert results["dcgan_discriminator"]["shape"] == [2, 1, 1, 1]
    assert results["keras_seed_003"]["params"] + results["keras_seed_003"]["buffers"] == 87_957


@pytest.fixture
def same_network(load_source: LoadSource) -> SameNetwork:
    """Checks that the emitted class has the built module's layers, takes its weights, and gives its output."""

    def check(design: Design, path: Path, x: torch.Tensor) -> None:
        write_text(path, emit_source(design))
        compare(load_source(path), design, x)

    return check


def compare(module: ModuleType, design: Design, x: torch.Tensor) -> None:
    (name,) = module.__all__
    emitted = getattr(module, name)()
    built = build(design)
    assert repr(emitted.steps) == repr(built.steps)
    emitted.load_state_dict(built.state_dict(), strict=True)
    emitted.eval()
    built.eval()
    with torch.no_grad():
        # equal_nan: a max pool window lying wholly in padding gives -inf, and a conv after it NaN, in both.
        torch.testing.assert_close(emitted(x), built(x), equal_nan=True)


@pytest.mark.parametrize("key", ["dcgan_generator", "dcgan_discriminator", "keras_seed_003"])
def test_emitted_seed_networks_equal_the_built_ones(key: str, tmp_path: Path, same_network: SameNetwork) -> None:
    same_network(ALL[key](), tmp_path / "model.py", torch.randn(*INPUTS[key]))


def test_emitted_convlstm_equals_the_built_one(tmp_path: Path, same_network: SameNetwork) -> None:
    same_network(ALL["convlstm_encoder_decoder"](), tmp_path / "model.py", torch.randn(1, 2, 1, 64, 64))


def test_residual_blocks_are_emitted_as_source(tmp_path: Path, same_network: SameNetwork) -> None:
    for norm in ("instance", "group", "batch", "none"):
        design = residual_design(norm)
        source = emit_source(design)
        assert "class ResidualBlock(nn.Module):" in source and "archsolve" not in source.split('"""')[2]
        same_network(design, tmp_path / f"res_{norm}.py", torch.randn(2, 3, 8, 8))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(design=random_designs())
def test_random_designs_emit_the_built_network(design: Design, tmp_path: Path, same_network: SameNetwork) -> None:
    same_network(design, tmp_path / "random_model.py", torch.randn(2, *design.in_shape))


#: One instance (off its defaults where it can be) of every class the emitter writes as a constructor call.
LEAF_SAMPLES: list[nn.Module] = [
    nn.Conv1d(3, 6, 5, stride=2, padding=1, dilation=2, groups=3, bias=False),
    nn.Conv2d(3, 8, (3, 5), stride=(1, 2), padding=(0, 2)),
    nn.Conv3d(2, 4, 3),
    nn.ConvTranspose1d(4, 2, 4, stride=2, padding=1, output_padding=1),
    nn.ConvTranspose2d(4, 6, (4, 3), stride=(2, 3), padding=(1, 0), output_padding=(1, 2), groups=2, bias=False),
    nn.ConvTranspose3d(2, 2, 3, dilation=2),
    nn.MaxPool1d(3, stride=2, padding=1, ceil_mode=True),
    nn.MaxPool2d((2, 3), stride=(2, 1), dilation=2),
    nn.MaxPool3d(2),
    nn.AvgPool1d(3, stride=1, padding=1),
    nn.AvgPool2d((2, 4), ceil_mode=True),
    nn.AvgPool3d(2, count_include_pad=False),
    nn.BatchNorm1d(5),
    nn.BatchNorm2d(7, eps=1e-3, momentum=0.2),
    nn.BatchNorm3d(3, affine=False),
    nn.InstanceNorm1d(4),
    nn.InstanceNorm2d(4, affine=True),
    nn.InstanceNorm3d(4, track_running_stats=True),
    nn.ConstantPad1d((0, 1), 0.0),
    nn.ConstantPad2d((0, 1, 0, 1), 0.0),
    nn.ConstantPad3d(1, 0.0),
    nn.GroupNorm(4, 16),
    nn.Upsample(scale_factor=(2.0, 3.0), mode="bilinear"),
    nn.PixelShuffle(2),
    nn.PixelUnshuffle(3),
    nn.Identity(),
    nn.ReLU(),
    nn.LeakyReLU(0.1),
    nn.GELU(),
    nn.SiLU(),
    nn.Tanh(),
    nn.Sigmoid(),
]


def test_every_leaf_class_is_sampled() -> None:
    assert {type(m).__name__ for m in LEAF_SAMPLES} == LEAF_CLASSES


@pytest.mark.parametrize("module", LEAF_SAMPLES, ids=lambda m: type(m).__name__)
def test_leaf_constructor_calls_rebuild_the_module(module: nn.Module) -> None:
    source = _module_source(module, {})
    rebuilt = eval(source, {"nn": nn})
    assert repr(rebuilt) == repr(module)
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in module.parameters()]
    assert f"nn.{type(module).__name__}({_leaf_arguments(module)})" == source


def test_unknown_modules_are_refused() -> None:
    with pytest.raises(BuildError, match="Dropout"):
        _module_source(nn.Dropout(), {})


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("dcgan-generator", "DcganGenerator"),
        ("3d unet", "Model3dUnet"),
        ("", "Model"),
        ("ResNet50 decoder", "ResNet50Decoder"),
        ("residual block", "ResidualBlockModel"),  # the file's helper class keeps its name
    ],
)
def test_class_names(name: str, expected: str) -> None:
    design = ALL["dcgan_generator"]()
    assert class_name(Design(name, design.steps, design.options)) == expected


def test_explicit_class_name_must_be_an_identifier() -> None:
    with pytest.raises(InputError, match="not a Python identifier"):
        emit_source(ALL["dcgan_generator"](), "my model")
    with pytest.raises(InputError, match="taken by a helper class"):
        emit_source(ALL["convlstm_encoder_decoder"](), "Frames")


def test_docstring_gives_trajectory_and_recipe() -> None:
    source = emit_source(ALL["dcgan_generator"]())
    doc = source.split('"""')[1]
    assert "100x1x1 → 512x4x4 → 256x8x8 → 128x16x16 → 64x32x32 → 3x64x64" in doc
    assert "conv_transpose 100→512 kernel=4 stride=1 padding=0" in doc
    assert "conv_transpose 512→256 kernel=4 stride=2 padding=1" in doc
    assert "3,576,704 trainable" in doc
    assert '__all__ = ["DcganGenerator"]' in source


def test_build_command_writes_source_from_a_saved_design(tmp_path: Path, load_source: LoadSource) -> None:
    saved = save_design(ALL["keras_seed_003"](), tmp_path / "design.toml")
    out = tmp_path / "model.py"
    result = CliRunner().invoke(main, ["build", str(saved), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "87,829 trainable + 128 non-trainable" in result.output
    module = load_source(out)
    model = getattr(module, module.__all__[0])()
    assert model(torch.randn(1, 3, 128, 128)).shape == (1, 85, 128, 128)


def test_build_command_prints_source_without_output_file(tmp_path: Path) -> None:
    saved = save_design(ALL["dcgan_discriminator"](), tmp_path / "design.json")
    result = CliRunner().invoke(main, ["build", str(saved), "--class-name", "Critic"])
    assert result.exit_code == 0, result.output
    assert "class Critic(nn.Module):" in result.output


def test_build_command_reports_bad_designs_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "design.toml"
    bad.write_text('version = 1\nname = "x"\n[[steps]]\nactivaton = "relu"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["build", str(bad)])
    assert result.exit_code == 2
    assert "did you mean 'activation'" in result.output
    assert "Traceback" not in result.output
