"""How results show themselves: a short ``repr``, their table as ``str()``, and the table in notebooks.

Results (:class:`~archsolve.solve.Solution`, :class:`~archsolve.rank.RankResult`,
:class:`~archsolve.design.explore.Exploration`, :class:`~archsolve.build.summary.Summary`)
inherit :class:`Shown` and implement :meth:`Shown.text`; Jupyter calls
``_repr_html_``, rich calls ``__rich__``, ``print()`` calls ``__str__``.
"""

from __future__ import annotations

import html
from abc import ABC, abstractmethod


class Shown(ABC):
    """A result with a text table (:meth:`text`), shown by ``print``, notebooks and rich alike."""

    __slots__ = ()

    @abstractmethod
    def text(self) -> str:
        """The result as the command line prints it."""

    def __str__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.text())}</pre>"

    def __rich__(self) -> str:
        return self.text()
