"""The functions ``import archsolve`` gives: each stage of the pipeline as one call.

Every function here imports its stage only when called, so ``import archsolve``
stays light (no torch, z3 or optuna).  The command line is a thin layer over
these functions (:mod:`archsolve.cli.commands`); nothing here prints.

The pipeline, on a problem built in code::

    problem = archsolve.Problem.create(name="tiny", sizes=[4, 8], channels=[8, 3], ops="conv_transpose")
    solution = archsolve.solve(problem)          # exact count, best designs
    result = archsolve.rank(solution, trials=4)  # measured throughput (optuna, torch)
    source = archsolve.emit_source(result)       # the winner as PyTorch source
    print(archsolve.summary(result))             # shapes, parameters, MACs
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputError

if TYPE_CHECKING:
    from torch import nn

    from .build.summary import Summary
    from .check.report import CheckResult
    from .design.design import Design
    from .design.explore import Exploration
    from .design.search_space import SearchSpace
    from .problem.problem import Problem
    from .rank import RankProgress, RankResult
    from .rank.settings import MeasureSettings, RankSettings
    from .solve import Solution, SolveProgress


def load_problem(path: str | Path, overrides: Sequence[str] = (), *, rank: Mapping[str, Any] | None = None) -> Problem:
    """Read and check a problem file (docs/problems.md); ``overrides`` are ``KEY=VALUE`` as ``--set`` takes.

    ``rank`` holds ``[rank]`` values given as Python values (``{"trials": 8}``), which replace the
    file's; a ``None`` value is not given.  Every issue in the file and in ``rank`` is reported at
    once, in one :class:`~archsolve.InputError`.

    >>> import archsolve
    >>> problem = archsolve.load_problem("problems/dcgan_generator.toml", ["search.kernel=4"], rank={"trials": 8})
    >>> problem.name, problem.n_steps, problem.ranges[0].kernel, problem.rank.trials
    ('dcgan-generator', 5, (4, 4), 8)
    """
    from .problem.problem import load

    problem = load(path, overrides)
    given = {key: value for key, value in (rank or {}).items() if value is not None}
    if not given:
        return problem
    search, measure = _rank_settings(problem.rank, problem.measure, given, str(path))
    return replace(problem, rank=search, measure=measure)


def explore(
    size_in: int | Sequence[int] | str,
    size_out: int | Sequence[int] | str,
    ops: Iterable[str] | None = None,
    *,
    max_kernel: int = 8,
    max_stride: int = 4,
    max_padding: int = 4,
    max_dilation: int = 1,
    show_all: bool = False,
) -> Exploration:
    """Every single-layer recipe taking ``size_in`` to ``size_out`` (``archsolve explore``).

    Sizes are an int (a square: one recipe on every axis), ``"HxW"`` or a list per axis.
    The per-layer rules a problem applies by default leave recipes out; ``show_all`` lists every
    recipe torch runs, each with its rule flags.

    >>> import archsolve
    >>> found = archsolve.explore(16, 32, ["conv_transpose"], max_kernel=4, max_stride=2, max_padding=1)
    >>> found
    <Exploration 16 → 32: 3 recipes>
    >>> found.left_out  # conv_transpose k1 s2 op1 leaves every other output unwritten
    1
    >>> found.recipes[-1].fields()
    {'kernel': 4, 'stride': 2, 'padding': 1, 'output_padding': 0, 'dilation': 1}
    """
    from .core.sizes import parse_size
    from .design.explore import explore as explore_recipes
    from .design.explore import explore_ranges

    def size(value: int | Sequence[int] | str) -> int | Sequence[int]:
        if isinstance(value, str):
            parsed = parse_size(value)
            return parsed[0] if len(parsed) == 1 else parsed
        return value

    ranges = explore_ranges(max_kernel, max_stride, max_padding, max_dilation)
    return explore_recipes(size(size_in), size(size_out), ops, ranges, show_all)


def solve(
    problem: Problem | str | Path,
    *,
    top: int = 10,
    time_limit: float | None = None,
    progress: Callable[[SolveProgress], None] | None = None,
    expand: bool = False,
) -> Solution:
    """Count every valid design exactly and find the ``top`` best by the objective (``solve --no-rank``).

    The list holds ``top`` distinct ideas: a design that differs from a listed one in a single step is
    folded under it (``candidate.variants``); ``expand=True`` lists the ``top`` best designs one by one.

    ``problem`` is a :class:`~archsolve.Problem` or a problem file's path.  Raises
    :class:`~archsolve.InfeasibleError` explaining why when there is no design, and
    :class:`~archsolve.SolverTimeout` when ``time_limit`` (seconds; default the problem's) runs out.
    ``progress`` hears the phase and step (:class:`~archsolve.solve.SolveProgress`) as the solve goes.

    >>> import archsolve
    >>> problem = archsolve.Problem.create(name="tiny", sizes=[1, 4], channels=[16, 8], ops="conv_transpose")
    >>> solution = archsolve.solve(problem, top=2)
    >>> solution
    <Solution 'tiny': 8 valid designs, best 2 listed>
    >>> solution.best
    <Design 'tiny': 16x1x1 → 8x4x4, 2,056 params, 2,048 MACs>
    """
    from .solve.solver import solve as solve_problem

    return solve_problem(_problem(problem), top=top, time_limit=time_limit, progress=progress, expand=expand)


def rank(
    designs: Solution | SearchSpace,
    *,
    trials: int | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    dtype: str | None = None,
    mode: str | None = None,
    warmup: int | None = None,
    repeats: int | None = None,
    channels_last: bool | None = None,
    time_steps: int | None = None,
    storage: str | None = None,
    study: str | None = None,
    results_dir: str | Path | None = None,
    pareto: bool | None = None,
    seed: int | None = None,
    sampler: str | None = None,
    screen_repeats: int | None = None,
    cuda_graphs: bool | None = None,
    progress: Callable[[RankProgress], None] | None = None,
) -> RankResult:
    """Measure designs on this machine in an Optuna study and rank them by throughput.

    ``designs`` is a :class:`Solution` (its problem's ``[rank]`` table gives the
    defaults) or any :class:`~archsolve.design.search_space.SearchSpace`.  The other keywords
    are the ``[rank]`` keys (docs/problems.md#rank); each one given (not ``None``)
    replaces the problem's value and is checked as the file's would be.  ``progress`` receives a
    :class:`~archsolve.rank.RankProgress` after every timing (step timings, each screened design,
    each race round); without one, a notebook shows a progress bar per phase and anywhere else
    nothing is shown.

    >>> import archsolve, tempfile
    >>> solution = archsolve.solve(archsolve.Problem.create(sizes=[2, 4], channels=[4, 2], ops="conv_transpose"))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     result = archsolve.rank(solution, trials=2, batch_size=1, repeats=3, warmup=1, results_dir=tmp)
    >>> len(result.candidates), result.winner.throughput > 0
    (2, True)
    """
    from .rank import rank as rank_space
    from .rank.progress import notebook_progress
    from .solve import Solution, SolutionSpace

    reference: Any = None
    if isinstance(designs, Solution):
        solved = SolutionSpace(designs)
        space: SearchSpace = solved
        search, measure = designs.problem.rank, designs.problem.measure
        if designs.reference is not None:
            # The reference's choices as picks of the space; one outside the searched ranges is matched by design.
            try:
                reference = solved.picks(designs.reference.choices)
            except KeyError:
                reference = designs.reference.design
    else:
        from .rank.settings import MeasureSettings, RankSettings

        space, search, measure = designs, RankSettings(), MeasureSettings()
    given = {
        "trials": trials, "batch_size": batch_size, "device": device, "dtype": dtype, "mode": mode,
        "warmup": warmup, "repeats": repeats, "channels_last": channels_last, "time_steps": time_steps,
        "storage": storage, "study": study, "results_dir": None if results_dir is None else str(results_dir),
        "pareto": pareto, "seed": seed, "sampler": sampler, "screen_repeats": screen_repeats,
        "cuda_graphs": cuda_graphs,
    }  # fmt: skip
    overrides = {key: value for key, value in given.items() if value is not None}
    search, measure = _rank_settings(search, measure, overrides)
    shown = notebook_progress() if progress is None else None  # a bar in a notebook; silent elsewhere
    try:
        return rank_space(space, search, measure, progress or shown, reference=reference)
    finally:
        if shown is not None:
            shown.close()


def _rank_settings(
    search: RankSettings, measure: MeasureSettings, settings: Mapping[str, Any], source: str = "rank()"
) -> tuple[RankSettings, MeasureSettings]:
    """``search`` and ``measure`` with ``[rank]`` keys replaced, checked as the problem file's ``[rank]`` table is."""
    from .design.checks import Checker
    from .problem.problem import read_rank

    check = Checker(source)
    changed = read_rank(check, settings, search, measure)
    if check.issues:
        raise InputError(check.issues)
    return changed


def best_design(designs: Any) -> Design:
    """The design the design-taking functions work on.

    A :class:`Design` as it is; a candidate's (solved or measured) or a :class:`Summary`'s
    design; a :class:`RankResult`'s winner; a :class:`Solution`'s best by the objective;
    a :class:`Problem` solved for its best; a path to a saved design (``.toml``/``.json``)
    or to a problem file.

    >>> best_design("problems/dcgan_generator.toml")  # doctest: +ELLIPSIS
    <Design 'dcgan-generator': 100x1x1 → 512x4x4 → ... → 3x64x64, 1,511,936 params, 26,771,456 MACs>
    """
    from .build.summary import Summary
    from .design.design import Design
    from .problem.problem import Problem
    from .rank import Candidate as Measured
    from .rank import RankResult
    from .solve import Candidate, Solution

    if isinstance(designs, Design):
        return designs
    if isinstance(designs, Candidate | Measured | Summary):
        return designs.design
    if isinstance(designs, RankResult):
        if designs.winner is None:
            raise InputError(f"{designs.problem}: nothing was measured, so there is no winner")
        return designs.winner.design
    if isinstance(designs, Solution):
        return designs.best
    if isinstance(designs, Problem):
        return solve(designs, top=1).best
    if isinstance(designs, str | Path):
        return _design_file(Path(designs))
    raise InputError(f"expected a design, solution, ranking, problem or file path, got {type(designs).__name__}")


def _design_file(path: Path) -> Design:
    """A saved design, or a problem file's best design (a problem is told apart by its keys)."""
    import tomllib

    from .problem.saved import load_design as load_saved
    from .problem.saved import looks_like_problem

    if path.suffix.lower() == ".toml":
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            data = {}  # load_design names the file and what is wrong with it
        if looks_like_problem(data):
            return solve(load_problem(path), top=1).best
    return load_saved(path)


def _problem(problem: Problem | str | Path) -> Problem:
    return load_problem(problem) if isinstance(problem, str | Path) else problem


def build(designs: Any) -> nn.Module:
    """The design as a torch module; ``designs`` is a design, a candidate or a result (:func:`best_design`).

    >>> import archsolve, torch
    >>> net = archsolve.build("problems/dcgan_generator.toml")
    >>> tuple(net(torch.zeros(2, 100, 1, 1)).shape)
    (2, 3, 64, 64)
    """
    from .build.modules import build as build_module

    return build_module(best_design(designs))


def emit_source(designs: Any, class_name: str | None = None) -> str:
    """Standalone PyTorch source (it imports torch only) defining the design as one ``nn.Module`` class.

    >>> import archsolve
    >>> source = archsolve.emit_source("problems/dcgan_generator.toml", class_name="Generator")
    >>> "class Generator(nn.Module):" in source
    True
    """
    from .build.emit import emit_source as emit

    return emit(best_design(designs), class_name)


def check(
    model: nn.Module,
    input_shape: str | tuple[int | None, ...],
    size_range: tuple[int, int] | str = (1, 1024),
    *,
    fix: int | None = None,
    time_limit: float | None = None,
    name: str | None = None,
    method: str = "auto",
) -> CheckResult:
    """Which sizes of the ``?`` axes ``model`` runs at, what comes out, where it breaks, the smallest fix.

    A structural copy runs on the meta device, and a CPU copy (the model's weights, or zeros) where
    the meta device cannot answer or a forward per size is cheaper; the model is left as it was.
    ``fix``: the size to find the smallest fix for (default: the first failing size above one that
    runs); ``time_limit`` in seconds (default 300); ``name`` labels the report (default: the model's
    class); ``method``: ``auto``, ``graph`` or ``run`` (docs/check.md)::

    >>> import torch, archsolve
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.MaxPool2d(2))
    >>> h = archsolve.check(net, "1x3x?x?", size_range=(1, 64)).axis("H")
    >>> h.runs.text("H"), h.output.text("H")
    ('H ≥ 5', '⌊(H − 1) / 4⌋')
    """
    from .check import check as run

    if time_limit is None:  # check's own default
        return run(model, input_shape, size_range, fix=fix, name=name, method=method)
    return run(model, input_shape, size_range, fix=fix, time_limit=time_limit, name=name, method=method)


def save_design(designs: Any, path: str | Path) -> Path:
    """Write the design to ``path`` (``.toml`` or ``.json``), readable back by :func:`load_design`.

    >>> import archsolve, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = archsolve.save_design("problems/dcgan_generator.toml", Path(tmp) / "generator.toml")
    ...     archsolve.load_design(path).out_shape
    (3, 64, 64)
    """
    from .problem.saved import save_design as save

    return save(best_design(designs), path)


def load_design(path: str | Path) -> Design:
    """Read a saved design; every layer is remade through the op catalog and must agree with the file.

    >>> import archsolve
    >>> archsolve.load_design("problems/dcgan_generator.toml")
    Traceback (most recent call last):
    ...
    archsolve.errors.InputError: problems/dcgan_generator.toml: this is a problem file, not a saved design; ...
    """
    from .problem.saved import load_design as load

    return load(path)


def summary(designs: Any, *, check: bool = True) -> Summary:
    """Keras-style summary (shapes, parameters, MACs) of the design; with ``check``, confirmed by torch.

    >>> import archsolve
    >>> table = archsolve.summary("problems/dcgan_generator.toml")
    >>> table
    <Summary 'dcgan-generator': 1,511,936 params, 26,771,456 MACs>
    >>> table.checked, table.params.trainable
    (True, 1510016)
    """
    from .build.summary import summarize

    return summarize(best_design(designs), check=check)
