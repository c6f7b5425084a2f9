"""Limits stop a call without harming the next one; nothing leaks between calls."""

from __future__ import annotations

import json
import threading
import time

import pytest

from udf import IsolatePool


def test_an_infinite_loop_is_stopped_by_the_time_limit_and_the_next_call_works(call):
    outcome = call("query", "misbehave:spin", time_limit_s=0.2)
    assert outcome.error.code == "TimeLimitExceeded"
    assert outcome.error.message == "Function execution timed out (maximum duration: 0.2s)"
    assert 0.2 <= outcome.user_time_s < 1.0
    assert call("query", "misbehave:trivial").result_json == "1"


def test_an_infinite_loop_after_an_await_is_stopped_too(call, handler):
    # The loop runs in a promise continuation, where V8 termination cannot reach it:
    # the isolate discards the context and the next call still works.
    doc_id = handler.add("messages", body="x")
    outcome = call("query", "misbehave:spinAfterAwait", {"id": doc_id}, time_limit_s=0.2)
    assert outcome.error.code == "TimeLimitExceeded"
    assert call("query", "misbehave:trivial").result_json == "1"


def test_time_in_the_handler_does_not_count_against_the_limit(call, handler):
    def slow_get(args):
        time.sleep(0.15)
        return None

    handler.answers["1.0/get"] = slow_get
    ids = [handler.new_id("messages")]
    outcome = call("query", "messages:getMany", {"ids": ids * 2}, time_limit_s=0.1)
    assert outcome.ok, outcome.error
    assert outcome.user_time_s < 0.1


def test_the_hosts_time_between_round_trips_is_not_user_time(call, handler):
    # 1,500 awaited reads: each costs the host far more (the handler, the messages to
    # and from V8's thread: 0.3 ms or more) than the JavaScript around it. How much
    # of each depends on the machine's load; their ratio hardly does.
    doc_id = handler.add("messages", body="x")
    started = time.perf_counter()
    outcome = call("query", "misbehave:getOneByOne", {"id": doc_id, "n": 1500.0}, time_limit_s=30)
    elapsed = time.perf_counter() - started
    assert outcome.ok, outcome.error
    assert outcome.syscall_count == 1500
    assert outcome.user_time_s < elapsed / 4


def test_running_out_of_memory_after_an_await_is_reported_as_such(call, handler):
    doc_id = handler.add("messages", body="x")
    outcome = call("query", "misbehave:hogAfterAwait", {"id": doc_id})
    assert outcome.error.code == "MemoryLimitExceeded"
    assert outcome.error.message == (
        "JavaScript execution ran out of memory (maximum memory usage: 64 MB)"
    )
    assert call("query", "misbehave:trivial").result_json == "1"


def test_a_huge_allocation_is_stopped_and_the_next_call_works(call):
    outcome = call("query", "misbehave:hog")
    assert outcome.error.code == "MemoryLimitExceeded"
    assert "out of memory" in outcome.error.message
    assert call("query", "misbehave:trivial").result_json == "1"
    # Later errors are errors again, not "out of memory".
    later = call("mutation", "misbehave:breakRuntime")
    assert later.error.message == "Uncaught TypeError: no filtering today"


def test_globals_prototypes_and_module_state_do_not_leak_between_calls(call):
    clean = json.loads(call("query", "misbehave:readGlobals").result_json)
    assert call("mutation", "misbehave:pollute").ok
    after = json.loads(call("query", "misbehave:readGlobals").result_json)
    assert after == clean
    assert clean == {
        "leaked": "undefined",
        "polluted": "undefined",
        "arrayHelper": "undefined",
        "consoleLog": "log",
        "mathMax": 2,
        "stuck": "undefined",
        "clone": "function",
        "sneaky": "undefined",
        "getOnObjects": "undefined",
        "calls": 0,
    }


def test_a_getter_left_on_object_prototype_cannot_act_during_the_reset(call):
    assert call("mutation", "misbehave:trapDescriptors").ok
    after = json.loads(call("query", "misbehave:readGlobals").result_json)
    assert after["sneaky"] == after["getOnObjects"] == "undefined"


def test_breaking_a_builtin_the_runtime_uses_fails_the_call_not_the_isolate(call):
    outcome = call("mutation", "misbehave:breakRuntime")
    assert outcome.error.code == "UncaughtError"
    assert outcome.error.message == "Uncaught TypeError: no filtering today"
    assert call("query", "misbehave:trivial").result_json == "1"


def test_a_trap_set_for_the_runtime_costs_the_call_its_time_not_the_isolate(call):
    outcome = call("mutation", "misbehave:trapRuntime", time_limit_s=0.2)
    assert outcome.error.code == "TimeLimitExceeded"
    assert call("query", "misbehave:trivial").result_json == "1"


def test_module_level_state_is_fresh_in_every_call(call):
    first = json.loads(call("mutation", "misbehave:leakGlobal").result_json)
    second = json.loads(call("mutation", "misbehave:leakGlobal").result_json)
    assert first == second == {"global": None, "calls": 0, "proto": None}


def test_a_change_the_reset_cannot_undo_rebuilds_the_isolate(call, isolate):
    rebuilds = isolate.rebuilds
    assert call("mutation", "misbehave:stick").ok
    after = json.loads(call("query", "misbehave:readGlobals").result_json)
    assert after["stuck"] == "undefined"
    assert isolate.rebuilds == rebuilds + 1


def test_a_pool_runs_calls_from_many_threads(app_bundle, handler):
    pool = IsolatePool(app_bundle.modules, size=2)
    results: list[str | None] = []

    def worker(seed: int) -> None:
        outcome = pool.run(
            "query", "misbehave.js", "randomAndTime", "[{}]", handler, seed=seed, now_ms=1.0
        )
        results.append(outcome.result_json)

    try:
        threads = [threading.Thread(target=worker, args=(i % 2,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 6 and len(set(results)) == 2
        assert pool.statistics()["created"] <= 2
    finally:
        pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        pool.run("query", "misbehave.js", "trivial", "[{}]", handler, seed=0, now_ms=1.0)
