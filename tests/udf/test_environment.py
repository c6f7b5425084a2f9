"""``process.env`` in deployed functions, against the real engine and V8: the
values of the call's snapshot, re-runs when a variable changes, past reads."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from engine import Database
from engine.environment_variables import EnvChange, apply_changes
from udf.calls import FunctionCall, Identity
from udf.executor import Executor

ENV_APP = Path(__file__).parent / "fixtures" / "env" / "convex"


@pytest.fixture
def executor(tmp_path):
    app = tmp_path / "app" / "convex"
    shutil.copytree(ENV_APP, app)
    db = Database.open(tmp_path / "data")
    ex = Executor(db)
    ex.deploy(app)
    yield ex
    ex.close()
    db.close()


def run(ex, path, args=None, ts=None):
    return ex.run(FunctionCall(path, args or {}, None, Identity(), ts=ts))


def ok(outcome):
    assert outcome.error is None, outcome.error
    return outcome.value


def set_env(ex, **values):
    changes = [EnvChange(name, value) for name, value in values.items()]
    return ex.db.mutate(lambda tx: apply_changes(tx, changes)).ts


def test_query_mutation_and_action_see_the_deployment_variables(executor):
    assert ok(run(executor, "env:read", {"name": "GREETING"})) is None
    set_env(executor, GREETING="hello", OTHER="x")
    assert ok(run(executor, "env:read", {"name": "GREETING"})) == "hello"
    assert ok(run(executor, "env:readInMutation", {"name": "GREETING"})) == "hello"
    assert ok(run(executor, "env:readInAction", {"name": "GREETING"})) == "hello"
    assert ok(run(executor, "env:names")) == ["GREETING", "OTHER"]


def test_a_change_is_seen_by_the_next_call(executor):
    set_env(executor, GREETING="one")
    assert ok(run(executor, "env:read", {"name": "GREETING"})) == "one"
    set_env(executor, GREETING="two")
    assert ok(run(executor, "env:read", {"name": "GREETING"})) == "two"
    assert ok(run(executor, "env:readInMutation", {"name": "GREETING"})) == "two"
    set_env(executor, GREETING=None)
    assert ok(run(executor, "env:read", {"name": "GREETING"})) is None
    assert ok(run(executor, "env:readInAction", {"name": "GREETING"})) is None


def test_a_point_in_time_read_sees_the_value_of_its_time(executor):
    first = set_env(executor, GREETING="old")
    set_env(executor, GREETING="new")
    assert ok(run(executor, "env:read", {"name": "GREETING"})) == "new"
    assert ok(run(executor, "env:read", {"name": "GREETING"}, ts=first)) == "old"
    assert ok(run(executor, "env:read", {"name": "GREETING"})) == "new"


def test_a_live_query_reading_env_is_invalidated_by_a_change(executor):
    outcome = run(executor, "env:read", {"name": "GREETING"})
    assert outcome.value is None
    fired = threading.Event()
    executor.watch(outcome.read_set, outcome.ts, lambda _ts: fired.set())
    ts = set_env(executor, GREETING="hi")
    assert executor.wait_processed(ts)
    assert fired.wait(5)
    again = run(executor, "env:read", {"name": "GREETING"})
    assert again.value == "hi"
    # A second change invalidates the new run too (the cached set is not reused stale).
    fired.clear()
    executor.watch(again.read_set, again.ts, lambda _ts: fired.set())
    ts = set_env(executor, GREETING="bye")
    assert executor.wait_processed(ts)
    assert fired.wait(5)
    assert ok(run(executor, "env:read", {"name": "GREETING"})) == "bye"
