"""archsolve: layers proven to produce the sizes you want, ranked by measured speed.

Kept import-light: torch, z3 and optuna load only inside the functions that use them.
"""

from __future__ import annotations

__version__ = "0.1.0"
