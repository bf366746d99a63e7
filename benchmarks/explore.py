"""Benchmark: ``archsolve explore 16 32`` end to end against a baseline measured in the same run.

- ``explore``: the real command in a fresh process (``.venv/bin/archsolve explore 16 32``).
- ``loop``: a plain brute-force Python loop over every field combination in the ranges,
  calling the catalog's ``out_size`` (no caching, no ordering tricks).

Each runs as its own process (interpreter start and imports included, as a user pays
them), round-robin so that machine load hits them alike; medians of ``--runs``
runs are printed with ratios against ``explore``.  They must list the same
recipes.  Usage: ``.venv/bin/python benchmarks/explore.py [--runs 9]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ARCHSOLVE = Path(sys.executable).parent / "archsolve"
SIZE_IN, SIZE_OUT = 16, 32

#: Shared head of both baselines: the default kinds and ranges of ``archsolve explore``.
_SETUP = f"""
import json, sys
from archsolve.design.explore import DEFAULT_KINDS, explore_ranges
from archsolve.catalog import KINDS
ranges = explore_ranges()
n_in, n_out = {SIZE_IN}, {SIZE_OUT}
found = []
"""

LOOP_BASELINE = (
    _SETUP
    + """
from itertools import product
from archsolve.core.recipe import AxisRecipe
for name in DEFAULT_KINDS:
    kind = KINDS[name]
    seen = set()
    for k, s, p, op, d, c in product(ranges.span("kernel"), ranges.span("stride"), ranges.span("padding"),
                                      ranges.span("output_padding"), ranges.span("dilation"), ranges.ceil_mode):
        r = AxisRecipe(kernel=k, stride=s, padding=p, output_padding=op, dilation=d, ceil_mode=c)
        default = AxisRecipe()
        if any(getattr(r, f) != getattr(default, f) for f in r._fields if f not in kind.search_fields):
            continue
        if kind.out_size(r, n_in, 2) == n_out:
            seen.add(kind.canonical(r))
    found += [(name, list(r)) for r in sorted(seen)]
print(json.dumps(found))
"""
)


def commands() -> dict[str, list[str]]:
    return {
        "explore": [str(ARCHSOLVE), "explore", str(SIZE_IN), str(SIZE_OUT)],
        "explore --json": [str(ARCHSOLVE), "explore", str(SIZE_IN), str(SIZE_OUT), "--json"],
        "python loop": [sys.executable, "-c", LOOP_BASELINE],
    }


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - start, done.stdout


def recipe_set(name: str, stdout: str) -> set[tuple[str, tuple[int, ...]]]:
    """The listed recipes as (op, AxisRecipe fields) for cross-checking the three methods."""
    from archsolve.catalog import KINDS
    from archsolve.core.recipe import AxisRecipe

    if name == "explore --json":
        out = set()
        for r in json.loads(stdout)["recipes"]:
            fields = {k: v for k, v in r.items() if k not in ("op", "checkerboard", "gaps")}
            fields = {("stride" if k in ("scale", "factor") else k): v for k, v in fields.items()}
            out.add((r["op"], tuple(AxisRecipe(**fields))))
        return out
    return {(op, tuple(KINDS[op].canonical(AxisRecipe(*values)))) for op, values in json.loads(stdout)}


def in_process(runs: int) -> dict[str, float]:
    """Median seconds of the listing work alone (imports done, the catalog's recipe cache cleared)."""
    import contextlib
    import io

    from archsolve import catalog as ops
    from archsolve.design.explore import explore

    def run_explore() -> None:
        ops.clear_recipe_cache()
        explore(SIZE_IN, SIZE_OUT)

    def run_code(code: str) -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(code, {"__name__": "baseline"})

    work = {
        "explore": run_explore,
        "python loop": lambda: run_code(LOOP_BASELINE),
    }
    times: dict[str, list[float]] = {name: [] for name in work}
    for fn in work.values():
        fn()  # imports
    for _ in range(runs):
        for name, fn in work.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9, help="timed runs per method (median reported)")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as installed: bytecode cached
    cmds = commands()
    outputs = {name: timed(cmd, env)[1] for name, cmd in cmds.items()}  # warm-up (and .pyc files written)
    listed = {name: recipe_set(name, out) for name, out in outputs.items() if name != "explore"}
    counts = {name: len(s) for name, s in listed.items()}
    assert len({frozenset(s) for s in listed.values()}) == 1, f"methods disagree: {counts}"
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(args.runs):
        for name, cmd in cmds.items():
            times[name].append(timed(cmd, env)[0])
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    base = medians["explore"]
    print(
        f"archsolve explore {SIZE_IN} {SIZE_OUT}: {counts['explore --json']} recipes, all methods agree; "
        f"median of {args.runs} runs, each a fresh process"
    )
    print(f"{'method':<22}{'median s':>10}{'min s':>9}{'max s':>9}{'× explore':>11}")
    for name, median in medians.items():
        ts = times[name]
        print(f"{name:<22}{median:>10.3f}{min(ts):>9.3f}{max(ts):>9.3f}{median / base:>11.2f}")
    start = statistics.median(timed([sys.executable, "-c", "pass"], env)[0] for _ in range(5))
    print(f"python start alone (reference): {start:.3f} s")
    work = in_process(args.runs)
    print("listing work alone, in process (no start-up, no imports):")
    for name, median in work.items():
        print(f"{name:<22}{median * 1000:>9.1f} ms{median / work['explore']:>10.1f} ×")


if __name__ == "__main__":
    main()
