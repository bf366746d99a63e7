"""archsolve.problem.saved: designs round-trip exactly through TOML and JSON; bad files name their keys."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from archsolve.design.design import Design
from archsolve.errors import InputError
from archsolve.problem.saved import (
    design_from_dict,
    design_to_dict,
    dumps_json,
    dumps_toml,
    load_design,
    loads_design,
    save_design,
)
from helpers.seed_designs import ALL, convlstm_encoder_decoder, keras_seed_003, random_designs


@pytest.mark.parametrize("key", sorted(ALL))
@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_seed_designs_round_trip_exactly(key: str, suffix: str, tmp_path: Path) -> None:
    design = ALL[key]()
    path = save_design(design, tmp_path / f"design{suffix}")
    assert load_design(path) == design


@settings(max_examples=60, deadline=None)
@given(random_designs())
def test_random_designs_round_trip_exactly(design: Design) -> None:
    assert loads_design(dumps_toml(design), ".toml") == design
    assert loads_design(dumps_json(design), ".json") == design


def test_toml_and_json_hold_the_same_data() -> None:
    design = keras_seed_003()
    assert tomllib.loads(dumps_toml(design)) == json.loads(dumps_json(design)) == design_to_dict(design)


def test_skip_connections_are_saved_as_merge_tables() -> None:
    steps = tomllib.loads(dumps_toml(keras_seed_003()))["steps"]
    assert [step.get("merge") for step in steps] == [
        None,
        None,
        {"source": 0, "how": "concat"},
        None,
        {"source": 3, "how": "concat"},
    ]


def test_names_with_quotes_and_control_characters_survive() -> None:
    design = keras_seed_003()
    odd = Design('a "b" \\ c\n\x7f\té', design.steps, design.options)
    assert loads_design(dumps_toml(odd)) == odd


def seed_dict() -> dict[str, Any]:
    return design_to_dict(keras_seed_003())


def issues_of(data: Any) -> list[str]:
    with pytest.raises(InputError) as info:
        design_from_dict(data, "d.toml")
    return [str(issue) for issue in info.value.issues]


@pytest.mark.parametrize(
    ("edit", "where", "message"),
    [
        (lambda d: d.update(stpes=d.pop("steps")), "d.toml: stpes", "did you mean 'steps'"),
        (lambda d: d["build"].update(activaton="relu"), "d.toml: build.activaton", "did you mean 'activation'"),
        (lambda d: d["steps"][0].update(activatoin="relu"), "d.toml: steps[0].activatoin", "did you mean 'activation'"),
        (lambda d: d["steps"][2]["merge"].update(sorce=0), "d.toml: steps[2].merge.sorce", "did you mean 'source'"),
        (
            lambda d: d["steps"][0]["layers"][0].update(kernal=3),
            "d.toml: steps[0].layers[0].kernal",
            "did you mean 'kernel'",
        ),
    ],
)
def test_unknown_keys_name_the_nearest_valid_one(edit: Any, where: str, message: str) -> None:
    data = seed_dict()
    edit(data)
    (issue,) = [i for i in issues_of(data) if i.startswith(where + ":")]  # a renamed key is also missing
    assert message in issue


@pytest.mark.parametrize(
    ("edit", "where", "message"),
    [
        (lambda d: d["steps"][0]["layers"][0].update(op="convv"), "steps[0].layers[0].op", "did you mean 'conv'"),
        (lambda d: d["steps"][0]["layers"][0].update(kernel="3"), "steps[0].layers[0].kernel", "expected an integer"),
        (lambda d: d["steps"][0]["layers"][0].update(kernel=[3, 3, 3]), "steps[0].layers[0].kernel", "one per axis"),
        (lambda d: d["steps"][0]["layers"][0].update(bias="yes"), "steps[0].layers[0].bias", "true or false"),
        (lambda d: d["steps"][1]["layers"][0].update(ceil_mode=1), "steps[1].layers[0].ceil_mode", "true or false"),
        (lambda d: d["steps"][2]["layers"][0].update(mode="cubic"), "steps[2].layers[0].mode", "expected one of"),
        (lambda d: d["steps"][0]["layers"][0].update(in_shape=[3, 0, 128]), "steps[0].layers[0].in_shape", "positive"),
        (
            lambda d: d["steps"][0]["layers"][0].update(out_shape=[64, 127, 128]),
            "steps[0].layers[0].out_shape",
            "gives [64, 128, 128]",
        ),
        (lambda d: d["steps"][0]["layers"][0].update(padding=-1), "steps[0].layers[0]", "torch rejects"),
        (lambda d: d["steps"][0].update(activation="swish"), "steps[0].activation", "expected one of"),
        (lambda d: d["steps"][0].update(layers=[]), "steps[0].layers", "non-empty array"),
        (lambda d: d["steps"][2].update(merge={"source": 0, "how": "stack"}), "steps[2].merge.how", "'concat'"),
        (lambda d: d["steps"][2].update(merge={"how": "concat"}), "steps[2].merge.source", "missing"),
        (lambda d: d["steps"][2].update(merge={"source": -3}), "steps[2].merge.source", ">= -1"),
        (lambda d: d["build"].update(bias="sometimes"), "build.bias", "'auto'"),
        (lambda d: d["build"].update(norm="layer"), "build.norm", "expected one of"),
        (lambda d: d["build"].update(negative_slope="0.2"), "build.negative_slope", "a number"),
        (lambda d: d["build"].update(norm_first="no"), "build.norm_first", "true or false"),
        (lambda d: d.update(version=2), "version", "expected 1"),
        (lambda d: d.update(sequence="yes"), "sequence", "true or false"),
        (lambda d: d.update(name=""), "name", "non-empty string"),
        (lambda d: d.update(steps="all"), "steps", "non-empty array"),
    ],
)
def test_bad_values_name_their_key(edit: Any, where: str, message: str) -> None:
    data = seed_dict()
    edit(data)
    (issue,) = issues_of(data)
    assert issue.startswith(f"d.toml: {where}")
    assert message in issue


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["steps"][2].update(merge={"source": 2}), "merge source 2 is not an earlier step"),
        (lambda d: d["steps"][2].update(merge={"source": 1}), "sizes 64x64 and 128x128 differ"),
        (
            lambda d: d["steps"][3]["layers"][0].update(in_shape=[64, 128, 128], out_shape=[64, 128, 128]),
            "steps[3] takes [64, 128, 128] but receives [128, 128, 128]",
        ),
    ],
)
def test_designs_that_do_not_chain_are_refused(edit: Any, message: str) -> None:
    data = seed_dict()
    edit(data)
    (issue,) = issues_of(data)
    assert message in issue


def test_convlstm_needs_sequence() -> None:
    data = design_to_dict(convlstm_encoder_decoder())
    data["sequence"] = False
    (issue,) = issues_of(data)
    assert "steps[1]: conv_lstm runs over a time axis; set sequence = true" in issue


def test_every_issue_is_reported_at_once() -> None:
    data = seed_dict()
    data["steps"][0]["layers"][0]["kernal"] = 3
    data["steps"][3]["layers"][0]["op"] = "deconv"
    data["build"]["activation"] = "rel"
    assert len(issues_of(data)) == 3


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_design(tmp_path / "missing.toml")
    with pytest.raises(InputError, match=r"ends in \.toml or \.json"):
        save_design(keras_seed_003(), tmp_path / "design.yaml")
    broken = tmp_path / "broken.toml"
    broken.write_text("name = [", encoding="utf-8")
    with pytest.raises(InputError, match="not valid TOML"):
        load_design(broken)
    broken_json = tmp_path / "broken.json"
    broken_json.write_text("{", encoding="utf-8")
    with pytest.raises(InputError, match="not valid JSON"):
        load_design(broken_json)


def test_a_problem_file_is_told_apart(tmp_path: Path) -> None:
    problem = tmp_path / "problem.toml"
    problem.write_text('sizes = [1, 4, 8]\nops = "conv_transpose"\n', encoding="utf-8")
    with pytest.raises(InputError, match="problem file, not a saved design"):
        load_design(problem)


def test_top_level_must_be_a_table() -> None:
    with pytest.raises(InputError, match="expected a table"):
        loads_design("[1, 2]", ".json")
