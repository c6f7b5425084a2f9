"""Sync protocol messages: what clients send parses, what the server sends matches the wire."""

from __future__ import annotations

import base64
import json
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import InvalidValueError
from gateway.live_queries import args_key, canonical_udf_path
from gateway.sync_client_messages import (
    Action,
    Authenticate,
    Connect,
    Event,
    ModifyQuerySet,
    Mutation,
    QueryAdd,
    QueryRemove,
    decode_args,
    parse_client_message,
)
from gateway.sync_messages import (
    CLOSE_NORMAL,
    ZERO_TS_TEXT,
    AuthError,
    EncodedResult,
    FatalError,
    Ping,
    QueryChanged,
    QueryRemoved,
    StateVersion,
    SyncProtocolError,
    Transition,
    decode_ts,
    encode_ts,
    function_response,
    serialize,
    session_request_id,
    transition_chunks,
)
from gateway.sync_session import encode_query_outcome
from udf.calls import FunctionError, FunctionOutcome

SESSION = "6f1c2e7a-0b7d-4b33-9a51-2f0f6c1e9d10"


# --- timestamps ------------------------------------------------------------------


def test_ts_matches_the_spec_examples():
    assert encode_ts(0) == ZERO_TS_TEXT == "AAAAAAAAAAA="
    assert encode_ts(1726000000123456789) == "Fc2u+dr78xc="
    assert decode_ts("Fc2u+dr78xc=") == 1726000000123456789


@given(st.integers(0, (1 << 63) - 1))
def test_ts_round_trips_as_8_little_endian_bytes(ts):
    text = encode_ts(ts)
    assert len(text) == 12
    assert base64.b64decode(text) == struct.pack("<Q", ts)
    assert decode_ts(text) == ts


@pytest.mark.parametrize(
    "text, words",
    [
        (5, "base64 timestamp string"),
        ("not base64!", "not valid base64"),
        ("AAAA", "exactly 8 bytes"),
        (base64.b64encode(struct.pack("<Q", 1 << 63)).decode(), r"larger than 2\^63-1"),
    ],
)
def test_bad_ts_is_a_malformed_message(text, words):
    with pytest.raises(SyncProtocolError, match=words) as caught:
        decode_ts(text)
    assert caught.value.fatal


def test_ts_out_of_range_is_refused_on_the_way_out():
    with pytest.raises(ValueError):
        encode_ts(1 << 63)
    with pytest.raises(ValueError):
        encode_ts(-1)


# --- client messages -------------------------------------------------------------


def test_connect_parses_every_field():
    message = parse_client_message(
        json.dumps(
            {
                "type": "Connect",
                "sessionId": SESSION,
                "connectionCount": 2,
                "lastCloseReason": "InactiveServer",
                "clientTs": 1726000000000,
                "maxObservedTimestamp": "Fc2u+dr78xc=",
                "someFutureField": True,
            }
        )
    )
    assert message == Connect(SESSION, 2, "InactiveServer", 1726000000000, 1726000000123456789)


def test_connect_from_the_rust_client_has_few_fields():
    message = parse_client_message(f'{{"type":"Connect","sessionId":"{SESSION}"}}')
    assert message == Connect(SESSION)


def test_modify_query_set_parses_add_and_remove():
    text = json.dumps(
        {
            "type": "ModifyQuerySet",
            "baseVersion": 0,
            "newVersion": 1,
            "modifications": [
                {"type": "Add", "queryId": 0, "udfPath": "messages:list", "args": [{"c": 1}]},
                {"type": "Add", "queryId": 1, "udfPath": "a:b", "args": [{}], "journal": "j"},
                {"type": "Remove", "queryId": 3},
            ],
        }
    )
    assert parse_client_message(text) == ModifyQuerySet(
        0,
        1,
        (
            QueryAdd(0, "messages:list", [{"c": 1}]),
            QueryAdd(1, "a:b", [{}], journal="j"),
            QueryRemove(3),
        ),
    )


def test_requests_authenticate_and_events_parse():
    assert parse_client_message(
        '{"type":"Mutation","requestId":4,"udfPath":"messages:send","args":[{"body":"hi"}]}'
    ) == Mutation(4, "messages:send", [{"body": "hi"}])
    assert parse_client_message(
        '{"type":"Action","requestId":5,"udfPath":"ai:go","args":[{}],"componentPath":"c"}'
    ) == Action(5, "ai:go", [{}], "c")
    assert parse_client_message(
        '{"type":"Authenticate","tokenType":"User","value":"jwt","baseVersion":0}'
    ) == Authenticate("User", 0, "jwt")
    acting = parse_client_message(
        '{"type":"Authenticate","tokenType":"Admin","value":"k","baseVersion":1,'
        '"actingAs":{"subject":"u"}}'
    )
    assert acting == Authenticate("Admin", 1, "k", {"subject": "u"})
    assert parse_client_message('{"type":"Authenticate","tokenType":"None","baseVersion":2}') == (
        Authenticate("None", 2)
    )
    assert parse_client_message('{"type":"Event","eventType":"ClientConnect","event":{}}') == (
        Event("ClientConnect", {})
    )


@pytest.mark.parametrize(
    "text, words",
    [
        ("garbage", "Invalid JSON"),
        ('{"type":"Connect","sessionId":NaN}', "Invalid JSON"),
        ("[1]", "must be a JSON object"),
        ('{"type":"Subscribe"}', "Unknown message type 'Subscribe'"),
        ("{}", "Unknown message type None"),
        ('{"type":"Connect"}', "Connect.sessionId is missing"),
        ('{"type":"Connect","sessionId":"nope"}', "must be a UUID"),
        (
            '{"type":"ModifyQuerySet","baseVersion":-1,"newVersion":1,"modifications":[]}',
            r"0..2\^32",
        ),
        ('{"type":"ModifyQuerySet","baseVersion":0,"newVersion":1}', "modifications must be"),
        (
            '{"type":"ModifyQuerySet","baseVersion":0,"newVersion":1,"modifications":[{"type":"X"}]}',
            r"modifications\[0\].type must be 'Add' or 'Remove'",
        ),
        ('{"type":"Mutation","requestId":1.5,"udfPath":"a:b","args":[]}', "requestId"),
        ('{"type":"Mutation","requestId":1,"udfPath":"a:b","args":{}}', "args is not an array"),
        ('{"type":"Action","requestId":1,"args":[]}', "Action.udfPath is missing"),
        ('{"type":"Authenticate","tokenType":"Bearer","baseVersion":0}', "tokenType must be"),
        ('{"type":"Authenticate","tokenType":"User","baseVersion":0}', "value is missing"),
        ('{"type":"Connect","sessionId":"' + SESSION + '","maxObservedTimestamp":"x"}', "base64"),
    ],
)
def test_malformed_messages_are_fatal_with_a_clear_error(text, words):
    with pytest.raises(SyncProtocolError, match=words) as caught:
        parse_client_message(text)
    assert caught.value.fatal
    assert caught.value.close_code == CLOSE_NORMAL


def test_args_decode_to_the_argument_object():
    assert decode_args([{"n": {"$integer": base64.b64encode(struct.pack("<q", 42)).decode()}}]) == {
        "n": 42
    }
    assert decode_args([]) == {}
    with pytest.raises(InvalidValueError, match="one object"):
        decode_args([1, 2], "a:b")
    with pytest.raises(InvalidValueError):
        decode_args([{"$bad": 1}])


def test_identical_arguments_have_one_key_whatever_the_field_order():
    assert args_key([{"a": 1, "b": 2}]) == args_key([{"b": 2, "a": 1}])
    assert args_key([{"a": 1}]) != args_key([{"a": 2}])


def test_udf_paths_are_canonicalized_like_the_js_client():
    assert canonical_udf_path("messages:list") == "messages:list"
    assert canonical_udf_path("messages.js:list") == "messages:list"
    assert canonical_udf_path("folder/sub") == "folder/sub:default"


# --- server messages -------------------------------------------------------------


def _value_result(value, logs=()):
    return encode_query_outcome(FunctionOutcome(value=value, log_lines=tuple(logs)), "0" * 16)


def test_transition_renders_as_in_the_spec():
    result = _value_result([], ["[LOG] 'listing'"])
    text = serialize(
        Transition(
            StateVersion(0, 0, 0),
            StateVersion(1, 0, 1726000000123456789),
            (QueryChanged(0, result), QueryRemoved(3)),
            client_clock_skew_ms=-12,
            server_ts_ns=1726000000130000000,
        )
    )
    assert json.loads(text) == {
        "type": "Transition",
        "startVersion": {"querySet": 0, "identity": 0, "ts": "AAAAAAAAAAA="},
        "endVersion": {"querySet": 1, "identity": 0, "ts": "Fc2u+dr78xc="},
        "modifications": [
            {
                "type": "QueryUpdated",
                "queryId": 0,
                "value": [],
                "logLines": ["[LOG] 'listing'"],
                "journal": None,
            },
            {"type": "QueryRemoved", "queryId": 3},
        ],
        "clientClockSkew": -12,
        "serverTs": 1726000000130000000,
    }
    assert ": " not in text  # compact


def test_query_failures_carry_the_request_id_and_convex_error_data():
    error = FunctionError("Uncaught ConvexError: nope", data=None, is_convex_error=True)
    result = encode_query_outcome(FunctionOutcome(error=error), "3f2c9a1b7d6e5f40")
    body = json.loads(result.modification(7))
    assert body["type"] == "QueryFailed"
    assert body["errorMessage"] == (
        "[Request ID: 3f2c9a1b7d6e5f40] Server Error\nUncaught ConvexError: nope\n"
    )
    assert "errorData" in body and body["errorData"] is None  # null data is still data
    plain = encode_query_outcome(FunctionOutcome(error=FunctionError("Uncaught Error: x")), "a")
    assert "errorData" not in json.loads(plain.modification(1))


def test_digests_see_values_and_logs_but_not_request_ids():
    assert _value_result([1.0]).digest == _value_result([1.0]).digest
    assert _value_result([1.0]).digest != _value_result([2.0]).digest
    assert _value_result([1.0]).digest != _value_result([1.0], ["[LOG] 'x'"]).digest
    failing = FunctionOutcome(error=FunctionError("Uncaught Error: x"))
    assert encode_query_outcome(failing, "a").digest == encode_query_outcome(failing, "b").digest
    assert encode_query_outcome(failing, "a").digest != _value_result("x").digest


def test_an_unencodable_query_value_becomes_a_failure():
    result = encode_query_outcome(FunctionOutcome(value=2**70), "r")
    assert not result.ok
    assert "invalid value" in json.loads(result.modification(0))["errorMessage"]


def test_mutation_and_action_responses():
    ok = function_response("Mutation", 4, FunctionOutcome(value=42, ts=1726000000123456789), "r")
    assert json.loads(serialize(ok)) == {
        "type": "MutationResponse",
        "requestId": 4,
        "success": True,
        "result": {"$integer": "KgAAAAAAAAA="},
        "ts": "Fc2u+dr78xc=",
        "logLines": [],
    }
    error = FunctionError("Uncaught ConvexError: too long", "too long", True)
    failed = function_response("Mutation", 1, FunctionOutcome(error=error, log_lines=("l",)), "ab")
    assert json.loads(serialize(failed)) == {
        "type": "MutationResponse",
        "requestId": 1,
        "success": False,
        "result": "[Request ID: ab] Server Error\nUncaught ConvexError: too long\n",
        "ts": None,
        "logLines": ["l"],
        "errorData": "too long",
    }
    action = json.loads(serialize(function_response("Action", 5, FunctionOutcome("s", ts=9), "r")))
    assert action == {
        "type": "ActionResponse",
        "requestId": 5,
        "success": True,
        "result": "s",
        "logLines": [],
    }


def test_auth_fatal_and_ping_messages():
    assert json.loads(serialize(AuthError("bad token", 0))) == {
        "type": "AuthError",
        "error": "bad token",
        "baseVersion": 0,
        "authUpdateAttempted": True,
    }
    assert json.loads(serialize(FatalError("boom"))) == {"type": "FatalError", "error": "boom"}
    assert serialize(Ping()) == '{"type":"Ping"}'


def test_websocket_request_ids_are_stable_per_session_and_request():
    assert session_request_id(SESSION, 2) == session_request_id(SESSION, 2)
    assert session_request_id(SESSION, 2) != session_request_id(SESSION, 3)
    assert len(session_request_id(SESSION, 2)) == 16
    assert len(session_request_id(None, 2)) == 16


# --- transition chunks -----------------------------------------------------------


def test_small_transitions_are_one_frame():
    assert transition_chunks('{"type":"Transition"}', 100) == ['{"type":"Transition"}']


@given(st.text(min_size=1, max_size=300), st.integers(4, 40))
def test_chunks_reassemble_and_never_split_a_character(text, limit):
    frames = transition_chunks(text, limit)
    if len(text.encode()) <= limit:
        assert frames == [text]
        return
    parts = [json.loads(f) for f in frames]
    assert "".join(p["chunk"] for p in parts) == text
    assert [p["partNumber"] for p in parts] == list(range(len(parts)))
    assert {p["totalParts"] for p in parts} == {len(parts)}
    assert {p["transitionId"] for p in parts} == {str(len(text.encode()))}
    assert all(p["type"] == "TransitionChunk" for p in parts)
    assert all(len(p["chunk"].encode()) <= limit for p in parts)


def test_encoded_results_render_updated_and_failed():
    assert EncodedResult(True, '"value":1', b"").modification(2) == (
        '{"type":"QueryUpdated","queryId":2,"value":1}'
    )
    assert EncodedResult(False, '"errorMessage":"x"', b"").modification(2) == (
        '{"type":"QueryFailed","queryId":2,"errorMessage":"x"}'
    )
