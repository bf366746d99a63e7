"""Progress: live bars on a terminal; off it one line per phase and a summary, never ANSI; --quiet silences it."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from archsolve.cli.progress import PhaseProgress, duration

ARCHSOLVE = Path(sys.executable).parent / "archsolve"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def feed(bars: PhaseProgress, clock: Clock) -> None:
    for done in range(1, 49):
        clock.now += 0.5
        bars.update("model", done, 48, eta_s=(48 - done) * 0.5)
    for done in range(1, 13):
        clock.now += 2.0
        bars.update("search", done, 12, eta_s=(12 - done) * 2.0, best=f"{10 * done:,.1f} samples/s")
    bars.close()


def test_off_a_terminal_each_phase_is_one_line_then_a_summary() -> None:
    stream, clock = io.StringIO(), Clock()
    feed(PhaseProgress(stream, live=False, clock=clock), clock)
    lines = stream.getvalue().splitlines()
    assert lines == [
        "timing steps: 48/48 in 24.0 s",  # from the start (100.0) to its last event (124.0)
        "measuring designs: 12/12 in 24.0 s, best 120.0 samples/s",  # from 124.0 to 148.0
        "done in 48.0 s: timing steps 24.0 s, measuring designs 24.0 s",
    ]


def test_quiet_draws_nothing() -> None:
    stream, clock = io.StringIO(), Clock()
    feed(PhaseProgress(stream, enabled=False, live=False, clock=clock), clock)
    assert stream.getvalue() == ""


def test_live_bars_show_each_phase_with_its_count_and_best() -> None:
    stream, clock = io.StringIO(), Clock()
    feed(PhaseProgress(stream, live=True, clock=clock), clock)
    text = stream.getvalue()
    assert "timing steps" in text and "48/48" in text
    assert "measuring designs" in text and "12/12" in text and "best 120.0 samples/s" in text
    assert "━" in text  # a drawn bar


def test_durations_read_as_people_write_them() -> None:
    assert duration(4.24) == "4.2 s"
    assert duration(125) == "2 min 05 s"
    assert duration(3720) == "1 h 02 min"


TINY = """
name = "tiny"
sizes = [4, 8]
channels = [8, 4]
ops = "conv_transpose"
[search]
kernel = [2, 4]
stride = 2
padding = [0, 1]
[rank]
trials = 3
batch_size = 2
warmup = 1
repeats = 3
"""


@pytest.mark.slow  # a new interpreter
def test_piped_solve_writes_a_line_per_phase_and_no_ansi(tmp_path: Path) -> None:
    problem = tmp_path / "tiny.toml"
    problem.write_text(TINY)
    command = [str(ARCHSOLVE), "solve", str(problem), "--results-dir", str(tmp_path / "results")]
    done = subprocess.run(command, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "TERM": "xterm"})
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\x1b" not in done.stderr
    progress = done.stderr.splitlines()
    assert len(progress) == 4
    assert progress[0].startswith("timing steps: ")
    assert progress[1].startswith("measuring designs: 3/3 in ")
    assert progress[2].startswith("final race: ")
    assert progress[3].startswith("done in ")
    assert "tiny: 3 valid designs" in done.stdout and re.search(
        r"^winner: (#\d+ at |keep the reference #)", done.stdout, re.MULTILINE
    )
    quiet = subprocess.run([*command, "--quiet"], capture_output=True, text=True)
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_a_lone_phase_is_its_own_summary() -> None:
    stream, clock = io.StringIO(), Clock()
    bars = PhaseProgress(stream, live=False, clock=clock)
    for step in range(1, 6):
        clock.now += 0.4
        bars.update("solve", step, 5, detail="tables")
    bars.close()
    bars.close()  # safe twice
    assert stream.getvalue().splitlines() == ["solving: 5/5 in 2.0 s"]


def in_a_terminal(command: list[str], env: dict[str, str]) -> str:
    """``command``'s output as a terminal (a pty from script(1)) receives it, escape codes and all."""
    import shlex
    import shutil

    if shutil.which("script") is None:
        pytest.skip("script(1) is not installed")
    done = subprocess.run(
        ["script", "-qec", shlex.join(command), "/dev/null"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40", **env},
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.slow  # a new interpreter
def test_a_terminal_gets_live_bars_in_colour_unless_no_color(tmp_path: Path) -> None:
    problem = tmp_path / "tiny.toml"
    problem.write_text(TINY)
    command = [str(ARCHSOLVE), "solve", str(problem), "--results-dir", str(tmp_path / "results")]
    coloured = in_a_terminal(command, {})
    assert "timing steps" in coloured and "measuring designs" in coloured and "━" in coloured
    assert "\x1b[?25l" in coloured  # rich hides the cursor while the bars are live
    assert re.search(r"\x1b\[(3\d|38;5;\d+)m", coloured)  # coloured bars
    plain = in_a_terminal(command, {"NO_COLOR": "1"})  # the study now holds every design: reused, still drawn
    assert "samples/s" in plain
    assert not re.search(r"\x1b\[(3\d|38;5;\d+)m", plain)
