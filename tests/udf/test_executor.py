"""Deployed Convex functions run against the real engine: every database syscall,
nested calls, OCC retries, determinism, limits, validation and visibility."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from engine import Database
from udf.calls import ADMIN, FunctionCall, Identity
from udf.errors import BundleError
from udf.executor import Executor

STORE_APP = Path(__file__).parent / "fixtures" / "store" / "convex"


@pytest.fixture(scope="module")
def executor(tmp_path_factory):
    app = tmp_path_factory.mktemp("app") / "convex"
    shutil.copytree(STORE_APP, app)
    db = Database.open(tmp_path_factory.mktemp("data"))
    ex = Executor(db)
    ex.deploy(app)
    yield ex
    ex.close()
    db.close()


def run(ex, path, args=None, kind=None, identity=None):
    call = FunctionCall(path, args or {}, kind, identity or Identity())
    return ex.run(call)


def ok(outcome):
    assert outcome.error is None, outcome.error
    return outcome.value


def _team_with_items(ex, n=3):
    team = ok(run(ex, "teams:create", {"name": f"team-{threading.get_ident()}-{n}"}))
    ids = [
        ok(
            run(
                ex,
                "items:add",
                {
                    "team": team,
                    "title": f"t{i}",
                    "count": i,
                    "blob": b"\x00\xff",
                    "details": {"tags": ["x"]},
                },
            )
        )
        for i in range(n)
    ]
    return team, ids


def test_insert_get_and_index_query_with_int64_and_bytes(executor):
    team, ids = _team_with_items(executor)
    item = ok(run(executor, "items:get", {"id": ids[1]}))
    assert item["count"] == 1 and type(item["count"]) is int
    assert item["blob"] == b"\x00\xff"
    assert item["details"] == {"tags": ["x"]}
    listed = ok(run(executor, "items:openForTeam", {"team": team}))
    assert [d["_id"] for d in listed] == list(reversed(ids))
    assert (
        ok(run(executor, "teams:byName", {"name": f"team-{threading.get_ident()}-3"}))["_id"]
        == team
    )


def test_patch_replace_delete_and_convex_error_data(executor):
    team, ids = _team_with_items(executor, 1)
    assert ok(run(executor, "items:finish", {"id": ids[0], "note": "n"})) == 1
    item = ok(run(executor, "items:get", {"id": ids[0]}))
    assert item["status"] == "done" and "blob" not in item
    assert item["details"] == {"tags": [], "note": "n"}
    assert ok(run(executor, "items:remove", {"id": ids[0]})) is None
    failed = run(executor, "items:finish", {"id": ids[0]})
    assert failed.error is not None and failed.error.is_convex_error
    assert failed.error.data == {"code": "NotFound", "id": ids[0]}
    assert "items.ts" in failed.error.message


def test_query_streams_filters_and_cleanup(executor):
    _, ids = _team_with_items(executor, 2)
    found = ok(run(executor, "items:firstMatching", {"title": "t1"}))
    assert found is not None
    assert ok(run(executor, "items:firstMatching", {"title": "nope"})) is None


def test_paginate_walks_every_item_once(executor):
    _team_with_items(executor, 7)
    seen, cursor = [], None
    while True:
        page = ok(run(executor, "items:page", {"cursor": cursor, "numItems": 4.0}))
        seen.extend(d["_id"] for d in page["page"])
        cursor = page["continueCursor"]
        if page["isDone"]:
            break
    assert len(seen) == len(set(seen)) >= 7


def test_normalize_id_snapshot_ts_and_identity(executor):
    _, ids = _team_with_items(executor, 1)
    user = Identity(user={"tokenIdentifier": "iss|u1", "subject": "u1", "issuer": "iss"})
    out = run(executor, "items:meta", {"table": "items", "id": ids[0]}, identity=user)
    value = ok(out)
    assert value["normalized"] == ids[0]
    assert value["snapshotTs"] == out.ts
    assert value["identity"]["subject"] == "u1"
    other = ok(run(executor, "items:meta", {"table": "teams", "id": ids[0]}))
    assert other["normalized"] is None and other["identity"] is None


def test_nested_calls_from_mutations_and_actions(executor):
    team, _ = _team_with_items(executor, 2)
    assert ok(run(executor, "items:nested", {"team": team})) == {
        "before": 2,
        "secret": "internal only",
    }
    user = Identity(user={"tokenIdentifier": "iss|ada", "subject": "ada", "issuer": "iss"})
    report = ok(run(executor, "items:report", {"team": team}, identity=user))
    assert report["open"] == 2 and report["who"] == "ada"
    assert ok(run(executor, "items:get", {"id": report["id"]}))["title"] == "from action"


def test_internal_functions_need_admin_and_kinds_are_checked(executor):
    # crates/udf/src/validation.rs (typed) and crates/application/src/lib.rs any_udf (untyped)
    refused = run(executor, "teams:secret", kind="query")
    assert refused.error.message == "Could not find public function for 'teams:secret'."
    untyped = run(executor, "teams:secret")
    assert untyped.error.message == (
        "Could not find function for 'teams:secret'. Did you forget to run `npx convex dev`?"
    )
    assert ok(run(executor, "teams:secret", identity=ADMIN)) == "internal only"
    wrong = run(executor, "teams:byName", {"name": "x"}, kind="mutation")
    assert "as Mutation, but it is defined as Query" in wrong.error.message


def test_arguments_are_validated_with_the_path(executor):
    out = run(
        executor, "items:add", {"team": "nope", "title": 1, "count": 1, "details": {"tags": []}}
    )
    assert out.error.message.startswith("ArgumentValidationError")
    nested = run(
        executor,
        "items:add",
        {
            "team": ok(run(executor, "teams:create", {"name": "v"})),
            "title": "a",
            "count": 1,
            "details": {"tags": [3.0]},
        },
    )
    assert ".details.tags[0]" in nested.error.message


def test_concurrent_increments_are_retried_not_lost(executor):
    def worker():
        for _ in range(10):
            ok(run(executor, "counters:increment", {"name": "race"}))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ok(run(executor, "counters:value", {"name": "race"})) == 40


def test_queries_are_deterministic(executor):
    first = ok(run(executor, "counters:random"))
    executor.query_cache.clear()  # run it again, not from the cache
    second = ok(run(executor, "counters:random"))
    assert first[:2] == second[:2]


def test_limit_breaches_fail_write_nothing_and_the_next_call_works(executor):
    spun = run(executor, "counters:spin")
    assert spun.error is not None
    assert ok(run(executor, "counters:value", {"name": "spin"})) == 0
    hog = run(executor, "counters:hog")
    assert hog.error is not None
    _, ids = _team_with_items(executor, 1)
    reads = run(executor, "items:tooManyReads", {"id": ids[0], "n": 5000.0})
    assert reads.error is not None and "Too many reads" in reads.error.message
    assert ok(run(executor, "counters:value", {"name": "race-free"})) == 0


def test_no_state_leaks_between_calls(executor):
    assert ok(run(executor, "counters:setGlobal")) is None
    assert ok(run(executor, "counters:setGlobal")) is None


def test_deploy_survives_restart_and_rejects_broken_code(tmp_path):
    app = tmp_path / "convex"
    shutil.copytree(STORE_APP, app)
    with Database.open(tmp_path / "d") as db:
        ex = Executor(db)
        first = ex.deploy(app)
        ex.close()
    with Database.open(tmp_path / "d") as db:
        ex = Executor(db)
        assert ex.deployment is not None and ex.deployment.ts == first.ts
        team = ok(run(ex, "teams:create", {"name": "after restart"}))
        assert team
        (app / "teams.ts").write_text(
            "export const broken = query({ args: {}, handler: ( => 1 });\n"
        )
        with pytest.raises(BundleError) as info:
            ex.deploy(app)
        assert info.value.file is not None and "teams.ts" in info.value.file
        assert info.value.line == 1
        assert ex.deployment.ts == first.ts
        assert ok(run(ex, "teams:byName", {"name": "after restart"}))["_id"] == team
        ex.close()


def test_a_collected_query_costs_one_round_trip_and_reads_exactly_its_limit(executor):
    team, ids = _team_with_items(executor, 5)
    from udf.calls import FunctionCall

    outcome = executor.run(FunctionCall("items:openForTeam", {"team": team}, "query"))
    assert len(outcome.value) == 5
    # first() reads one document: a later insert after it does not touch its read set.
    first = executor.run(FunctionCall("items:firstMatching", {"title": "t0"}, "query"))
    assert first.value is not None


def test_a_replayed_sync_mutation_is_answered_once_even_after_a_restart(tmp_path):
    app = tmp_path / "convex"
    shutil.copytree(STORE_APP, app)
    key = ("6f1c2e7a-0b7d-4b33-9a51-2f0f6c1e9d10", 4)
    call = FunctionCall("counters:increment", {"name": "dedupe"}, "mutation", idempotency_key=key)
    with Database.open(tmp_path / "d") as db:
        ex = Executor(db)
        ex.deploy(app)
        first = ex.run(call)
        again = ex.run(call)
        ex.close()
    with Database.open(tmp_path / "d") as db:
        ex = Executor(db)
        after_restart = ex.run(call)
        value = ok(run(ex, "counters:value", {"name": "dedupe"}))
        ex.close()
    assert first.value == again.value == after_restart.value == 1
    assert first.ts == again.ts == after_restart.ts
    assert value == 1
