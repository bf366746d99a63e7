"""docs/ covers what users meet: every problem key, every command's JSON, every stage; nothing points elsewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from archsolve.problem import encoder, problem

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
PROBLEMS_DOC = (DOCS / "problems.md").read_text(encoding="utf-8")

KEYS = {
    "": problem.TOP_KEYS,
    "[search]": problem.SEARCH_KEYS,
    "[constraints]": problem.CONSTRAINT_KEYS,
    "[rank]": problem.RANK_KEYS,
    "[build]": problem.BUILD_KEYS,
    "[encoder]": encoder.ENCODER_KEYS,
    "[decoder]": encoder.DECODER_KEYS,
}


def section(title: str) -> str:
    """The part of docs/problems.md under the heading that names ``title``."""
    if not title:
        return PROBLEMS_DOC
    heads = [m for m in re.finditer(r"^#+ .*$", PROBLEMS_DOC, re.M)]
    for head, following in zip(heads, [*heads[1:], None], strict=True):
        if re.match(r"#+ `" + re.escape(title) + "`", head.group(0)):
            return PROBLEMS_DOC[head.end() : following.start() if following else None]
    raise AssertionError(f"no section for {title}")


@pytest.mark.parametrize("table", list(KEYS))
def test_every_problem_key_is_documented_in_its_table(table: str) -> None:
    text = section(table)
    missing = [key for key in KEYS[table] if f"| `{key}` |" not in text and f"`[{key}]`" not in text]
    assert not missing, f"{table or 'top level'}: {missing}"


def test_free_ranges_and_their_defaults_are_documented() -> None:
    assert "{ min = 8, max = 40 }" in PROBLEMS_DOC and "**1..1024**" in PROBLEMS_DOC
    assert "`multiple_of`" in section("[search]") and 'applies to `"?"` channels only' in PROBLEMS_DOC


def test_every_skip_word_is_documented() -> None:
    for word in encoder.SKIPS:
        assert f"`{word}`" in section("[decoder]"), word


def test_json_doc_covers_every_command_with_its_version() -> None:
    text = (DOCS / "json.md").read_text(encoding="utf-8")
    for command in ("explore", "solve", "build", "summary"):
        assert f"## `archsolve {command}" in text, command
    assert '"version"' in text


def test_readme_links_the_docs_and_keeps_its_first_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("problems.md", "json.md", "architecture.md"):
        assert f"(docs/{name})" in readme and (DOCS / name).is_file()
    commands = [line for line in readme.splitlines() if line.startswith("python3 -m venv .venv")]
    assert commands[:2] == [
        "python3 -m venv .venv && .venv/bin/pip install -q torch==2.13.0 -e . && "
        ".venv/bin/archsolve solve problems/dcgan_generator.toml --trials 12",
        "python3 -m venv .venv && .venv/bin/pip install -q torch==2.13.0 -e '.[test]' && "
        ".venv/bin/python -m pytest -n auto",
    ]


def test_nothing_points_to_files_users_do_not_have() -> None:
    texts = [ROOT / "README.md", *sorted((ROOT / "src").rglob("*.py"))]
    offenders = [str(path) for path in texts if re.search(r"(?<!docs/)\bdesign\.md", path.read_text(encoding="utf-8"))]
    assert not offenders


def test_architecture_map_names_every_stage_package() -> None:
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    packages = [p.name for p in (ROOT / "src" / "archsolve").iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    for name in packages:
        assert f"`{name}/`" in text, name


def test_unknown_keys_point_to_the_reference() -> None:
    with pytest.raises(problem.InputError, match=r"docs/problems\.md"):
        problem.loads('sizes = [1, 4]\nops = "conv"\n[search]\nkernal = 3\n')
