"""The command line: the only place that prints or exits.

Library errors (:mod:`archsolve.errors`) become one clear message on stderr
and their exit code; click's own usage errors exit 2 as well.  Heavy modules
(torch, optuna, z3) are imported inside the commands that need them.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..errors import ArchsolveError

if TYPE_CHECKING:
    from ..core.console import Terminal
    from ..problem.problem import Problem
    from ..rank import RankProgress, RankResult
    from ..solve import Solution, SolveProgress

F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(func: F) -> F:
    """Turn an :class:`ArchsolveError` into its message and exit code, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ArchsolveError as exc:
            _error(f"error: {exc}")
            sys.exit(exc.exit_code)
        except RuntimeError as exc:
            # torch reports with a C++ stack under its message: the first line is the message
            lines = str(exc).strip().splitlines()
            _error(f"error: {lines[0] if lines else type(exc).__name__}")
            sys.exit(1)
        except MemoryError:  # plain click: no new module to import with the memory gone
            click.echo("error: out of memory; narrow the search ranges or the sizes", err=True)
            sys.exit(3)
        except KeyboardInterrupt:
            _error("interrupted")
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def _error(text: str) -> None:
    """A message on stderr, through rich like all human output (never re-wrapped)."""
    _terminal().line(text, err=True)


class OneLineUsage(click.Command):
    """A command whose usage errors (bad value, unknown option) are one line on stderr and exit 2.

    Click would print the usage and a hint around the message; bad input should
    read like every other archsolve error.
    """

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            message = exc.format_message()
            if isinstance(exc, click.NoSuchOption) and exc.option_name.lstrip("-").isdigit():
                message = f"{exc.option_name} is not a size: sizes are positive integers"  # click read -3 as an option
            _error(f"error: {message}")
            sys.exit(exc.exit_code)


class Commands(click.Group):
    """The archsolve group: every command reports usage errors in one line (:class:`OneLineUsage`)."""

    command_class = OneLineUsage


class SizeParam(click.ParamType):  # type: ignore[type-arg]  # generic only from click 8.2
    """``16`` (square) or ``HxW`` / ``DxHxW`` (per axis)."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        from ..core.sizes import parse_size

        try:
            size = parse_size(value)
            return size[0] if len(size) == 1 else size  # one number: a square (one recipe on every axis)
        except ArchsolveError as exc:
            self.fail(str(exc), param, ctx)


class OpKindParam(click.ParamType):  # type: ignore[type-arg]
    """A kind of the op catalog, with a 'did you mean' hint for a misspelling."""

    name = "kind"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from ..catalog import kind

        try:
            return kind(str(value)).name
        except ArchsolveError as exc:
            self.fail(str(exc), param, ctx)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="archsolve")
def main() -> None:
    """Find every layer recipe that produces the tensor sizes you want, and the fastest one."""


@main.command("explore")
@click.argument("size_in", metavar="IN", type=SizeParam())
@click.argument("size_out", metavar="OUT", type=SizeParam())
@click.option(
    "--op",
    "op_names",
    multiple=True,
    type=OpKindParam(),
    metavar="KIND",
    help="Op kind to list (repeatable). Default: every kind with a recipe to choose "
    "(conv, conv_transpose, max_pool, avg_pool, upsample, pixel_shuffle, pixel_unshuffle, "
    "residual_block, conv_lstm); the norms keep any size and are listed only when asked for.",
)
@click.option("--max-kernel", type=click.IntRange(min=1), default=8, show_default=True, help="Largest kernel size.")
@click.option(
    "--max-stride",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Largest stride; also the largest upsample scale and pixel (un)shuffle factor.",
)
@click.option("--max-padding", type=click.IntRange(min=0), default=4, show_default=True, help="Largest padding.")
@click.option("--max-dilation", type=click.IntRange(min=1), default=1, show_default=True, help="Largest dilation.")
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="List every recipe torch runs, also those the default rules leave out (gaps, dead pixels, identity, "
    "unfaithful resampling), each with its flags.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print one JSON object: {"version", "in", "out", "count", "all", "left_out", "recipes": [...]} '
    "(docs/json.md).",
)
@reports_errors
def explore_cmd(
    size_in: int | tuple[int, ...],
    size_out: int | tuple[int, ...],
    op_names: tuple[str, ...],
    max_kernel: int,
    max_stride: int,
    max_padding: int,
    max_dilation: int,
    show_all: bool,
    as_json: bool,
) -> None:
    """List every single-layer recipe that maps size IN to size OUT.

    IN and OUT are an integer (a square 2D input: one recipe on both axes) or
    HxW / DxHxW (each axis gets its own recipe, so non-square kernels are listed
    too). Every recipe torch accepts within the ranges is listed once (k=1 is the
    same layer at any dilation), in a stable order. output_padding is searched up
    to torch's own limit (smaller than stride or dilation) and pools try
    ceil_mode both ways. checkerboard: a transposed conv whose taps overlap
    unevenly (kernel not divisible by stride). gaps: output pixels no input
    reaches (transposed conv) or input pixels never read (conv, pools). dead:
    output pixels that see only padding. identity: the layer computes nothing.
    faithful: the stride is the rounded size ratio and the inputs feeding the
    outputs stay in order (docs/problems.md). The rules a problem applies by
    default (no gaps, no dead pixels, no identity, faithful) leave recipes out;
    --all lists every one torch runs.

    Exits 1, naming the nearest reachable OUT sizes, when nothing fits; 2 on bad input.
    """
    from .. import api

    result = api.explore(
        size_in,
        size_out,
        op_names or None,
        max_kernel=max_kernel,
        max_stride=max_stride,
        max_padding=max_padding,
        max_dilation=max_dilation,
        show_all=show_all,
    )
    if as_json:
        _echo_json(result.to_dict())
    else:
        _terminal().table(result.table())


def _echo_json(data: dict[str, Any]) -> None:
    """Every command's ``--json`` output: one object, its format version first (docs/json.md)."""
    from ..core.formats import versioned

    click.echo(json.dumps(versioned(data), indent=2))


def _terminal() -> Terminal:
    """The command's output streams (made per call: click's test runner swaps sys.stdout per invocation)."""
    from ..core.console import Terminal

    return Terminal()


@main.command()
@click.argument("problem_file", metavar="PROBLEM.toml", type=click.Path(dir_okay=False, path_type=str))
@click.option("--no-rank", is_flag=True, help="Count and list valid designs without measuring them.")
@click.option(
    "--top", type=click.IntRange(min=1, max=10_000), default=10, show_default=True, help="How many designs to list."
)
@click.option(
    "--expand", is_flag=True, help="List the best designs one by one (default: designs one step apart are folded)."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables (docs/json.md).")
@click.option(
    "--emit", type=click.Path(dir_okay=False, path_type=str), help="Write the winner as standalone PyTorch source."
)
@click.option(
    "--save", type=click.Path(dir_okay=False, path_type=str), help="Save the winner's design (.toml or .json)."
)
@click.option(
    "--storage", help="Optuna storage URL shared by several workers (postgresql://…, mysql://…, journal file)."
)
@click.option("--study", help="Optuna study name (default: the problem's name).")
@click.option("--trials", type=click.IntRange(min=1), help="Designs to measure (default [rank].trials).")
@click.option("--device", help="auto, cpu, cuda, cuda:N or mps (default [rank].device).")
@click.option("--results-dir", type=click.Path(file_okay=False, path_type=str), help="Where the study and results go.")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True), help="Solver time limit in seconds.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a problem key, e.g. --set search.kernel=[4,4] (repeatable; keys in docs/problems.md).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr (results and errors still print).")
@reports_errors
def solve(
    problem_file: str,
    no_rank: bool,
    top: int,
    expand: bool,
    as_json: bool,
    emit: str | None,
    save: str | None,
    storage: str | None,
    study: str | None,
    trials: int | None,
    device: str | None,
    results_dir: str | None,
    time_limit: float | None,
    overrides: tuple[str, ...],
    quiet: bool,
) -> None:
    """Count every design that hits the sizes of PROBLEM.toml, list the best, rank them by measured speed.

    Ranking measures designs in an Optuna study kept in the results directory (SQLite), so a re-run
    continues it and never measures a design twice; --storage/--study share one study between workers.
    Every problem key: docs/problems.md.
    """
    from .. import api
    from . import report

    flags = {"storage": storage, "study": study, "trials": trials, "device": device, "results_dir": results_dir}
    problem = api.load_problem(problem_file, overrides, rank=flags)
    terminal = _terminal()
    solution = _solve(problem, top, time_limit, quiet=as_json or quiet, expand=expand)
    if no_rank:
        design = solution.candidates[0].design
        if as_json:
            _echo_json(report.solution_json(solution))
        else:
            terminal.line(report.count_line(solution))
            terminal.table(report.solution_table(solution))
            if (line := report.reference_line(solution)) is not None:
                terminal.line(line)
    else:
        if not as_json:
            terminal.line(report.count_line(solution))
        result = _rank(solution, quiet=as_json or quiet)
        winner = result.winner
        assert winner is not None  # rank() raises MeasureError when nothing could be measured
        design = winner.design
        if as_json:
            _echo_json(report.ranked_json(solution, result))
        else:
            for line in report.ranked_warnings(result):
                terminal.line(line)
            terminal.table(report.ranked_table(result, problem))
            for line in report.ranked_lines(result, problem):
                terminal.line(line)
    if emit:
        from ..design.checks import write_text

        write_text(emit, api.emit_source(design))
        if not as_json:
            terminal.line(f"wrote {emit}")
    if save:
        api.save_design(design, save)
        if not as_json:
            terminal.line(f"wrote {save}")


def _solve(problem: Problem, top: int, time_limit: float | None, quiet: bool, expand: bool = False) -> Solution:
    """Solve, with the solver's phase and step on stderr once it has taken a second (unless ``quiet``)."""
    from .. import api
    from .progress import PhaseProgress

    with PhaseProgress(enabled=not quiet) as bars:

        def hear(event: SolveProgress) -> None:
            if event.elapsed_s >= 1.0:  # a quick solve shows nothing
                bars.update("solve", event.step, event.steps, detail=event.phase)

        return api.solve(problem, top=top, time_limit=time_limit, progress=hear, expand=expand)


def _rank(solution: Solution, quiet: bool) -> RankResult:
    """Measure and rank the solution's designs, each phase's progress on stderr (unless ``quiet``)."""
    from .. import api
    from .progress import PhaseProgress

    with PhaseProgress(enabled=not quiet) as bars:

        def hear(event: RankProgress) -> None:
            best = f"{event.best_throughput:,.1f} samples/s" if event.best_throughput else None
            bars.update(event.phase, event.done, event.total, eta_s=event.eta_s, best=best)

        return api.rank(solution, progress=None if quiet else hear)


@main.command("build")
@click.argument("design_file", metavar="DESIGN|PROBLEM", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=str),
    help="Write the PyTorch source here (default: print it).",
)
@click.option("--class-name", help="Name of the generated nn.Module subclass (default: from the design's name).")
@click.option("--no-check", is_flag=True, help="Skip the meta-device cross-check of shapes and counts against torch.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object: class, shapes, counts, source (docs/json.md)."
)
@reports_errors
def build_cmd(design_file: str, output: str | None, class_name: str | None, no_check: bool, as_json: bool) -> None:
    """Write standalone PyTorch source (imports torch only) for a saved DESIGN or a PROBLEM's best design."""
    from .. import api
    from ..build.emit import class_name as default_class_name

    design = api.best_design(design_file)
    if not no_check:
        api.summary(design, check=True)  # torch must agree with every shape and count before source is written
    name = class_name or default_class_name(design)
    source = api.emit_source(design, name)
    if output is not None:
        from ..design.checks import write_text

        write_text(output, source)
    params = design.params
    if as_json:
        _echo_json(
            {
                "design": design.name,
                "class": name,
                "in_shape": list(design.in_shape),
                "out_shape": list(design.out_shape),
                "params": {"total": params.total, "trainable": params.trainable, "non_trainable": params.non_trainable},
                "macs": design.macs,
                "checked": not no_check,
                "output": output,
                "source": source,
            }
        )
    elif output is None:
        click.echo(source, nl=False)  # the source itself, byte for byte: data, as JSON is
    else:
        _terminal().line(
            f"wrote {output}: class {name}, "
            f"{list(design.in_shape)} → {list(design.out_shape)}, "
            f"{params.trainable:,} trainable + {params.non_trainable:,} non-trainable parameters"
        )


@main.command("summary")
@click.argument("design_file", metavar="DESIGN|PROBLEM", type=click.Path(dir_okay=False, path_type=str))
@click.option("--no-check", is_flag=True, help="Skip the meta-device cross-check of shapes and counts against torch.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: rows and totals (docs/json.md).")
@reports_errors
def summary_cmd(design_file: str, no_check: bool, as_json: bool) -> None:
    """Keras-style table for a saved design (or a problem's best design): shapes, parameters, MACs.

    Every number comes from the op catalog and is checked against the module
    built on torch's meta device (no memory, no weights) unless --no-check.
    """
    from .. import api

    result = api.summary(design_file, check=not no_check)
    if as_json:
        _echo_json(result.to_dict())
    else:
        _terminal().table(result.table())


@main.command("check")
@click.argument("target", metavar="TARGET")
@click.option(
    "--input",
    "input_shape",
    required=True,
    metavar="SHAPE",
    help="Input shape, ? on each axis to analyse, e.g. 1x3x?x?.",
)
@click.option(
    "--range",
    "size_range",
    default="1:1024",
    show_default=True,
    metavar="LOW:HIGH",
    help="Sizes tried on each ? axis (inclusive).",
)
@click.option("--kwargs", "kwargs_json", metavar="JSON", help="Keyword arguments for the class or factory.")
@click.option(
    "--fix",
    "fix_size",
    type=click.IntRange(min=1),
    metavar="SIZE",
    help="Size to find the smallest fix for (default: the first failing one above the smallest that runs).",
)
@click.option(
    "--emit",
    type=click.Path(dir_okay=False, path_type=str),
    help="With --fix on an archsolve design: write the fixed design's PyTorch source here.",
)
@click.option(
    "--time-limit",
    type=click.FloatRange(min=0, min_open=True),
    default=300.0,
    show_default=True,
    help="Seconds before giving up (exit 3).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (format in docs/check.md).")
@reports_errors
def check_cmd(as_json: bool, **options: Any) -> None:
    """Which sizes of the ? axes TARGET runs at, what comes out, where it breaks, and the smallest fix.

    TARGET is path/file.py:Name or package.module:Name (a class or factory; --kwargs for its arguments),
    or an archsolve design (.toml/.json, saved design or problem). The model itself is never run: copies run on
    the meta device and, where only values tell or it is cheaper, on CPU.
    """
    from ..check.cli import run_check

    # The options are run_check's parameters by name: its signature is the one list of them.
    result, written = run_check(**options)
    if as_json:
        _echo_json(result.to_dict())
    else:
        click.echo(result.text())
        if written:
            click.echo(f"wrote {written}")
    if result.fails:  # the one fixed shape given does not run
        sys.exit(1)
