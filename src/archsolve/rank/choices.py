"""How the study names a space's designs: one categorical parameter per step, keyed by the space's option keys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..design.design import Design
from ..design.search_space import SearchSpace
from ..errors import InputError
from .values import Keys

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial


class Choices:
    """A :class:`SearchSpace` seen through its keys: ``step0``, ``step1``, … and the design behind a key tuple.

    Designs are cached: ``space.design`` may call a solver, and the ranker
    asks about the same combination many times (ledger, model, results).
    """

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.options: list[tuple[str, ...]] = [tuple(o) for o in space.step_options()]
        if not self.options or any(not o for o in self.options):
            raise InputError(f"{space.name}: every step needs at least one option to rank")
        self.names = [f"step{i}" for i in range(len(self.options))]
        self.index = [{key: j for j, key in enumerate(o)} for o in self.options]
        self.designs: dict[Keys, Design | None] = {}

    @property
    def sizes(self) -> list[int]:
        return [len(o) for o in self.options]

    def of_trial(self, trial: FrozenTrial) -> Keys | None:
        """The keys a trial picked, or None for a trial without every step (a foreign or broken one)."""
        if not all(name in trial.params for name in self.names):
            return None
        return tuple(str(trial.params[name]) for name in self.names)

    def keys(self, picks: Sequence[int]) -> Keys:
        return tuple(self.options[i][j] for i, j in enumerate(picks))

    def picks(self, keys: Keys) -> tuple[int, ...] | None:
        """Option indices for ``keys``; None when the space no longer offers one of them."""
        try:
            return tuple(self.index[i][key] for i, key in enumerate(keys))
        except (KeyError, IndexError):
            return None

    def design(self, keys: Keys) -> Design | None:
        """The design behind ``keys``; None when a global constraint fails or a key is unknown."""
        if keys not in self.designs:
            picks = self.picks(keys)
            # The study may hold a choice this space no longer offers.
            self.designs[keys] = None if picks is None else self.space.design(picks)
        return self.designs[keys]

    def params(self, keys: Keys) -> dict[str, str]:
        return dict(zip(self.names, keys, strict=True))

    def distributions(self) -> dict[str, Any]:
        from optuna.distributions import CategoricalDistribution

        return {name: CategoricalDistribution(opts) for name, opts in zip(self.names, self.options, strict=True)}
