"""Benchmark: solving whole trajectories (exact count + top 20) against naive Z3, and scaling with steps.

Run: ``.venv/bin/python benchmarks/solve.py``.  Prints medians and ratios measured in this run:

1. ``archsolve solve problems/dcgan_generator.toml --no-rank --top 20 --json`` end to end (subprocess);
2. the same solve in-process, and the naive baseline on the same problem (with ``no_gaps`` off,
   which the naive model cannot express): one Z3 ``Optimize`` over nonlinear per-step recipe
   variables (the catalog's ``z3_relation``), top 20 by blocking clauses;
3. the count checked against a brute-force product of the per-step tables;
4. solve time for generator problems of 4, 6, 8 and 12 steps.
"""

from __future__ import annotations

import itertools
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from archsolve.ops import (  # noqa: E402
    KINDS,
    Z3Axis,
)
from archsolve.problem import Problem, load, loads  # noqa: E402
from archsolve.solve import solve  # noqa: E402
from archsolve.solve.tables import clear_caches  # noqa: E402

PROBLEM = ROOT / "problems" / "dcgan_generator.toml"
RUNS = 7


def median_time(func, runs: int = RUNS) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    """Median wall time of ``func``; the catalog's table caches are emptied first, as in a fresh process."""
    times, result = [], None
    for _ in range(runs):
        clear_caches()
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def end_to_end() -> float:
    exe = ROOT / ".venv" / "bin" / "archsolve"
    cmd = [str(exe), "solve", str(PROBLEM), "--no-rank", "--top", "20", "--json"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(cmd, check=True, capture_output=True, env=env)  # warm the bytecode cache
    seconds, _ = median_time(lambda: subprocess.run(cmd, check=True, capture_output=True, env=env))
    return seconds


def naive_top(problem: Problem, top: int = 20, limit: float = 120.0) -> tuple[int, float]:
    """One Optimize model over (k, s, p, op, d) per step, nonlinear params, blocking clauses."""
    import z3

    start = time.perf_counter()
    opt = z3.Optimize()
    kind = KINDS["conv_transpose"]
    steps, params = [], []
    for i in range(problem.n_steps):
        v = Z3Axis.fresh(f"s{i}")
        opt.add(*v.bounds(problem.ranges[i], kind))
        n_in, n_out = problem.sizes[i].fixed[0], problem.sizes[i + 1].fixed[0]  # type: ignore[index]
        opt.add(kind.z3_relation(v, n_in, n_out))
        opt.add(z3.Or(v.kernel > 1, v.dilation == 1))  # k=1 is one layer at any dilation
        if problem.constraints.no_checkerboard:
            opt.add(v.kernel % v.stride == 0)
        c_in, c_out = problem.channels[i], problem.channels[i + 1]
        params.append(v.kernel * v.kernel * c_in * c_out)
        steps.append(v)
    total = z3.Sum(params)
    if problem.constraints.max_params is not None:
        opt.add(total <= problem.constraints.max_params)
    opt.minimize(total)
    found = 0
    while found < top and time.perf_counter() - start < limit:
        opt.set("timeout", int(max(limit - (time.perf_counter() - start), 0.001) * 1000))
        if opt.check() != z3.sat:
            break
        model = opt.model()
        found += 1
        opt.add(
            z3.Or(
                [
                    getattr(v, f) != model.eval(getattr(v, f), model_completion=True)
                    for v in steps
                    for f in ("kernel", "stride", "padding", "output_padding", "dilation")
                ]
            )
        )
    return found, time.perf_counter() - start


def brute_count(problem: Problem) -> int:
    """Every combination of the per-step tables, filtered by the budget, counted one by one."""
    solution = solve(problem, top=0)
    budget = problem.constraints.max_params
    count = 0
    for combo in itertools.product(*solution.tables):
        if budget is None or sum(c.params for c in combo) <= budget:
            count += 1
    return count


def generator(steps: int) -> Problem:
    sizes = [4 * 2**i for i in range(steps + 1)]
    return loads(
        f'sizes = {sizes}\nchannels = {[16] * (steps + 1)}\nops = "conv_transpose"\n'
        "[search]\nkernel = [1, 8]\nstride = [1, 4]\npadding = [0, 4]\noutput_padding = [0, 3]\ndilation = [1, 3]\n"
        "[constraints]\nno_checkerboard = true\n"
    )


def main() -> None:
    problem = load(PROBLEM)
    print(f"problem: {PROBLEM.name} ({problem.n_steps} steps, k<=8 s<=4 p<=4 op<=3 d<=3)")
    e2e = end_to_end()
    ours, solution = median_time(lambda: solve(problem, top=20))
    print(f"archsolve solve --no-rank --top 20 end to end: median {e2e:.3f} s over {RUNS} runs")
    print(f"in-process count + top 20:                     median {ours:.3f} s, count {solution.count:,}")  # type: ignore[attr-defined]

    loose = load(PROBLEM, ["constraints.no_gaps=false"])
    ours_loose, loose_solution = median_time(lambda: solve(loose, top=20), runs=5)
    found, naive = naive_top(loose)
    print(
        f"same problem with no_gaps=false: archsolve count + top 20 median {ours_loose:.3f} s "
        f"(count {loose_solution.count:,}); naive Z3 Optimize + blocking, top 20 alone: "  # type: ignore[attr-defined]
        f"{naive:.2f} s for {found} designs -> {naive / ours_loose:.1f}x slower"
    )

    start = time.perf_counter()
    brute = brute_count(problem)
    print(
        f"brute-force count {brute:,} in {time.perf_counter() - start:.1f} s: "
        f"{'identical' if brute == solution.count else 'DIFFERENT'}"
    )  # type: ignore[attr-defined]

    print("\nsteps  count                 median s (count + top 20)  s per step")
    for steps in (4, 6, 8, 12):
        p = generator(steps)
        seconds, sol = median_time(lambda p=p: solve(p, top=20), runs=5)
        print(f"{steps:>5}  {sol.count:<20,}  {seconds:>24.3f}  {seconds / steps:>10.4f}")  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
