"""``process.env`` in deployed functions, against the real engine and V8: the
values of the call's snapshot, re-runs when a variable changes, past reads."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

from engine import Database
from engine.environment_variables import EnvChange, apply_changes
from engine.errors import HeadwaterError
from udf.calls import ADMIN, FunctionCall, Identity
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


AUTH_CONFIG = """export default {
  providers: [{ domain: process.env.AUTH_DOMAIN, applicationID: "convex" }],
};
"""


@pytest.fixture
def auth_app(tmp_path):
    app = tmp_path / "auth_app" / "convex"
    shutil.copytree(ENV_APP, app)
    (app / "auth.config.ts").write_text(AUTH_CONFIG)
    return app


def auth_domain(ex):
    return json.loads(ex.deployment.analysis.auth_config_json)["providers"][0]["domain"]


def test_auth_config_variables_are_resolved_at_deploy(tmp_path, auth_app):
    db = Database.open(tmp_path / "auth_data")
    ex = Executor(db)
    try:
        with pytest.raises(HeadwaterError) as missing:
            ex.deploy(auth_app)
        assert missing.value.code == "AuthConfigMissingEnvironmentVariable"
        assert missing.value.message == (
            "Environment variable AUTH_DOMAIN is used in auth config file but its value was not set"
        )
        assert ex.deployment is None
        ex.update_environment_variables([EnvChange("AUTH_DOMAIN", "https://issuer.test")])
        ex.deploy(auth_app)
        assert auth_domain(ex) == "https://issuer.test"
    finally:
        ex.close()
        db.close()


def test_a_change_re_evaluates_auth_config_and_a_removal_it_needs_is_refused(tmp_path, auth_app):
    db = Database.open(tmp_path / "auth_data")
    ex = Executor(db)
    seen = []
    ex.on_deploy(lambda d: seen.append(d.analysis.auth_config_json))
    try:
        ex.update_environment_variables([EnvChange("AUTH_DOMAIN", "https://one.test")])
        ex.deploy(auth_app)
        ex.update_environment_variables([EnvChange("AUTH_DOMAIN", "https://two.test")])
        assert auth_domain(ex) == "https://two.test"
        assert "https://two.test" in seen[-1]
        with pytest.raises(HeadwaterError) as refused:
            ex.update_environment_variables([EnvChange("AUTH_DOMAIN", None)])
        assert refused.value.code == "AuthConfigMissingEnvironmentVariable"
        assert ok(run(ex, "env:read", {"name": "AUTH_DOMAIN"})) == "https://two.test"
        # After a restart the stored deployment carries the re-evaluated config.
        ex.close()
        ex = Executor(db)
        assert auth_domain(ex) == "https://two.test"
    finally:
        ex.close()
        db.close()


def test_the_cli_system_queries_answer_admins_only(executor):
    set_env(executor, B_VAR="b", A_VAR="a")
    listing = executor.run(FunctionCall("_system/cli/queryEnvironmentVariables", {}, None, ADMIN))
    assert [(d["name"], d["value"]) for d in ok(listing)] == [("A_VAR", "a"), ("B_VAR", "b")]
    assert listing.read_set is not None and listing.read_set.indexes
    got = executor.run(
        FunctionCall("_system/cli/queryEnvironmentVariables:get", {"name": "A_VAR"}, None, ADMIN)
    )
    assert ok(got) == {"name": "A_VAR", "value": "a"}
    missing = executor.run(
        FunctionCall("_system/cli/queryEnvironmentVariables:get", {"name": "NO"}, None, ADMIN)
    )
    assert ok(missing) is None
    anonymous = run(executor, "_system/cli/queryEnvironmentVariables")
    assert anonymous.error is not None and "Could not find function" in anonymous.error.message


def test_a_change_the_notifier_has_not_matched_yet_is_still_seen(executor):
    """The cached set is only trusted up to the ts the notifier has passed."""
    db = executor.db
    set_env(executor, GREETING="before")
    assert ok(run(executor, "env:read", {"name": "GREETING"})) == "before"  # cached
    watched = db.query(lambda tx: tx.query("busy").collect())
    release = threading.Event()
    entered = threading.Event()

    def hold_the_notifier(_ts):
        entered.set()
        release.wait(10)

    db.watch(watched.read_set, watched.ts, hold_the_notifier)
    try:
        db.mutate(lambda tx: tx.insert("busy", {"n": 1}))
        assert entered.wait(5)  # the notifier is now stuck in our callback
        set_env(executor, GREETING="after")
        assert db.processed_ts < db.latest_ts()
        assert ok(run(executor, "env:read", {"name": "GREETING"})) == "after"
    finally:
        release.set()
