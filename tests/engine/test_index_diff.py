"""The index diff a push reports, against the reference's rules (missing/staged/enabled)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.index_diff import index_diff
from engine.schema import parse_schema

# An index's state in a schema: absent, staged, enabled; or enabled with other fields.
STATES = ("missing", "staged", "enabled", "enabled_other")


def schema_with(states: dict[str, str]):
    indexes, staged = [], []
    for name, state in states.items():
        fields = [f"{name}_other"] if state == "enabled_other" else [name]  # unique per index
        entry = {"indexDescriptor": name, "fields": fields}
        if state == "staged":
            staged.append(entry)
        elif state != "missing":
            indexes.append(entry)
    table = {
        "tableName": "t",
        "indexes": indexes,
        "stagedDbIndexes": staged,
        "searchIndexes": [],
        "vectorIndexes": [],
        "documentType": None,
    }
    return parse_schema(json.dumps({"tables": [table], "schemaValidation": True}))


def names(diff, key):
    return [(d["name"], d["staged"]) for d in diff[key]]


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ("missing", "enabled", {"added_indexes": [("t.i", False)]}),
        ("missing", "staged", {"added_indexes": [("t.i", True)]}),
        ("enabled", "missing", {"removed_indexes": [("t.i", False)]}),
        ("staged", "missing", {"removed_indexes": [("t.i", True)]}),
        ("staged", "enabled", {"enabled_indexes": [("t.i", False)]}),
        ("enabled", "staged", {"disabled_indexes": [("t.i", True)]}),
        ("enabled", "enabled", {}),
        ("staged", "staged", {}),
        ("missing", "missing", {}),
        # Another definition under the same name is dropped and built again.
        (
            "enabled",
            "enabled_other",
            {"added_indexes": [("t.i", False)], "removed_indexes": [("t.i", False)]},
        ),
    ],
)
def test_each_transition(before, after, expected):
    diff = index_diff(schema_with({"i": before}), schema_with({"i": after}))
    for key in ("added_indexes", "removed_indexes", "enabled_indexes", "disabled_indexes"):
        assert names(diff, key) == expected.get(key, []), key


def test_entries_have_the_cli_shape():
    old = parse_schema(json.dumps({"tables": [], "schemaValidation": True}))
    new = schema_with({"by_a": "enabled"})
    assert index_diff(old, new)["added_indexes"] == [
        {"name": "t.by_a", "type": "database", "fields": ["by_a"], "staged": False}
    ]


@given(
    st.dictionaries(st.sampled_from(["i", "j", "k"]), st.sampled_from(STATES)),
    st.dictionaries(st.sampled_from(["i", "j", "k"]), st.sampled_from(STATES)),
)
def test_a_diff_accounts_for_every_index_once_and_is_symmetric(before, after):
    old, new = schema_with(before), schema_with(after)
    diff = index_diff(old, new)
    back = index_diff(new, old)
    assert sorted(names(diff, "added_indexes")) == sorted(names(back, "removed_indexes"))
    # The same indexes either way; each list follows its own schema's order.
    assert sorted(n for n, _ in names(diff, "enabled_indexes")) == sorted(
        n for n, _ in names(back, "disabled_indexes")
    )
    assert index_diff(old, old) == {
        "added_indexes": [],
        "removed_indexes": [],
        "enabled_indexes": [],
        "disabled_indexes": [],
    }
    # Every index that is present after and differs from before shows up exactly once.
    for name in {"i", "j", "k"}:
        b, a = before.get(name, "missing"), after.get(name, "missing")
        reported = sum(
            (f"t.{name}", s) in names(diff, key)
            for key in ("added_indexes", "enabled_indexes", "disabled_indexes")
            for s in (True, False)
        )
        assert reported == (0 if a == "missing" or a == b else 1), (b, a, diff)
