"""Design → standalone PyTorch source: one ``nn.Module`` subclass a person can read, paste and train.

The source is generated from the module :func:`archsolve.build.modules.build` makes
(on the meta device), so the file and the built module cannot drift apart:
every standard layer is written as torch prints it (its repr is its
constructor call), and archsolve's own blocks (residual blocks, ConvLSTM cells,
the per-frame wrapper) are copied in as source.  The generated file imports
torch only.
"""

from __future__ import annotations

import inspect
import keyword
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..core.formats import VERSION
from ..core.sizes import batch_shape_text, format_size, trajectory_text
from ..design.design import Design
from ..errors import BuildError, InputError
from .summary import describe_layer, summary_table, totals

if TYPE_CHECKING:
    from torch import nn

#: torch.nn layers written as constructor calls read off the module (each checked by tests/build/test_emit.py).
LEAF_CLASSES = frozenset(
    f"{name}{suffix}"
    for name, suffixes in {
        "Conv": ("1d", "2d", "3d"),
        "ConvTranspose": ("1d", "2d", "3d"),
        "MaxPool": ("1d", "2d", "3d"),
        "AvgPool": ("1d", "2d", "3d"),
        "BatchNorm": ("1d", "2d", "3d"),
        "InstanceNorm": ("1d", "2d", "3d"),
        "ConstantPad": ("1d", "2d", "3d"),
        "GroupNorm": ("",),
        "Upsample": ("",),
        "PixelShuffle": ("",),
        "PixelUnshuffle": ("",),
        "Identity": ("",),
        "ReLU": ("",),
        "LeakyReLU": ("",),
        "GELU": ("",),
        "SiLU": ("",),
        "Tanh": ("",),
        "Sigmoid": ("",),
    }.items()
    for suffix in suffixes
)

#: archsolve.catalog.torch_blocks classes the emitter can write (as classes taking their finished parts), in file order.
BLOCK_CLASSES = ("ResidualBlock", "ConvLSTM")
_BLOCKS_MODULE = "archsolve.catalog.torch_blocks"
#: Names the generated file defines besides the model class.
HELPER_NAMES = frozenset({*BLOCK_CLASSES, "Frames", "center_crop"})

#: Classes that turn an int argument into a per-axis tuple themselves.
_NORMALIZING = ("Conv", "ConstantPad")


def class_name(design: Design) -> str:
    """``dcgan-generator`` → ``DcganGenerator`` (a valid identifier, ``Model`` where none can be made)."""
    words = [w for w in re.split(r"[^0-9A-Za-z]+", design.name) if w]
    name = "".join(w[0].upper() + w[1:] for w in words)
    if not name or not name[0].isalpha() or keyword.iskeyword(name):
        name = "Model" + name
    return name + "Model" if name in HELPER_NAMES else name


def emit_source(design: Design, name: str | None = None) -> str:
    """Standalone PyTorch source defining the design as ``name`` (default: from the design's name)."""
    from .modules import build_meta

    name = name or class_name(design)
    if not name.isidentifier() or keyword.iskeyword(name):
        raise InputError(f"class name {name!r} is not a Python identifier")
    if name in HELPER_NAMES:
        raise InputError(f"class name {name!r} is taken by a helper class in the file; choose another")
    net = build_meta(design)
    helpers: set[str] = set()
    step_sources = []
    for i, step in enumerate(net.steps):
        inner = ",\n".join(_module_source(child, helpers) for child in step.children())
        step_sources.append(f"# steps[{i}]: {_step_comment(design, i)}\nnn.Sequential(\n{_indent(inner, 4)},\n)")
    if any(step.merge is not None and step.merge.how == "crop" for step in design.steps):
        helpers.add("center_crop")
    helper_sources = _helper_sources(helpers)
    steps_list = _indent(",\n".join(step_sources), 16)
    doc = _docstring(design)
    needs_any = any(name in helpers for name in BLOCK_CLASSES)
    lead = "(N, T, " if design.sequence else "(N, "
    parts = [
        f'"""{doc}"""',
        "",
        "from __future__ import annotations",
        "",
        *(["from typing import Any", ""] if needs_any else []),
        "import torch",
        "from torch import nn",
        "",
        f'__all__ = ["{name}"]',
        "",
        *[f"\n{source.rstrip()}\n" for source in helper_sources],
        "",
        f"class {name}(nn.Module):",
        f'    """{_escape(design.name)}: {lead}{", ".join(map(str, design.in_shape))}) → '
        f'{lead}{", ".join(map(str, design.out_shape))}); recipe in the module docstring."""',
        "",
        "    #: One sample's input and output shapes, channels first"
        + (" (per frame: the input is (N, T, C, H, W))." if design.sequence else "."),
        f"    in_shape = {tuple(design.in_shape)!r}",
        f"    out_shape = {tuple(design.out_shape)!r}",
        "",
        "    def __init__(self) -> None:",
        "        super().__init__()",
        "        self.steps = nn.ModuleList(",
        "            [",
        f"{steps_list},",
        "            ]",
        "        )",
        "",
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
        *_forward_lines(design, [len(step) for step in net.steps]),  # type: ignore[arg-type]
        "",
    ]
    source = "\n".join(parts)
    try:
        compile(source, f"<{name}>", "exec")
    except SyntaxError as exc:  # pragma: no cover - a generator bug, not a user error
        raise BuildError(f"generated source for {design.name} does not compile: {exc}") from exc
    return source


def _module_source(module: nn.Module, helpers: set[str]) -> str:
    """Constructor source for one built module (recursing into containers and archsolve's blocks)."""
    from torch import nn

    from .modules import Frames

    cls = type(module)
    if isinstance(module, Frames) and cls is Frames:
        helpers.add("Frames")
        layer: nn.Module = module.layer
        return f"Frames({_module_source(layer, helpers)})"
    if cls.__module__ == _BLOCKS_MODULE and cls.__name__ in BLOCK_CLASSES:
        helpers.add(cls.__name__)
        return f"{cls.__name__}({_block_parts(module, helpers)})"
    if cls is nn.Sequential:
        inner = ",\n".join(_module_source(child, helpers) for child in module.children())
        return f"nn.Sequential(\n{_indent(inner, 4)},\n)"
    if cls.__name__ in LEAF_CLASSES and getattr(nn, cls.__name__, None) is cls and not list(module.children()):
        return f"nn.{cls.__name__}({_leaf_arguments(module)})"
    raise BuildError(f"cannot write {cls.__module__}.{cls.__qualname__} as standalone source")


def _block_parts(module: nn.Module, helpers: set[str]) -> str:
    """``name=value`` for every submodule and plain attribute of an archsolve block, as its emitted class takes them.

    The emitted block class receives its finished parts instead of re-running
    archsolve's constructor, so the file holds exactly the layers that were built.
    """
    parts = [f"{name}={_module_source(child, helpers)}" for name, child in module.named_children()]
    for name, value in vars(module).items():
        if name.startswith("_") or name == "training":
            continue
        if not isinstance(value, int | float | str | bool | tuple) or value != eval(repr(value)):
            raise BuildError(f"cannot write {type(module).__name__}.{name} = {value!r} as source")
        parts.append(f"{name}={value!r}")
    inner = ",\n".join(parts)
    return f"\n{_indent(inner, 4)},\n" if "\n" in inner else inner


def _helper_sources(names: set[str]) -> list[str]:
    """Source of the helper classes the file needs: archsolve's blocks, then the per-frame wrapper.

    A block is written as a class that takes its finished parts (see :func:`_block_parts`)
    with archsolve's own methods copied verbatim; those import nothing but torch.
    """
    from ..catalog import torch_blocks as blocks
    from .modules import Frames

    sources = [_block_class_source(getattr(blocks, name)) for name in BLOCK_CLASSES if name in names]
    if "Frames" in names:
        sources.append(inspect.getsource(Frames))
    if "center_crop" in names:
        sources.append(inspect.getsource(blocks.center_crop))
    return sources


def _block_class_source(cls: type) -> str:
    doc = _indent(inspect.getdoc(cls) or cls.__name__, 4).lstrip()
    lines = [
        f"class {cls.__name__}(nn.Module):",
        f'    """{doc}',
        "",
        "    Built from its finished parts (submodules and settings), as archsolve built them.",
        '    """',
        "",
        "    def __init__(self, **parts: Any) -> None:",
        "        super().__init__()",
        "        for name, part in parts.items():",
        "            setattr(self, name, part)",
    ]
    for name, member in vars(cls).items():
        if inspect.isfunction(member) and name != "__init__":
            lines += ["", inspect.getsource(member).rstrip()]
    return "\n".join(lines) + "\n"


def _leaf_arguments(module: nn.Module) -> str:
    """The constructor arguments that rebuild ``module``: required ones, then those off their defaults.

    torch's layers keep every constructor argument as an attribute of the same
    name, so the call is read off the module itself; writing only non-defaults
    keeps the file short and valid on torch versions with fewer keywords.
    """
    import torch

    args: list[str] = []
    params = list(inspect.signature(type(module).__init__).parameters.values())[1:]
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in ("device", "dtype"):
            continue
        if not hasattr(module, p.name):
            raise BuildError(f"cannot read {type(module).__name__}'s {p.name!r} back to write it as source")
        value = getattr(module, p.name)
        if p.name == "bias" and (value is None or isinstance(value, torch.Tensor)):
            if not getattr(module, "affine", True):
                continue  # a norm without affine weights has no bias whatever the flag says
            value = value is not None
        # Convs and pads store per-axis tuples whatever they were given, so one int writes the same
        # module; the others keep what they were given and get it back verbatim.
        written = _collapse(value) if type(module).__name__.startswith(_NORMALIZING) else value
        if p.default is p.empty:
            args.append(repr(written))
        elif _collapse(value) != _collapse(p.default):
            args.append(f"{p.name}={written!r}")
    return ", ".join(args)


def _collapse(value: object) -> object:
    """PyTorch's per-axis convention: one value where every axis agrees."""
    if isinstance(value, tuple) and value and len(set(value)) == 1:
        return value[0]
    return value


def _forward_lines(design: Design, module_counts: Sequence[int]) -> list[str]:
    """Readable forward: a loop for a chain, one line per step where skips or run-time sizes need names.

    A transposed conv sized at run time is called on its own with
    ``output_size=`` the trailing spatial dims of the output it mirrors; the
    step's other modules run as slices of its ``nn.Sequential``.
    """
    from .modules import run_time_sizes

    sized = [run_time_sizes(step) for step in design.steps]
    if all(step.merge is None for step in design.steps) and not any(sized):
        return ["        for step in self.steps:", "            x = step(x)", "        return x"]
    axis = 2 if design.sequence else 1
    spatial = len(design.in_shape) - 1
    lines = []
    previous = "x"
    for i, step in enumerate(design.steps):
        call = f"self.steps[{i}]({previous})"
        if sized[i]:
            start, current = 0, previous
            for j, source in sized[i]:
                if j > start:
                    lines.append(f"        y{i} = self.steps[{i}][{start}:{j}]({current})")
                    current = f"y{i}"
                size = f"{'x' if source == -1 else f'y{source}'}.shape[-{spatial}:]"
                lines.append(f"        y{i} = self.steps[{i}][{j}]({current}, output_size={size})")
                current, start = f"y{i}", j + 1
            call = f"self.steps[{i}][{start}:]({current})" if start < module_counts[i] else current
        merge = step.merge
        if merge is not None:
            skip = "x" if merge.source == -1 else f"y{merge.source}"
            if merge.how == "crop":
                lines.append(f"        y{i} = {call}")
                call, skip = f"y{i}", f"center_crop({skip}, y{i}, {spatial})"
            call = f"{skip} + {call}" if merge.how == "add" else f"torch.cat([{skip}, {call}], dim={axis})"
        if call != f"y{i}":
            lines.append(f"        y{i} = {call}")
        previous = f"y{i}"
    lines.append(f"        return {previous}")
    return lines


def _step_comment(design: Design, i: int) -> str:
    step = design.steps[i]
    before = design.in_shape if i == 0 else design.outputs[i - 1]
    text = f"{format_size(before)} → {format_size(step.out_shape)}"
    for layer in step.layers:
        if layer.size_from is not None:
            text += f", output_size from {_output_name(layer.size_from)}"
    if step.merge is not None:
        source = "the input" if step.merge.source == -1 else f"steps[{step.merge.source}]"
        text += f", {step.merge.how} with {source} → {format_size(design.outputs[i])}"
    return text


def _docstring(design: Design) -> str:
    params, macs = totals(summary_table(design))
    per = "frame" if design.sequence else "sample"
    recipe = []
    for i, step in enumerate(design.steps):
        # A norm has no recipe: its name says it all.
        parts = [describe_layer(layer) if layer.recipe() else layer.op for layer in step.layers]
        if step.activation != "none":
            parts.append(step.activation)
        line = f"    steps[{i}]: " + "; ".join(parts)
        if step.merge is not None:
            source = "the input" if step.merge.source == -1 else f"steps[{step.merge.source}]"
            line += f"; {step.merge.how} with {source}"
        recipe.append(line)
    shapes = [design.in_shape, *design.outputs]
    lines = [
        f"{_escape(design.name)}: generated by archsolve {VERSION}.",
        "",
        "Standalone PyTorch (imports torch only); construct with no arguments.",
        "",
        f"Trajectory (channels x spatial, per {per}):",
        f"    {format_size(shapes[0])} → " + " → ".join(format_size(s) for s in shapes[1:]),
        f"    sizes {trajectory_text(shapes)}",
        "",
        "Recipe:",
        *(_escape(line) for line in recipe),
        "",
        f"Parameters: {params.trainable:,} trainable + {params.non_trainable:,} non-trainable (norm running"
        f" statistics) = {params.total:,}.",
        f"MACs per {per}: {macs:,}.",
        f"Input {batch_shape_text(design.in_shape, design.sequence)} → "
        f"output {batch_shape_text(design.out_shape, design.sequence)}.",
        *(
            [
                "Transposed convs with 'output_size from' take their output size from that tensor at run time,",
                "so the model also runs at the other input sizes it was solved for.",
            ]
            if any(layer.size_from is not None for layer in design.layers)
            else []
        ),
        "",
    ]
    return "\n".join(lines)


def _output_name(source: int) -> str:
    return "the input" if source == -1 else f"steps[{source}]"


def _escape(text: str) -> str:
    """Safe inside a triple-quoted docstring: backslashes, quotes and control characters escaped."""
    out = []
    for char in text.replace("\\", "\\\\").replace('"', '\\"'):
        code = ord(char)
        out.append(f"\\x{code:02x}" if (code < 0x20 and char != "\n") or code == 0x7F else char)
    return "".join(out)


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line else line for line in text.splitlines())
