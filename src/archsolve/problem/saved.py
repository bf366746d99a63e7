"""Saved designs: ``design.toml`` / ``design.json`` written and read back exactly.

A saved design lists every layer with its shapes and recipe, so a person can
read it and ``archsolve build`` can rebuild it without solving again.  Loading
trusts nothing: every layer is remade through the op catalog and its stored
output shape must agree; every issue in the file is reported at once, each
naming its key (with the nearest valid key for typos).  TOML is written with
tomli-w and read with :mod:`tomllib`.  Nothing here imports torch.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..catalog import KINDS
from ..catalog.norm import NORM_KINDS
from ..catalog.resample import Upsample
from ..core.formats import DESIGN_VERSION, VERSION
from ..core.recipe import AXIS_FIELDS, AxisRecipe
from ..core.sizes import format_size
from ..design.checks import Checker, read_text, show, write_text
from ..design.design import MERGE_HOWS, STEP_ACTIVATIONS, BuildOptions, Design, Merge, Step
from ..design.layer import Layer
from ..errors import InputError, Issue
from .problem import TOP_KEYS as PROBLEM_KEYS

FORMAT_VERSION = DESIGN_VERSION
TOP_KEYS = ("version", "name", "sequence", "build", "steps")
STEP_KEYS = ("activation", "merge", "layers")
MERGE_KEYS = ("source", "how")
#: Per-axis recipe keys: an int (or bool) when equal on every axis, else a list (PyTorch's convention).
AXIS_KEYS = (*AXIS_FIELDS, "ceil_mode", "pad_extra")
#: ``output_size_from``: the step whose output size a transposed conv takes at run time (Layer.size_from),
#: named as in ``solve --json``.
LAYER_KEYS = ("op", "in_shape", "out_shape", *AXIS_KEYS, "groups", "bias", "mode", "norm", "output_size_from")
FORMATS = (".toml", ".json")


# ------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------


def design_to_dict(design: Design) -> dict[str, Any]:
    """The saved form: plain dicts, lists, ints, floats, bools and strings (no None: TOML has none)."""
    return {
        "version": FORMAT_VERSION,
        "name": design.name,
        "sequence": design.sequence,
        "build": {f.name: getattr(design.options, f.name) for f in fields(BuildOptions)},
        "steps": [_step_to_dict(step) for step in design.steps],
    }


def _step_to_dict(step: Step) -> dict[str, Any]:
    out: dict[str, Any] = {"activation": step.activation}
    if step.merge is not None:
        out["merge"] = {"source": step.merge.source, "how": step.merge.how}
    out["layers"] = [_layer_to_dict(layer) for layer in step.layers]
    return out


def _layer_to_dict(layer: Layer) -> dict[str, Any]:
    kind = layer.kind
    default = AxisRecipe()
    out: dict[str, Any] = {"op": layer.op, "in_shape": list(layer.in_shape), "out_shape": list(layer.out_shape)}
    for name in AXIS_KEYS:
        values = [getattr(a, name) for a in layer.axes]
        if name in kind.search_fields or any(v != getattr(default, name) for v in values):
            out[name] = values[0] if len(set(values)) == 1 else values
    if layer.groups != 1:
        out["groups"] = layer.groups
    if kind.has_weights:
        out["bias"] = layer.bias
    for name in kind.layer_options:
        out[name] = getattr(layer, name)
    if layer.size_from is not None:
        out["output_size_from"] = layer.size_from
    return out


def dumps_json(design: Design) -> str:
    return json.dumps(design_to_dict(design), indent=2, ensure_ascii=False) + "\n"


def dumps_toml(design: Design) -> str:
    """TOML for ``design`` (written by tomli-w): top-level keys, ``[build]``, then ``[[steps]]`` with their layers."""
    import tomli_w

    shapes = [design.in_shape, *design.outputs]
    header = [
        f"# archsolve design, written by archsolve {VERSION}; rebuild with: archsolve build THIS_FILE -o model.py",
        "# " + " → ".join(format_size(shape) for shape in shapes),
    ]
    data = design_to_dict(design)
    for value in data["build"].values():
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"cannot save the non-finite number {value} in TOML")
    return "\n".join(header) + "\n" + tomli_w.dumps(data)


def dumps_design(design: Design, fmt: str = ".toml") -> str:
    """``design`` as ``.toml`` or ``.json`` text."""
    if fmt == ".json":
        return dumps_json(design)
    if fmt == ".toml":
        return dumps_toml(design)
    raise InputError(f"unknown design format {fmt!r}; expected one of {', '.join(FORMATS)}")


def save_design(design: Design, path: str | Path) -> Path:
    """Write ``design`` to ``path``, TOML or JSON by its suffix."""
    return write_text(path, dumps_design(design, _format_of(Path(path))))


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(Issue(str(path), f"a saved design ends in .toml or .json, not {suffix or 'nothing'!r}"))
    return suffix


# ------------------------------------------------------------------------------------------------
# Reading
# ------------------------------------------------------------------------------------------------


def load_design(path: str | Path) -> Design:
    """Read a saved design (``.toml`` or ``.json``); InputError listing every issue."""
    path = Path(path)
    fmt = _format_of(path)
    text = read_text(path)
    return loads_design(text, fmt, source=str(path))


def loads_design(text: str, fmt: str = ".toml", source: str = "<design>") -> Design:
    try:
        data = json.loads(text) if fmt == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(Issue(source, f"not valid {fmt[1:].upper()}: {exc}")) from exc
    return design_from_dict(data, source)


def looks_like_problem(data: Mapping[str, Any]) -> bool:
    """A problem file given where a saved design was expected: a key only problems have (``sizes``,
    ``ops``, ``[encoder]``, ``[search]`` …) and no ``[[steps]]``."""
    return "steps" not in data and any(key in data and key not in TOP_KEYS for key in PROBLEM_KEYS)


def design_from_dict(data: Any, source: str = "<design>") -> Design:
    """Check a parsed saved design and rebuild it through the op catalog; one InputError with every issue."""
    check = Checker(source, reference="docs/json.md#saved-designs")
    if not isinstance(data, dict):
        raise InputError(Issue(source, f"expected a table of keys, got {type(data).__name__}"))
    if looks_like_problem(data):
        raise InputError(
            Issue(source, "this is a problem file, not a saved design; solve it first (archsolve solve … --save)")
        )
    check.keys(data, TOP_KEYS, "")
    version = data.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        check.add("version", f"expected {FORMAT_VERSION}, got {show(version)}")
    name = data.get("name", Path(source).stem or "design")
    if not isinstance(name, str) or not name:
        check.add("name", f"expected a non-empty string, got {show(name)}")
        name = "design"
    sequence = check.boolean(data.get("sequence", False), "sequence")
    options = BuildOptions.read(check, data.get("build", {}))
    steps_data = data.get("steps")
    steps: list[Step] = []
    if not isinstance(steps_data, list) or not steps_data:
        check.add("steps", f"expected a non-empty array of [[steps]] tables, got {show(steps_data)}")
    else:
        for i, step in enumerate(steps_data):
            made = _step(check, step, f"steps[{i}]")
            if made is not None:
                steps.append(made)
    if check.issues:
        raise InputError(check.issues)
    try:
        return Design(name, tuple(steps), options, bool(sequence))
    except InputError as exc:
        raise InputError(
            [Issue(f"{source}: {i.where}" if i.where else source, i.message) for i in exc.issues]
        ) from None


def _keyed_table(check: Checker, data: Any, allowed: Sequence[str], where: str) -> bool:
    """Whether ``data`` is a table (an issue at ``where`` otherwise); its keys outside ``allowed`` are issues."""
    if not isinstance(data, dict):
        check.add(where, f"expected a table, got {show(data)}")
        return False
    check.keys(data, allowed, f"{where}.")
    return True


def _step(check: Checker, data: Any, where: str) -> Step | None:
    if not _keyed_table(check, data, STEP_KEYS, where):
        return None
    before = len(check.issues)
    activation = check.choice(data.get("activation", "none"), f"{where}.activation", STEP_ACTIVATIONS)
    merge = _merge(check, data["merge"], f"{where}.merge") if "merge" in data else None
    layers_data = data.get("layers")
    layers: list[Layer] = []
    if not isinstance(layers_data, list) or not layers_data:
        check.add(f"{where}.layers", f"expected a non-empty array of [[steps.layers]] tables, got {show(layers_data)}")
    else:
        for j, layer in enumerate(layers_data):
            made = _layer(check, layer, f"{where}.layers[{j}]")
            if made is not None:
                layers.append(made)
    if len(check.issues) > before:
        return None
    try:
        return Step(tuple(layers), activation or "none", merge)
    except InputError as exc:
        check.add(where, str(exc))
        return None


def _merge(check: Checker, data: Any, where: str) -> Merge | None:
    if not isinstance(data, dict):
        check.add(where, f"expected a table {{ source = STEP, how = 'concat' }}, got {show(data)}")
        return None
    check.keys(data, MERGE_KEYS, f"{where}.")
    if "source" not in data:
        check.add(f"{where}.source", "missing: the earlier step to join (-1 for the design input)")
        return None
    source = check.integer(data["source"], f"{where}.source", low=-1)
    how = check.choice(data.get("how", "concat"), f"{where}.how", MERGE_HOWS)
    return None if source is None or how is None else Merge(source, how)


def _layer(check: Checker, data: Any, where: str) -> Layer | None:
    if not _keyed_table(check, data, LAYER_KEYS, where):
        return None
    before = len(check.issues)
    op = check.choice(data.get("op"), f"{where}.op", tuple(KINDS))
    in_shape = check.shape(data.get("in_shape"), f"{where}.in_shape")
    out_shape = check.shape(data.get("out_shape"), f"{where}.out_shape")
    if op is None or in_shape is None or out_shape is None:
        return None
    ndim = len(in_shape) - 1
    per_axis: list[dict[str, Any]] = [{} for _ in range(ndim)]
    for name in AXIS_KEYS:
        if name not in data:
            continue
        values = check.per_axis(data[name], f"{where}.{name}", ndim, boolean=name == "ceil_mode")
        if values is not None:
            for axis, value in enumerate(values):
                per_axis[axis][name] = value
    options: dict[str, Any] = {}
    if "groups" in data and (groups := check.integer(data["groups"], f"{where}.groups", low=1)) is not None:
        options["groups"] = groups
    if "bias" in data and (bias := check.boolean(data["bias"], f"{where}.bias")) is not None:
        options["bias"] = bias
    if "mode" in data and (mode := check.choice(data["mode"], f"{where}.mode", tuple(Upsample.MODES))):
        options["mode"] = mode
    if "norm" in data and (norm := check.choice(data["norm"], f"{where}.norm", tuple(NORM_KINDS))):
        options["norm"] = norm
    if "output_size_from" in data:
        source = check.integer(data["output_size_from"], f"{where}.output_size_from", low=-1)
        if source is not None and not KINDS[op].takes_output_size:
            check.add(f"{where}.output_size_from", f"{op} takes no output_size (only transposed convs do)")
        elif source is not None:
            options["size_from"] = source
    if len(check.issues) > before:
        return None
    try:
        layer = Layer.make(op, in_shape, [AxisRecipe(**a) for a in per_axis], out_shape[0], **options)
    except InputError as exc:
        check.add(where, str(exc))
        return None
    if (issue := layer.kind.shape_issue(layer)) is not None:
        check.add(where, issue)
        return None
    if layer.out_shape != out_shape:
        check.add(
            f"{where}.out_shape",
            f"the file says {list(out_shape)} but {op} on {list(in_shape)} "
            f"with this recipe gives {list(layer.out_shape)}",
        )
        return None
    return layer
