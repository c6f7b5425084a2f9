"""Shared fixtures: a fresh on-disk database per test."""

from __future__ import annotations

import pytest
from schemas import CHAT_SCHEMA

from engine import Database


@pytest.fixture
def db(tmp_path):
    database = Database.open(tmp_path / "data")
    yield database
    database.close()


@pytest.fixture
def chat_db(db):
    db.set_schema(CHAT_SCHEMA)
    return db
