"""What optuna-dashboard shows of an archsolve study: the metric's name and readable trial attributes.

``optuna-dashboard sqlite:///results/<problem>/study.db`` labels the
objective "samples/s" (rather than "Objective 0") and lists, for every
measured trial, its compact recipe, parameters, MACs and, where the ranking
has a reference design, its screening speed as a ratio to the reference's.
A trial's value is its screening figure (the design timed alone); the final
race's verdict, the headline, is the study's ``final race`` attribute.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from ..design.notation import Trajectory, design_text

if TYPE_CHECKING:
    import optuna

    from ..design.design import Design
    from .verdict import RaceResult

#: The objective's name: what a trial's value measures.
METRIC = "samples/s"


def label_study(study: optuna.Study) -> None:
    """Name the study's objective :data:`METRIC` (once; a study shared by workers keeps its name)."""
    from optuna.exceptions import ExperimentalWarning

    if study.metric_names == [METRIC]:
        return
    with warnings.catch_warnings():
        # Experimental since optuna 3.2 and unchanged since; the dashboard reads it.
        warnings.simplefilter("ignore", ExperimentalWarning)
        study.set_metric_names([METRIC])


def trial_labels(
    design: Design, throughput: float | None = None, reference: float | None = None, problem: Trajectory | None = None
) -> dict[str, Any]:
    """User attributes a person can read in the dashboard: recipe, params, MACs, ratio to the reference."""
    labels: dict[str, Any] = {
        "recipe": design_text(design, problem),
        "params": design.params.total,
        "MACs": design.macs,
    }
    if throughput is not None and reference:
        labels["screening ratio to reference"] = round(throughput / reference, 4)
    return labels


def label_trial(
    trial: optuna.Trial, design: Design, throughput: float | None = None, reference: float | None = None
) -> None:
    for key, value in trial_labels(design, throughput, reference).items():
        trial.set_user_attr(key, value)


def label_race(study: optuna.Study, race: RaceResult) -> None:
    """The final race's verdict as the study's ``final race`` attribute (the dashboard lists study attributes)."""
    study.set_user_attr("final race", race.verdict())
