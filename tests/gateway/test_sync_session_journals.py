"""Journals in the per-socket state machine: each query keeps the journal of its newest
result (sent or not), and a re-subscription after an identity change starts from it."""

from __future__ import annotations

import json

from gateway.sync_client_messages import ModifyQuerySet, QueryAdd
from gateway.sync_session import SyncSession, encode_query_outcome
from udf.calls import FunctionError, FunctionOutcome, Identity

ALICE = Identity(user={"tokenIdentifier": "iss|alice", "subject": "alice"})


def outcome(value, journal, error=None):
    return encode_query_outcome(
        FunctionOutcome(value=value, error=error, journal=journal), "0" * 16
    )


def test_the_newest_journal_is_kept_and_used_after_an_identity_change():
    session = SyncSession()
    session.modify_query_set(ModifyQuerySet(0, 1, (QueryAdd(0, "items:list", [{}], "J0"),)))
    plan = session.begin_update()
    assert [q.journal for q in plan.subscribe] == ["J0"]  # the client's journal from Add
    first = session.finish_update(plan, 10, {0: outcome([1], "J1")})
    assert json.loads(first.modifications[0].result.modification(0))["journal"] == "J1"
    # The same value with a newer journal: nothing is sent, the journal is still kept.
    again = session.finish_update(session.begin_update(), 20, {0: outcome([1], "J2")})
    assert again.modifications == ()
    session.authenticate(0, ALICE)
    plan = session.begin_update()
    assert [q.journal for q in plan.subscribe] == ["J2"]


def test_a_failed_run_carries_its_journal_too():
    failed = outcome(None, "J3", FunctionError("Uncaught Error: boom"))
    assert not failed.ok and failed.journal == "J3"
    assert json.loads(failed.modification(4))["journal"] == "J3"
