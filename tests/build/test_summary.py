"""archsolve.summary: catalog rows that torch agrees with, totals as Keras splits them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archsolve.build.summary import cross_check, render_summary, summary_table, totals
from archsolve.cli.commands import main
from archsolve.core.recipe import AxisRecipe
from archsolve.design.design import Design, Step
from archsolve.design.layer import Layer
from archsolve.errors import BuildError
from archsolve.problem.saved import save_design
from helpers.seed_designs import (
    convlstm_encoder_decoder,
    dcgan_discriminator,
    dcgan_generator,
    keras_seed_003,
    random_designs,
)


def test_seed_003_totals_are_keras_printed_figures() -> None:
    design = keras_seed_003()
    rows = summary_table(design)
    params, _ = totals(rows)
    # Seed 003's model.summary(): Total 87,957 / Trainable 87,829 / Non-trainable 128.
    assert (params.total, params.trainable, params.non_trainable) == (87_957, 87_829, 128)
    text = render_summary(design, rows)
    assert "Total params: 87,957" in text
    assert "Trainable params: 87,829" in text
    assert "Non-trainable params: 128" in text
    cross_check(design, rows)


def test_seed_003_rows_match_keras_per_layer() -> None:
    rows = {row.name: row for row in summary_table(keras_seed_003())}
    # Keras: con1 1792, batch_normalization_1 256, deconv1 73792, score1 12117; mer1 128 and mer2 85 channels.
    assert rows["conv_1"].params.total == 1792
    assert rows["batch_norm_1"].params.total == 256
    assert rows["conv_transpose_1"].params.total == 73_792
    assert rows["conv_transpose_2"].params.total == 12_117
    assert rows["concat_1"].output_shape == (128, 128, 128)
    assert rows["concat_2"].output_shape == (85, 128, 128)
    assert rows["concat_1"].inputs == ("relu_1", "upsample_1")
    assert rows["concat_2"].inputs == ("conv_transpose_1", "conv_transpose_2")
    assert rows["max_pool_1"].output_shape == (64, 64, 64)


def test_transposed_conv_macs_count_input_positions() -> None:
    """C_in·C_out·k^n per input position, which is what torch's FlopCounterMode counts (FLOPs / 2)."""
    rows = {row.name: row for row in summary_table(keras_seed_003())}
    deconv = nn.ConvTranspose2d(128, 64, 3, padding=1)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        deconv(torch.zeros(1, 128, 8, 8))
    per_position = counter.get_total_flops() // 2 // (8 * 8)
    assert per_position == 128 * 64 * 9
    assert rows["conv_transpose_1"].macs == per_position * 128 * 128


def test_dcgan_totals_split_trainable_and_running_statistics() -> None:
    for design, trainable in ((dcgan_generator(), 3_576_704), (dcgan_discriminator(), 2_765_568)):
        params, _ = totals(summary_table(design))
        assert params.trainable == trainable
        cross_check(design)  # non-trainable agrees with torch's floating-point BN buffers


def test_convlstm_summary_is_per_frame() -> None:
    design = convlstm_encoder_decoder()
    rows = summary_table(design)
    cross_check(design, rows)
    text = render_summary(design, rows)
    assert "(N, T, 1, 64, 64)" in text
    assert "MACs per frame" in text
    params, _ = totals(rows)
    assert params.non_trainable == 0


@settings(max_examples=40, deadline=None)
@given(random_designs())
def test_catalog_agrees_with_torch_on_random_designs(design: Design) -> None:
    cross_check(design)


def test_a_row_torch_disagrees_with_is_refused() -> None:
    r = AxisRecipe(kernel=3)
    lying = Layer("conv", (2, 8, 8), (4, 8, 8), (r, r))  # built by hand, past the catalog: torch gives 6x6
    with pytest.raises(BuildError, match=r"conv_1: catalog shape \[4, 8, 8\], torch \[4, 6, 6\]"):
        cross_check(Design("lie", (Step((lying,)),)))


def test_summary_command_prints_the_table(tmp_path: Path) -> None:
    saved = save_design(keras_seed_003(), tmp_path / "seed003.toml")
    result = CliRunner().invoke(main, ["summary", str(saved)])
    assert result.exit_code == 0, result.output
    assert "Total params: 87,957" in result.output
    assert "Non-trainable params: 128" in result.output


def test_summary_command_reports_a_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["summary", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2
    assert "no such file" in result.output


@pytest.mark.slow  # a new interpreter
def test_library_modules_do_not_import_torch() -> None:
    code = (
        "import sys; import archsolve.problem.saved, archsolve.build.emit; from archsolve.build.summary import "
        "render_summary; "
        "from helpers.seed_designs import ALL; "
        "[render_summary(f()) for f in ALL.values()]; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=Path(__file__).parent.parent
    )
    assert done.returncode == 0, done.stderr
