"""Seeding component tables in tests: inserts into qualified catalog names.

``Transaction.insert`` checks a table name is an identifier; the tables of a
component are stored under ``"<component path>/<table>"``. Until inserts take
qualified names themselves, tests check the table part only (the same rule).
"""

from __future__ import annotations

import pytest

import engine.transaction
from engine.components import split_table
from engine.values import check_table_name


def _check_qualified(name):
    if isinstance(name, str):
        _, table = split_table(name)
        check_table_name(table)
    else:
        check_table_name(name)


@pytest.fixture
def qualified_inserts(monkeypatch):
    monkeypatch.setattr(engine.transaction, "check_table_name", _check_qualified)
