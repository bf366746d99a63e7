"""What the parts of one ranking run share: the space's choices, the settings, the measurer, the builder, the tally."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..design.design import Design
from .choices import Choices
from .measure import Measurer
from .progress import Reporter
from .settings import RankSettings
from .values import Tally

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Run:
    """One call of :func:`~archsolve.rank.rank`, as its parts see it."""

    choices: Choices
    settings: RankSettings
    measurer: Measurer
    build: Callable[[Design], torch.nn.Module]
    tally: Tally
    report: Reporter


class Part:
    """Base of the run's parts (model, queue, search, race, results): the shared run under short names."""

    def __init__(self, run: Run) -> None:
        self.shared = run
        self.choices = run.choices
        self.settings = run.settings
        self.measurer = run.measurer
        self.build = run.build
        self.tally = run.tally
        self.report = run.report
