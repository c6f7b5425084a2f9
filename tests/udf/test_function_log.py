"""The function log's ring: the documented bounds drop the oldest entries first,
cursors strictly increase, console lines are parsed as the runtime writes them."""

from __future__ import annotations

from dataclasses import replace

from engine.limits import LIMITS
from udf.calls import FunctionCall, FunctionError, FunctionOutcome
from udf.function_log import FunctionLog, LogLine


def record(log: FunctionLog, path: str, *lines: str, error: str | None = None):
    outcome = FunctionOutcome(
        log_lines=lines,
        error=None if error is None else FunctionError(error),
        udf_type="mutation",
    )
    call = FunctionCall(path, {}, "mutation")
    return log.record(call, outcome, started_s=1.0, execution_time_s=0.002)


def test_at_the_entry_bound_the_oldest_is_dropped_first():
    log = FunctionLog(replace(LIMITS, function_log_entries_max=3))
    for i in range(3):
        record(log, f"m:f{i}")
    entries, _ = log.entries_after(0)
    assert [e.identifier for e in entries] == ["m:f0", "m:f1", "m:f2"]  # at the bound: all kept
    record(log, "m:f3")
    entries, _ = log.entries_after(0)
    assert [e.identifier for e in entries] == ["m:f1", "m:f2", "m:f3"]  # one past: oldest gone
    assert log.statistics()["dropped"] == 1


def test_the_byte_bound_drops_the_oldest_but_keeps_the_newest():
    log = FunctionLog(replace(LIMITS, function_log_bytes_max=5000))
    for i in range(3):
        record(log, f"m:f{i}", "[LOG] " + "x" * 2000)
    entries, _ = log.entries_after(0)
    assert [e.identifier for e in entries] == ["m:f1", "m:f2"]
    assert log.statistics()["bytes"] <= 5000
    record(log, "m:huge", "[LOG] " + "y" * 20_000)  # alone past the bound: still kept
    assert [e.identifier for e in log.entries_after(0)[0]] == ["m:huge"]


def test_cursors_strictly_increase_and_only_newer_entries_follow():
    log = FunctionLog()
    first = record(log, "m:a")
    second = record(log, "m:b")
    assert second.cursor_ms > first.cursor_ms
    entries, cursor = log.entries_after(first.cursor_ms)
    assert [e.identifier for e in entries] == ["m:b"] and cursor == second.cursor_ms
    assert log.entries_after(cursor) == ([], cursor)


def test_console_lines_keep_level_text_and_truncation():
    assert LogLine.parse("[WARN] 'careful'") == LogLine("WARN", "'careful'", False)
    assert LogLine.parse("[LOG] abc (truncated due to length)") == LogLine("LOG", "abc", True)
    assert LogLine.parse("no level") == LogLine("LOG", "no level", False)


def test_a_failing_listener_never_fails_the_call():
    log = FunctionLog()

    def broken(entry):
        raise OSError("stderr is closed")

    log.add_listener(broken)
    entry = record(log, "m:a", error="Uncaught Error: boom")
    assert entry.error == "Uncaught Error: boom" and log.statistics()["entries"] == 1
