"""The 2015 U-Net (problems/unet_original.toml): valid convolutions and center-cropped skips, checked in torch.

The reference network here is written from the paper (Ronneberger, Fischer & Brox 2015, Fig. 1) with
plain torch layers and tensor slicing, not from archsolve; its crops are the paper's: 64→56, 136→104,
280→200 and 568→392.  As in the authors' released Caffe model, each up-convolution is followed by a ReLU.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

import archsolve
from archsolve.build.emit import emit_source
from archsolve.design.checks import write_text
from archsolve.design.design import Merge
from archsolve.errors import InputError

PROBLEM = Path(__file__).parents[2] / "problems" / "unet_original.toml"
PAPER_CROPS = [(64, 56), (136, 104), (280, 200), (568, 392)]
FreshPython = Callable[..., subprocess.CompletedProcess[str]]


def double(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3), nn.ReLU(), nn.Conv2d(c_out, c_out, 3), nn.ReLU()]


class PaperUNet(nn.Module):
    """Fig. 1 of the paper, layer for layer; ``crops`` records each (skip size, cropped size) it used."""

    def __init__(self) -> None:
        super().__init__()
        widths = [64, 128, 256, 512]
        self.down = nn.ModuleList(
            nn.Sequential(*double(c_in, c)) for c_in, c in zip([1, *widths], widths, strict=False)
        )
        self.bottom = nn.Sequential(*double(512, 1024))
        self.up = nn.ModuleList()
        for c in reversed(widths):
            self.up.append(nn.Sequential(nn.ConvTranspose2d(2 * c, c, 2, stride=2), nn.ReLU()))
            self.up.append(nn.Sequential(*double(2 * c, c)))
        self.head = nn.Conv2d(64, 2, 1)
        self.crops: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = nn.functional.max_pool2d(x, 2)
        x = self.bottom(x)
        for i, skip in enumerate(reversed(skips)):
            x = self.up[2 * i](x)
            big, small = skip.shape[-1], x.shape[-1]
            self.crops.append((big, small))
            d = (big - small) // 2
            x = self.up[2 * i + 1](torch.cat([skip[..., d : d + small, d : d + small], x], dim=1))
        return self.head(x)


@pytest.fixture(scope="module")
def design() -> archsolve.Design:
    solution = archsolve.solve(PROBLEM)
    assert solution.count == 1  # every recipe is pinned: the paper's network is the one design
    return solution.best


def test_the_design_is_the_papers_network_in_torch(design: archsolve.Design) -> None:
    ours, paper = archsolve.build(design).eval(), PaperUNet().eval()
    ours_params, paper_params = list(ours.parameters()), list(paper.parameters())
    assert [p.shape for p in ours_params] == [p.shape for p in paper_params]
    with torch.no_grad():
        for mine, theirs in zip(ours_params, paper_params, strict=True):
            mine.copy_(torch.randn_like(mine) * 0.05)
            theirs.copy_(mine)
        # Same weights, same input, same output; 188 is the smallest tile whose crops stay centred
        # (16k + 124), so the comparison is cheap; the module crops at run time like the paper's.
        x = torch.randn(1, 1, 188, 188)
        torch.testing.assert_close(ours(x), paper(x))


def test_the_papers_network_has_the_papers_crops_at_572(design: archsolve.Design) -> None:
    paper = PaperUNet().to("meta")
    y = paper(torch.empty(1, 1, 572, 572, device="meta"))
    assert paper.crops == PAPER_CROPS
    assert tuple(y.shape) == (1, *design.out_shape) == (1, 2, 388, 388)


def test_every_skip_is_a_center_crop_of_the_papers_size(design: archsolve.Design) -> None:
    crops = [
        (design.outputs[step.merge.source][-1], step.out_shape[-1])
        for step in design.steps
        if step.merge is not None and step.merge.how == "crop"
    ]
    assert crops == PAPER_CROPS


@pytest.mark.slow  # a new interpreter
def test_the_emitted_model_maps_572_to_388_in_a_fresh_interpreter(
    design: archsolve.Design, tmp_path: Path, fresh_python: FreshPython
) -> None:
    path = write_text(tmp_path / "unet_original.py", emit_source(design))
    code = (
        "import importlib.util, sys, torch\n"
        f"spec = importlib.util.spec_from_file_location('unet', {str(path)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "assert 'archsolve' not in sys.modules\n"
        "net = getattr(module, module.__all__[0])()\n"
        "with torch.no_grad():\n"
        "    print(tuple(net(torch.zeros(1, 1, 572, 572)).shape))\n"
    )
    done = fresh_python(code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(1, 2, 388, 388)"


@pytest.mark.parametrize(("skip", "own"), [((8, 10, 10), (8, 6, 6)), ((4, 9, 12), (4, 5, 12))])
def test_crop_merges_match_torch_slicing(skip: tuple[int, ...], own: tuple[int, ...]) -> None:
    from archsolve.catalog.torch_blocks import center_crop

    big = torch.randn(1, *skip)
    small = torch.zeros(1, *own)
    cropped = center_crop(big, small, 2)
    assert tuple(torch.cat([cropped, small], 1).shape[1:]) == Merge(0, "crop").out_shape(own, skip)
    # the middle of the skip: the crop keeps the pixel at the skip's centre at the crop's centre
    assert torch.equal(cropped, big[..., (skip[1] - own[1]) // 2 :, (skip[2] - own[2]) // 2 :][..., : own[1], : own[2]])


@pytest.mark.parametrize(("skip", "own"), [((8, 10, 10), (8, 7, 10)), ((8, 10, 10), (8, 12, 10))])
def test_crops_that_cannot_be_centred_are_refused(skip: tuple[int, ...], own: tuple[int, ...]) -> None:
    with pytest.raises(InputError, match="center-cropped"):
        Merge(0, "crop").out_shape(own, skip)


def test_crop_decoders_name_what_they_need() -> None:
    text = PROBLEM.read_text(encoding="utf-8").replace("out_size = 388", "")
    with pytest.raises(InputError, match=r"decoder\.out_size"):
        archsolve.problem.problem.loads(text)
