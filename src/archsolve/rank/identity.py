"""What a measurement is of, as one key: the module that ran, the input it ran on, how and where it was timed.

A study finds its designs by the space's option keys, but the same keys can
name another module after the problem changes (other channels, another norm,
no bias), and a number measured for one module says nothing about another.
So every measurement carries :func:`measure_key`: a stable hash of a
canonical JSON of

* the module's structure: the design's layers (kind, shapes and hence
  channels, per-axis recipes, groups, bias, norm, mode, run-time output
  size), each step's activation and skip connection, the sequence flag, and
  the torch module :func:`archsolve.build.modules.build` makes of it (built on the
  meta device: no memory), which adds what the builder takes from the
  ``[build]`` options (a LeakyReLU's slope).  A ``[build]`` option no layer
  uses (an upsample mode without upsampling) changes nothing that ran;
* the input: the batch and one sample's shape (a sequence design's time
  axis is the measure settings' ``time_steps``);
* the measure settings (device, dtype, mode, layout, warm-up, repeats, clock, …);
* the environment: device name, torch, CUDA and cuDNN versions, threads.

A trial is reused only under an equal key; trials without one (studies from
before the key existed) are ignored.  The key leaves the design's name out,
so two problems whose designs build the same module share the measurement.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from ..design.design import Design
from .measure import Environment, Measurer

#: The environment fields that change what a timing means (python and OS patch levels do not).
ENV_FIELDS = ("torch", "device", "device_name", "threads", "cuda", "cudnn")


def design_content(design: Design) -> dict[str, Any]:
    """The design as it runs, without its name (names do not run): its steps and the module torch builds."""
    from ..build.modules import build_meta
    from ..errors import ArchsolveError

    try:
        module = str(build_meta(design))
    except (ArchsolveError, RuntimeError, ValueError, TypeError) as exc:  # it fails when measured, too
        module = f"not buildable: {type(exc).__name__}: {exc}"
    return {"steps": [dataclasses.asdict(step) for step in design.steps], "sequence": design.sequence, "module": module}


def context_content(measurer: Measurer) -> dict[str, Any]:
    """How and where timings are taken: every measure setting (device resolved) and the environment."""
    env: Environment = measurer.env
    return {"measure": measurer.settings.to_dict(), "env": {name: getattr(env, name) for name in ENV_FIELDS}}


def digest(content: Any) -> str:
    """A stable hash of ``content``'s canonical JSON (sorted keys, no whitespace)."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def context_key(measurer: Measurer) -> str:
    """The key of the measuring context alone (step timings and races are stored under it)."""
    return digest(context_content(measurer))


def measure_key(design: Design, measurer: Measurer) -> str:
    """The identity of one design's measurement: its structure, its input, the measure context."""
    shape = {"batch": measurer.settings.batch_size, "sample": list(design.in_shape), "sequence": design.sequence}
    return digest({"design": design_content(design), "input": shape, **context_content(measurer)})
