"""Benchmark: archsolve's ranked winner against an interleaved measurement of (nearly) every design (issue 9).

For each bundled problem (``dcgan_generator``, ``mnist_decoder``,
``upsample_conv_generator``):

1. **searches** (``--runs``, default 3): ``archsolve.rank`` on the solver's
   space with ``trials = min(valid, max(8, min(12, floor(share * valid))))`` (default share 10 %;
   at least 8 so the model's held-out figures exist on small spaces),
   the problem's reference,
   a fresh study per run, seeds 0..runs-1, latency model and final race on, the
   ranking settings' defaults otherwise (the step timings' rounds too, as the CLI runs them);
2. **truth**, in the same process afterwards: every valid design when there
   are at most ``--exhaustive`` (default 300); otherwise a uniform sample of
   ``--sample`` (default 200) valid designs plus the model's predicted top 50,
   plus every search's winner and reference.  All of them are timed
   interleaved round-robin (``--rounds`` rounds) so drift hits all alike.

Per search run: **regret** = truth time of the winner / best truth time - 1
(≤ 5 % is the goal, or a declared tie: the truth-best design is in the race's
tie set); **share used** = designs the search measured / valid designs;
**Spearman** and **±10 % share** of the latency model, all held out (goal:
Spearman ≥ 0.9 and ≥ 80 % within ±10 %):

* *study, held out*: what the run itself reports (``result.quality``): each
  measured design predicted by the calibration fitted without it;
* *truth, held out*: the calibration fitted on everything the run measured,
  predicting the truth designs the run did not measure;
* *truth, raw step sum*: the uncalibrated sum of step timings, for comparison.

Also the phase times of each run (step timings, screening, race).  Medians
and ranges over the runs are printed; raw numbers go to
``benchmarks/results/rank-<date>.json``.

Usage: ``.venv/bin/python benchmarks/rank.py [--runs 3] [--problems mnist_decoder,...] [--batch 4]``.
Measurement: one torch thread and the process CPU clock (steadier on a shared machine).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import archsolve.problem.problem as problem_mod
from archsolve.build.modules import build
from archsolve.rank import Measurement, Measurer, MeasureSettings, RankSettings, rank, spearman
from archsolve.rank.identity import measure_key
from archsolve.rank.model import RETIME_ATTR, STEP_ATTR, calibrated, design_features, sample_shape
from archsolve.rank.study import open_storage
from archsolve.solve import SolutionSpace, solve

ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = ("mnist_decoder", "upsample_conv_generator", "dcgan_generator")
Keys = tuple[str, ...]


def truth_set(space: SolutionSpace, valid: int, exhaustive: int, sample: int, seed: int) -> list[tuple[int, ...]]:
    """Every valid design (small spaces) or a uniform sample of them.

    "Every" enumerates the product of the step options and keeps what the
    space builds: ``space.candidates`` samples with rejection and stops after
    ``4 * limit`` draws, which on dcgan_generator found 91 of the 192.
    """
    if valid <= exhaustive:
        sizes = [range(len(o)) for o in space.step_options()]
        return [p for p in itertools.product(*sizes) if space.design(p) is not None]
    picks = list(space.candidates(sample + len(space.solution.candidates), seed=seed))
    rest = picks[len(space.solution.candidates) :]  # the uniform part, not the solver's best by params
    random.Random(seed).shuffle(rest)
    return [tuple(p) for p in rest[:sample]]


def step_times(study_attrs: dict[str, Any]) -> dict[str, float]:
    """The study's step timings by step id.

    They are stored as ``step_time:<context key>:<step id>`` (one context per
    fresh study here); keying them by everything after ``step_time:`` matched
    no step id, so every truth prediction was None and both truth lines
    printed n/a or vanished.
    """
    return {k.rsplit(":", 1)[-1]: float(v) for k, v in study_attrs.items() if k.startswith(STEP_ATTR)}


def predicted(study_attrs: dict[str, Any], design: Any) -> float | None:
    """The raw step sum from the study's step timings."""
    row = design_features(design, step_times(study_attrs))
    return None if row is None else row["sum"]


def agreement(pairs: list[tuple[float, float]]) -> tuple[float | None, float | None]:
    """Spearman and the share within ±10 % of (predicted, truth) pairs."""
    if not pairs:
        return None, None
    rho = spearman([p for p, _ in pairs], [t for _, t in pairs]) if len(pairs) > 1 else None
    return rho, sum(abs(p - t) <= 0.1 * t for p, t in pairs) / len(pairs)


def truth_held_out(
    run: dict[str, Any], designs: dict[Keys, Any], truth: dict[Keys, float], measurer: Measurer
) -> dict[str, Any]:
    """The calibration fitted on the run's measured designs, judged on the truth designs it did not measure."""
    times = step_times(run["attrs"])
    # the targets the run's last fit used: its interleaved re-times where stored, else the screening medians
    retimed = [run["attrs"].get(RETIME_ATTR + measure_key(c.design, measurer)) for c in run["result"].candidates]
    cands = run["result"].candidates
    targets = [float(r) for r in retimed] if all(r is not None for r in retimed) else [c.median_s for c in cands]
    fitted = [(design_features(c.design, times), t) for c, t in zip(cands, targets, strict=True)]
    rows = [(r, t) for r, t in fitted if r is not None and t > 0]
    if not rows:
        return {"truth_held_out_spearman": None, "truth_held_out_within_10pct": None, "truth_held_out": 0}
    fit, _quality = calibrated([r for r, _ in rows], [t for _, t in rows])
    seen = {c.keys for c in run["result"].candidates}
    pairs = []
    for k in truth:
        row = design_features(designs[k], times)
        if k not in seen and row is not None:
            pairs.append((fit.predict(row), truth[k]))
    rho, within = agreement(pairs)
    return {
        "truth_held_out_spearman": rho,
        "truth_held_out_within_10pct": within,
        "truth_held_out": len(pairs),
        "form": fit.form.name,
    }


def one_problem(name: str, args: argparse.Namespace) -> dict[str, Any]:
    problem = problem_mod.load(str(ROOT / "problems" / f"{name}.toml"))
    solution = solve(problem, top=20)
    space = SolutionSpace(solution)
    valid = solution.count
    # at least ``--min-trials`` so the model's held-out figures exist (it needs 4+ designs, the race some too)
    trials = min(valid, max(args.min_trials, min(args.max_trials, math.floor(args.share * valid))))
    reference = space.picks(solution.reference.choices) if solution.reference is not None else None
    measure = MeasureSettings(
        device="cpu",
        batch_size=args.batch,
        repeats=args.repeats,
        warmup=2,
        min_sample_s=args.sample_s,
        threads=1,
        clock="cpu",
    )
    runs: list[dict[str, Any]] = []
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-rank-{name}-"))
    for seed in range(args.runs):
        started = time.perf_counter()
        settings = RankSettings(
            trials=trials,
            results_dir=tmp / f"run{seed}",
            seed=seed,
            race_rounds=args.race_rounds,
            pareto=False,
        )
        result = rank(space, settings, measure, reference=reference)
        storage = open_storage(result.storage)
        import optuna

        study = optuna.load_study(study_name=result.study_name, storage=storage)
        runs.append(
            {
                "seed": seed,
                "result": result,
                "attrs": dict(study.user_attrs),
                "wall_s": time.perf_counter() - started,
                "measured": len(result.candidates),
            }
        )
        print(f"  {name} search {seed}: {len(result.candidates)} measured in {runs[-1]['wall_s']:.0f} s", flush=True)
    picks = truth_set(space, valid, args.exhaustive, args.sample, seed=0)
    keys = [tuple(space.step_options()[i][j] for i, j in enumerate(p)) for p in picks]
    designs: dict[Keys, Any] = {}
    for k, p in zip(keys, picks, strict=True):
        design = space.design(p)
        if design is not None:
            designs[k] = design
    extra = 0
    for run in runs:
        result = run["result"]
        for cand in (result.winner, result.reference):
            if cand is not None and cand.keys not in designs:
                designs[cand.keys] = cand.design
                extra += 1
        attrs = run["attrs"]
    if valid > args.exhaustive:  # the model's predicted top 50 among the pool of the first run's study
        attrs = runs[0]["attrs"]
        pool = [(predicted(attrs, d), k, d) for k, d in _pool(space, 5000)]
        top = sorted((t, k, d) for t, k, d in pool if t is not None)[:50]
        for _t, k, d in top:
            designs.setdefault(k, d)
    started = time.perf_counter()
    measurer = Measurer(measure)
    order = list(designs)
    timed = measurer.interleaved([(build(designs[k]), sample_shape(designs[k], measure)) for k in order], args.rounds)
    truth = {k: r.median_s for k, r in zip(order, timed, strict=True) if isinstance(r, Measurement)}
    truth_s = time.perf_counter() - started
    best = min(truth, key=lambda k: truth[k])
    print(f"  {name} truth: {len(truth)} designs interleaved in {truth_s:.0f} s", flush=True)
    rows = []
    for run in runs:
        result = run["result"]
        win = result.winner
        regret = truth[win.keys] / truth[best] - 1 if win is not None and win.keys in truth else None
        ties = {c.keys for c in result.ties}
        raw = [(predicted(run["attrs"], designs[k]), truth[k]) for k in truth]
        pairs = [(p, t) for p, t in raw if p is not None]
        rho, within = agreement(pairs)
        q = result.quality
        rows.append(
            {
                "seed": run["seed"],
                "winner": list(win.keys) if win else None,
                "truth_best": list(best),
                "regret": regret,
                "declared_tie_with_truth_best": best in ties,
                "winner_is_truth_best": win is not None and win.keys == best,
                "measured": run["measured"],
                "share_used": run["measured"] / valid,
                "truth_spearman": rho,
                "truth_within_10pct": within,
                "truth_predicted": len(pairs),
                "study_spearman": q.spearman if q else None,
                "study_within_10pct": q.within_10pct if q else None,
                "study_held_out_spearman": q.held_out_spearman if q else None,
                "study_held_out_within_10pct": q.held_out_within_10pct if q else None,
                "study_held_out": q.held_out_designs if q else 0,
                "model_ranks": q.ranks if q else None,
                **truth_held_out(run, designs, truth, measurer),
                "model_s": result.run.model_s,
                "screen_s": result.run.screen_s,
                "race_s": result.run.race_s,
                "race_rounds": max((e.rounds for e in result.race.entries), default=0) if result.race else 0,
                "race_ratio": result.race.winner.ratio if result.race else None,
                "race_interval": [result.race.winner.low, result.race.winner.high] if result.race else None,
                "race_ties": len(ties),
                "race_noisy": result.race.noisy if result.race else None,
                "wall_s": run["wall_s"],
            }
        )
    return {
        "problem": name,
        "valid": valid,
        "trials": trials,
        "truth_designs": len(truth),
        "truth_mode": "exhaustive" if valid <= args.exhaustive else f"uniform {args.sample} + predicted top 50",
        "truth_s": truth_s,
        "runs": rows,
    }


def _pool(space: SolutionSpace, limit: int) -> list[tuple[Keys, Any]]:
    out = []
    options = space.step_options()
    for p in space.candidates(limit):
        d = space.design(p)
        if d is not None:
            out.append((tuple(options[i][j] for i, j in enumerate(p)), d))
    return out


def summary(name: str, rows: list[dict[str, Any]], report: dict[str, Any]) -> str:
    def med(key: str, fmt: str) -> str:
        values = [r[key] for r in rows if r[key] is not None]
        if not values:
            return "n/a"
        return f"{format(statistics.median(values), fmt)} [{format(min(values), fmt)}–{format(max(values), fmt)}]"

    ok = sum(1 for r in rows if (r["regret"] is not None and r["regret"] <= 0.05) or r["declared_tie_with_truth_best"])
    return (
        f"{name}: {report['valid']:,} valid, {report['trials']} trials/run "
        f"({report['trials'] / report['valid']:.0%} of valid), truth {report['truth_designs']} "
        f"({report['truth_mode']})\n"
        f"  regret {med('regret', '.1%')}; ≤5 % or declared tie in {ok}/{len(rows)} runs\n"
        f"  share used {med('share_used', '.1%')}\n"
        f"  model, study held out: Spearman {med('study_held_out_spearman', '.2f')}, "
        f"within ±10 % {med('study_held_out_within_10pct', '.0%')} (goal ≥ 0.90, ≥ 80 %); "
        f"ranks in {sum(r['model_ranks'] is True for r in rows)}/{len(rows)}\n"
        f"  model, truth held out: Spearman {med('truth_held_out_spearman', '.2f')}, "
        f"within ±10 % {med('truth_held_out_within_10pct', '.0%')}\n"
        f"  raw step sum vs truth: Spearman {med('truth_spearman', '.2f')}, "
        f"within ±10 % {med('truth_within_10pct', '.0%')}\n"
        f"  phases: step timings {med('model_s', '.1f')} s, screening {med('screen_s', '.1f')} s, "
        f"race {med('race_s', '.1f')} s ({med('race_rounds', '.0f')} rounds), run {med('wall_s', '.1f')} s\n"
        f"  race: winner/reference {med('race_ratio', '.2f')}; noisy in "
        f"{sum(bool(r['race_noisy']) for r in rows)}/{len(rows)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=7, help="rounds of the interleaved truth measurement")
    parser.add_argument("--race-rounds", type=int, default=RankSettings.race_rounds, help="the search's race, at most")
    parser.add_argument("--sample-s", type=float, default=0.005)
    parser.add_argument("--share", type=float, default=0.10)
    parser.add_argument("--min-trials", type=int, default=8)
    parser.add_argument("--max-trials", type=int, default=12)
    parser.add_argument("--exhaustive", type=int, default=300)
    parser.add_argument("--sample", type=int, default=200)
    args = parser.parse_args()
    load = os.getloadavg()
    reports = []
    for name in args.problems.split(","):
        report = one_problem(name, args)
        reports.append(report)
        print(summary(name, report["runs"], report), flush=True)
    out = ROOT / "benchmarks" / "results" / f"rank-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    raw = {
        "args": vars(args),
        "load_average_at_start": load,
        "load_average_at_end": os.getloadavg(),
        "problems": reports,
    }
    out.write_text(json.dumps(raw, indent=2, default=str) + "\n")
    print(f"raw numbers: {out}")


if __name__ == "__main__":
    main()
