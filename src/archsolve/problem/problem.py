"""Problem files (TOML) → frozen, checked values.

Every error in a file is gathered before anything is raised, each naming the
file, the key, the value and what was expected, with the nearest valid key for
typos.  Nothing here imports torch or z3.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.recipe import PADDING_WORDS, Ranges
from ..core.sizes import format_size, split_inputs
from ..design.checks import Checker, read_ops, read_text, show
from ..design.design import BuildOptions, Merge, Step
from ..design.notation import StepText, parse_design
from ..errors import InputError, Issue
from ..rank.settings import MeasureSettings, RankSettings

if TYPE_CHECKING:
    from .where import WhereItem

Ops = tuple[str, ...]
"""One way to do a step: a kind, or a composite such as ("upsample", "conv")."""

FREE = "?"
#: The largest size or channel count a file may give: torch indexes one dimension with int32 in places.
DIM_MAX = 2**31 - 1
DEFAULT_SIZE_RANGE = (1, 1024)
DEFAULT_CHANNEL_RANGE = (1, 1024)


@dataclass(frozen=True)
class SizeSpec:
    """One entry of ``sizes``: fixed per axis, or free within bounds (``"?"``)."""

    fixed: tuple[int, ...] | None
    low: int = 1
    high: int = DEFAULT_SIZE_RANGE[1]
    #: A plain ``"?"`` without ``search.size``: the solver sets the range from the neighbouring fixed sizes
    #: and what the step kinds can reach (``low``/``high`` are the fallback); see docs/problems.md.
    default: bool = False

    @property
    def free(self) -> bool:
        return self.fixed is None

    def allows(self, size: Sequence[int]) -> bool:
        if self.fixed is not None:
            return tuple(size) == self.fixed
        return all(self.low <= n <= self.high for n in size)

    def __str__(self) -> str:
        return format_size(self.fixed) if self.fixed is not None else f"?[{self.low}..{self.high}]"


@dataclass(frozen=True)
class Constraints:
    """``[constraints]``: budgets and design rules that apply to the whole trajectory."""

    max_params: int | None = None
    max_macs: int | None = None
    receptive_field: tuple[int, int] | None = None
    no_checkerboard: bool = False
    no_gaps: bool = True
    same_recipe: bool = False
    #: Reject a layer with an output pixel whose whole window lies in padding (or, transposed, that no input reaches).
    no_dead_pixels: bool = True
    #: Reject a step part that computes nothing (×1 upsample or pixel shuffle, a 1-wide pool that copies its input).
    no_identity: bool = True
    #: Recipes that compute the same function at the problem's sizes count once, as their smallest member.
    no_duplicates: bool = True
    #: Expressions over the steps' fields that every design meets (the language: docs/problems.md).
    where: tuple[WhereItem, ...] = ()
    #: Reject a layer whose stride is not its size ratio, or whose inputs' centres go backwards (ops.faithful).
    faithful: bool = True
    #: Reject a design whose output is constant along an axis of 2+ pixels for every weight and input.
    no_constant_output: bool = True
    #: Reject a step that enlarges an axis by a stride and shrinks it by another (upsample ×4, then stride 2).
    no_wasted_resampling: bool = True


@dataclass(frozen=True)
class RankKey:
    """One ``[rank]`` file key: the settings value it sets (``"rank"``: :class:`RankSettings`,
    ``"measure"``: :class:`MeasureSettings`), that value's field, and the type the file must give."""

    value: str
    field: str
    #: "integer", "word" (a string the settings value checks), "flag", "seed", "name" (non-empty string), "path".
    kind: str


#: ``[rank]`` file key → where it lands; the reader, ``archsolve.rank``'s keywords and the docs' test use this.
RANK_TABLE: dict[str, RankKey] = {
    "trials": RankKey("rank", "trials", "integer"),
    "batch_size": RankKey("measure", "batch_size", "integer"),
    "device": RankKey("measure", "device", "word"),
    "dtype": RankKey("measure", "dtype", "word"),
    "mode": RankKey("measure", "mode", "word"),
    "warmup": RankKey("measure", "warmup", "integer"),
    "repeats": RankKey("measure", "repeats", "integer"),
    "channels_last": RankKey("measure", "channels_last", "flag"),
    "time_steps": RankKey("measure", "time_steps", "integer"),
    "storage": RankKey("rank", "storage", "name"),
    "study": RankKey("rank", "study_name", "name"),
    "results_dir": RankKey("rank", "results_dir", "path"),
    "pareto": RankKey("rank", "pareto", "flag"),
    "seed": RankKey("rank", "seed", "seed"),
    "sampler": RankKey("rank", "sampler", "word"),
    "screen_repeats": RankKey("rank", "screen_repeats", "integer"),
    "cuda_graphs": RankKey("measure", "cuda_graphs", "flag"),
}


@dataclass(frozen=True)
class Problem:
    """A checked problem: trajectory, allowed kinds per step, ranges, constraints, objective."""

    name: str
    sizes: tuple[SizeSpec, ...]
    channels: tuple[int | None, ...]
    steps: tuple[tuple[Ops, ...], ...]  # per step, the alternatives; each a kind or a composite
    ranges: tuple[Ranges, ...]
    ndim: int = 2
    description: str = ""
    channel_range: tuple[int, int] = DEFAULT_CHANNEL_RANGE
    multiple_of: int = 1
    groups: int = 1
    per_axis: bool = False
    constraints: Constraints = field(default_factory=Constraints)
    objective: str = "params"
    time_limit: float = 30.0
    sequence: bool = False
    #: ``[rank]``: how candidates are searched, and how each is timed.
    rank: RankSettings = field(default_factory=RankSettings)
    measure: MeasureSettings = field(default_factory=MeasureSettings)
    build: BuildOptions = field(default_factory=BuildOptions)
    source: str = "<problem>"
    #: Encoder–decoder problems: the fixed encoder steps before the solved ones ([encoder] table).
    prefix: tuple[Step, ...] = ()
    #: How many input sizes one design must serve; sizes hold every input's axes, concatenated.
    inputs: int = 1
    #: Per solved step: its skip connection to an earlier output, if any.
    merges: tuple[Merge | None, ...] = ()
    #: Per solved step: the design step whose output has the size it must produce (-1: the input).
    size_from: tuple[int, ...] = ()
    #: Per solved step: the shape its skip joins (at the first input size).
    skip_shapes: tuple[tuple[int, ...] | None, ...] = ()
    #: The design to beat (``reference = "…"``, the notation tables print), one entry per solved step;
    #: checked against the sizes and constraints when solving (``Solution.reference``).
    reference: tuple[StepText, ...] = ()

    @classmethod
    def create(
        cls,
        *,
        name: str | None = None,
        description: str | None = None,
        sizes: Sequence[Any] | None = None,
        channels: Sequence[Any] | None = None,
        ops: str | Sequence[Any] | None = None,
        dims: int | None = None,
        sequence: bool | None = None,
        search: Mapping[str, Any] | None = None,
        constraints: Mapping[str, Any] | None = None,
        objective: Mapping[str, Any] | None = None,
        rank: Mapping[str, Any] | None = None,
        build: Mapping[str, Any] | None = None,
        encoder: Mapping[str, Any] | None = None,
        decoder: Mapping[str, Any] | None = None,
        reference: str | None = None,
        where: str | Sequence[str] | None = None,
    ) -> Problem:
        """A problem built in code: the keyword arguments are the problem file's keys and tables
        (docs/problems.md), checked exactly as a file's are; ``where`` is ``[constraints] where``.

        >>> problem = Problem.create(name="up", sizes=[8, 16, 32], channels=[64, "?", 3], ops="upsample+conv",
        ...                          search={"channels": [8, 32], "multiple_of": 8})
        >>> problem
        Problem('up': 8x8 → 16x16 → 32x32, 2 steps)
        """
        given = {
            "name": name,
            "description": description,
            "sizes": list(sizes) if sizes is not None else None,
            "channels": list(channels) if channels is not None else None,
            "ops": ops if ops is None or isinstance(ops, str) else list(ops),
            "dims": dims,
            "sequence": sequence,
            "search": search,
            "constraints": constraints,
            "objective": objective,
            "rank": rank,
            "build": build,
            "encoder": encoder,
            "decoder": decoder,
            "reference": reference,
        }
        if where is not None:
            given["constraints"] = {**(constraints or {}), "where": where if isinstance(where, str) else list(where)}
        data = {key: _plain(value) for key, value in given.items() if value is not None}
        return from_dict(data, source="<code>", default_name="problem")

    def __repr__(self) -> str:
        return f"Problem({self.name!r}: {' → '.join(self.size_text(i) for i in range(len(self.sizes)))}, " + (
            f"{self.n_steps} steps)" if self.n_steps != 1 else "1 step)"
        )

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    def channel_options(self, index: int) -> Sequence[int]:
        """Channel counts allowed at boundary ``index`` (a lazy range: a free count may span billions)."""
        fixed = self.channels[index]
        if fixed is not None:
            return (fixed,)
        low, high = self.channel_range
        start = -(-low // self.multiple_of) * self.multiple_of
        return range(start, high + 1, self.multiple_of)

    def step_label(self, index: int) -> str:
        kinds = " | ".join("+".join(ops) for ops in self.steps[index])
        return f"step {index + 1} ({kinds} {self.size_text(index)} → {self.size_text(index + 1)})"

    def size_text(self, index: int) -> str:
        """A boundary's sizes; one ``HxW`` per declared input size."""
        spec = self.sizes[index]
        if spec.fixed is None or self.inputs == 1:
            return str(spec)
        return ", ".join(format_size(size) for size in split_inputs(spec.fixed, self.inputs))

    def merge(self, index: int) -> Merge | None:
        return self.merges[index] if self.merges else None


def _plain(value: Any) -> Any:
    """Tuples and mappings given in code as the lists and dicts a parsed TOML file holds."""
    if isinstance(value, Mapping):
        return {str(key): _plain(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# ------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------

TOP_KEYS = (
    "name",
    "description",
    "sizes",
    "channels",
    "ops",
    "dims",
    "sequence",
    "search",
    "constraints",
    "objective",
    "rank",
    "build",
    "encoder",
    "decoder",
    "reference",
)
SEARCH_RANGE_KEYS = ("kernel", "stride", "padding", "output_padding", "dilation", "scale")
SEARCH_KEYS = (
    *SEARCH_RANGE_KEYS,
    "ceil_mode",
    "channels",
    "multiple_of",
    "size",
    "per_axis",
    "groups",
    "time_limit",
    "step",
)
CONSTRAINT_KEYS = tuple(Constraints.__dataclass_fields__)
OBJECTIVES = ("params", "macs", "latency")
BUILD_KEYS = tuple(BuildOptions.__dataclass_fields__)
RANK_KEYS = tuple(RANK_TABLE)
DEFAULT_RANGES = Ranges()
#: The longest time limit a file or flag may set (seconds; about 11 days).
TIME_LIMIT_MAX = 1e6


def load(path: str | Path, overrides: Sequence[str] = ()) -> Problem:
    """Read and check a problem file; ``overrides`` are ``dotted.key=TOML value`` strings (``--set``)."""
    path = Path(path)
    text = read_text(path)
    return loads(text, source=str(path), overrides=overrides, default_name=path.stem)


def loads(
    text: str, source: str = "<problem>", overrides: Sequence[str] = (), default_name: str = "problem"
) -> Problem:
    text = text.removeprefix("\ufeff")  # a byte-order mark is not part of the text
    try:
        data = tomllib.loads(text)
        data = apply_overrides(data, overrides, source)
        return from_dict(data, source=source, default_name=default_name)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(Issue(source, f"not valid TOML: {exc}")) from exc
    except RecursionError:
        raise InputError(Issue(source, "arrays or tables nested too deeply to read")) from None


def apply_overrides(data: dict[str, Any], overrides: Sequence[str], source: str) -> dict[str, Any]:
    """``search.kernel=[4, 4]`` style overrides, values parsed as TOML."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InputError(Issue("--set", f"{item!r}: expected KEY=VALUE, e.g. search.kernel=[1, 4]"))
        try:
            parsed = tomllib.loads(f"v = {raw.strip()}")
        except tomllib.TOMLDecodeError:
            if "\n" in raw or "\r" in raw:
                raise InputError(Issue("--set", f"{key.strip()}: expected one TOML value, got {show(raw)}")) from None
            parsed = {"v": raw.strip()}  # a bare word: treat as a string
        if set(parsed) != {"v"}:
            # "a=1\nb=2" parses as two keys: refuse it rather than drop the second silently
            raise InputError(Issue("--set", f"{key.strip()}: expected one value per --set, got {show(raw)}"))
        value = parsed["v"]
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise InputError(Issue("--set", f"{key}: {part!r} is not a table"))
            node = child
        node[parts[-1]] = value
    return data


def from_dict(data: Mapping[str, Any], source: str = "<problem>", default_name: str = "problem") -> Problem:
    """Check a parsed problem table; raise one InputError listing every issue."""
    check = Checker(source, reference="docs/problems.md")
    check.keys(data, TOP_KEYS)

    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        check.add("name", f"expected a non-empty string, got {show(name)}")
        name = default_name
    description = data.get("description", "")
    if not isinstance(description, str):
        check.add("description", f"expected a string, got {show(description)}")
        description = ""

    ndim_given = data.get("dims")
    ndim = check.integer(ndim_given, "dims", 1, 3) if ndim_given is not None else None
    search = check.table(data, "search")
    check.keys(search, SEARCH_KEYS, "search.")
    size_range = check.span(search.get("size", list(DEFAULT_SIZE_RANGE)), "search.size", 1) or DEFAULT_SIZE_RANGE
    channel_range = check.span(search.get("channels", list(DEFAULT_CHANNEL_RANGE)), "search.channels", 1)
    multiple_of = check.integer(search.get("multiple_of", 1), "search.multiple_of", 1) or 1
    build = BuildOptions.read(check, data.get("build", {}))
    mirror = None
    if "encoder" in data or "decoder" in data:
        from .encoder import read_mirror

        for key in ("sizes", "channels", "ops"):
            if key in data:
                check.add(key, "not with [encoder]: the decoder's sizes and channels come from the encoder")
        mirror, ndim, mirror_ops = read_mirror(
            check, check.table(data, "encoder"), check.table(data, "decoder"), ndim, build
        )
        sizes = (
            [SizeSpec(size) if bound is None else SizeSpec(None, *bound) for size, bound in mirror.boundaries()]
            if mirror
            else []
        )
        channels: list[int | None] = list(mirror.channels) if mirror else []
        steps = list(mirror_ops)
        n_steps = len(steps)
    else:
        sizes, ndim = _sizes(check, data.get("sizes"), ndim, size_range, "size" not in search)
        n_steps = max(len(sizes) - 1, 0)
        channels = _channels(check, data.get("channels"), len(sizes), channel_range, multiple_of)
        steps = read_ops(check, data.get("ops"), n_steps, ndim)
    base = _ranges(check, search, "search.", DEFAULT_RANGES)
    ranges = _step_ranges(check, search.get("step", {}), base, n_steps)
    per_axis = check.boolean(search.get("per_axis", False), "search.per_axis")
    groups = check.integer(search.get("groups", 1), "search.groups", 1) or 1
    time_limit = search.get("time_limit", 30.0)
    if (
        isinstance(time_limit, bool)
        or not isinstance(time_limit, int | float)
        or not 0 < time_limit <= TIME_LIMIT_MAX  # nan and inf fail too
    ):
        check.add(
            "search.time_limit",
            f"expected a positive number of seconds up to {TIME_LIMIT_MAX:g}, got {show(time_limit)}",
        )
        time_limit = 30.0

    constraints = _constraints(check, check.table(data, "constraints"), n_steps, ndim or 2)
    objective_table = check.table(data, "objective")
    check.keys(objective_table, ("minimize",), "objective.")
    objective = check.choice(objective_table.get("minimize", "params"), "objective.minimize", OBJECTIVES)
    rank, measure = read_rank(check, check.table(data, "rank"))
    sequence = check.boolean(data.get("sequence", False), "sequence")
    reference = _reference(check, data.get("reference"))

    if check.issues:
        raise InputError(check.issues)
    return Problem(
        name=name,
        description=description,
        sizes=tuple(sizes),
        channels=tuple(channels),
        steps=tuple(steps),
        ranges=tuple(ranges),
        ndim=ndim or 2,
        channel_range=channel_range or DEFAULT_CHANNEL_RANGE,
        multiple_of=multiple_of,
        groups=groups,
        per_axis=bool(per_axis),
        constraints=constraints,
        objective=objective or "params",
        time_limit=float(time_limit),
        sequence=bool(sequence),
        rank=rank,
        measure=measure,
        build=build,
        source=source,
        prefix=mirror.prefix if mirror else (),
        inputs=len(mirror.inputs) if mirror else 1,
        merges=mirror.merges if mirror else (),
        size_from=mirror.size_from if mirror else (),
        skip_shapes=mirror.skip_shapes if mirror else (),
        reference=reference,
    )


def _reference(check: Checker, value: Any) -> tuple[StepText, ...]:
    """``reference``: a design in the notation the tables print (its fit is checked when solving)."""
    if value is None:
        return ()
    if not isinstance(value, str):
        check.add(
            "reference",
            f"expected a design such as 'conv_transpose k4 s1 | conv_transpose k4 s2 p1', got {show(value)}",
        )
        return ()
    try:
        return parse_design(value)
    except InputError as exc:
        check.add("reference", "; ".join(issue.message for issue in exc.issues))
        return ()


def _sizes(
    check: Checker, value: Any, ndim: int | None, size_range: tuple[int, int], default: bool = False
) -> tuple[list[SizeSpec], int | None]:
    if value is None:
        check.add("sizes", "missing; expected the spatial size trajectory, e.g. sizes = [1, 4, 8, 16]")
        return [], ndim
    if not isinstance(value, list) or len(value) < 2:
        check.add("sizes", f"expected a list of at least two sizes, got {show(value)}")
        return [], ndim
    lengths = {len(v) for v in value if isinstance(v, list)}
    if ndim is None:
        ndim = lengths.pop() if len(lengths) == 1 else 2
    specs: list[SizeSpec] = []
    for i, entry in enumerate(value):
        key = f"sizes[{i}]"
        if entry == FREE:
            if i in (0, len(value) - 1):
                check.add(key, "the first and last sizes must be given; '?' is for intermediate sizes")
            specs.append(SizeSpec(None, *size_range, default=default))
        elif isinstance(entry, dict):
            check.keys(entry, ("min", "max"), f"{key}.")
            low = check.integer(entry.get("min", size_range[0]), f"{key}.min", 1)
            high = check.integer(entry.get("max", size_range[1]), f"{key}.max", 1)
            if low is not None and high is not None and low > high:
                check.add(key, f"expected min <= max, got min={low}, max={high}")
            specs.append(SizeSpec(None, low or 1, high or size_range[1]))
        elif isinstance(entry, list):
            if len(entry) != ndim:
                check.add(key, f"expected {ndim} per-axis sizes, got {show(entry)}")
            ints = [check.integer(v, key, 1, DIM_MAX) for v in entry]
            specs.append(SizeSpec(tuple(v or 1 for v in ints)))
        else:
            n = check.integer(entry, key, 1, DIM_MAX)
            if isinstance(entry, str):
                check.issues[-1] = Issue(
                    check.issues[-1].where, f"expected a positive integer, [h, w] or '?', got {show(entry)}"
                )
            specs.append(SizeSpec((n or 1,) * ndim))
    return specs, ndim


def _channels(
    check: Checker, value: Any, count: int, channel_range: tuple[int, int] | None, multiple_of: int
) -> list[int | None]:
    if value is None:
        return [1] * count
    if not isinstance(value, list) or len(value) != count:
        check.add("channels", f"expected a list of {count} channel counts (one per size), got {show(value)}")
        return [1] * count
    out: list[int | None] = []
    for i, entry in enumerate(value):
        if entry == FREE:
            if i == 0:
                check.add("channels[0]", "the input channel count must be given")
            out.append(None)
        else:
            out.append(check.integer(entry, f"channels[{i}]", 1, DIM_MAX) or 1)
    if None in out and channel_range is not None:
        low, high = channel_range
        if -(-low // multiple_of) * multiple_of > high:
            check.add("search.channels", f"no multiple of {multiple_of} in [{low}, {high}]")
    return out


def _ranges(check: Checker, table: Mapping[str, Any], prefix: str, base: Ranges) -> Ranges:
    changes: dict[str, Any] = {}
    for key in SEARCH_RANGE_KEYS:
        if key not in table:
            continue
        value = table[key]
        if key == "padding" and isinstance(value, str):
            word = check.choice(value, f"{prefix}padding", PADDING_WORDS)
            if word:
                changes["padding_word"] = word
            continue
        low = 1 if key in ("kernel", "stride", "dilation", "scale") else 0
        span = check.span(value, f"{prefix}{key}", low)
        if span is not None:
            changes[key] = span
    if "ceil_mode" in table:
        value = table["ceil_mode"]
        if isinstance(value, bool):
            changes["ceil_mode"] = (value,)
        elif isinstance(value, list) and value and all(isinstance(v, bool) for v in value):
            changes["ceil_mode"] = tuple(sorted(set(value)))
        else:
            check.add(f"{prefix}ceil_mode", f"expected true, false or [false, true], got {show(value)}")
    return replace(base, **changes)


def _step_ranges(check: Checker, table: Any, base: Ranges, n_steps: int) -> list[Ranges]:
    if not isinstance(table, dict):
        check.add("search.step", f"expected tables [search.step.N] (N = 1..{n_steps}), got {show(table)}")
        return [base] * n_steps
    out = [base] * n_steps
    for key, sub in table.items():
        where = f"search.step.{key}"
        if not key.isdigit() or not 1 <= int(key) <= n_steps:
            check.add(where, f"expected a step number 1..{n_steps}")
            continue
        if not isinstance(sub, dict):
            check.add(where, f"expected a table of ranges, got {show(sub)}")
            continue
        check.keys(sub, (*SEARCH_RANGE_KEYS, "ceil_mode"), f"{where}.")
        out[int(key) - 1] = _ranges(check, sub, f"{where}.", base)
    return out


def _constraints(check: Checker, table: Mapping[str, Any], n_steps: int, ndim: int) -> Constraints:
    check.keys(table, CONSTRAINT_KEYS, "constraints.")
    values: dict[str, Any] = {}
    if "where" in table and n_steps > 0:  # without steps (bad sizes, reported already) nothing to check against
        values["where"] = _where(check, table["where"], n_steps, ndim)
    for key in ("max_params", "max_macs"):
        if key in table:
            values[key] = check.integer(table[key], f"constraints.{key}", 0)
    if "receptive_field" in table:
        value = table["receptive_field"]
        if isinstance(value, dict):
            check.keys(value, ("min", "max"), "constraints.receptive_field.")
            value = [value.get("min", 1), value.get("max", 10**9)]
        values["receptive_field"] = check.span(value, "constraints.receptive_field", 1)
    for key in CONSTRAINT_KEYS:
        if not isinstance(getattr(Constraints, key, None), bool):
            continue  # the budgets and the receptive field, read above
        if key in table:
            flag = check.boolean(table[key], f"constraints.{key}")
            if flag is not None:
                values[key] = flag
    return Constraints(**values)


def _where(check: Checker, value: Any, n_steps: int, ndim: int) -> tuple[WhereItem, ...]:
    """``constraints.where``: each expression parsed and checked against the steps and axes."""
    from .where import WhereError, compile_item

    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        check.add("constraints.where", f"expected a list of expressions (strings), got {show(value)}")
        return ()
    items = []
    for i, text in enumerate(value):
        key = f"constraints.where[{i}]"
        if not isinstance(text, str):
            check.add(key, f"expected an expression (a string), got {show(text)}")
            continue
        try:
            items.append(compile_item(i, text, n_steps, ndim))
        except WhereError as exc:
            shown = text if len(text) <= 120 else text[:117] + "..."
            check.add(key, f'"{shown}" at character {exc.position + 1}: {exc.message}')
    return tuple(items)


def read_rank(
    check: Checker,
    table: Mapping[str, Any],
    search: RankSettings | None = None,
    measure: MeasureSettings | None = None,
) -> tuple[RankSettings, MeasureSettings]:
    """``[rank]`` keys applied to ``search`` and ``measure`` (default: the defaults), via :data:`RANK_TABLE`.

    Types are checked here; ranges and words once, by the settings values themselves.  Every issue
    is recorded in ``check`` as ``rank.KEY``; unknown keys are named.  With issues, the values
    given are returned unchanged.
    """
    base: dict[str, Any] = {"rank": search or RankSettings(), "measure": measure or MeasureSettings()}
    check.keys(table, RANK_KEYS, "rank.")
    changes: dict[str, dict[str, Any]] = {"rank": {}, "measure": {}}
    for key, value in table.items():
        spot = RANK_TABLE.get(key)
        if spot is not None:
            read = _rank_value(check, f"rank.{key}", spot.kind, value)
            if read is not None:
                changes[spot.value][spot.field] = read
    out = dict(base)
    for name, fields_given in changes.items():
        keys = {spot.field: key for key, spot in RANK_TABLE.items() if spot.value == name}
        try:
            out[name] = replace(base[name], **fields_given)
        except InputError as exc:
            for issue in exc.issues:
                check.add(f"rank.{keys.get(issue.where, issue.where)}", issue.message)
    if check.issues:
        return base["rank"], base["measure"]
    return out["rank"], out["measure"]


def _rank_value(check: Checker, where: str, kind: str, value: Any) -> Any:
    """One ``[rank]`` value of ``kind`` (see :class:`RankKey`), or None with an issue recorded."""
    if kind == "integer":
        return check.integer(value, where)
    if kind == "seed":
        return check.integer(value, where, 0, 2**32 - 1)  # numpy's and optuna's range
    if kind == "flag":
        return check.boolean(value, where)
    if kind == "word":
        if isinstance(value, str):
            return value
        check.add(where, f"expected a string, got {show(value)}")
        return None
    if not isinstance(value, str) or not value:
        check.add(where, f"expected a non-empty string, got {show(value)}")
        return None
    return Path(value) if kind == "path" else value
