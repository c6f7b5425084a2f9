"""Node actions: "use node" modules analysed and run in Node.js workers by the executor.

The fixture app (fixtures/nodeapp) has a "use node" module using node:crypto and
a package from its package.json (a local `file:` package, bundled as the CLI
bundles it), V8 functions it calls and that call it, and one action for every
way user code can break a worker.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from engine import Database
from engine.environment_variables import EnvChange
from engine.limits import LIMITS
from udf.bundler import BundledModule
from udf.calls import ADMIN, FunctionCall, Identity
from udf.errors import AnalysisError, BundleError
from udf.executor import Executor
from udf.function_log import FunctionLog
from udf.node_packages import NodeDependency, NodePackagesError

NODE_APP = Path(__file__).parent / "fixtures" / "nodeapp"
LIMITS_FOR_TESTS = dataclasses.replace(
    LIMITS, node_action_time_max_ms=4000, node_heap_bytes_max=64 << 20
)


def copy_app(target: Path) -> Path:
    """The fixture app with its `file:` package installed the way npm would."""
    shutil.copytree(NODE_APP, target)
    shutil.copytree(target / "vendor" / "hw-greeter", target / "node_modules" / "hw-greeter")
    return target / "convex"


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Path:
    return copy_app(tmp_path_factory.mktemp("nodeapp") / "app")


@pytest.fixture(scope="module")
def executor(app, tmp_path_factory):
    db = Database.open(tmp_path_factory.mktemp("data"))
    ex = Executor(db, limits=LIMITS_FOR_TESTS)
    ex.function_log = FunctionLog()
    ex.deploy(app)
    yield ex
    ex.close()
    db.close()


def run(ex, path, args=None, *, kind="action", identity=ADMIN):
    return ex.run(FunctionCall(path, args or {}, kind, identity))


def ok(outcome):
    assert outcome.error is None, outcome.error
    return outcome.value


def test_a_node_action_uses_node_crypto_and_a_package_from_package_json(executor):
    digest = ok(run(executor, "crypto:sha256", {"text": "hi"}))
    assert digest == "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"
    outcome = run(executor, "crypto:greet", {"name": "ada"})
    assert ok(outcome) == "Hello ada from linux (YWRh)"
    assert outcome.log_lines == ("[LOG] 'greeting' 'ada' { random: 4 }",)


def test_node_actions_are_analysed_like_v8_ones(executor):
    info = executor.deployment.function("crypto.js", "sha256")
    assert (info.kind, info.visibility) == ("action", "public")
    assert json.loads(info.args_json)["value"]["text"]["fieldType"] == {"type": "string"}
    assert json.loads(info.returns_json) == {"type": "string"}
    assert executor.deployment.function("crypto.js", "hidden").visibility == "internal"


def test_calls_between_runtimes_both_ways(executor):
    # V8 action -> node action.
    assert ok(run(executor, "notes:digestViaNode", {"text": "hi"})).startswith("8f4343")
    # node action -> mutation, query, V8 action (also several at once).
    got = ok(run(executor, "crypto:roundTrip", {"body": "x"}))
    assert got["notes"][-1] == "x" and got["doubled"] == 2 * len(got["notes"])
    assert got["parallel"] == [len(got["notes"]), 2]


def test_auth_environment_and_visibility(executor):
    executor.update_environment_variables([EnvChange("GREETING", "hej")])
    try:
        user = Identity(user={"subject": "u1", "issuer": "i", "tokenIdentifier": "i|u1"})
        assert ok(run(executor, "crypto:whoAmI", identity=user)) == {"subject": "u1", "env": "hej"}
    finally:
        executor.update_environment_variables([EnvChange("GREETING", None)])
    assert ok(run(executor, "crypto:whoAmI")) == {"subject": None, "env": None}
    hidden = run(executor, "crypto:hidden", identity=Identity())
    assert "Could not find public function for 'crypto:hidden'" in hidden.error.message
    assert ok(run(executor, "crypto:hidden")) == "internal"


def test_errors_name_the_users_source_and_carry_convex_error_data(executor):
    failed = run(executor, "crypto:fails").error
    assert failed.message.splitlines() == [
        "Uncaught Error: node exploded",
        "    at handler (../convex/crypto.ts:55:11)",
    ]
    data = run(executor, "crypto:failsWithData").error
    assert data.is_convex_error and data.data == {"code": 42.0, "why": "bad"}
    nested = run(executor, "crypto:nestedError").error
    assert nested.is_convex_error and nested.data == "deep"


def test_arguments_and_return_values_are_validated(executor):
    bad_args = run(executor, "crypto:sha256", {"text": 1}).error
    assert bad_args.message.startswith("ArgumentValidationError")
    wrong = run(executor, "crypto:returnsWrongType").error
    assert wrong.message.startswith("ReturnsValidationError")
    not_a_value = run(executor, "crypto:returnsFunction").error
    assert "is not a supported Convex type" in not_a_value.message
    wrong_kind = run(executor, "crypto:sha256", {"text": "x"}, kind="query").error
    assert "as Query, but it is defined as Action" in wrong_kind.message


def test_the_function_log_records_node_actions_with_their_console_lines(executor):
    run(executor, "crypto:greet", {"name": "bo"})
    entries, _ = executor.function_log.entries_after(0)
    greet = [e for e in entries if e.identifier == "crypto:greet"][-1]
    assert any("'bo'" in line.text for line in greet.log_lines)


BAD = {
    "crypto:exits": "process.exit() called with exit code 3",
    "crypto:crashes": "Uncaught Error: thrown from a timer",
    "crypto:hangs": "Action `hangs` execution timed out (maximum duration 4s)",
    "crypto:neverResolves": "Action `neverResolves` execution timed out (maximum duration 4s)",
    "crypto:allocates": "JavaScript execution ran out of memory (maximum memory usage: 64 MB)",
    "crypto:allocatesBuffers": "ran out of memory (maximum memory usage: 64 MB)",
    "crypto:writesToProtocol": "wrote to Headwater's protocol channel",
}


@pytest.mark.parametrize("path", sorted(BAD))
def test_a_broken_worker_fails_its_call_only_and_is_replaced(executor, path):
    others: list = []

    def neighbour():  # a call running beside the bad one, on another worker
        others.extend(run(executor, "crypto:slow", {"ms": 300.0}) for _ in range(2))

    thread = threading.Thread(target=neighbour)
    thread.start()
    outcome = run(executor, path)
    thread.join()
    assert outcome.error is not None and BAD[path] in outcome.error.message, outcome.error
    assert [ok(o) for o in others] == ["slow v1", "slow v1"]
    for _ in range(3):  # the next calls get working workers
        assert ok(run(executor, "crypto:sha256", {"text": "hi"})).startswith("8f4343")
    assert (
        executor.node_runtime.statistics()["workers_live"]
        <= LIMITS_FOR_TESTS.node_workers_per_level_max
    )


def test_garbage_on_stdout_is_not_the_protocol(executor):
    assert ok(run(executor, "crypto:printsGarbage")) == "still fine"
    assert ok(run(executor, "crypto:trivial")) == 1


def test_workers_are_reused_between_calls(executor):
    first = ok(run(executor, "crypto:counter"))
    assert ok(run(executor, "crypto:counter")) == first + 1


# --- deploys ----------------------------------------------------------------------------


@pytest.fixture
def fresh(tmp_path):
    app = copy_app(tmp_path / "app")
    db = Database.open(tmp_path / "data")
    ex = Executor(db, limits=LIMITS_FOR_TESTS)
    ex.deploy(app)
    yield ex, app
    ex.close()
    db.close()


def test_a_redeploy_drains_running_workers_and_new_calls_run_the_new_code(fresh):
    ex, app = fresh
    assert ok(run(ex, "crypto:counter")) == 1
    results: list = []
    thread = threading.Thread(target=lambda: results.append(run(ex, "crypto:slow", {"ms": 1500.0})))
    thread.start()
    source = (app / "crypto.ts").read_text()
    (app / "crypto.ts").write_text(source.replace('"slow v1"', '"slow v2"'))
    ex.deploy(app)
    assert ok(run(ex, "crypto:slow", {"ms": 1.0})) == "slow v2"
    thread.join()
    assert ok(results[0]) == "slow v1"  # the call in flight finished on its old worker
    assert ok(run(ex, "crypto:counter")) == 1  # no state from the old deployment's workers


def test_a_restarted_server_runs_the_stored_node_actions(tmp_path):
    app = copy_app(tmp_path / "app")
    db = Database.open(tmp_path / "data")
    first = Executor(db, limits=LIMITS_FOR_TESTS)
    first.deploy(app)
    first.close()
    shutil.rmtree(tmp_path / "data" / "node")  # a fresh machine: the folder is rebuilt
    again = Executor(db, limits=LIMITS_FOR_TESTS)
    try:
        assert ok(run(again, "crypto:greet", {"name": "ada"})) == "Hello ada from linux (YWRh)"
    finally:
        again.close()
        db.close()


def node_module(path: str, source: str) -> BundledModule:
    return BundledModule(path, source, None, "node")


def test_a_node_query_is_refused_and_the_old_code_keeps_serving(fresh):
    ex, _ = fresh
    before = ex.deployment
    bad = (
        *before.modules,
        node_module(
            "bad.js", "export const q = { isQuery: true, isPublic: true, invokeQuery() {} };"
        ),
    )
    with pytest.raises(AnalysisError) as refused:
        ex.deploy_modules(bad)
    assert refused.value.message == (
        "`q` defined in `bad.js` is a Query function. Only actions can be defined in Node.js. "
        "See https://docs.convex.dev/functions/actions for more details."
    )
    assert ex.deployment is before
    assert ok(run(ex, "crypto:trivial")) == 1


def test_a_v8_module_importing_a_node_module_is_refused(fresh):
    ex, _ = fresh
    before = ex.deployment
    v8 = BundledModule("uses.js", 'import { x } from "./crypto.js";\nexport const y = x;', None)
    with pytest.raises(AnalysisError) as refused:
        ex.deploy_modules((*before.modules, v8))
    assert refused.value.message == (
        "Failed to analyze uses.js: Trying to execute crypto.js in isolate, but it is "
        "bundled for Node."
    )
    assert ex.deployment is before


def test_a_v8_file_importing_a_use_node_file_is_refused_at_bundling_with_the_clis_advice(fresh):
    ex, app = fresh
    before = ex.deployment
    (app / "usesNode.ts").write_text(
        'import { sha256 } from "./crypto";\nexport const x = sha256;\n'
    )
    with pytest.raises(BundleError) as refused:
        ex.deploy(app)
    assert 'Could not resolve "node:crypto"' in refused.value.message
    assert (
        'It looks like you are using Node APIs from a file without the "use node" directive.'
        in refused.value.message
    )
    assert ex.deployment is before


def test_a_node_module_that_throws_at_import_is_refused(fresh):
    ex, _ = fresh
    before = ex.deployment
    broken = node_module("broken.js", 'throw new Error("no import for you");')
    with pytest.raises(
        AnalysisError, match="Failed to analyze broken.js: Uncaught Error: no import"
    ):
        ex.deploy_modules((*before.modules, broken))
    assert ex.deployment is before


def test_a_package_that_fails_to_install_refuses_the_deploy(fresh, monkeypatch):
    ex, _ = fresh
    before = ex.deployment
    # No registry answers here: the install fails at once, without the network.
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    monkeypatch.setenv("npm_config_offline", "true")
    with pytest.raises(NodePackagesError) as refused:
        ex.deploy_modules(
            before.modules, node_dependencies=(NodeDependency("hw-nowhere", "1.0.0"),)
        )
    assert "Installing the external packages (hw-nowhere@1.0.0) failed" in refused.value.message
    assert ex.deployment is before
    assert ok(run(ex, "crypto:sha256", {"text": "hi"})).startswith("8f4343")


def test_storage_blobs_in_a_node_action_need_the_servers_url(executor):
    """A node action moves blobs over the deployment's own URL, as Convex's does; run in
    process (no server) that is a clear error at once, and nothing is stored."""
    started = time.monotonic()
    outcome = run(executor, "crypto:storesText", {"text": "hi"})
    assert time.monotonic() - started < 10
    assert outcome.error is not None
    assert "ctx.storage.store() in a Node.js action" in outcome.error.message
    assert "headwater serve" in outcome.error.message
    assert executor.db.query(lambda tx: tx.query("_storage").collect()).value == []
