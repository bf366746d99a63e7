"""``[rank]``: one set of defaults (the settings values'), checked once by those values, reported at load time."""

from __future__ import annotations

from dataclasses import fields

import pytest

from archsolve.errors import InputError
from archsolve.problem.problem import RANK_TABLE, loads
from archsolve.rank import RankSettings
from archsolve.rank.settings import MeasureSettings

BASE = 'sizes = [1, 4]\nops = "conv_transpose"\n[rank]\n'


def test_the_file_defaults_are_the_settings_defaults() -> None:
    problem = loads(BASE)
    assert problem.rank == RankSettings() and problem.measure == MeasureSettings()


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("trials = 0", "rank.trials"),
        ("repeats = 2", "rank.repeats"),
        ("warmup = 0", "rank.warmup"),
        ('dtype = "f16"', "rank.dtype"),
        ('mode = "eval"', "rank.mode"),
        ('sampler = "grid"', "rank.sampler"),
        ('batch_size = "x"', "rank.batch_size"),
    ],
)
def test_bad_values_name_the_file_and_key_when_the_file_is_read(line: str, key: str) -> None:
    with pytest.raises(InputError) as info:
        loads(BASE + line + "\n", source="p.toml")
    assert [issue.where for issue in info.value.issues] == [f"p.toml: {key}"]


def test_every_rank_key_reaches_the_settings() -> None:
    given = {"trials": 3, "batch_size": 2, "warmup": 2, "repeats": 5, "time_steps": 3, "study": "s", "seed": 7}
    text = BASE + "".join(f"{key} = {value!r}\n".replace("'", '"') for key, value in given.items())
    problem = loads(text)
    search, measure = problem.rank, problem.measure
    assert (search.trials, search.study_name, search.seed) == (3, "s", 7)
    assert (measure.batch_size, measure.warmup, measure.repeats, measure.time_steps) == (2, 2, 5, 3)
    assert set(RANK_TABLE) >= set(given)


def test_the_table_names_real_fields_of_its_values() -> None:
    owners = {"rank": RankSettings, "measure": MeasureSettings}
    for key, spot in RANK_TABLE.items():
        assert spot.field in {f.name for f in fields(owners[spot.value])}, key
