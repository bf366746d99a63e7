"""Benchmark: solving whole trajectories (exact count + top 20) against naive Z3, and scaling with steps.

Run: ``.venv/bin/python benchmarks/solve.py``.  Prints medians and ratios measured in this run:

1. ``archsolve solve problems/dcgan_generator.toml --no-rank --top 20 --json`` end to end (subprocess);
2. the same solve in-process, and the naive baseline on the same problem (with ``no_gaps`` off,
   which the naive model cannot express): one Z3 ``Optimize`` over nonlinear per-step recipe
   variables (the transposed-conv size relation written as such a tool would), top 20 by blocking
   clauses;
3. the count checked against a brute-force product of the per-step tables;
4. solve time for generator problems of 4, 6, 8 and 12 steps;
5. ``--scaling`` (also part of the full run): a scaling table, each row solved in a fresh process
   (median time of count + top 20 over the runs, the process's peak RSS): 1 to 6 free channels
   (the x2 ``upsample+conv`` generator from 4x4, channels [16, 256] in steps of 16,
   ``max_params = 1e6``; 4 free channels is issue #10's 4→128 generator), wide ranges
   (kernel and padding up to 16, 32, 64), 3-D per-axis problems, the bundled DCGAN generator, and
   hostile cases under ``--time-limit 2`` (how far past the limit they end).  Raw numbers go to
   ``benchmarks/results/solve_scaling.json``.
"""

from __future__ import annotations

import itertools
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from archsolve.problem.problem import Problem, load, loads  # noqa: E402
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
    steps, params = [], []
    for i in range(problem.n_steps):
        # The naive tool's own model: one integer per field, bounded by the ranges, and torch's
        # ConvTranspose size rule as a nonlinear equation (archsolve's catalog holds no Z3 relation).
        fields = ("kernel", "stride", "padding", "output_padding", "dilation")
        v = SimpleNamespace(**{f: z3.Int(f"s{i}.{f}") for f in fields})
        for f in vars(v):
            low, high = getattr(problem.ranges[i], f)
            opt.add(getattr(v, f) >= low, getattr(v, f) <= high)
        n_in, n_out = problem.sizes[i].fixed[0], problem.sizes[i + 1].fixed[0]  # type: ignore[index]
        size = (n_in - 1) * v.stride - 2 * v.padding + v.dilation * (v.kernel - 1) + v.output_padding + 1
        opt.add(size == n_out, z3.Or(v.output_padding < v.stride, v.output_padding < v.dilation))
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


def free_channels(k: int) -> str:
    sizes = [4 * 2**i for i in range(k + 2)]
    channels = [128] + ['"?"'] * k + [3]
    return (
        f'sizes = {sizes}\nchannels = [{", ".join(map(str, channels))}]\nops = "upsample+conv"\n'
        "[search]\nchannels = [16, 256]\nmultiple_of = 16\ntime_limit = 120\n[constraints]\nmax_params = 1_000_000\n"
    )


def wide(top: int) -> str:
    return (
        'sizes = [1, 4, 8, 16, 32, 64]\nchannels = [100, 512, 256, 128, 64, 3]\nops = "conv_transpose"\n'
        f"[search]\nkernel = [1, {top}]\npadding = [0, {top}]\nstride = [1, 4]\noutput_padding = [0, 3]\n"
        "time_limit = 120\n[constraints]\nmax_params = 4_000_000\nno_checkerboard = true\n"
    )


def per_axis_3d(top: int) -> str:
    return (
        "dims = 3\nsizes = [[4, 4, 2], [8, 8, 4], [16, 16, 8], [32, 32, 8]]\nchannels = [64, 32, 16, 3]\n"
        f'ops = "conv_transpose"\n[search]\nper_axis = true\nkernel = [1, {top}]\nstride = [1, 2]\n'
        "padding = [0, 2]\noutput_padding = [0, 1]\ntime_limit = 120\n"
    )


HOSTILE = {
    "hostile: kernel [1, 1e9]": (
        'sizes = [4, 8]\nchannels = [3, 8]\nops = "conv_transpose"\n[search]\nkernel = [1, 1_000_000_000]\n'
    ),
    "hostile: 4-part composite <= 16": (
        'sizes = [4, 8, 16]\nchannels = [3, 8, 8]\nops = "upsample+conv+conv_transpose+conv"\n[search]\n'
        "kernel = [1, 16]\nstride = [1, 16]\npadding = [0, 16]\noutput_padding = [0, 16]\nscale = [1, 16]\n"
    ),
    "hostile: 3-D per-axis free sizes": (
        'sizes = [[4, 4, 4], "?", "?", [16, 32, 8]]\nchannels = [3, 8, 8, 8]\nops = "conv_transpose | conv"\n'
        "[search]\nper_axis = true\nkernel = [1, 8]\nstride = [1, 4]\npadding = [0, 4]\nsize = [1, 64]\n"
    ),
    "hostile: free channel [1, 1e9]": (
        'sizes = [4, 8, 16]\nchannels = [3, "?", 8]\nops = "conv_transpose"\n[search]\nchannels = [1, 1_000_000_000]\n'
    ),
}


def scaling_rows() -> dict[str, tuple[str, float | None]]:
    """Row name -> (problem text, time limit or None for the file's own)."""
    rows: dict[str, tuple[str, float | None]] = {}
    for k in range(1, 7):
        rows[f"free channels: {k}"] = (free_channels(k), None)
    for top in (16, 32, 64):
        rows[f"wide ranges: kernel, padding <= {top}"] = (wide(top), None)
    for top in (2, 4):
        rows[f"3-D per-axis: kernel <= {top}"] = (per_axis_3d(top), None)
    rows["dcgan_generator.toml (wide DCGAN)"] = (PROBLEM.read_text(), None)
    for name, text in HOSTILE.items():
        rows[name] = (text, 2.0)
    return rows


def run_row(name: str, runs: int) -> dict[str, object]:
    """Solve one row ``runs`` times in this process; the caller reads the peak RSS of the process."""
    import resource

    from archsolve.errors import ArchsolveError

    text, limit = scaling_rows()[name]
    problem = loads(text)
    times, cpu, outcome = [], [], "solved"
    count = None
    for _ in range(runs):
        clear_caches()
        start, start_cpu = time.perf_counter(), time.process_time()
        try:
            count = solve(problem, top=20, time_limit=limit).count
        except ArchsolveError as exc:
            outcome = f"exit {exc.exit_code}: {str(exc).splitlines()[0][:90]}"
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "row": name,
        "seconds": times,
        "median_s": statistics.median(times),
        "cpu_s": cpu,
        "median_cpu_s": statistics.median(cpu),
        "peak_rss_bytes": peak,
        "count": count,
        "outcome": outcome,
        "time_limit": limit,
    }


def scaling(runs: int = 3) -> None:
    import json

    results = []
    print(f"\n{'row':<40} {'median s':>9} {'CPU s':>7} {'peak MiB':>9}  count / outcome")
    for name in scaling_rows():
        row_runs = 1 if name.startswith("hostile") else runs
        done = subprocess.run(
            [sys.executable, __file__, "--row", name, str(row_runs)], capture_output=True, text=True, check=True
        )
        row = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(row)
        what = f"{row['count']:,}" if row["outcome"] == "solved" else row["outcome"]
        print(
            f"{name:<40} {row['median_s']:>9.3f} {row['median_cpu_s']:>7.3f} "
            f"{row['peak_rss_bytes'] / 2**20:>9.0f}  {what}"
        )
    out = ROOT / "benchmarks" / "results" / "solve_scaling.json"
    out.parent.mkdir(exist_ok=True)
    load = os.getloadavg()[0]  # the machine is shared: wall times are only as good as this
    out.write_text(json.dumps({"runs": runs, "load_average_1min": load, "rows": results}, indent=2) + "\n")
    print(f"raw numbers: {out.relative_to(ROOT)}")


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
    if sys.argv[1:2] == ["--row"]:
        import json

        print(json.dumps(run_row(sys.argv[2], int(sys.argv[3]))))
    elif sys.argv[1:2] == ["--scaling"]:
        scaling()
    else:
        main()
        scaling()
