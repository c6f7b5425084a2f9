"""Queries and mutations are deterministic; synchronous syscalls are answered in V8."""

from __future__ import annotations

import base64
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.ids import encode_id

CHANNEL = "j579t1x2pxcx6vdfn0gn41k4498ej10p"
NOW_MS = 1_700_000_000_000.0
SNAPSHOT_TS = 1_700_000_000_000_000_123


class NoSyscalls:
    def handle(self, op: str, args_json: str) -> str:
        raise AssertionError(f"unexpected syscall {op}")


def result(outcome):
    assert outcome.ok, outcome.error
    return json.loads(outcome.result_json)


def test_same_seed_same_random_sequence_and_another_seed_another(call):
    first = result(call("query", "misbehave:randomAndTime", seed=42))["random"]
    again = result(call("query", "misbehave:randomAndTime", seed=42))["random"]
    other = result(call("query", "misbehave:randomAndTime", seed=43))["random"]
    assert first == again
    assert first != other
    assert all(0 <= x < 1 for x in first) and len(set(first)) == 3


def test_time_is_frozen_to_the_hosts_timestamp(call):
    frozen = result(call("query", "misbehave:randomAndTime", now_ms=NOW_MS + 0.75))
    assert frozen["now"] == frozen["date"] == NOW_MS
    assert frozen["iso"] == "2023-11-14T22:13:20.000Z"
    dates = result(call("query", "misbehave:dates", now_ms=NOW_MS))
    assert dates["called"].startswith("Tue Nov 14 2023")
    assert dates["parsed"] == 1577934245000
    assert dates["isDate"] is True
    assert dates["performance"] == 0


def test_network_and_timers_are_refused(call):
    outcome = call("query", "misbehave:fetchSomething", {"url": "http://127.0.0.1/"})
    assert outcome.error.message == (
        "Uncaught Error: Can't use fetch() in queries and mutations. "
        "Please consider using an action. "
        "See https://docs.convex.dev/functions/actions for more details."
    )
    sleep = call("mutation", "misbehave:sleep")
    assert "Can't use setTimeout in queries and mutations" in sleep.error.message


def test_random_uuids_in_queries_follow_the_seed(call):
    # As in Convex: crypto.randomUUID and getRandomValues come from the call's seed.
    first = result(call("query", "misbehave:uuid", seed=42))
    assert first == result(call("query", "misbehave:uuid", seed=42))
    assert first != result(call("query", "misbehave:uuid", seed=43))
    assert first[14] == "4" and first[19] in "89ab" and len(first) == 36


def test_process_env_is_the_hosts_environment(call):
    env = {"API_URL": "https://api.example.com", "MODE": "test"}
    assert result(call("query", "misbehave:env", {"name": "MODE"}, env=env)) == {
        "value": "test",
        "keys": ["API_URL", "MODE"],
    }
    assert result(call("query", "misbehave:env", {"name": "MODE"})) == {"value": None, "keys": []}


def test_web_globals_the_npm_package_and_users_need(call):
    assert result(call("query", "misbehave:encode", {"text": "héllo ✓"})) == {
        "length": 10,
        "back": "héllo ✓",
        "b64": "aGkh",
        "unb64": "hi!",
        "clone": {"a": [1, {"b": 2}]},
    }


def test_snapshot_ts_is_answered_synchronously_as_int64(call, handler):
    args = {"table": "channels", "id": CHANNEL}
    got = result(call("query", "misbehave:normalize", args, snapshot_ts=SNAPSHOT_TS))
    raw = base64.b64decode(got["ts"]["$integer"])
    assert int.from_bytes(raw, "little", signed=True) == SNAPSHOT_TS
    assert got["id"] == CHANNEL
    assert handler.raw == []  # neither syscall reached the host


def test_normalize_id_rejects_other_tables_unknown_tables_and_garbage(call):
    def normalize(table, text):
        return result(call("query", "misbehave:normalize", {"table": table, "id": text}))["id"]

    assert normalize("messages", CHANNEL) is None
    assert normalize("nosuchtable", CHANNEL) is None
    assert normalize("channels", CHANNEL[:-1] + "q") is None  # checksum
    assert normalize("channels", "hello") is None
    assert normalize("channels", CHANNEL.upper()) is None


@settings(max_examples=25, deadline=None)
@given(
    table=st.integers(min_value=1, max_value=2**32 - 1),
    internal=st.binary(min_size=16, max_size=16),
)
def test_normalize_id_agrees_with_the_engines_id_format(isolate, table, internal):
    text = encode_id(table, internal)
    outcome = isolate.run(
        "query",
        "misbehave.js",
        "normalize",
        json.dumps([{"table": "t", "id": text}]),
        NoSyscalls(),
        seed=0,
        now_ms=NOW_MS,
        table_numbers={"t": table},
        snapshot_ts=1,
    )
    assert result(outcome)["id"] == text
