"""What ``archsolve check`` runs: load the target, check it, write the fixed design when asked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..design.checks import write_text
from ..errors import InputError
from .target import load_model, parse_kwargs

if TYPE_CHECKING:
    from .report import CheckResult


def run_check(
    target: str,
    input_shape: str,
    size_range: str,
    kwargs_json: str | None,
    fix_size: int | None,
    emit: str | None,
    time_limit: float,
) -> tuple[CheckResult, str | None]:
    """The check of ``target``, and the path the fixed source went to (``--emit``)."""
    from . import check

    model, name, design = load_model(target, parse_kwargs(kwargs_json))
    if emit and (design is None or fix_size is None):
        raise InputError("--emit writes a fixed archsolve design: give a design file as TARGET and --fix SIZE")
    result = check(model, input_shape, size_range, fix=fix_size, time_limit=time_limit, name=name)
    if not emit:
        return result, None
    assert design is not None and fix_size is not None
    from .emit_fix import fixed_source

    source = fixed_source(design, result, fix_size)
    write_text(emit, source)
    return result, emit
