"""The command line: commands (``commands``), progress display (``progress``) and the forms of
results only the command line prints (``report``).
"""

from .commands import main

__all__ = ["main"]
