"""What a measurement is of, as one key: the module that ran, the input it ran on, how and where it was timed.

A study finds its designs by the space's option keys, but the same keys can
name another module after the problem changes (other channels, another norm,
no bias), and a number measured for one module says nothing about another.
So every measurement carries :func:`measure_key`: a stable hash of a
canonical JSON of

* the design's structure: every layer's kind, shapes (hence channels),
  per-axis recipes, groups, bias, norm, mode and run-time output size, each
  step's activation and skip connection, the sequence flag, and the
  ``[build]`` options the builder reads (a LeakyReLU's slope);
* the input: the batch and one sample's shape (a sequence design's time
  axis is the measure settings' ``time_steps``);
* the measure settings (device, dtype, mode, layout, warm-up, repeats, clock, …);
* the environment: device name, torch, CUDA and cuDNN versions, threads.

A trial is reused only under an equal key; trials without one (studies from
before the key existed) are ignored.  The key is the design's name-free
content, so two problems whose designs coincide share the measurement.
Torch is not needed: a built module is a pure function of the design
(:func:`archsolve.build.build`), and the design is the frozen value it reads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from ..design import Design
from .measure import Environment, Measurer

#: The environment fields that change what a timing means (python and OS patch levels do not).
ENV_FIELDS = ("torch", "device", "device_name", "threads", "cuda", "cudnn")


def design_content(design: Design) -> dict[str, Any]:
    """The design as the builder reads it, without its name (names do not run)."""
    return {
        "steps": [dataclasses.asdict(step) for step in design.steps],
        "sequence": design.sequence,
        "build": dataclasses.asdict(design.options),
    }


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
