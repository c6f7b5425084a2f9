"""``headwater serve``'s function log on stderr: one line per execution, or JSON.

``text`` (the default) prints ``HH:MM:SS.mmm [M] messages:send 12ms ok`` — local
time the call ended, Q/M/A for query/mutation/action, duration, ``ok`` or
``error: <first line of the error>`` — then each ``console.*`` line indented under
it. ``json`` prints each entry as one JSON object per line (the fields of
``/api/stream_function_logs``). ``none`` prints nothing; the log is kept anyway.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TextIO

from udf.function_log import SOURCE_CLIENT, FunctionLog, FunctionLogEntry

LOG_FORMATS = ("text", "json", "none")


def format_text(entry: FunctionLogEntry) -> str:
    ended_s = entry.started_s + entry.execution_time_s
    clock = time.strftime("%H:%M:%S", time.localtime(ended_s))
    millis = int(ended_s * 1000) % 1000
    duration_ms = max(0, round(entry.execution_time_s * 1000))
    outcome = "ok" if entry.error is None else f"error: {entry.error.splitlines()[0]}"
    caller = "" if entry.source == SOURCE_CLIENT else f" (from {entry.source})"
    head = f"{clock}.{millis:03d} [{entry.udf_type[0]}] {entry.identifier}{caller}"
    lines = [f"{head} {duration_ms}ms {outcome}"]
    lines.extend(f"    [{line.level}] {line.message}" for line in entry.log_lines)
    return "\n".join(lines)


def format_json(entry: FunctionLogEntry) -> str:
    return json.dumps(entry.to_json(), separators=(",", ":"), ensure_ascii=False)


def print_function_log(log: FunctionLog, stream: TextIO, log_format: str) -> None:
    """Print every entry appended from now on to ``stream`` in ``log_format``."""
    if log_format == "none":
        return
    formatter = format_json if log_format == "json" else format_text
    lock = threading.Lock()  # appends come from several threads; lines never interleave

    def on_entry(entry: FunctionLogEntry) -> None:
        text = formatter(entry)
        with lock:
            stream.write(text + "\n")
            stream.flush()

    log.add_listener(on_entry)
