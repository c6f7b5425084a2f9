"""Functions of component instances in real V8 against the real engine: calls from the
app in its transaction, isolation of tables and ids, references, handles, scheduling."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from engine import Database
from engine.cron_jobs import sync_cron_jobs
from tests.component_deployment import install_components, instance
from udf.calls import ADMIN, FunctionCall, Identity
from udf.component_crons import all_cron_specs
from udf.executor import Executor
from udf.function_log import FunctionLog
from udf.node import ensure_node_modules
from udf.scheduler import Scheduler

FIXTURES = Path(__file__).parent / "fixtures" / "components"
COUNTER = "../node_modules/counter"
OUTER = "../node_modules/outer"


class App:
    def __init__(self, tmp: Path) -> None:
        ensure_node_modules()
        folders = {}
        for name in ("app", "counter", "outer"):
            folders[name] = tmp / name / "convex"
            shutil.copytree(FIXTURES / name, folders[name])
        self.db = Database.open(tmp / "data")
        self.ex = Executor(self.db)
        self.ex.function_log = FunctionLog()
        install_components(
            self.ex,
            folders["app"],
            {COUNTER: folders["counter"], OUTER: folders["outer"]},
            [
                instance("counter", COUNTER, {"GREETING": "hello counter"}),
                instance("counter2", COUNTER),
                instance("outer", OUTER),
                instance("outer/inner", COUNTER),
            ],
        )
        self.scheduler = Scheduler(self.ex)
        self.scheduler.start()

    def run(self, path: str, args: dict | None = None, component: str = ""):
        return self.ex.run(FunctionCall(path, args or {}, None, ADMIN, component_path=component))

    def ok(self, path: str, args: dict | None = None, component: str = ""):
        outcome = self.run(path, args, component)
        assert outcome.error is None, outcome.error
        return outcome.value

    def error(self, path: str, args: dict | None = None) -> str:
        outcome = self.run(path, args)
        assert outcome.error is not None, outcome.value
        return outcome.error.message

    def close(self) -> None:
        self.scheduler.close()
        self.ex.close()
        self.db.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    running = App(tmp_path_factory.mktemp("components"))
    yield running
    running.close()


def test_the_app_calls_a_component_mutation_in_its_own_transaction(app: App) -> None:
    assert app.ok("calls:bump", {"name": "a", "by": 2.0}) == 2
    assert app.ok("calls:bump", {"name": "a", "by": 3.0}) == 5
    assert app.ok("lib:get", {"name": "a"}, component="counter") == 5
    # The component's documents are in its own table, under the qualified name.
    assert "counter/counts" in app.db.table_numbers()
    assert "counts" not in app.db.table_numbers()


def test_a_failing_app_mutation_rolls_back_the_component_writes(app: App) -> None:
    before = app.ok("lib:get", {"name": "r"}, component="counter")
    notes = app.ok("calls:notes")
    error = app.error("calls:bump", {"name": "r", "by": 1.0, "fail": True})
    assert "the app changed its mind" in error
    assert app.ok("lib:get", {"name": "r"}, component="counter") == before
    assert app.ok("calls:notes") == notes


def test_two_instances_of_one_definition_keep_their_own_tables(app: App) -> None:
    app.ok("calls:bump", {"name": "iso", "by": 1.0})
    app.ok("calls:bumpSecond", {"name": "iso", "by": 10.0})
    assert app.ok("calls:readBoth", {"name": "iso"}) == {"first": 1, "second": 10}
    assert "iso" not in app.ok("lib:all", {}, component="outer/inner")


def test_a_component_cannot_reach_the_app_tables_by_id(app: App) -> None:
    assert app.ok("calls:peekAppNote") is None
    error = app.error("calls:overwriteAppNote")
    assert "Update on nonexistent document ID" in error
    assert "mine" not in app.ok("calls:notes")  # the whole mutation failed


def test_internal_and_missing_component_functions_are_refused(app: App) -> None:
    assert 'Child component "counter" does not export ["lib", "reset"]' in app.error(
        "calls:callInternal"
    )
    assert 'does not export ["lib", "nope"]' in app.error("calls:callMissing")
    assert "ArgumentValidationError" in app.error("calls:badArgs")


def test_a_component_calls_its_own_child(app: App) -> None:
    assert app.ok("calls:nested", {"name": "deep", "by": 4.0}) == 4
    assert app.ok("calls:innerThroughOuter", {"name": "deep"}) == 4
    assert app.ok("wrap:calls", {}, component="outer") == 1
    assert app.ok("lib:get", {"name": "deep"}, component="counter") == 0


def test_function_handles_call_across_components(app: App) -> None:
    handle = app.ok("calls:handleOfAdd")
    assert handle.startswith("function://") and handle.endswith("#lib:add")
    assert app.ok("calls:handleOfAdd") == handle  # one function, one handle
    assert app.ok("calls:callHandle", {"handle": handle, "name": "h", "by": 7.0}) == 7
    assert app.ok("lib:get", {"name": "h"}, component="counter2") == 7
    other = app.ok("calls:handleOf", {"which": "counter"})
    assert other != handle and other.endswith("#lib:add")
    assert app.ok("calls:callHandle", {"handle": other, "name": "h", "by": 1.0}) == 1
    unknown = "function://" + app.ok("calls:bumpId") + "#lib:add"
    for bad, words in (
        (unknown, "Function handle not found"),
        ("function://nope", "Invalid function handle"),
    ):
        error = app.error("calls:callHandle", {"handle": bad, "name": "h", "by": 1.0})
        assert words in error


def test_scheduling_a_component_function_and_a_handle(app: App) -> None:
    app.ok("calls:schedule", {"name": "later", "by": 3.0})
    handle = app.ok("calls:handleOfAdd")
    app.ok("calls:scheduleHandle", {"handle": handle, "name": "later", "by": 5.0})
    assert app.scheduler.wait_idle(10)
    assert app.ok("lib:get", {"name": "later"}, component="counter") == 3
    assert app.ok("lib:get", {"name": "later"}, component="counter2") == 5


def test_function_metadata_names_the_component(app: App) -> None:
    meta = app.ok("calls:componentMeta")
    assert meta["app"] == {"name": "calls:componentMeta", "componentPath": ""}
    assert meta["counter"] == {"name": "lib:meta", "componentPath": "counter"}


def test_a_component_sees_only_the_env_its_parent_passed(app: App) -> None:
    assert app.ok("calls:componentEnv") == {
        "app": None,
        "counter": "hello counter",
        "counter2": None,
    }


def test_the_function_log_names_the_component(app: App) -> None:
    log = app.ex.function_log
    assert log is not None
    app.ok("lib:get", {"name": "a"}, component="counter")
    app.ok("calls:notes")
    entries, _ = log.entries_after(0)
    component_entry, app_entry = (e.to_json() for e in entries[-2:])
    assert (component_entry["identifier"], component_entry["componentPath"]) == (
        "lib:get",
        "counter",
    )
    assert (app_entry["identifier"], app_entry["componentPath"]) == ("calls:notes", None)


def test_each_instance_runs_the_crons_of_its_definition(app: App) -> None:
    deployment = app.ex.deployment
    assert deployment is not None
    specs = all_cron_specs(deployment)
    assert sorted(specs) == ["counter/tick", "counter2/tick", "outer/inner/tick"]
    assert specs["outer/inner/tick"]["componentPath"] == "outer/inner"
    app.db.mutate(lambda tx: sync_cron_jobs(tx, specs, time.time() * 1000))
    deadline = time.monotonic() + 10
    instances = ("counter", "counter2", "outer/inner")
    while time.monotonic() < deadline:
        ticks = [app.ok("lib:get", {"name": "ticks"}, component=c) for c in instances]
        if all(ticks):
            break
        time.sleep(0.2)
    assert all(ticks), ticks
    assert app.ok("calls:notes").count("ticks") == 0  # nothing of it reached the app
    app.db.mutate(lambda tx: sync_cron_jobs(tx, {}, time.time() * 1000))


def test_an_action_calls_component_functions_each_in_its_own_transaction(app: App) -> None:
    assert app.ok("calls:fromAction", {"name": "act", "by": 2.0}) == {"twice": 4, "read": 4}
    assert app.ok("lib:get", {"name": "act"}, component="counter") == 0


def test_pagination_is_refused_in_a_component(app: App) -> None:
    assert "paginate() is only supported in the app" in app.error("calls:pageInComponent")


def test_a_component_called_by_the_app_sees_the_caller_identity(app: App) -> None:
    user = {"subject": "ada", "issuer": "https://issuer.test", "tokenIdentifier": "t|ada"}
    call = FunctionCall("calls:whoamiInComponent", {}, "query", Identity(user=user))
    assert app.ex.run(call).value == "ada"
    assert app.ok("calls:whoamiInComponent") is None


def test_a_component_sees_only_the_jobs_it_scheduled(app: App) -> None:
    job = app.ok("calls:scheduleInComponent")
    assert job in app.ok("lib:myJobs", {}, component="counter")
    assert job not in app.ok("lib:myJobs", {}, component="counter2")
    assert job not in app.ok("calls:appJobs")
    assert app.ok("lib:jobById", {"id": job}, component="counter") == "lib.js:tick"
    assert app.ok("lib:jobById", {"id": job}, component="counter2") is None
    app.ok("calls:cancelJob", {"id": job})  # not the app's job: nothing happens
    stored = app.db.query(lambda tx: tx.get(job)).value
    assert stored["state"] == {"kind": "pending"}
    assert (stored["component"], stored["namespace"]) == ("counter", "counter")
