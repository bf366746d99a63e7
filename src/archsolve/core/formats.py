"""Version numbers of everything archsolve writes for other programs to read.

``JSON_VERSION`` is the ``"version"`` field of every command's ``--json`` output
(docs/json.md); ``DESIGN_VERSION`` that of saved designs (docs/json.md#saved-designs).  Each
goes up by one when its format changes in a way a reader must know about.
"""

from __future__ import annotations

from typing import Any

#: archsolve's own version (``archsolve.__version__``), written into saved designs and emitted files.
VERSION = "0.1.0"
JSON_VERSION = 1
DESIGN_VERSION = 1


def versioned(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with ``"version"`` first, as every ``--json`` output carries it."""
    return {"version": JSON_VERSION, **data}
