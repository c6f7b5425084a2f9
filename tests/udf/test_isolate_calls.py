"""Running functions: the syscalls the host sees, results, errors and log lines."""

from __future__ import annotations

import json

import pytest

from udf import SyscallError

CHANNEL = "j579t1x2pxcx6vdfn0gn41k4498ej10p"  # a real id of table 10001 ("channels")
INT64_ONE = {"$integer": "AQAAAAAAAAA="}


def test_indexed_query_sends_the_query_with_its_first_stream_next(call, handler):
    mine = handler.add(
        "messages", channel=CHANNEL, body="hi", meta={"likes": INT64_ONE, "tags": []}
    )
    outcome = call("query", "messages:list", {"channel": CHANNEL})
    assert outcome.ok, outcome.error
    assert [d["_id"] for d in json.loads(outcome.result_json)] == [mine]
    query = {
        "source": {
            "type": "IndexRange",
            "indexName": "messages.by_channel",
            "range": [{"type": "Eq", "fieldPath": "channel", "value": CHANNEL}],
            "order": None,
        },
        "operators": [],
    }
    # Every next asks the host for a batch; this fake host answers one document at a time.
    assert handler.calls == [
        ("1.0/queryStreamNext", {"queryId": 0, "query": query, "batch": True}),
        ("1.0/queryStreamNext", {"queryId": 0, "batch": True}),
    ]
    assert outcome.syscall_count == 2


def test_mutation_writes_reach_the_handler_in_order_with_convex_json(call, handler):
    outcome = call("mutation", "messages:rewrite", {"channel": CHANNEL})
    assert outcome.ok, outcome.error
    new_id = json.loads(outcome.result_json)
    assert handler.calls == [
        (
            "1.0/insert",
            {
                "table": "messages",
                "value": {
                    "channel": CHANNEL,
                    "body": "draft",
                    "meta": {"likes": {"$integer": "AAAAAAAAAAA="}, "tags": ["a"]},
                },
            },
        ),
        (
            "1.0/shallowMerge",
            {"id": new_id, "value": {"body": "final", "author": {"$undefined": None}}},
        ),
        (
            "1.0/replace",
            {
                "id": new_id,
                "value": {
                    "channel": CHANNEL,
                    "body": "replaced",
                    "meta": {"likes": {"$integer": "AgAAAAAAAAA="}, "tags": []},
                },
            },
        ),
        ("1.0/remove", {"id": new_id}),
    ]
    assert new_id not in handler.docs


def test_ops_issued_together_are_batched_in_one_round_trip_in_request_order(call, handler):
    ids = [handler.add("messages", body=str(i)) for i in range(3)]
    outcome = call("query", "messages:getMany", {"ids": ids})
    assert [d["body"] for d in json.loads(outcome.result_json)] == ["0", "1", "2"]
    assert handler.calls == [
        ("1.0/get", {"id": i, "isSystem": False, "version": "1.48.0"}) for i in ids
    ]


def test_breaking_out_of_a_query_tells_the_host_with_the_next_batch(call, handler):
    first = handler.add("messages", body="a")
    handler.add("messages", body="b")
    outcome = call("query", "messages:firstThenGet", {"id": first})
    assert json.loads(outcome.result_json)["first"]["_id"] == first
    assert handler.ops == ["1.0/queryStreamNext", "1.0/queryCleanup", "1.0/get"]
    assert handler.calls[1] == ("1.0/queryCleanup", {"queryId": 0})
    assert handler.streams == {}


def test_convex_error_data_comes_back_as_convex_json(call):
    args = {"channel": CHANNEL, "body": "", "meta": {"likes": INT64_ONE, "tags": []}}
    outcome = call("mutation", "messages:send", args)
    assert outcome.error.code == "UncaughtError"
    assert outcome.error.message.startswith("Uncaught ConvexError: ")
    assert json.loads(outcome.error.data_json) == {"code": "EmptyBody", "limit": INT64_ONE}
    assert outcome.error.is_convex_error


def test_thrown_errors_are_uncaught_errors_with_the_users_file_and_line(call):
    outcome = call("query", "misbehave:fail")
    assert outcome.result_json is None
    assert outcome.error.message == "Uncaught Error: boom"
    assert outcome.error.data_json is None
    assert outcome.error.stack == ("    at handler (../convex/misbehave.ts:66:11)",)
    assert (
        outcome.error.text == "Uncaught Error: boom\n    at handler (../convex/misbehave.ts:66:11)"
    )


def test_a_thrown_non_error_value_is_reported_too(call):
    assert call("query", "misbehave:throwString").error.message == "Uncaught plain"


def test_a_syscall_error_rejects_the_promise_and_user_code_can_catch_it(call, handler):
    missing = handler.new_id("messages")
    outcome = call("mutation", "messages:catchMissing", {"id": missing})
    assert json.loads(outcome.result_json) == f"caught: Update on nonexistent document ID {missing}"


def test_a_syscall_error_with_data_becomes_a_convex_error_in_user_code(call, handler):
    def nested_failure(args):
        raise SyscallError("nested call failed", data_json='{"reason":"nope"}')

    handler.answers["1.0/actions/query"] = nested_failure
    outcome = call("action", "messages:summarize", {"channel": CHANNEL})
    assert outcome.error.message == "Uncaught ConvexError: nested call failed"
    assert json.loads(outcome.error.data_json) == {"reason": "nope"}
    op, args = handler.calls[0]
    assert op == "1.0/actions/query"
    assert args["name"] == "messages:list" and args["args"] == {"channel": CHANNEL}


def test_a_handlers_unknown_operation_error_reaches_user_code(call, handler):
    outcome = call("action", "messages:whoAmI", request_id="req-1")
    assert outcome.error.message == "Uncaught Error: Unknown async operation 1.0/getUserIdentity"
    assert handler.calls == [("1.0/getUserIdentity", {"requestId": "req-1"})]


def test_actions_may_wait_on_timers(call):
    outcome = call("action", "messages:waitAndCount", {"ms": 20})
    assert outcome.ok, outcome.error
    assert outcome.result_json == "true"


def test_wrong_kind_is_refused_before_any_user_code_runs(call, handler):
    outcome = call("query", "messages:send", {})
    assert outcome.error.code == "WrongFunctionKind"
    assert outcome.error.message == (
        "Trying to execute messages.js:send as Query, but it is defined as Mutation."
    )
    assert handler.raw == []


# Texts: crates/model/src/modules/user_error.rs (ModuleNotFoundError, FunctionNotFoundError).
@pytest.mark.parametrize(
    ("ref", "text"),
    [
        ("messages:nope", 'Couldn\'t find "nope" in module "messages.js".'),
        (
            "nomodule:list",
            "Couldn't find JavaScript module 'nomodule.js'. Did you forget to run "
            "`npx convex dev`?",
        ),
        (
            "_deps/convex:server",
            "Couldn't find JavaScript module '_deps/convex.js'. Did you forget to run "
            "`npx convex dev`?",
        ),
    ],
)
def test_unknown_functions_are_not_found(call, ref, text):
    outcome = call("query", ref)
    assert outcome.error.code == "FunctionNotFound"
    assert outcome.error.message == text


def test_a_promise_that_can_never_settle_fails(call):
    # crates/isolate/src/environment/udf/mod.rs: a pending promise, no "Uncaught" lead.
    outcome = call("query", "misbehave:never")
    assert outcome.error.message == "Returned promise will never resolve"


def test_unawaited_writes_are_not_run_and_a_warning_is_logged(call, handler):
    outcome = call("mutation", "messages:forgetful", {"channel": CHANNEL})
    assert outcome.result_json == '"done"'
    assert handler.raw == []
    assert outcome.log_lines[-1].startswith("[WARN] The function returned before 1 operation(s)")


def test_console_output_becomes_log_lines(call):
    outcome = call("query", "misbehave:logs", {"n": 2})
    assert outcome.log_lines == (
        "[INFO] 'line' 0",
        "[INFO] 'line' 1",
        "[WARN] 'careful' [ 1, 2, 3 ] null undefined 5n",
        "[ERROR] [Error: bad]",
    )


def test_console_formats_objects_like_object_inspect(call, handler):
    outcome = call(
        "mutation",
        "messages:send",
        {"channel": CHANNEL, "body": "hello", "meta": {"likes": INT64_ONE, "tags": []}},
    )
    assert outcome.ok, outcome.error
    assert outcome.log_lines == ("[LOG] 'sending' { body: 'hello', likes: 1n }",)


def test_log_lines_are_capped_with_one_notice(call):
    outcome = call("query", "misbehave:logs", {"n": 300}, log_lines_max=256)
    assert len(outcome.log_lines) == 257
    assert outcome.log_lines[-1] == (
        "[ERROR] Log overflow (maximum 256). Remaining log lines omitted."
    )


def test_long_log_lines_are_truncated(call):
    outcome = call("query", "misbehave:logs", {"n": 1}, log_line_bytes_max=40)
    assert outcome.log_lines == (
        "[INFO] 'line' 0",
        "[WARN] 'carefu (truncated due to length)",
        "[ERROR] [Error: bad]",
    )


def test_a_handler_failure_aborts_the_call_and_the_isolate_stays_usable(call, handler):
    def broken(args):
        raise RuntimeError("engine bug")

    handler.answers["1.0/get"] = broken
    with pytest.raises(RuntimeError, match="engine bug"):
        call("query", "messages:get", {"id": handler.new_id("messages")})
    assert call("query", "misbehave:trivial").result_json == "1"


def test_a_handler_must_answer_json_text(call, handler):
    class Wrong:
        def handle(self, op, args_json):
            return {"not": "text"}

    with pytest.raises(TypeError, match="not JSON text"):
        call("query", "messages:get", {"id": handler.new_id("messages")}, handler=Wrong())


def test_a_handler_calling_back_into_its_own_isolate_is_refused_not_deadlocked(
    call, handler, isolate
):
    def nested(args):
        isolate.run("query", "misbehave.js", "trivial", "[{}]", handler, seed=0, now_ms=0.0)

    handler.answers["1.0/get"] = nested
    with pytest.raises(RuntimeError, match="another isolate"):
        call("query", "messages:get", {"id": handler.new_id("messages")})
    assert call("query", "misbehave:trivial").result_json == "1"


def test_synchronous_syscalls_the_runtime_does_not_know_are_refused(call, handler):
    outcome = call("query", "misbehave:rawSyscall", {"op": "1.0/nope", "args": "{}"})
    assert outcome.error.message == "Uncaught Error: Unknown operation 1.0/nope"
    outcome = call("query", "misbehave:rawSyscall", {"op": "1.0/queryStream", "args": "{"})
    assert outcome.error.message.startswith(
        "Uncaught Error: Syscall 1.0/queryStream received invalid JSON arguments"
    )
    assert handler.raw == []
