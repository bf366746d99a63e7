"""Benchmark: archsolve's ranked search against exhaustive measurement, in the same run (issue 5).

The space: a decoder from 64x8x8 to 3x64x64 in three steps, each step one of
``ct k2s2``, ``ct k4s2p1``, ``up2+conv3`` (x2), ``ct k4s4``, ``up4+conv3``
(x4) or ``conv3`` (x1); a combination is valid when the scales multiply to 8
(63 of 216 combinations) and the parameter count is within a budget
(36,000 by default: 48 valid designs).

* **exhaustive**: every valid design measured once with the same
  :class:`~archsolve.rank.measure.Measurer` (no Optuna);
* **search**: ``archsolve.rank.rank`` with ``trials = floor(valid / 3)``, a
  fresh default SQLite study per run, the latency model on, seeds 0..runs-1.

For each search run: the winner's throughput against the exhaustive best —
must be ≥ 0.90 — both as recorded in the exhaustive pass and, since a shared
machine drifts between passes, re-measured side by side with the exhaustive
pass's top three (alternating, three rounds, ratio to the best median); designs measured (≤ a third; the latency model's
step timings are counted separately); measuring time (design + step timings)
against the exhaustive pass's; and overhead = 1 - timed / wall (wall time
outside timed windows, ≤ 15 %), split into warm-up/setup inside the measurer,
module building, and everything else (study, sampler, storage, results
files).  The exhaustive pass runs first, then ``--runs`` (default 3) searches;
medians over the searches are printed.

Measurement settings: 20 samples of at least ``--sample`` seconds (0.05)
after 2 warm-up runs, batch 8, float32 inference.  On a shared CPU the
defaults ``--threads 1 --clock cpu`` keep timings steady: one torch thread
(a parallel region stalls whenever another process takes a core) and the
process's CPU time (time spent descheduled is not counted); ``--clock wall``
measures wall time instead.  Overhead is always wall time.

Usage: ``.venv/bin/python benchmarks/rank.py [--runs 3] [--device auto] [--sample 0.05]``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

from archsolve.build import build
from archsolve.rank import RankSettings, rank
from archsolve.rank.measure import Measurement, Measurer, MeasureSettings
from archsolve.recipe import AxisRecipe as R
from archsolve.space import StepChoice, TableSpace

Keys = tuple[str, ...]


def decoder_space(max_params: int) -> TableSpace:
    def choices(c: int) -> tuple[StepChoice, ...]:
        return (
            StepChoice.of("ct k2s2", ["conv_transpose"], [R(2, 2)], c),
            StepChoice.of("ct k4s2p1", ["conv_transpose"], [R(4, 2, 1)], c),
            StepChoice.of("up2+conv3", ["upsample", "conv"], [R(stride=2), R(3, 1, 1)], c),
            StepChoice.of("ct k4s4", ["conv_transpose"], [R(4, 4)], c),
            StepChoice.of("up4+conv3", ["upsample", "conv"], [R(stride=4), R(3, 1, 1)], c),
            StepChoice.of("conv3", ["conv"], [R(3, 1, 1)], c),
        )

    return TableSpace(
        "bench-decoder",
        (64, 8, 8),
        (choices(32), choices(16), choices(3)),
        out_shape=(3, 64, 64),
        max_params=max_params,
    )


def valid(space: TableSpace) -> dict[Keys, list[int]]:
    options = space.step_options()
    found = {}
    for a in range(len(options[0])):
        for b in range(len(options[1])):
            for c in range(len(options[2])):
                if space.design([a, b, c]) is not None:
                    found[(options[0][a], options[1][b], options[2][c])] = [a, b, c]
    return found


def exhaustive(space: TableSpace, measurer: Measurer) -> tuple[dict[Keys, Measurement], float]:
    results = {}
    started = time.perf_counter()
    for keys, picks in valid(space).items():
        design = space.design(picks)
        assert design is not None
        results[keys] = measurer.measure(build(design), design.in_shape)
    return results, time.perf_counter() - started


class TallyMeasurer(Measurer):
    """Adds up the wall time of whole measure calls, to split the overhead into measuring and the rest."""

    wall = 0.0

    def measure(self, module, sample_shape, *, repeats=None):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return super().measure(module, sample_shape, repeats=repeats)
        finally:
            self.wall += time.perf_counter() - started


def timed_build(design):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    module = build(design)
    timed_build.spent += time.perf_counter() - started  # type: ignore[attr-defined]
    return module


def confirm(space: TableSpace, measurer: Measurer, winner: Keys, leaders: list[Keys], rounds: int = 3) -> float:
    """Winner's throughput over the best of the exhaustive pass's leaders, all re-measured side by side.

    A shared machine drifts during the minute an exhaustive pass takes, so its
    top places are re-measured together with the winner, alternating for
    ``rounds`` rounds; the ratio is of medians.
    """
    picks = valid(space)
    keys = list(dict.fromkeys([winner, *leaders]))
    designs = {k: space.design(picks[k]) for k in keys}
    seen: dict[Keys, list[float]] = {k: [] for k in keys}
    for _ in range(rounds):
        for k, design in designs.items():
            assert design is not None
            seen[k].append(measurer.measure(build(design), design.in_shape).throughput)
    medians = {k: statistics.median(v) for k, v in seen.items()}
    return medians[winner] / max(medians[k] for k in leaders)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-params", type=int, default=36_000)
    parser.add_argument("--sample", type=float, default=0.05, help="seconds per timed sample (min_sample_s)")
    parser.add_argument("--clock", default="cpu", help="cpu (default here: steady on a shared machine) or wall")
    args = parser.parse_args()

    settings = MeasureSettings(
        device=args.device,
        batch_size=args.batch,
        warmup=2,
        repeats=20,
        min_sample_s=args.sample,
        threads=args.threads,
        clock=args.clock if not args.device.startswith("cuda") else "wall",
    )
    measurer = TallyMeasurer(settings)
    space = decoder_space(args.max_params)
    n_valid = len(valid(space))
    budget = n_valid // 3
    print(
        f"device {measurer.env.device_name} ({measurer.env.device}), torch {measurer.env.torch}, "
        f"threads {measurer.env.threads}, batch {settings.batch_size}, {settings.dtype}, {settings.mode}"
    )
    print(f"space: {n_valid} valid designs of 216 combinations; search budget {budget} designs")

    ex, ex_wall = exhaustive(space, measurer)
    ex_timed = sum(m.timed_s for m in ex.values())
    best_keys = max(ex, key=lambda k: ex[k].throughput)
    best = ex[best_keys].throughput
    order = sorted(ex, key=lambda k: -ex[k].throughput)
    print(
        f"exhaustive: {len(ex)} designs, wall {ex_wall:.2f} s, timed {ex_timed:.2f} s, "
        f"overhead {1 - ex_timed / ex_wall:.1%}; best {' | '.join(best_keys)} {best:,.0f} samples/s"
    )

    rows = []
    for seed in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            measurer.wall = 0.0
            timed_build.spent = 0.0  # type: ignore[attr-defined]
            started = time.perf_counter()
            result = rank(
                space,
                RankSettings(trials=budget, seed=seed, results_dir=Path(tmp) / "results"),
                settings,
                measurer=measurer,
                build=timed_build,
            )
            wall = time.perf_counter() - started
        measure_wall = measurer.wall
        assert result.winner is not None
        winner = result.winner.keys
        side_by_side = confirm(space, measurer, winner, order[:3])
        rows.append(
            {
                "ratio": ex[winner].throughput / best,
                "confirmed": side_by_side,
                "place": order.index(winner) + 1,
                "designs": result.run.measured,
                "steps": result.run.step_timings,
                "timed": result.timed_s,
                "wall": wall,
                "overhead": 1 - result.timed_s / wall,
                "cost": result.timed_s / ex_timed,
                "spearman": result.spearman if result.spearman is not None else math.nan,
                "asks": result.run.asks,
                "warmup": (measure_wall - result.timed_s) / wall,
                "build": timed_build.spent / wall,  # type: ignore[attr-defined]
                "rest": (wall - measure_wall - timed_build.spent) / wall,  # type: ignore[attr-defined]
            }
        )
        r = rows[-1]
        print(
            f"search seed {seed}: winner {' | '.join(winner)} (exhaustive place {r['place']}), "
            f"{r['ratio']:.3f} of best in the exhaustive pass, {r['confirmed']:.3f} side by side; "
            f"{r['designs']} designs + {r['steps']} step timings, {r['asks']} proposals; "
            f"timed {r['timed']:.2f} s / wall {r['wall']:.2f} s, overhead {r['overhead']:.1%} "
            f"(warm-up/setup {r['warmup']:.1%}, build {r['build']:.1%}, study+search {r['rest']:.1%}); "
            f"measuring time {r['cost']:.2f}x exhaustive; spearman {r['spearman']:.2f}"
        )

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    print(
        f"median over {len(rows)} runs: winner/best {med('ratio'):.3f} in the exhaustive pass, "
        f"{med('confirmed'):.3f} side by side (need >= 0.90), "
        f"designs measured {med('designs'):.0f}/{n_valid} = {med('designs') / n_valid:.2f} (need <= 0.33), "
        f"measuring time {med('cost'):.2f}x exhaustive, overhead {med('overhead'):.1%} (need <= 15%), "
        f"spearman {med('spearman'):.2f}"
    )


if __name__ == "__main__":
    main()
