"""Stage 4: sets of sizes and output-size functions in closed form, and the ``torch.export.Dim`` spec.

A set of sizes over ``low..high`` is described as residues modulo the smallest period that
explains it from some threshold on (``H = 32·k, k ≥ 1``; ``H ≡ 0 or 7 (mod 8), H ≥ 7``),
with the sizes below the threshold listed; where no period explains it, as ranges.  An
output size is described as ``⌊(a·H + b) / d⌋`` with the smallest ``d`` that fits every
size exactly, or as a table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

#: Largest period tried; a pattern must repeat at least twice within the range to count.
MAX_PERIOD = 512
#: Largest divisor tried for output-size functions.
MAX_DIVISOR = 1024


@dataclass(frozen=True)
class SizeSet:
    """A set of sizes within ``low..high`` and its closed form."""

    sizes: tuple[int, ...]
    low: int
    high: int
    modulus: int | None = None  # None: no period explains it
    residues: tuple[int, ...] = ()
    start: int | None = None  # smallest size of the periodic part
    stop: int | None = None  # largest size of the periodic part, when the pattern stops inside the range
    extra: tuple[int, ...] = ()  # sizes below the periodic part
    ranges: tuple[tuple[int, int], ...] = field(default=())

    @property
    def count(self) -> int:
        return len(self.sizes)

    def __contains__(self, n: object) -> bool:
        """Membership by the closed form (not by the list): what the text claims."""
        if not isinstance(n, int) or not self.low <= n <= self.high:
            return False
        if self.modulus is None or self.start is None:
            return any(a <= n <= b for a, b in self.ranges)
        if n in self.extra:
            return True
        return n >= self.start and (self.stop is None or n <= self.stop) and n % self.modulus in self.residues

    def text(self, name: str = "H") -> str:
        if not self.sizes:
            return "none"
        if len(self.sizes) == self.high - self.low + 1:
            return f"every {name} in {self.low}..{self.high}"
        if self.modulus is None:
            return _ranges_text(self.ranges, name)
        parts = [_periodic_text(name, self.modulus, self.residues, self.start or 0, self.stop)]
        if self.extra:
            parts.insert(0, f"{name} ∈ {{{', '.join(map(str, self.extra))}}}")
        return " or ".join(parts)

    def dim(self, name: str = "H") -> dict[str, Any]:
        """The torch.export spec: a Dim (or a derived ``m*k + r`` Dim) and what it leaves out."""
        return dim_spec(self, name)

    def to_dict(self, name: str = "H") -> dict[str, Any]:
        return {
            "text": self.text(name),
            "count": self.count,
            "modulus": self.modulus,
            "residues": list(self.residues),
            "start": self.start,
            "stop": self.stop,
            "extra": list(self.extra),
            "ranges": [list(r) for r in _runs(self.sizes)],
            "sizes": list(self.sizes),
        }


def _runs(sizes: Sequence[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for n in sizes:
        if runs and runs[-1][1] == n - 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return runs


def _ranges_text(ranges: Sequence[tuple[int, int]], name: str) -> str:
    shown = [f"{a}" if a == b else f"{a}–{b}" for a, b in ranges[:12]]
    more = f" (+{len(ranges) - 12} more runs)" if len(ranges) > 12 else ""
    return f"{name} ∈ {{{', '.join(shown)}}}{more}"


def _periodic_text(name: str, m: int, residues: Sequence[int], start: int, stop: int | None) -> str:
    upper = f", {name} ≤ {stop}" if stop is not None else ""
    if m == 1:
        return f"{name} ≥ {start}" + (f" and ≤ {stop}" if stop is not None else "")
    if len(residues) == 1:
        r = residues[0]
        k0 = (start - r) // m
        body = f"{m}·k" + (f" + {r}" if r else "")
        kmax = f", k ≤ {(stop - r) // m}" if stop is not None else ""
        return f"{name} = {body}, k ≥ {k0}{kmax}"
    listed = " or ".join(map(str, residues))
    return f"{name} ≡ {listed} (mod {m}), {name} ≥ {start}{upper}"


def describe_set(sizes: Sequence[int], low: int, high: int) -> SizeSet:
    """The closed form of ``sizes`` ⊆ ``low..high``: the period with the lowest threshold, smallest first."""
    chosen = tuple(sorted(set(sizes)))
    if not chosen:
        return SizeSet((), low, high)
    top = chosen[-1]
    mask = 0
    for n in chosen:
        mask |= 1 << n
    best: tuple[int, int] | None = None  # (threshold, period)
    span = top - low + 1
    for m in range(1, min(MAX_PERIOD, span // 2) + 1):
        # Bit n of ``differ`` is set where n and n + m disagree (low <= n <= top - m): the pattern holds above the last.
        window = ((1 << (top - m + 1)) - 1) >> low << low
        differ = (mask ^ (mask >> m)) & window
        t0 = differ.bit_length() if differ else low
        if top - t0 + 1 < 2 * m:
            continue
        if best is None or t0 < best[0]:
            best = (t0, m)
            if t0 == low:
                break
    runs = tuple(_runs(chosen))
    if best is None:
        return SizeSet(chosen, low, high, ranges=runs)
    t0, m = best
    periodic = [n for n in chosen if n >= t0]
    residues = tuple(sorted({n % m for n in periodic}))
    extra = tuple(n for n in chosen if n < t0)
    # The pattern would go on past the last size: it stops inside the range.
    continues = any(n % m in residues for n in range(top + 1, min(high, top + m) + 1))
    stop = top if continues else None
    if len(extra) > 8 or (m > 1 and len(residues) > max(4, m // 2)) or (m == 1 and stop is not None and len(runs) > 1):
        return SizeSet(chosen, low, high, ranges=runs)
    return SizeSet(chosen, low, high, m, residues, periodic[0], stop, extra, runs)


def dim_spec(sizes: SizeSet, name: str) -> dict[str, Any]:
    """``torch.export.Dim`` code for the set, where one Dim (possibly derived) expresses it exactly."""
    if not sizes.sizes:
        return {"exact": False, "code": None, "note": "no size runs"}
    if len(sizes.sizes) == 1:
        return {"exact": True, "code": f"{sizes.sizes[0]}  # static: the only size that runs", "note": None}
    top = sizes.stop if sizes.stop is not None else sizes.sizes[-1]
    if sizes.modulus is None:
        low, high = sizes.ranges[0]
        code = f'{name} = torch.export.Dim("{name}", min={low}, max={high})'
        return {"exact": False, "code": code, "note": f"covers {low}..{high} only: the sizes form no single range"}
    m, residues, start = sizes.modulus, sizes.residues, sizes.start or 0
    exact = len(residues) == 1 and not sizes.extra
    r = residues[0] if m > 1 else 0
    if m == 1:
        code = f'{name} = torch.export.Dim("{name}", min={start}, max={top})'
    else:
        r = start % m if len(residues) > 1 else r
        k_min, k_max = (start - r) // m, (top - r) // m
        code = f'_{name} = torch.export.Dim("_{name}", min={k_min}, max={k_max}); {name} = {m} * _{name}' + (
            f" + {r}" if r else ""
        )
    note = None
    if not exact:
        left = []
        if len(residues) > 1:
            left.append(f"sizes ≡ {' or '.join(str(x) for x in residues if x != r)} (mod {m})")
        if sizes.extra:
            left.append(", ".join(map(str, sizes.extra)))
        note = "one Dim cannot express it: leaves out " + "; ".join(left)
    return {"exact": exact, "code": code, "note": note}


@dataclass(frozen=True)
class SizeFunction:
    """``out = ⌊(a·H + b) / d⌋`` on every size that runs, or a constant, or only a table."""

    pairs: tuple[tuple[int, int], ...]
    a: int | None = None
    b: int | None = None
    d: int | None = None
    c: int = 1  # out = c·⌊(a·H + b) / d⌋ (a decoder doubling a rounded-down size)

    @property
    def exact(self) -> bool:
        return self.d is not None

    def __call__(self, n: int) -> int | None:
        if self.d is None or self.a is None or self.b is None:
            return dict(self.pairs).get(n)
        return self.c * ((self.a * n + self.b) // self.d)

    def text(self, name: str = "H") -> str:
        if self.d is None or self.a is None or self.b is None:
            return "no closed form (see the table in --json)" if self.pairs else "none"
        a, b, d = self.a, self.b, self.d
        if a == 0:
            return f"{self.c * (b // d)} (constant)"
        if self.c != 1:
            inner = replace(self, c=1).text(name)
            return f"{self.c}·{inner}" if inner[0] in "⌊⌈(" else f"{self.c}·({inner})"
        linear = _linear(a, b, name)
        if d == 1:
            return linear
        if all((a * n + b) % d == 0 for n, _ in self.pairs):
            return f"({linear}) / {d}" if b or a != 1 else f"{name} / {d}"
        if a == 1 and b == d - 1:
            return f"⌈{name} / {d}⌉"
        return f"⌊({linear}) / {d}⌋" if b or a != 1 else f"⌊{name} / {d}⌋"

    def to_dict(self, name: str = "H") -> dict[str, Any]:
        return {
            "text": self.text(name),
            "c": self.c,
            "a": self.a,
            "b": self.b,
            "d": self.d,
            "table": [list(p) for p in self.pairs],
        }


def _linear(a: int, b: int, name: str) -> str:
    head = name if a == 1 else f"{a}·{name}"
    return head if b == 0 else f"{head} {'+' if b > 0 else '−'} {abs(b)}"


def describe_function(pairs: Sequence[tuple[int, int]]) -> SizeFunction:
    """``c·⌊(a·H + b) / d⌋`` (c the outputs' common factor; smallest d, then b nearest 0) matching every pair."""
    pairs = tuple(sorted(pairs))
    if not pairs:
        return SizeFunction(pairs)
    outs = {o for _, o in pairs}
    if len(outs) == 1:
        return SizeFunction(pairs, 0, pairs[0][1], 1)
    c = 0
    for o in outs:
        c = math.gcd(c, o)
    for factor in dict.fromkeys((1, c)):
        found = _floor_affine([(h, o // factor) for h, o in pairs])
        if found is not None:
            a, b, d = found
            return SizeFunction(pairs, a, b, d, factor)
    return SizeFunction(pairs)


def _floor_affine(pairs: Sequence[tuple[int, int]]) -> tuple[int, int, int] | None:
    (h0, o0), (h1, o1) = pairs[0], pairs[-1]
    slope = Fraction(o1 - o0, h1 - h0)
    order = [pairs[0], pairs[-1], *pairs[1:-1]]  # the extremes refute most candidates at once
    for d in range(1, MAX_DIVISOR + 1):
        guess = slope * d
        for a in sorted({guess.numerator // guess.denominator, -(-guess.numerator // guess.denominator)}):
            if a < 0:
                continue
            b_low, b_high = -(10**18), 10**18
            for h, o in order:
                # o = floor((a*h + b) / d)  <=>  o*d - a*h <= b < (o+1)*d - a*h
                b_low = max(b_low, o * d - a * h)
                b_high = min(b_high, (o + 1) * d - a * h - 1)
                if b_low > b_high:
                    break
            else:
                b = 0 if b_low <= 0 <= b_high else (b_low if abs(b_low) <= abs(b_high) else b_high)
                return a, b, d
    return None
