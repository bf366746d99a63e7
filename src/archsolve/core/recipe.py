"""Values that describe one layer on one spatial axis, and the ranges they are searched in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

#: The integer fields of :class:`AxisRecipe`, in the order recipes are sorted and printed.
AXIS_FIELDS = ("kernel", "stride", "padding", "output_padding", "dilation")

PADDING_WORDS = ("same", "valid")


class AxisRecipe(NamedTuple):
    """The integers that fix one layer's size arithmetic along one spatial axis.

    Kinds read the fields they need: pools read ``ceil_mode``; upsample and
    pixel (un)shuffle read ``stride`` as their scale factor. ``pad_extra`` is
    one more zero on the trailing side, which Keras/TensorFlow ``same`` padding
    needs when the total padding is odd (torch pads symmetrically).

    An immutable named tuple rather than a dataclass: solving builds hundreds of
    thousands of them, and tuple construction, hashing and ordering are several
    times cheaper.
    """

    kernel: int = 1
    stride: int = 1
    padding: int = 0
    output_padding: int = 0
    dilation: int = 1
    ceil_mode: bool = False
    pad_extra: int = 0

    @property
    def span(self) -> int:
        """Extent of the dilated kernel: ``d * (k - 1) + 1``."""
        return self.dilation * (self.kernel - 1) + 1


@dataclass(frozen=True)
class Ranges:
    """Inclusive ranges each recipe field is searched in (``[search]`` in a problem file).

    ``padding_word`` replaces the padding range with Keras/TensorFlow's
    ``same`` or ``valid`` rule, resolved per recipe to explicit torch padding.
    """

    kernel: tuple[int, int] = (1, 8)
    stride: tuple[int, int] = (1, 4)
    padding: tuple[int, int] = (0, 4)
    output_padding: tuple[int, int] = (0, 3)
    dilation: tuple[int, int] = (1, 1)
    ceil_mode: tuple[bool, ...] = (False, True)
    padding_word: str | None = None
    #: Scale factors for upsample and pixel (un)shuffle (they keep theirs in ``AxisRecipe.stride``).
    scale: tuple[int, int] = (1, 4)

    def span(self, name: str) -> range:
        low, high = getattr(self, name)
        return range(low, high + 1)
