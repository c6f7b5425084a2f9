"""The per-socket state machine: versions chain, only changes are sent, bad versions refused."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.sync_client_messages import Connect, ModifyQuerySet, QueryAdd, QueryRemove
from gateway.sync_messages import (
    INITIAL_VERSION,
    QueryChanged,
    QueryRemoved,
    StateVersion,
    SyncProtocolError,
    Transition,
    encode_ts,
    serialize,
)
from gateway.sync_session import SyncSession, encode_query_outcome
from udf.calls import ADMIN, ANONYMOUS, FunctionOutcome, Identity

ALICE = Identity(user={"tokenIdentifier": "iss|alice", "subject": "alice"})
SESSION = "6f1c2e7a-0b7d-4b33-9a51-2f0f6c1e9d10"


def result(value):
    return encode_query_outcome(FunctionOutcome(value=value), "0" * 16)


def add(query_id, path="messages:list", args=None):
    return QueryAdd(query_id, path, [args or {}])


def update(session, ts, values):
    """Run one update where query ``q`` has the value ``values[q]`` (default: its id)."""
    plan = session.begin_update()
    results = {q: result(values.get(q, float(q))) for q in session.queries}
    return plan, session.finish_update(plan, ts, results)


def test_first_transition_starts_at_zero_and_each_starts_where_the_last_ended():
    session = SyncSession()
    session.modify_query_set(ModifyQuerySet(0, 1, (add(0),)))
    _, first = update(session, 100, {})
    assert first.start == INITIAL_VERSION == StateVersion(0, 0, 0)
    assert first.end == StateVersion(1, 0, 100)
    assert first.modifications == (QueryChanged(0, result(0.0)),)
    _, second = update(session, 120, {0: "changed"})
    assert second.start == first.end
    assert second.end == StateVersion(1, 0, 120)
    assert second.modifications == (QueryChanged(0, result("changed")),)


def test_unchanged_results_are_not_resent_but_the_transition_still_moves_ts():
    session = SyncSession()
    session.modify_query_set(ModifyQuerySet(0, 1, (add(0), add(1, args={"c": 1}))))
    update(session, 10, {})
    _, again = update(session, 20, {})
    assert again.modifications == ()
    assert again.end.ts == 20


def test_removed_queries_are_reported_and_new_ones_always_sent():
    session = SyncSession()
    session.modify_query_set(ModifyQuerySet(0, 1, (add(0), add(1))))
    update(session, 10, {})
    session.modify_query_set(ModifyQuerySet(1, 2, (QueryRemove(0), add(2))))
    plan, transition = update(session, 10, {2: 1.0})  # same value as query 1: still sent
    assert [type(m) for m in transition.modifications] == [QueryRemoved, QueryChanged]
    assert [m.query_id for m in transition.modifications] == [0, 2]
    assert plan.added == {2}
    assert sorted(session.queries) == [1, 2]


def test_a_query_added_and_removed_before_the_update_is_only_removed():
    session = SyncSession()
    session.modify_query_set(ModifyQuerySet(0, 1, (add(5),)))
    session.modify_query_set(ModifyQuerySet(1, 2, (QueryRemove(5),)))
    _, transition = update(session, 10, {})
    assert transition.modifications == (QueryRemoved(5),)
    assert transition.end.query_set == 2


def test_base_version_must_match_what_the_client_sent_before():
    session = SyncSession()
    session.modify_query_set(ModifyQuerySet(0, 1, ()))
    with pytest.raises(SyncProtocolError, match="Base version 3 passed up doesn't match") as e:
        session.modify_query_set(ModifyQuerySet(3, 4, ()))
    assert e.value.fatal and e.value.code == "BaseVersionMismatch"
    with pytest.raises(SyncProtocolError, match="must be greater") as e:
        session.modify_query_set(ModifyQuerySet(1, 1, ()))
    assert e.value.fatal


def test_duplicate_and_unknown_query_ids_close_with_an_internal_error():
    session = SyncSession()
    session.modify_query_set(ModifyQuerySet(0, 1, (add(0),)))
    with pytest.raises(SyncProtocolError, match="Duplicate query ID: 0") as e:
        session.modify_query_set(ModifyQuerySet(1, 2, (add(0),)))
    assert not e.value.fatal and e.value.close_code == 1011
    assert e.value.close_reason == "InternalServerError"
    with pytest.raises(SyncProtocolError, match="Nonexistent query id: 9"):
        session.modify_query_set(ModifyQuerySet(1, 2, (QueryRemove(9),)))
    session.modify_query_set(ModifyQuerySet(1, 2, (QueryRemove(0), add(0))))  # re-add is fine


def test_authenticate_confirms_a_new_identity_and_resubscribes_every_query():
    session = SyncSession()
    session.modify_query_set(ModifyQuerySet(0, 1, (add(0), add(1))))
    plan, _ = update(session, 10, {})
    for query in plan.subscribe:
        query.live = object()
    session.authenticate(0, ALICE)
    assert session.caller_identity is ALICE  # mutations sent now already run as alice
    plan, transition = update(session, 10, {})
    assert transition.end.identity == 1 > transition.start.identity
    assert plan.identity is ALICE
    assert {q.query_id for q in plan.release} == {0, 1}
    assert {q.query_id for q in plan.subscribe} == {0, 1}
    assert transition.modifications == ()  # results unchanged under the new identity
    with pytest.raises(SyncProtocolError, match="identity version 1") as e:
        session.authenticate(0, ANONYMOUS)
    assert e.value.close_code == 1011


def test_connect_records_the_session_and_refuses_a_timestamp_from_the_future():
    session = SyncSession()
    session.connect(Connect(SESSION, client_ts=1000.0), latest_ts=50, now_ms=1012.0)
    assert session.session_id == SESSION
    assert session.client_clock_skew_ms == -12
    with pytest.raises(SyncProtocolError, match="ahead of the server") as e:
        session.connect(Connect(SESSION, max_observed_timestamp=51), latest_ts=50, now_ms=0)
    assert e.value.close_code == 1011 and not e.value.fatal
    session.connect(Connect(SESSION, max_observed_timestamp=50), latest_ts=50, now_ms=0)


def test_queries_past_the_per_connection_limit_fail_without_running():
    session = SyncSession(queries_max=1)
    session.modify_query_set(ModifyQuerySet(0, 1, (add(0), add(1))))
    plan = session.begin_update()
    assert [q.query_id for q in plan.subscribe] == [0]
    transition = session.finish_update(plan, 5, {0: result(0.0)})
    failed = json.loads(transition.modifications[1].result.modification(1))
    assert failed["type"] == "QueryFailed"
    assert "TooManySubscriptions" in failed["errorMessage"]


def test_component_queries_of_a_non_admin_fail_with_convex_text():
    session = SyncSession()
    session.modify_query_set(
        ModifyQuerySet(0, 1, (QueryAdd(0, "a:b", [{}], component_path="comp"),))
    )
    plan = session.begin_update()
    assert plan.subscribe == ()
    transition = session.finish_update(plan, 5, {})
    assert (
        "Only admin or system users can call functions on non-root components directly"
        in transition.modifications[0].result.body
    )


def test_component_queries_of_an_admin_are_subscribed_with_their_component():
    session = SyncSession()
    session.identity = ADMIN
    session.modify_query_set(
        ModifyQuerySet(0, 1, (QueryAdd(0, "a:b", [{}], component_path="comp"),))
    )
    plan = session.begin_update()
    assert [(q.udf_path, q.component_path) for q in plan.subscribe] == [("a:b", "comp")]


def test_a_transition_never_goes_back_in_time():
    session = SyncSession()
    session.modify_query_set(ModifyQuerySet(0, 1, ()))
    update(session, 100, {})
    with pytest.raises(RuntimeError, match="backwards"):
        update(session, 99, {})


# --- the property: a client mirror always agrees with the server --------------------


class ClientMirror:
    """What the JS client does with Transitions (remote_query_set.ts), minus the UI."""

    def __init__(self) -> None:
        self.version = {"querySet": 0, "identity": 0, "ts": encode_ts(0)}
        self.results: dict[int, object] = {}

    def apply(self, transition: Transition) -> None:
        message = json.loads(serialize(transition))
        assert message["startVersion"] == self.version, "Invalid start version"
        for mod in message["modifications"]:
            if mod["type"] == "QueryRemoved":
                self.results.pop(mod["queryId"], None)
            else:
                self.results[mod["queryId"]] = mod["value"]
        self.version = message["endVersion"]


operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 6)),
        st.tuples(st.just("remove"), st.integers(0, 6)),
        st.tuples(st.just("auth"), st.booleans()),
        st.tuples(st.just("update"), st.integers(0, 3)),
        st.tuples(st.just("stale"), st.integers(0, 3)),  # a ModifyQuerySet with a bad base
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(operations)
def test_random_sessions_keep_versions_chained_and_the_client_in_sync(ops):
    session = SyncSession()
    client = ClientMirror()
    client_version = 0
    client_identity = 0
    declared: set[int] = set()
    ts = 0
    values: dict[int, float] = {}
    for op, arg in ops:
        if op == "add" and arg not in declared:
            session.modify_query_set(
                ModifyQuerySet(client_version, client_version + 1, (add(arg),))
            )
            client_version += 1
            declared.add(arg)
        elif op == "remove" and arg in declared:
            mod = (QueryRemove(arg),)
            session.modify_query_set(ModifyQuerySet(client_version, client_version + 1, mod))
            client_version += 1
            declared.discard(arg)
        elif op == "auth":
            session.authenticate(client_identity, ALICE if arg else ANONYMOUS)
            client_identity += 1
        elif op == "stale":
            with pytest.raises(SyncProtocolError):
                session.modify_query_set(ModifyQuerySet(client_version + 1 + arg, 99, ()))
        elif op == "update":
            ts += arg
            for q in declared:
                values[q] = float(ts // 2 + q)  # results change only now and then
            plan = session.begin_update()
            transition = session.finish_update(
                plan, ts, {q: result(values[q]) for q in session.queries}
            )
            client.apply(transition)
            assert transition.end == StateVersion(client_version, client_identity, ts)
            assert transition.end.covers(transition.start)
            assert set(client.results) == declared == set(session.queries)
            assert client.results == {q: values[q] for q in declared}
