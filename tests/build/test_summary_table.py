"""The summary table: a step › layer tree that fits 120 columns, exact MACs, and torchinfo's size estimates."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from archsolve.build.modules import build
from archsolve.build.summary import Sizes, summarize, summary_table, summary_view
from archsolve.core.console import render
from archsolve.design.design import Design
from helpers.seed_designs import dcgan_generator, keras_seed_003

torchinfo = pytest.importorskip("torchinfo")
PROBLEMS = sorted((Path(__file__).parents[2] / "problems").glob("*.toml"))


@pytest.mark.parametrize("path", PROBLEMS, ids=lambda p: p.stem)
def test_every_bundled_problem_summary_fits_120_columns_with_one_heading_per_step(path: Path) -> None:
    summary = summarize_problem(path)
    table = summary.table()
    assert max(len(line) for line in render(table, 120).splitlines()) <= 120
    headings = [row[0] for row in table.rows if row[0].startswith("step ")]
    assert len(headings) == len(summary.design.steps)
    assert sum(1 for row in table.rows if row[0].startswith(("├─ ", "└─ "))) == len(summary.rows) - 1  # all but input


def summarize_problem(path: Path) -> object:
    import archsolve

    return archsolve.summary(str(path), check=False)


def flop_counter_macs(design: Design) -> int:
    module = build(design).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(torch.zeros(1, *design.in_shape))
    return counter.get_total_flops() // 2


@pytest.mark.slow  # over a second: outside the fast set (-m "not slow"), still in CI
@pytest.mark.parametrize("make", [dcgan_generator, keras_seed_003], ids=["dcgan_generator", "keras_seed_003"])
def test_sizes_are_torchinfos_and_macs_are_flop_counter_modes(make: object) -> None:
    design = make()  # type: ignore[operator]
    rows = summary_table(design)
    module = build(design).eval()
    for batch in (1, 16):
        sizes = Sizes.of(design, rows, batch)
        stats = torchinfo.summary(module, input_size=(batch, *design.in_shape), verbose=0)
        assert sizes.forward_backward == stats.total_output_bytes
        weights = [*module.parameters(), *(b for b in module.buffers() if b.is_floating_point())]
        assert sizes.params == sum(w.numel() * w.element_size() for w in weights)
        assert sizes.input == batch * torch.zeros(design.in_shape).numel() * 4
    view = summary_view(design, rows)
    assert f"MACs per sample: {flop_counter_macs(design):,}" in view.notes


def test_torchinfo_counts_transposed_convs_several_times_higher_as_the_footer_says() -> None:
    design = dcgan_generator()  # transposed convs only
    view = summary_view(design)
    stats = torchinfo.summary(build(design).eval(), input_size=(1, *design.in_shape), verbose=0)
    assert stats.total_mult_adds > 3 * flop_counter_macs(design)
    assert any("torchinfo counts output positions, 3–4× more" in note for note in view.notes)


def test_summary_numbers_are_per_layer_with_trainable_and_non_trainable_apart() -> None:
    design = keras_seed_003()
    view = summarize(design, check=True).table()
    rows = {row[0].removeprefix("├─ ").removeprefix("└─ "): row for row in view.rows}
    batch_norm = rows["batch_norm_1"]
    # Keras: batch_normalization_1 has 256 parameters, 128 of them the running statistics.
    assert batch_norm[view.headers.index("Param #")] == "128"
    assert batch_norm[view.headers.index("Non-trainable")] == "128"
    assert "Connected to" in view.headers
