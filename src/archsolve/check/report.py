"""Stage 6: what ``check`` found, per axis, as one value with a text and a JSON form (docs/check.md)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .capture import call_label
from .describe import SizeFunction, SizeSet, describe_function, describe_set
from .graph import Failure

if TYPE_CHECKING:
    from .decide import Verdict
    from .fixes import Fix

JSON_VERSION = 1


def axis_name(axis: int, rank: int) -> str:
    """H, W (and D, L) for the spatial axes of a (N, C, ...) input; ``axis{i}`` otherwise."""
    spatial = rank - 2
    names = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}.get(spatial)
    if names is not None and axis >= 2:
        return names[axis - 2]
    return f"axis{axis}"


@dataclass(frozen=True)
class Breakage:
    """One layer where sizes break: the sizes that break there and one example with the sizes meeting."""

    where: str
    op: str
    sizes: SizeSet
    example: int
    meeting: tuple[int, ...]
    tensor_axis: int | None
    reason: str
    line: str = ""

    @property
    def label(self) -> str:
        return call_label(self.where, self.op, self.line)

    def to_dict(self, name: str) -> dict[str, Any]:
        return {
            "layer": self.where,
            "op": self.op,
            "line": self.line or None,
            "sizes": self.sizes.to_dict(name),
            "example": self.example,
            "meeting": list(self.meeting),
            "tensor_axis": self.tensor_axis,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class AxisReport:
    """One ``?`` axis over ``low..high``, every other ``?`` axis at its ``reference`` size."""

    axis: int
    name: str
    rank: int
    low: int
    high: int
    reference: dict[int, int]
    verdicts: tuple[Verdict, ...]
    runs: SizeSet
    keeps: SizeSet
    output: SizeFunction
    breaks: tuple[Breakage, ...]
    decided: dict[str, int]
    diverged: tuple[tuple[int, str], ...]
    disagreed: int | None
    fix: Fix | None = None
    why_run: str | None = None  # why sizes were decided by running the model
    export: dict[str, Any] | None = None  # the torch.export spec (sizes where an inner size reaches 1 left out)

    @classmethod
    def build(
        cls,
        axis: int,
        rank: int,
        low: int,
        high: int,
        reference: dict[int, int],
        verdicts: Sequence[Verdict],
        diverged: Sequence[tuple[int, str]],
        disagreed: int | None,
        why_run: str | None = None,
        blocker: str | None = None,
    ) -> AxisReport:
        runs = [v.size for v in verdicts if v.out is not None]
        keeps = [v.size for v in verdicts if v.out and len(v.out[0]) == rank and v.out[0][axis] == v.size]
        pairs = [(v.size, v.out[0][axis]) for v in verdicts if v.out and len(v.out[0]) == rank]
        groups: dict[tuple[str, str, str], list[Verdict]] = defaultdict(list)
        for v in verdicts:
            if v.failure is not None:
                groups[(v.failure.where, v.failure.op, v.failure.line)].append(v)
        breaks = []
        for (where, op, line), items in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            example = _example(items, runs)
            f = example.failure
            assert f is not None
            breaks.append(
                Breakage(
                    where,
                    op,
                    describe_set([v.size for v in items], low, high),
                    example.size,
                    f.sizes,
                    f.axis,
                    f.reason,
                    line,
                )
            )
        decided = {by: sum(v.by == by for v in verdicts) for by in ("catalog", "meta", "cpu")}
        runs_set = describe_set(runs, low, high)
        return cls(
            axis,
            axis_name(axis, rank),
            rank,
            low,
            high,
            reference,
            tuple(verdicts),
            runs_set,
            describe_set(keeps, low, high),
            describe_function(pairs),
            tuple(breaks),
            decided,
            tuple(diverged),
            disagreed,
            why_run=why_run,
            export=export_spec(
                runs_set,
                [v.size for v in verdicts if v.out is not None and v.reaches_one],
                axis_name(axis, rank),
                blocker or (f"the model's Python branches on the size ({diverged[0][1]})" if diverged else None),
            ),
        )

    def spec(self) -> dict[str, Any]:
        return self.export if self.export is not None else self.runs.dim(self.name)

    def others(self) -> str:
        rank = self.rank
        held = [f"{axis_name(a, rank)} = {n}" for a, n in self.reference.items() if a != self.axis]
        return f", {', '.join(held)}" if held else ""

    def output_text(self) -> str:
        """The output size on this axis as a function of the input, or the output shape where it has no such axis."""
        if self.output.pairs or not self.runs.sizes:
            return self.output.text(self.name)
        shapes = {v.out[0] for v in self.verdicts if v.out}
        return f"constant shape {list(shapes.pop())}" if len(shapes) == 1 else "the output shape varies (see --json)"

    def verdict(self, size: int) -> Verdict:
        return self.verdicts[size - self.low]

    def first_failure(self) -> int | None:
        """The smallest failing size above the smallest that runs (None: every larger size runs)."""
        start = self.runs.sizes[0] if self.runs.sizes else self.high
        return next((v.size for v in self.verdicts if v.out is None and v.size > start), None)

    def to_dict(self) -> dict[str, Any]:
        n = self.name
        return {
            "axis": self.axis,
            "name": n,
            "range": [self.low, self.high],
            "others_at": {axis_name(a, self.rank): n for a, n in self.reference.items() if a != self.axis},
            "runs": self.runs.to_dict(n),
            "keeps_size": self.keeps.to_dict(n),
            "output": {
                **self.output.to_dict(n),
                "text": self.output_text(),
                "shapes": [[v.size, list(v.out[0])] for v in self.verdicts if v.out],
            },
            "export": self.spec(),
            "breaks": [b.to_dict(n) for b in self.breaks],
            "decided": {
                **self.decided,
                "branches": [{"size": s, "guard": g} for s, g in self.diverged[:20]],
                "spot_check_disagreed_at": self.disagreed,
                "run_because": self.why_run,
            },
            "fix": self.fix.to_dict() if self.fix is not None else None,
        }

    def lines(self) -> list[str]:
        n = self.name
        out = [
            f"axis {self.axis} ({n}), sizes {self.low}..{self.high}{self.others()}:",
            f"  runs on       {self.runs.text(n)}   ({self.runs.count} of {self.high - self.low + 1})",
            f"  keeps size    {self.keeps.text(n)}   ({self.keeps.count})",
            f"  output {n:<6} {self.output_text()}",
        ]
        spec = self.spec()
        if spec["code"]:
            out.append(f"  torch.export  {spec['code']}" + (f"   ({spec['note']})" if spec["note"] else ""))
        elif spec["note"] and self.runs.count > 1:
            out.append(f"  torch.export  {spec['note']}")
        for b in self.breaks[:5]:
            meeting = f"; sizes meeting: {', '.join(map(str, b.meeting))}" if len(b.meeting) > 1 else ""
            out.append(
                f"  breaks at     {b.label} for {b.sizes.text(n)} ({b.sizes.count}); "
                f"e.g. {n}={b.example}: {b.reason}{meeting}"
            )
        if len(self.breaks) > 5:
            out.append(f"  breaks at     … {len(self.breaks) - 5} more layers (see --json)")
        if self.fix is not None:
            out += [f"  {line}" for line in self.fix.lines()]
        parts = [
            f"catalog graph {self.decided['catalog']} sizes",
            f"meta-device traces or forwards {self.decided['meta']}",
        ]
        if self.decided.get("cpu"):
            parts.append(f"CPU forwards {self.decided['cpu']}")
        how = f"  decided by    {', '.join(parts)}"
        if self.diverged:
            how += f" (a size-dependent branch flipped: {self.diverged[0][1]})"
        if self.disagreed is not None:
            how += f"; the graph disagreed with the model at {n}={self.disagreed}, so every size ran on the model"
        if self.why_run:
            how += f"; {self.why_run}"
        out.append(how)
        return out


def export_spec(runs: SizeSet, ones: Sequence[int], name: str, blocker: str | None = None) -> dict[str, Any]:
    """The torch.export Dim of the sizes that run, from above the largest size where an inner size that
    follows the axis reaches 1 (torch.export specializes those and refuses the Dim); none where
    ``blocker`` says torch.export would need more than one Dim."""
    if blocker and len(runs.sizes) > 1:
        return {"exact": False, "code": None,
                "note": f"no Dim: {blocker}; try torch.export.Dim.AUTO and read its guards"}
    if not ones or not runs.sizes:
        return runs.dim(name)
    above = [n for n in runs.sizes if n > max(ones)]
    if not above:
        return {"exact": False, "code": None,
                "note": "an inner size reaches 1 at every size that runs: torch.export would specialize it"}
    spec = describe_set(above, runs.low, runs.high).dim(name)
    left = f"sizes ≤ {max(ones)}, where an inner size reaches 1 (torch.export specializes it)"
    note = f"leaves out {left}" + (f"; {spec['note']}" if spec["note"] else "")
    return {**spec, "exact": False, "note": note}


def _example(items: Sequence[Verdict], runs: Sequence[int]) -> Verdict:
    """A telling failing size: the first above the smallest size that runs, else the first."""
    start = runs[0] if runs else 0
    return next((v for v in items if v.size > start), items[0])


@dataclass(frozen=True, repr=False)
class CheckResult:
    """Which sizes a model accepts on each ``?`` axis, what comes out, where it breaks and how to fix it."""

    target: str
    input: str
    reference: dict[int, int]
    axes: tuple[AxisReport, ...]
    census: dict[str, dict[str, int]]
    meta_forwards: int
    meta_calls: int
    seconds: float
    single: Verdict | None = None  # the verdict when the shape has no ? axis
    graphs: int = 1  # graphs recorded: one more for each branch pattern of the model's Python
    joint: Fix | None = None  # the fixes of every ? axis at once (what --emit writes)
    cpu_forwards: int = 0

    @property
    def fails(self) -> bool:
        """A shape without ``?`` that does not run (exit 1)."""
        return self.single is not None and self.single.out is None

    def __repr__(self) -> str:
        if self.single is not None:
            headline = "runs" if self.single.out else "fails"
        else:
            headline = ", ".join(f"{a.name} runs at {a.runs.count} of {a.high - a.low + 1}" for a in self.axes)
        return f"<CheckResult {self.target} on {self.input}: {headline}>"

    def axis(self, which: int | str) -> AxisReport:
        for a in self.axes:
            if which in (a.axis, a.name):
                return a
        raise KeyError(which)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "target": self.target,
            "input": self.input,
            "reference": {str(a): n for a, n in self.reference.items()},
            "axes": [a.to_dict() for a in self.axes],
            "graph": {
                "calls": self.census,
                "graphs": self.graphs,
                "meta_forwards": self.meta_forwards,
                "meta_calls": self.meta_calls,
                "cpu_forwards": self.cpu_forwards,
            },
            "single": _single_dict(self.single),
            "joint_fix": self.joint.to_dict() if self.joint is not None else None,
            "seconds": round(self.seconds, 3),
        }

    def text(self) -> str:
        parts = [f"{self.target} on {self.input}:"]
        if self.single is not None:
            s = self.single
            parts.append(
                f"  runs: output {list(s.out[0])}"
                if s.out
                else f"  fails at {s.failure.label if s.failure else '?'}: {s.failure.reason if s.failure else ''}"
            )
        for a in self.axes:
            parts += a.lines()
        if self.joint is not None:
            parts += [f"  {line}" for line in self.joint.lines()]
        census = "; ".join(
            f"{cat} " + ", ".join(f"{op} ×{n}" for op, n in ops.items()) for cat, ops in self.census.items()
        )
        parts.append(f"graph: {census or 'no calls on the input'}")
        parts.append(
            f"graphs recorded {self.graphs}, meta-device forwards {self.meta_forwards} (traces included), "
            f"single-call meta replays {self.meta_calls}, CPU forwards {self.cpu_forwards}; "
            f"{self.seconds:.2f} s"
        )
        return "\n".join(parts)

    def __str__(self) -> str:
        return self.text()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.text())


def _single_dict(v: Verdict | None) -> dict[str, Any] | None:
    if v is None:
        return None
    f: Failure | None = v.failure
    return {
        "runs": v.out is not None,
        "output": [list(s) for s in v.out] if v.out else None,
        "layer": f.where if f else None,
        "reason": f.reason if f else None,
    }
