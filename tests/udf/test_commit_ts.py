"""``ctx.db.vars.commitTs`` and ``v.commitTs()`` from real Convex functions over the engine."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine import Database
from engine.database import storage_handles
from udf.calls import FunctionCall
from udf.executor import Executor

APP = Path(__file__).parent / "fixtures" / "committs" / "convex"


@pytest.fixture
def app(tmp_path):
    shutil.copytree(APP, tmp_path / "convex")
    with Database.open(tmp_path / "d") as db:
        ex = Executor(db)
        ex.deploy(tmp_path / "convex")
        yield db, ex
        ex.close()


def run(ex, name, args, kind="mutation"):
    return ex.run(FunctionCall(f"jobs:{name}", args, kind))


def listed(ex):
    out = run(ex, "list", {}, "query")
    assert out.error is None, out.error
    return out.value


def latest_ts(db):
    _, log = storage_handles(db)
    return log.latest_ts()


def test_jobs_enqueued_with_the_placeholder_carry_their_commit_ts_in_commit_order(app):
    db, ex = app
    stamps = []
    for name in ("c", "a", "b"):
        out = run(ex, "enqueue", {"name": name})
        assert out.error is None, out.error
        # Inside the mutation the document reads back the placeholder itself, and the
        # document sorts after every committed one in the index.
        assert out.value["readBack"] is True
        assert out.value["printed"] == "[unresolved commit timestamp]"
        assert out.value["lastInIndex"] is True
        assert out.value["mine"] == [out.value["id"]]
        stamps.append(latest_ts(db))
    jobs = listed(ex)
    assert [job["name"] for job in jobs] == ["c", "a", "b"]
    assert [job["enqueued"] for job in jobs] == stamps
    assert [job["stamps"] for job in jobs] == [[ts] for ts in stamps]
    assert all(type(ts) is int for ts in stamps)


def test_patch_and_replace_write_their_own_commit_ts(app):
    db, ex = app
    job_id = run(ex, "enqueue", {"name": "j"}).value["id"]
    enqueued = latest_ts(db)
    assert run(ex, "touch", {"id": job_id}).error is None
    touched = latest_ts(db)
    (job,) = listed(ex)
    assert (job["enqueued"], job["touched"]) == (enqueued, touched)
    assert touched > enqueued
    assert run(ex, "requeue", {"id": job_id}).error is None
    (job,) = listed(ex)
    assert job["enqueued"] == latest_ts(db) > touched
    assert job["touched"] is None and job["stamps"] is None


def test_bad_uses_are_refused_and_write_nothing(app):
    db, ex = app
    before = latest_ts(db)
    misplaced = run(ex, "misplaced", {})
    assert misplaced.error is not None
    assert "size" in misplaced.error.message and "float64" in misplaced.error.message
    arithmetic = run(ex, "arithmetic", {})
    assert arithmetic.error is not None
    assert "This commit timestamp is unresolved" in arithmetic.error.message
    assert listed(ex) == []
    assert latest_ts(db) == before


def test_commit_ts_argument_takes_an_int64(app):
    _, ex = app
    out = run(ex, "takes", {"at": 5}, "query")
    assert out.error is None, out.error
    assert out.value == "bigint"
    wrong = run(ex, "takes", {"at": 5.0}, "query")
    assert wrong.error is not None and "v.commitTs()" in wrong.error.message


def test_a_mutation_returning_the_placeholder_gives_its_caller_the_commit_ts(app):
    db, ex = app
    out = run(ex, "enqueueAndTell", {"name": "told"})
    assert out.error is None, out.error
    ts = latest_ts(db)
    assert out.ts == ts
    assert out.value["at"] == ts
    assert out.value["job"]["enqueued"] == ts
    nested = run(ex, "enqueueTwice", {})
    assert nested.error is None, nested.error
    assert nested.value is True
    assert [job["enqueued"] for job in listed(ex)] == [ts, latest_ts(db)]


def test_a_resent_mutation_gets_the_same_resolved_commit_ts_back(app):
    db, ex = app
    key = ("0b5e8f36-3f7e-4f0e-9d8e-1c2a3b4c5d6e", 1)
    call = FunctionCall("jobs:enqueueAndTell", {"name": "once"}, "mutation", idempotency_key=key)
    first = ex.run(call)
    again = ex.run(call)
    assert first.error is None and again.error is None
    assert first.value["at"] == again.value["at"] == first.ts == again.ts
    assert len(listed(ex)) == 1
