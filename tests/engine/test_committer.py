"""Race and failure tests for the committer, held open with its named pause points."""

from __future__ import annotations

import threading

import pytest

from engine import ConflictError, HeadwaterError
from engine.committer import PAUSE_BEFORE_DURABLE

WAIT_S = 10.0


def counter(db) -> str:
    return db.mutate(lambda tx: tx.insert("counters", {"n": 0.0})).value


def value_of(db, doc_id: str) -> float:
    return db.query(lambda tx: tx.get(doc_id)["n"]).value


def test_a_failure_after_validation_writes_nothing_and_leaves_no_phantom_conflict(db):
    doc_id = counter(db)
    reader = db.begin(writable=True)  # reads the counter before the failed commit
    seen = reader.get(doc_id)["n"]
    failures = []

    def fail_once() -> None:
        if not failures:
            failures.append(True)
            raise OSError("disk went away")

    db.committer.pause_points[PAUSE_BEFORE_DURABLE] = fail_once
    with pytest.raises(HeadwaterError) as failed:
        db.mutate(lambda tx: tx.patch(doc_id, {"n": 100.0}))
    assert failed.value.code == "CommitFailed" and "disk went away" in failed.value.message
    del db.committer.pause_points[PAUSE_BEFORE_DURABLE]
    assert value_of(db, doc_id) == 0.0  # nothing of the failed commit is visible
    # Its validated writes were taken back out of the write log: the earlier reader,
    # whose read only the failed commit touched, still commits...
    reader.patch(doc_id, {"n": seen + 1})
    db.commit(reader)
    assert value_of(db, doc_id) == 1.0
    # ...and the committer goes on committing.
    db.mutate(lambda tx: tx.patch(doc_id, {"n": 2.0}))
    assert value_of(db, doc_id) == 2.0


def _hold_first_durable_write(db) -> tuple[threading.Event, threading.Event]:
    """The next commit stops after validation, before it is durable, until released."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        if not holding.is_set():
            holding.set()
            assert release.wait(WAIT_S)

    db.committer.pause_points[PAUSE_BEFORE_DURABLE] = hold
    return holding, release


@pytest.mark.parametrize("overlapping", [True, False])
def test_a_commit_validated_while_another_is_made_durable(db, overlapping):
    doc_id, other_id = counter(db), counter(db)
    late = db.begin(writable=True)  # its snapshot is before the held commit
    late.get(doc_id if overlapping else other_id)
    late.insert("log", {"by": "late"})
    holding, release = _hold_first_durable_write(db)
    first = threading.Thread(target=lambda: db.mutate(lambda tx: tx.patch(doc_id, {"n": 5.0})))
    first.start()
    try:
        assert holding.wait(WAIT_S)
        outcome: list[object] = []
        second = threading.Thread(target=lambda: outcome.append(_commit(db, late)))
        second.start()  # queued behind the held batch, validated after it
        release.set()
        first.join(WAIT_S)
        second.join(WAIT_S)
    finally:
        release.set()
        db.committer.pause_points.clear()
    assert value_of(db, doc_id) == 5.0
    if overlapping:  # it read what the held commit wrote: refused
        assert isinstance(outcome[0], ConflictError)
    else:  # a disjoint read set commits, however close in time
        assert isinstance(outcome[0], int)


def _commit(db, tx) -> object:
    try:
        return db.commit(tx)
    except ConflictError as exc:
        return exc
