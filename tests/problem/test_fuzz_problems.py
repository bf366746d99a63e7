"""Structure-aware fuzzing of `archsolve solve --no-rank` (issue #10).

Bundled problems have their keys, values and types mutated (huge, negative, non-finite, wrong
types, deep nesting, unknown keys, deleted keys), and raw garbage is fed as files.  For every case:
the exit code is 0, 1, 2 or 3; nothing prints a traceback; the run ends within the time limit plus
slack and the process stays under 1.5 GB; an exit 2 names a key (garbage: the file, or that it is
not TOML).  Sized for CI: about a minute on two cores.
"""

from __future__ import annotations

import resource
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsolve.cli.commands import main
from archsolve.problem.problem import TOP_KEYS

PROBLEMS = sorted((Path(__file__).parents[2] / "problems").glob("*.toml"))
LIMIT_S = 1.0
SLACK_S = 4.0  # the bound is limit + 1 s (benchmarks/solve.py); a loaded CI machine gets more
MEMORY_BYTES = 1.5 * 2**30
#: Words an exit-2 message names: a problem key (sizes, search.kernel, rank.seed, ...) or the flag.
KEY_WORDS = (*TOP_KEYS, "--set", "--top", "--time-limit", "time_limit")

SCALARS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, -1, 2**31, 2**63 - 1, 2**63, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(["?", "same", "valid", "conv", "conv_transpose | conv", "upsample+conv", "auto", "cuda:0"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8,
)


def paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into a parsed TOML document (tables and arrays alike)."""
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            found += paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += paths(value, (*prefix, i))
    return found


def mutate(data: dict[str, Any], path: tuple[Any, ...], action: str, value: Any) -> dict[str, Any]:
    node: Any = data
    for part in path[:-1]:
        node = node[part]
    last = path[-1]
    if action == "delete":
        del node[last]
    elif action == "rename" and isinstance(node, dict):
        node[f"{last}x"] = node.pop(last)
    elif action == "nest":
        node[last] = [[[node[last]]]]
    else:
        node[last] = value
    return data


def run_cli(path: Path, *extra: str) -> tuple[int, str, float]:
    start = time.monotonic()
    result = CliRunner().invoke(main, ["solve", str(path), "--no-rank", "--top", "3", *extra])
    return result.exit_code, result.output, time.monotonic() - start


def check(code: int, out: str, seconds: float, names: tuple[str, ...] = KEY_WORDS) -> None:
    assert code in (0, 1, 2, 3), out
    assert "Traceback" not in out, out
    assert seconds < LIMIT_S + SLACK_S, f"{seconds:.1f} s: {out[-300:]}"
    if code == 2:
        assert any(word in out for word in names) or "TOML" in out, out
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 < MEMORY_BYTES


@pytest.mark.slow  # over a second: outside the fast set (-m "not slow"), still in CI
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    problem=st.sampled_from(PROBLEMS),
    picks=st.lists(
        st.tuples(st.integers(0, 10**6), st.sampled_from(["set", "set", "set", "delete", "rename", "nest"]), VALUES),
        min_size=1,
        max_size=3,
    ),
    extra_key=st.one_of(st.none(), st.tuples(st.sampled_from(["", "search.", "constraints.", "rank."]), VALUES)),
)
def test_mutated_bundled_problems_answer_cleanly(
    tmp_path_factory: Any, problem: Path, picks: list[tuple[int, str, Any]], extra_key: tuple[str, Any] | None
) -> None:
    data = tomllib.loads(problem.read_text(encoding="utf-8"))
    for index, action, value in picks:
        options = paths(data)
        if not options:
            break
        data = mutate(data, options[index % len(options)], action, value)
    overrides = []
    if extra_key is not None:
        prefix, value = extra_key
        try:
            overrides = ["--set", f"{prefix}fuzzed={tomli_w.dumps({'v': value})[4:].strip()}"]
        except (TypeError, ValueError):
            overrides = []
    try:
        text = tomli_w.dumps(data)
    except (TypeError, ValueError):
        return  # not expressible in TOML (a list mixing tables and values): no user can write it
    path = tmp_path_factory.mktemp("fuzz") / "p.toml"
    path.write_text(text, encoding="utf-8")
    check(*run_cli(path, "--time-limit", str(LIMIT_S), *overrides))


@settings(max_examples=100, deadline=None)
@given(
    raw=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300),
        st.sampled_from(["[" * 3000, "a = " + "[" * 3000 + "]" * 3000, "\ufeffsizes = [1, 2]", "sizes = [1, 2]\x00"]),
    )
)
def test_garbage_files_answer_cleanly(tmp_path_factory: Any, raw: bytes | str) -> None:
    path = tmp_path_factory.mktemp("garbage") / "p.toml"
    if isinstance(raw, bytes):
        path.write_bytes(raw)
    else:
        path.write_text(raw, encoding="utf-8", errors="surrogatepass")
    # Text that is not a problem at all: the message names the file (and the key, when it gets that far).
    check(*run_cli(path, "--time-limit", str(LIMIT_S)), names=(str(path), *KEY_WORDS))
