"""The ``[constraints] where`` language: integer expressions over the steps' fields, parsed, never eval'd.

A hand-written tokenizer and a recursive-descent parser turn one expression into
a tree; :func:`compile_item` checks it against the problem's shape (steps, axes)
and flattens it into *atoms*: the conjuncts the item means, each an integer or
boolean term over leaves ``(step, layer, field, axis)``.  An atom that reads one
step is a filter on that step's table; the others are solved across steps
(:mod:`.crossing`).  docs/problems.md documents the language.

Values are arrays over (steps, axes): a field name alone or with ``[*]`` or a
slice selects several steps, an index one step; recipe fields and ``size`` have
one entry per spatial axis, ``channels``, ``params`` and ``macs`` one in all.
Operators work elementwise with broadcasting; ``sum``, ``min``, ``max`` and
``count`` of one argument reduce over the steps; the item holds when every
element of its (boolean) value holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Fields of a step's layers (per axis), read from the first layer of the step that has them.
RECIPE_FIELDS = ("kernel", "stride", "padding", "output_padding", "dilation", "scale", "ceil_mode")
#: Fields of a whole step: its output and input channels, output size (per axis), parameters and MACs.
STEP_FIELDS = ("channels", "in_channels", "size", "params", "macs")
FIELDS = (*RECIPE_FIELDS, *STEP_FIELDS)
PER_AXIS = {*RECIPE_FIELDS, "size"}
FUNCTIONS = ("sum", "min", "max", "count", "axis")
KEYWORDS = ("and", "or", "not")
COMPARISONS = ("==", "!=", "<=", ">=", "<", ">")
#: Longest expression accepted (a file line, not a program) and deepest nesting (no recursion overflow).
MAX_LENGTH = 2000
MAX_DEPTH = 60
#: Operators one expression may hold: terms nest once per operator, and evaluating them recurses.
MAX_OPERATORS = 200

Term = tuple[Any, ...]
"""A term: ("c", value) | ("v", step, layer, field, axis) | ("sum", const, terms) | (op, args...)."""


class WhereError(Exception):
    """An expression the language rejects, with the 0-based character position where it went wrong."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


@dataclass(frozen=True)
class Atom:
    """One conjunct of a ``where`` item: a boolean term and the steps it reads."""

    item: int  # index in the where list
    term: Term
    steps: frozenset[int]


@dataclass(frozen=True)
class WhereItem:
    """One checked ``where`` expression: its text and the atoms it means."""

    index: int
    text: str
    atoms: tuple[Atom, ...]

    @property
    def label(self) -> str:
        """How messages name the item: its key and its text (a long one shortened)."""
        text = self.text if len(self.text) <= 80 else self.text[:77] + "..."
        return f'constraints.where[{self.index}] "{text}"'


# ------------------------------------------------------------------------------------------------
# Tokens and syntax
# ------------------------------------------------------------------------------------------------

Token = tuple[str, str, int]  # (kind: "int" | "name" | "op" | "end", text, position)
_OPS = ("//", "==", "!=", "<=", ">=", "+", "-", "*", "%", "<", ">", "(", ")", "[", "]", ":", ",")


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch.isdigit():
            j = i
            while j < len(text) and (text[j].isdigit() or text[j] == "_"):
                j += 1
            if j < len(text) and (text[j].isalpha() or text[j] == "."):
                raise WhereError(f"unexpected {text[j]!r} after a number (integers only)", j)
            digits = text[i:j]
            if "__" in digits or digits.endswith("_"):
                raise WhereError(f"not an integer: {digits!r} (one _ between digits)", i)
            if len(digits) > 30:
                raise WhereError("integers of at most 30 digits", i)
            tokens.append(("int", digits, i))
            i = j
        elif ch.isalpha() or ch == "_":
            j = i
            while j < len(text) and (text[j].isalnum() or text[j] == "_"):
                j += 1
            tokens.append(("name", text[i:j], i))
            i = j
        else:
            op = next((o for o in _OPS if text.startswith(o, i)), None)
            if op is None:
                hints = {"/": " (integer division is //)", "=": " (a comparison is ==)", "!": " (use not, or !=)"}
                hint = hints.get(ch, " (use and, or, not)" if ch in "&|" else "")
                raise WhereError(f"unexpected character {ch!r}{hint}", i)
            tokens.append(("op", op, i))
            i += len(op)
    tokens.append(("end", "", len(text)))
    return tokens


Node = tuple[Any, ...]
"""Syntax: (kind, position, ...): int, field, call, unary, binary, compare, not, and, or."""


class Parser:
    """Recursive descent, lowest precedence first: or < and < not < comparison < + - < * // % < unary."""

    def __init__(self, text: str) -> None:
        if len(text) > MAX_LENGTH:
            raise WhereError(f"longer than {MAX_LENGTH} characters", MAX_LENGTH)
        self.tokens = tokenize(text)
        self.at = 0
        self.depth = 0
        self.operators = 0

    def parse(self) -> Node:
        node = self.disjunction()
        kind, text, pos = self.peek()
        if kind != "end":
            raise WhereError(f"unexpected {text!r}", pos)
        return node

    def peek(self) -> Token:
        return self.tokens[self.at]

    def take(self) -> Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def accept(self, text: str) -> bool:
        kind, value, _ = self.peek()
        if kind in ("op", "name") and value == text:
            self.at += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            _, value, pos = self.peek()
            raise WhereError(f"expected {text!r}, got {value!r}" if value else f"expected {text!r}", pos)

    def operator(self, pos: int) -> int:
        self.operators += 1
        if self.operators > MAX_OPERATORS:
            raise WhereError(f"more than {MAX_OPERATORS} operators", pos)
        return pos

    def nest(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise WhereError(f"nested deeper than {MAX_DEPTH} levels", pos)

    def disjunction(self) -> Node:
        node = self.conjunction()
        while self.peek()[1] == "or" and self.peek()[0] == "name":
            pos = self.operator(self.take()[2])
            node = ("or", pos, node, self.conjunction())
        return node

    def conjunction(self) -> Node:
        node = self.negation()
        while self.peek()[1] == "and" and self.peek()[0] == "name":
            pos = self.operator(self.take()[2])
            node = ("and", pos, node, self.negation())
        return node

    def negation(self) -> Node:
        kind, text, pos = self.peek()
        if kind == "name" and text == "not":
            self.take()
            self.nest(pos)
            node = ("not", pos, self.negation())
            self.depth -= 1
            return node
        return self.comparison()

    def comparison(self) -> Node:
        left = self.additive()
        parts: list[tuple[str, int, Node]] = []
        while self.peek()[0] == "op" and self.peek()[1] in COMPARISONS:
            _, op, pos = self.take()
            parts.append((op, self.operator(pos), self.additive()))
        if not parts:
            return left
        # a < b <= c means a < b and b <= c, as in Python
        node: Node | None = None
        for op, pos, right in parts:
            link = ("compare", pos, op, left, right)
            node = link if node is None else ("and", pos, node, link)
            left = right
        assert node is not None
        return node

    def additive(self) -> Node:
        node = self.multiplicative()
        while self.peek()[0] == "op" and self.peek()[1] in ("+", "-"):
            _, op, pos = self.take()
            node = ("binary", self.operator(pos), op, node, self.multiplicative())
        return node

    def multiplicative(self) -> Node:
        node = self.unary()
        while self.peek()[0] == "op" and self.peek()[1] in ("*", "//", "%"):
            _, op, pos = self.take()
            node = ("binary", self.operator(pos), op, node, self.unary())
        return node

    def unary(self) -> Node:
        kind, text, pos = self.peek()
        if kind == "op" and text in ("-", "+"):
            self.take()
            self.nest(pos)
            node = self.unary()
            self.depth -= 1
            return ("unary", pos, node) if text == "-" else node
        return self.primary()

    def primary(self) -> Node:
        kind, text, pos = self.take()
        if kind == "int":
            return ("int", pos, int(text))
        if kind == "op" and text == "(":
            self.nest(pos)
            node = self.disjunction()
            self.depth -= 1
            self.expect(")")
            return node
        if kind == "name" and text in FUNCTIONS:
            self.expect("(")
            self.nest(pos)
            args = [self.disjunction()]
            while self.accept(","):
                args.append(self.disjunction())
            self.depth -= 1
            self.expect(")")
            return ("call", pos, text, tuple(args))
        if kind == "name" and text in FIELDS:
            return ("field", pos, text, self.selection())
        if kind == "name" and text not in KEYWORDS:
            return _unknown_name(text, pos)
        raise WhereError(f"expected a number, a field or '(', got {text!r}" if text else "unexpected end", pos)

    def selection(self) -> tuple[Any, ...]:
        """``[i]``, ``[i, layer]``, ``[a:b:c]``, ``[*]`` or nothing (every step)."""
        if not self.accept("["):
            return ("every",)
        if self.accept("*"):
            sel: tuple[Any, ...] = ("every",)
        else:
            start = self.integer(optional=True)
            if self.accept(":"):
                stop = self.integer(optional=True)
                step = self.integer(optional=True) if self.accept(":") else None
                sel = ("slice", start, stop, step)
            else:
                if start is None:
                    _, text, pos = self.peek()
                    raise WhereError(f"expected a step index, a slice or '*', got {text!r}", pos)
                layer = self.integer() if self.accept(",") else None
                sel = ("index", start, layer)
        self.expect("]")
        if self.peek()[1] == "[" and self.peek()[0] == "op":
            raise WhereError("one selection per field: [step] or [step, layer]", self.peek()[2])
        return sel

    def integer(self, optional: bool = False) -> tuple[int, int] | None:
        """An integer literal with its position (indices are literals, so their steps are known)."""
        kind, text, pos = self.peek()
        sign = 1
        if kind == "op" and text == "-":
            self.take()
            sign = -1
            kind, text, _ = self.peek()
        if kind == "int":
            self.take()
            return sign * int(text), pos
        if optional and sign == 1:
            return None
        raise WhereError(f"expected an integer index, got {text!r}", self.peek()[2])


def _unknown_name(text: str, pos: int) -> Node:
    from ..errors import nearest

    hint = nearest(text, (*FIELDS, *FUNCTIONS))
    tail = f"; did you mean {hint!r}?" if hint else f"; fields are {', '.join(FIELDS)}"
    raise WhereError(f"unknown name {text!r}{tail}", pos)


# ------------------------------------------------------------------------------------------------
# Meaning: arrays over (steps, axes) of terms
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Array:
    """A value: ``cells[s][a]``; one row when not over steps, one column when not over axes."""

    cells: tuple[tuple[Term, ...], ...]
    stepped: bool
    axed: bool
    boolean: bool


def compile_item(index: int, text: str, n_steps: int, ndim: int) -> WhereItem:
    """Parse and check one expression against a problem with ``n_steps`` steps and ``ndim`` axes."""
    tree = Parser(text).parse()
    value = _Meaning(n_steps, ndim).of(tree)
    if not value.boolean:
        raise WhereError("the expression is a number; compare it (==, <=, ...) to make a condition", 0)
    atoms: list[Atom] = []
    for row in value.cells:
        for cell in row:
            for part in _conjuncts(cell):
                atoms.append(Atom(index, part, frozenset(leaf_steps(part))))
    return WhereItem(index, text, tuple(atoms))


def _conjuncts(term: Term) -> list[Term]:
    if term[0] == "and":
        return _conjuncts(term[1]) + _conjuncts(term[2])
    return [term]


def leaf_steps(term: Term) -> set[int]:
    if term[0] == "v":
        return {term[1]}
    if term[0] == "c":
        return set()
    if term[0] == "sum":
        return set().union(*(leaf_steps(t) for t in term[2]))
    return set().union(*(leaf_steps(t) for t in term[1:] if isinstance(t, tuple)))


def leaf_order(leaf: Term) -> tuple[int, int, str, int]:
    """A sort key for leaves (a missing layer or axis sorts first)."""
    _, step, layer, name, axis = leaf
    return (step, -1 if layer is None else layer, name, -1 if axis is None else axis)


def leaves(term: Term) -> set[Term]:
    if term[0] == "v":
        return {term}
    if term[0] == "c":
        return set()
    parts = term[2] if term[0] == "sum" else [t for t in term[1:] if isinstance(t, tuple)]
    return set().union(*(leaves(t) for t in parts))


class _Meaning:
    """Syntax tree → :class:`Array` of terms, checking types, indices and shapes with positions."""

    def __init__(self, n_steps: int, ndim: int) -> None:
        self.n_steps = n_steps
        self.ndim = ndim

    def of(self, node: Node) -> Array:
        kind, pos = node[0], node[1]
        if kind == "int":
            return Array(((("c", node[2]),),), False, False, False)
        if kind == "field":
            return self.field(node[2], node[3], pos)
        if kind == "unary":
            return self.map1(self.number(node[2]), lambda t: fold(("neg", t)), False)
        if kind == "binary":
            op = node[2]
            return self.map2(self.number(node[3]), self.number(node[4]), pos, lambda a, b: fold((op, a, b)), False)
        if kind == "compare":
            op = node[2]
            return self.map2(self.number(node[3]), self.number(node[4]), pos, lambda a, b: fold((op, a, b)), True)
        if kind == "not":
            return self.map1(self.condition(node[2]), lambda t: fold(("not", t)), True)
        if kind in ("and", "or"):
            left, right = self.condition(node[2]), self.condition(node[3])
            return self.map2(left, right, pos, lambda a, b: fold((kind, a, b)), True)
        assert kind == "call"
        return self.call(node[2], node[3], pos)

    def number(self, node: Node) -> Array:
        value = self.of(node)
        if value.boolean:
            raise WhereError("a condition where a number is needed (count(...) turns conditions into numbers)", node[1])
        return value

    def condition(self, node: Node) -> Array:
        value = self.of(node)
        if not value.boolean:
            raise WhereError("a number where a condition is needed; compare it (==, <=, ...)", node[1])
        return value

    def field(self, name: str, sel: tuple[Any, ...], pos: int) -> Array:
        n = self.n_steps
        layer: int | None = None
        if sel[0] == "every":
            steps, stepped = list(range(n)), True
        elif sel[0] == "index":
            (i, ipos), layer_at = sel[1], sel[2]
            if not -n <= i < n:
                raise WhereError(f"step index {i} out of range: the problem has {n} steps (0 to {n - 1})", ipos)
            steps, stepped = [i % n], False
            layer = None if layer_at is None else layer_at[0]
        else:
            bounds = [None if b is None else b[0] for b in sel[1:]]
            if bounds[2] == 0:
                raise WhereError("slice step cannot be zero", sel[3][1])
            steps, stepped = list(range(n))[slice(*bounds)], True
            if not steps:
                raise WhereError(f"the slice selects none of the {n} steps", pos)
        axes = range(self.ndim) if name in PER_AXIS else (None,)
        cells = tuple(tuple(("v", s, layer, name, a) for a in axes) for s in steps)
        return Array(cells, stepped, name in PER_AXIS, False)

    def call(self, name: str, args: tuple[Node, ...], pos: int) -> Array:
        if name == "axis":
            if len(args) != 2 or args[1][0] != "int":
                raise WhereError("axis(value, k) takes a value and an axis number", pos)
            value, k = self.of(args[0]), args[1][2]
            if not value.axed:
                raise WhereError("axis(...) of a value without axes (channels, params, macs)", pos)
            if not 0 <= k < self.ndim:
                raise WhereError(
                    f"axis {k} out of range: the problem has {self.ndim} axes (0 to {self.ndim - 1})", args[1][1]
                )
            return Array(tuple((row[k],) for row in value.cells), value.stepped, False, value.boolean)
        if name == "count":
            if len(args) != 1:
                raise WhereError("count(condition) takes one argument", pos)
            value = self.condition(args[0])
            counted = self.map1(value, lambda t: fold(("b2i", t)), False)
            return self.reduce(counted, "sum")
        values = [self.number(a) for a in args]
        if name == "sum":
            if len(values) != 1:
                raise WhereError("sum(values) takes one argument", pos)
            return self.reduce(values[0], "sum")
        if len(values) == 1:
            return self.reduce(values[0], name)
        out = values[0]
        for other in values[1:]:
            out = self.map2(out, other, pos, lambda a, b: fold((name, a, b)), False)
        return out

    def reduce(self, value: Array, how: str) -> Array:
        """Over the steps: every cell of one axis combined into one."""
        if not value.stepped:
            return value
        width = len(value.cells[0])
        out = []
        for a in range(width):
            column = [row[a] for row in value.cells]
            acc = column[0]
            for t in column[1:]:
                acc = fold(("+", acc, t) if how == "sum" else (how, acc, t))
            out.append(acc)
        return Array((tuple(out),), False, value.axed, value.boolean)

    def map1(self, value: Array, f: Any, boolean: bool) -> Array:
        return Array(tuple(tuple(f(t) for t in row) for row in value.cells), value.stepped, value.axed, boolean)

    def map2(self, x: Array, y: Array, pos: int, f: Any, boolean: bool) -> Array:
        if x.stepped and y.stepped and len(x.cells) != len(y.cells):
            raise WhereError(
                f"the two sides select different numbers of steps ({len(x.cells)} and {len(y.cells)})", pos
            )
        rows = max(len(x.cells), len(y.cells))
        width = max(len(x.cells[0]), len(y.cells[0]))
        cells = tuple(
            tuple(
                f(
                    x.cells[s if x.stepped else 0][a if x.axed else 0],
                    y.cells[s if y.stepped else 0][a if y.axed else 0],
                )
                for a in range(width)
            )
            for s in range(rows)
        )
        return Array(cells, x.stepped or y.stepped, x.axed or y.axed, boolean)


# ------------------------------------------------------------------------------------------------
# Terms: folding known values, evaluating
# ------------------------------------------------------------------------------------------------


class Undefined(Exception):
    """A division or remainder by zero, or a field the chosen layers lack: the atom does not hold."""


def fold(term: Term) -> Term:
    """``term`` with constant parts computed; sums kept flat as ("sum", constant, other terms), so a
    partly known sum is a running total plus what is left (the counting DP's extended state)."""
    op = term[0]
    if op in ("c", "v"):
        return term
    if op in ("+", "-"):
        right = term[2] if op == "+" else fold(("neg", term[2]))
        return _sum([term[1], right])
    if op == "sum":
        return _sum(list(term[2]), term[1])
    args = term[1:]
    if all(a[0] == "c" for a in args):
        try:
            return ("c", apply(op, *(a[1] for a in args)))
        except Undefined:
            return term  # left for evaluation to report as not holding
    if op == "neg" and args[0][0] == "sum":
        return _sum([fold(("neg", t)) for t in args[0][2]], -args[0][1])
    return term


def _sum(parts: list[Term], const: int = 0) -> Term:
    rest: list[Term] = []
    for p in parts:
        if p[0] == "c":
            const += p[1]
        elif p[0] == "sum":
            const += p[1]
            rest.extend(p[2])
        else:
            rest.append(p)
    if not rest:
        return ("c", const)
    if const == 0 and len(rest) == 1:
        return rest[0]
    return ("sum", const, tuple(rest))


def apply(op: str, *v: Any) -> Any:
    """One operation on known values, with Python's integer semantics (floor division and remainder)."""
    if op == "neg":
        return -v[0]
    if op == "*":
        return v[0] * v[1]
    if op in ("//", "%"):
        if v[1] == 0:
            raise Undefined
        return v[0] // v[1] if op == "//" else v[0] % v[1]
    if op == "min":
        return min(v[0], v[1])
    if op == "max":
        return max(v[0], v[1])
    if op == "b2i":
        return int(bool(v[0]))
    if op == "not":
        return not v[0]
    if op == "and":
        return bool(v[0]) and bool(v[1])
    if op == "or":
        return bool(v[0]) or bool(v[1])
    a, b = v
    return {"==": a == b, "!=": a != b, "<=": a <= b, ">=": a >= b, "<": a < b, ">": a > b}[op]


def substitute(term: Term, env: dict[Term, int | None]) -> Term:
    """``term`` with the leaves ``env`` knows replaced and folded; a known-missing leaf (None) or a
    zero divisor makes the whole atom false, so callers evaluate atoms through :func:`holds`."""
    op = term[0]
    if op == "c":
        return term
    if op == "v":
        if term in env:
            value = env[term]
            if value is None:
                raise Undefined
            return ("c", value)
        return term
    if op == "sum":
        return _sum([substitute(t, env) for t in term[2]], term[1])
    out = fold((op, *(substitute(t, env) for t in term[1:])))
    if out[0] != "c" and op in ("//", "%") and out[2] == ("c", 0):
        raise Undefined
    return out


def holds(term: Term, env: dict[Term, int | None]) -> Term | bool:
    """The atom's residual after ``env``: True or False when known, else the remaining term."""
    try:
        out = substitute(term, env)
    except Undefined:
        return False
    return bool(out[1]) if out[0] == "c" else out
