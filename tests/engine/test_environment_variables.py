"""The ``_environment_variables`` system table: Convex's name and value rules,
limits at and past their edge, batches that apply whole or not at all, and
reads at a past ts."""

from __future__ import annotations

import dataclasses
import zipfile

import pytest

from engine import Database
from engine.environment_variables import (
    EnvChange,
    EnvironmentVariableError,
    apply_changes,
    read_all,
)
from engine.errors import HeadwaterError
from engine.limits import LIMITS
from engine.snapshot_export import export_snapshot
from engine.snapshot_import import import_snapshot
from engine.snapshot_zip import ENV_ENTRY


@pytest.fixture
def db(tmp_path):
    with Database.open(tmp_path) as opened:
        yield opened


def change(db, *changes, limits=LIMITS):
    return db.mutate(lambda tx: apply_changes(tx, list(changes), limits))


def current(db, ts=None):
    return db.query(read_all, ts=ts).value


def refused(db, *changes, limits=LIMITS):
    before = current(db)
    with pytest.raises(EnvironmentVariableError) as exc:
        change(db, *changes, limits=limits)
    assert current(db) == before
    return exc.value.code


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("A", True),
        ("_private", True),
        ("snake_Case_9", True),
        ("9LIVES", False),
        ("with-dash", False),
        ("with space", False),
        ("", False),
        ("é", False),
    ],
)
def test_names_follow_convex_rule(db, name, ok):
    if ok:
        change(db, EnvChange(name, "v"))
        assert current(db) == {name: "v"}
    else:
        assert refused(db, EnvChange(name, "v")) == "EnvironmentVariableNameInvalid"


def test_name_length_at_and_past_the_limit(db):
    change(db, EnvChange("N" * 256, "v"))
    assert refused(db, EnvChange("N" * 257, "v")) == "EnvironmentVariableNameTooLong"


def test_value_size_in_bytes_at_and_past_the_limit(db):
    change(db, EnvChange("AT", "v" * 8192))
    assert refused(db, EnvChange("PAST", "v" * 8193)) == "EnvironmentVariableValueTooLarge"
    # Bytes, not characters: 4,097 two-byte characters are 8,194 bytes.
    assert refused(db, EnvChange("WIDE", "é" * 4097)) == "EnvironmentVariableValueTooLarge"


def test_count_and_total_size_limits_apply_to_the_resulting_set(db):
    small = dataclasses.replace(LIMITS, env_vars_max=2, env_vars_total_bytes_max=20)
    change(db, EnvChange("A", "1"), EnvChange("B", "2"), limits=small)
    assert refused(db, EnvChange("C", "3"), limits=small) == "EnvVarLimitMet"
    # Removing one in the same batch makes room.
    change(db, EnvChange("A", None), EnvChange("C", "3"), limits=small)
    assert current(db) == {"B": "2", "C": "3"}
    assert refused(db, EnvChange("B", "x" * 18), limits=small) == "EnvVarTotalSizeLimitMet"


def test_a_bad_change_refuses_the_whole_batch(db):
    change(db, EnvChange("KEEP", "1"))
    code = refused(db, EnvChange("KEEP", None), EnvChange("NEW", "2"), EnvChange("bad name", "3"))
    assert code == "EnvironmentVariableNameInvalid"
    assert current(db) == {"KEEP": "1"}


def test_remove_and_set_of_one_name_in_a_batch_sets_it(db):
    change(db, EnvChange("X", "old"))
    change(db, EnvChange("X", "new"), EnvChange("X", None))
    assert current(db) == {"X": "new"}


def test_reads_at_a_past_ts_see_the_values_of_their_time(db):
    first = change(db, EnvChange("X", "1")).ts
    second = change(db, EnvChange("X", "2"), EnvChange("Y", "y")).ts
    third = change(db, EnvChange("X", None)).ts
    assert current(db, first) == {"X": "1"}
    assert current(db, second) == {"X": "2", "Y": "y"}
    assert current(db, third) == {"Y": "y"}


def test_an_unchanged_set_writes_nothing(db):
    ts = change(db, EnvChange("X", "1")).ts
    change(db, EnvChange("X", "1"), EnvChange("ABSENT", None))
    assert db.latest_ts() == ts


def test_export_then_import_keeps_the_variables(tmp_path):
    source = tmp_path / "source"
    with Database.open(source) as db:
        change(db, EnvChange("KEPT", "yes"), EnvChange("ALSO", "2"))
        export_snapshot(db, tmp_path / "snap.zip")
    with Database.open(tmp_path / "target") as target:
        change(target, EnvChange("LOCAL", "stays"))
        import_snapshot(tmp_path / "snap.zip", target)
        assert current(target) == {"ALSO": "2", "KEPT": "yes", "LOCAL": "stays"}
        import_snapshot(tmp_path / "snap.zip", target, replace=True)
        assert current(target) == {"ALSO": "2", "KEPT": "yes"}


def test_an_import_with_a_bad_variable_writes_nothing(tmp_path):
    with Database.open(tmp_path / "source") as db:
        db.mutate(lambda tx: tx.insert("things", {"n": 1}))
        change(db, EnvChange("GOOD", "1"))
        export_snapshot(db, tmp_path / "snap.zip")
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(tmp_path / "snap.zip") as src, zipfile.ZipFile(bad, "w") as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == ENV_ENTRY:
                data = data.replace(b'"GOOD"', b'"BAD-NAME"')
            out.writestr(info, data)
    with Database.open(tmp_path / "target") as target:
        with pytest.raises(HeadwaterError) as refused:
            import_snapshot(bad, target)
        assert refused.value.code == "EnvironmentVariableNameInvalid"
        assert current(target) == {}
        assert "things" not in target.table_numbers()
