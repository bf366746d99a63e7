"""Stage 2: learn a model's layer graph from one forward pass on the meta device.

Why a ``__torch_function__`` mode, not ``torch.fx`` or module hooks alone:

- ``torch.fx`` symbolic tracing stops at the first ``if`` on a tensor size, and real
  models (MONAI's among them) branch on sizes all the time; we need the graph of the
  model as it actually runs.
- Module hooks see ``nn.Conv2d`` but miss the functional calls that tie sizes together:
  ``torch.cat``, ``+``, ``F.interpolate``, ``F.pad`` and slicing inside ``forward``.
- A torch-function mode sees every call at the level the user wrote it (``F.interpolate``,
  not the aten kernels it lowers to, whose sizes are already baked in), on any model,
  and runs the real code path.  Module hooks are kept only to name the layer a call
  came from.

Sizes read from a traced tensor (``x.shape``, ``x.size(2)``) come back as
:class:`Tracked` ints, which remember how to recompute themselves from the input's
shape.  Arithmetic on them stays tracked, so ``output_size=skip.shape[-2:]`` or
``x[..., :h // 2]`` is replayed at every other size; every comparison or truth test
on them is recorded as a :class:`Guard`: the branch the model took, which must hold
again before the recorded graph can stand in for the model at another size.
"""

from __future__ import annotations

import builtins
import operator
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

#: Shapes of every traced value, by value id (0 is the model's input).
Env = list[tuple[int, ...]]
IntFn = Callable[[Env], int]

_SHAPE: Any = torch.Tensor.shape  # the getset descriptor: its __get__ arrives in the mode as the func


@dataclass
class Guard:
    """A branch the model's Python took on sizes: ``check(env)`` is True where it takes it again."""

    check: Callable[[Env], bool]
    where: str
    text: str
    loop: bool = False  # a loop's trip count: the graph differs at every other count


@dataclass
class Node:
    """One recorded torch call on traced tensors."""

    index: int
    func: Callable[..., Any]
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    inputs: tuple[int, ...]  # value ids read
    traced: dict[int, int]  # id() of each traced tensor argument → its value id
    outputs: tuple[int, ...]  # value ids written
    where: str  # module path of the innermost module running the call ("" for the model itself)
    module: nn.Module | None  # that module
    line: str = ""  # file.py:N of the model's own code making the call ("" inside torch's modules)

    @property
    def label(self) -> str:
        return call_label(self.where, self.name, self.line)


def call_label(where: str, op: str, line: str) -> str:
    """``up (conv_transpose)``; a call in the model's own code also names its line: ``<model> (cat at net.py:40)``."""
    return f"{where or '<model>'} ({op}{f' at {line}' if line else ''})"


@dataclass
class Trace:
    """The graph of one forward pass: values (shapes at the traced size), calls and guards in call order."""

    shapes: Env = field(default_factory=list)
    dtypes: list[torch.dtype] = field(default_factory=list)
    steps: list[Node | Guard] = field(default_factory=list)
    outputs: tuple[int, ...] = ()
    recording: bool = True
    loops: int = 0  # loops whose trip count came from a size

    @property
    def guards(self) -> list[Guard]:
        return [s for s in self.steps if isinstance(s, Guard)]


class Tracked(int):
    """An int read from a traced shape; ``fn(env)`` recomputes it at another input size."""

    fn: IntFn
    trace: Trace
    where: Callable[[], str]

    def __new__(cls, value: int, fn: IntFn, trace: Trace, where: Callable[[], str]) -> Tracked:
        obj = super().__new__(cls, value)
        obj.fn, obj.trace, obj.where = fn, trace, where
        return obj

    __hash__ = int.__hash__

    def _guard(self, check: Callable[[Env], bool], text: str) -> None:
        if self.trace.recording:
            self.trace.steps.append(Guard(check, self.where(), text))

    def __int__(self) -> int:
        # Leaving the tracked world (int(h), math on floats): only this exact value is known to behave.
        value = int.__int__(self)
        fn = self.fn
        self._guard(lambda env: fn(env) == value, f"a size converted to the plain number {value}")
        return value

    def __float__(self) -> float:
        return float(self.__int__())

    def __truediv__(self, other: Any) -> float:
        return self.__int__() / _plain(other)

    def __rtruediv__(self, other: Any) -> float:
        return _plain(other) / self.__int__()

    def __bool__(self) -> bool:
        value = int.__int__(self) != 0
        fn = self.fn
        self._guard(lambda env: (fn(env) != 0) == value, f"a size tested as {value}")
        return value


def _plain(value: Any) -> Any:
    return int.__int__(value) if isinstance(value, Tracked) else value


def int_fn(value: Any) -> IntFn:
    """How to recompute ``value`` (a Tracked int or a constant) at another size."""
    if isinstance(value, Tracked):
        return value.fn
    constant = value
    return lambda env: constant


def _arith(op: Callable[[Any, Any], Any], reflected: bool = False) -> Callable[[Tracked, Any], Any]:
    def method(self: Tracked, other: Any) -> Any:
        if isinstance(other, float):  # leaves the integers: only this exact size is known to behave
            return op(other, self.__int__()) if reflected else op(self.__int__(), other)
        if not isinstance(other, int) or isinstance(other, bool):
            return NotImplemented
        a, b = (other, self) if reflected else (self, other)
        value = op(_plain(a), _plain(b))
        fa, fb = int_fn(a), int_fn(b)
        return Tracked(value, lambda env: op(fa(env), fb(env)), self.trace, self.where)

    return method


def _compare(op: Callable[[Any, Any], bool], symbol: str) -> Callable[[Tracked, Any], Any]:
    def method(self: Tracked, other: Any) -> Any:
        if not isinstance(other, int):
            return NotImplemented
        value = op(int.__int__(self), _plain(other))
        fa, fb = self.fn, int_fn(other)
        self._guard(
            lambda env: op(fa(env), fb(env)) == value,
            f"{int.__int__(self)} {symbol} {_plain(other)} was {value}",
        )
        return value

    return method


for _name, _op in {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "floordiv": operator.floordiv,
    "mod": operator.mod,
}.items():
    setattr(Tracked, f"__{_name}__", _arith(_op))
    setattr(Tracked, f"__r{_name}__", _arith(_op, reflected=True))
for _name, (_op, _symbol) in {
    "eq": (operator.eq, "=="),
    "ne": (operator.ne, "!="),
    "lt": (operator.lt, "<"),
    "le": (operator.le, "<="),
    "gt": (operator.gt, ">"),
    "ge": (operator.ge, ">="),
}.items():
    setattr(Tracked, f"__{_name}__", _compare(_op, _symbol))


def _negate(self: Tracked) -> Tracked:
    fn = self.fn
    return Tracked(-int.__int__(self), lambda env: -fn(env), self.trace, self.where)


Tracked.__neg__ = _negate  # type: ignore[method-assign,assignment]


def tensors_in(obj: Any) -> Iterator[torch.Tensor]:
    """Every tensor inside nested tuples, lists and dicts."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, list | tuple):
        for item in obj:
            yield from tensors_in(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from tensors_in(item)


def has_tracked(obj: Any) -> bool:
    if isinstance(obj, Tracked):
        return True
    if isinstance(obj, list | tuple):
        return any(has_tracked(item) for item in obj)
    if isinstance(obj, dict):
        return any(has_tracked(item) for item in obj.values())
    if isinstance(obj, slice):
        return has_tracked((obj.start, obj.stop, obj.step))
    return False


def call(func: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    """``func(*args, **kwargs)``, with inference batch norm answered from its one shape rule.

    Torch's meta batch norm is a Python decomposition (about 15 ms a call, most of a meta forward
    of a conv net); in eval mode its output is its input's shape, and the only check is that the
    running statistics have one value per channel.
    """
    if func is _BATCH_NORM and args:
        x = args[0]
        names = ("input", "running_mean", "running_var", "weight", "bias", "training")
        bound = {**dict(zip(names, args, strict=False)), **kwargs}
        stats = bound.get("running_mean")
        if (not bound.get("training", False) and isinstance(x, torch.Tensor) and x.device.type == "meta"
                and x.dim() >= 2 and isinstance(stats, torch.Tensor) and stats.shape == (x.shape[1],)):
            return torch.empty_like(x)
    if getattr(func, "__name__", "") in RECURRENT and any(t.device.type == "meta" for t in tensors_in(args)):
        return _on_cpu(func, args, kwargs)
    return func(*args, **kwargs)


#: Recurrent kernels, whose meta versions step through the sequence in Python (tens of ms a call): they run
#: on CPU on zeros of the same shapes, which torch answers in well under a millisecond at these sizes.
RECURRENT = frozenset({"lstm", "gru", "rnn_tanh", "rnn_relu"})
#: Above this many elements in its tensors, a recurrent call stays on the meta device (memory first).
CPU_ELEMENTS = 1 << 24


def _on_cpu(func: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    if sum(t.numel() for t in tensors_in((args, kwargs))) > CPU_ELEMENTS:
        return func(*args, **kwargs)

    def cpu(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return torch.zeros(value.shape, dtype=value.dtype) if value.device.type == "meta" else value
        if isinstance(value, list | tuple):
            return type(value)(cpu(v) for v in value)
        return value

    def meta(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return torch.empty(value.shape, dtype=value.dtype, device="meta")
        if isinstance(value, list | tuple):
            return type(value)(meta(v) for v in value)
        return value

    return meta(func(*cpu(tuple(args)), **{k: cpu(v) for k, v in kwargs.items()}))


_BATCH_NORM = torch.nn.functional.batch_norm


def func_name(func: Callable[..., Any]) -> str:
    name = getattr(func, "__name__", None) or repr(func)
    if name == "__get__":
        return str(getattr(getattr(func, "__self__", None), "__name__", name))
    return name


def _dim(vid: int, axis: int) -> IntFn:
    """Size ``axis`` of value ``vid``, at whatever sizes ``env`` holds."""
    return lambda env: env[vid][axis]


class _Recorder(TorchFunctionMode):
    """Records every call on traced tensors; hands out Tracked sizes for traced tensors' shapes."""

    def __init__(self, trace: Trace, stack: list[tuple[str, nn.Module]]) -> None:
        super().__init__()
        self.trace = trace
        self.stack = stack
        self.ids: dict[int, int] = {}
        self.alive: list[torch.Tensor] = []  # keeps ids unique while tracing

    def where(self) -> str:
        return self.stack[-1][0] if self.stack else ""

    def add_value(self, tensor: torch.Tensor) -> int:
        vid = len(self.trace.shapes)
        self.trace.shapes.append(tuple(tensor.shape))
        self.trace.dtypes.append(tensor.dtype)
        self.ids[id(tensor)] = vid
        self.alive.append(tensor)
        return vid

    def vid(self, tensor: torch.Tensor) -> int | None:
        return self.ids.get(id(tensor))

    def tracked_numel(self, tensor: torch.Tensor) -> Tracked:
        """``x.numel()`` as a Tracked int: the product of the value's sizes wherever it is recomputed."""
        vid = self.ids[id(tensor)]
        location = self.where()

        def numel(env: Env) -> int:
            total = 1
            for n in env[vid]:
                total *= n
            return total

        return Tracked(numel(self.trace.shapes), numel, self.trace, lambda: location)

    def tracked_size(self, vid: int, shape: torch.Size) -> torch.Size:
        location = self.where()
        return torch.Size([Tracked(n, _dim(vid, axis), self.trace, lambda: location) for axis, n in enumerate(shape)])

    def __torch_function__(
        self, func: Callable[..., Any], types: Any, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if (func is _SHAPE.__get__ or getattr(func, "__self__", None) is _SHAPE) and args:
            vid = self.vid(args[0])
            shape = func(*args, **kwargs)
            return shape if vid is None or not self.trace.recording else self.tracked_size(vid, shape)
        if func is _NUMEL and args and self.trace.recording and self.vid(args[0]) is not None:
            return self.tracked_numel(args[0])
        if func is torch.Tensor.size and args and self.trace.recording:
            vid = self.vid(args[0])
            shape = args[0].shape
            if vid is not None:
                sizes = self.tracked_size(vid, shape)
                if len(args) > 1 or "dim" in kwargs:
                    return sizes[args[1] if len(args) > 1 else kwargs["dim"]]
                return sizes
        result = call(func, args, kwargs)
        if not self.trace.recording:
            return result
        traced = {id(t): v for t in tensors_in((args, kwargs)) if (v := self.vid(t)) is not None}
        inputs = tuple(dict.fromkeys(traced.values()))
        if not inputs and not has_tracked((args, kwargs)):
            return result
        produced = list(tensors_in(result))
        if func is _SETITEM and args and isinstance(args[0], torch.Tensor):
            produced = [args[0]]  # written in place: the target is a new value (its shape checked on replay)
        if not produced:
            return result
        outputs = tuple(self.add_value(t) for t in produced)
        module = self.stack[-1][1] if self.stack else None
        self.trace.steps.append(
            Node(
                len(self.trace.steps),
                func,
                func_name(func),
                tuple(args),
                dict(kwargs),
                inputs,
                traced,
                outputs,
                self.where(),
                module,
                caller_line(),
            )
        )
        return result


_NUMEL = torch.Tensor.numel
_SETITEM = torch.Tensor.__setitem__
#: Frames of the dispatch machinery between a torch call and the mode, and torch's Python-level
#: function bodies themselves: skipped to find who made the call.
_DISPATCH = ("torch/overrides.py", "torch/utils/_python_dispatch.py", "/archsolve/check/")
_BODIES = ("torch/nn/functional.py", "torch/functional.py", "torch/_tensor.py", "torch/_jit_internal.py")


def caller_line() -> str:
    """``file.py:N`` of the model code that made the current torch call; "" when torch's own code made it."""
    frame: Any = sys._getframe(1)
    while frame is not None and any(part in _path(frame) for part in _DISPATCH):
        frame = frame.f_back
    while frame is not None and _path(frame).endswith(_BODIES):
        frame = frame.f_back  # the body of F.pad, torch.Tensor.__rsub__...: its caller made the call
    if frame is None or "/torch/" in _path(frame):
        return ""
    return f"{_path(frame).rsplit('/', 1)[-1]}:{frame.f_lineno}"


def _path(frame: Any) -> str:
    return str(frame.f_code.co_filename).replace("\\", "/")


def module_stack(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The path of the module running now, kept by hooks installed on every submodule of ``model``
    (a copy of the check's own: the hooks stay for its lifetime; a failed forward leaves its path)."""
    stack: list[tuple[str, nn.Module]] = []
    for name, module in model.named_modules():

        def push(mod: nn.Module, args: Any, name: str = name) -> None:
            stack.append((name, mod))

        def pop(mod: nn.Module, args: Any, out: Any) -> None:
            if stack:
                stack.pop()

        module.register_forward_pre_hook(push)
        module.register_forward_hook(pop)
    return stack


class _Range:
    """``range`` for the model's own modules while tracing: a loop whose trip count comes from a size is a
    :class:`Guard` (the same count), so the graph stands in for the model only where the loop runs as often."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace

    def __call__(self, *args: Any) -> range:
        plain = [_plain(a) for a in args]
        if self.trace.recording and any(isinstance(a, Tracked) for a in args):
            count = len(builtins.range(*plain))
            fns = [int_fn(a) for a in args]
            line = caller_line()
            self.trace.steps.append(
                Guard(
                    lambda env: len(builtins.range(*(f(env) for f in fns))) == count,
                    line,
                    f"a loop over range({', '.join(map(str, plain))}) at {line or 'the model'} ran {count} times",
                    loop=True,
                )
            )
            self.trace.loops += 1
        return builtins.range(*plain)


@contextmanager
def loops_followed(model: Any, trace: Trace) -> Iterator[None]:
    """Shadow ``range`` in the globals of every module class of the model outside torch (restored after)."""
    spaces: dict[int, dict[str, Any]] = {}
    modules = model.modules() if isinstance(model, nn.Module) else ()
    for module in modules:
        forward = getattr(type(module), "forward", None)
        space = getattr(forward, "__globals__", None)
        if isinstance(space, dict) and not str(space.get("__name__", "")).startswith("torch"):
            spaces[id(space)] = space
    saved = {key: space.get("range", _MISSING) for key, space in spaces.items()}
    shadow = _Range(trace)
    for space in spaces.values():
        space["range"] = shadow
    try:
        yield
    finally:
        for key, space in spaces.items():
            if saved[key] is _MISSING:
                space.pop("range", None)
            else:
                space["range"] = saved[key]


_MISSING = object()


def record(
    model: Callable[[torch.Tensor], Any],
    shape: Sequence[int],
    stack: list[tuple[str, nn.Module]],
    owner: nn.Module | None = None,
) -> Trace:
    """Run ``model`` once on a meta tensor of ``shape`` and return what it did (exceptions propagate).

    ``owner``: the module whose classes' loops over sizes are followed (``model`` itself by default)."""
    trace = Trace()
    recorder = _Recorder(trace, stack)
    x = torch.empty(tuple(shape), device="meta")
    recorder.add_value(x)
    try:
        with recorder, torch.no_grad(), loops_followed(owner if owner is not None else model, trace):
            out = model(x)
    finally:
        trace.recording = False
    trace.outputs = tuple(v for t in tensors_in(out) if (v := recorder.vid(t)) is not None)
    return trace


def caller_line_of(exc: BaseException) -> str:
    """``file.py:N`` of the last line of the model's own code an exception passed through ("" if none)."""
    tb = exc.__traceback__
    found = ""
    while tb is not None:
        path = _path(tb.tb_frame)
        if "/torch/" not in path and not any(part in path for part in _DISPATCH):
            found = f"{path.rsplit('/', 1)[-1]}:{tb.tb_lineno}"
        tb = tb.tb_next
    return found
