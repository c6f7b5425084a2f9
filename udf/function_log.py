"""The function log: one entry per function execution, kept in a bounded ring in memory.

Every execution (a client's query, mutation or action, a live query's re-run, a
``runQuery``/``runMutation``/``runAction`` from an action) appends one
``FunctionLogEntry`` with its console lines, duration, outcome and error. Readers
(``GET /api/stream_function_logs``, ``headwater serve``'s stderr printer) follow it
by cursor: a float of milliseconds since the epoch, strictly increasing per entry,
as the reference backend's ``CursorMs`` — a reader asks for the entries after the
cursor it holds and receives the newest cursor with them.

Caveats: the ring keeps the newest ``function_log_entries_max`` entries and at most
``function_log_bytes_max`` bytes of them; older entries are dropped first, and a
reader whose cursor is older than the oldest kept entry silently misses the dropped
ones (``statistics()["dropped"]`` counts them). Nothing else is ever dropped, whether
or not anyone listens. The log is in memory only: a restart starts it empty.
Appends come from the executor's worker threads; listeners are called on the
appending thread, after the lock is released, and must not block.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.limits import LIMITS, Limits
from udf.calls import FunctionCall, FunctionError, FunctionOutcome

# Where a call came from.
SOURCE_CLIENT = "client"  # HTTP API, sync protocol, `headwater run` through the server
SOURCE_ACTION = "action"  # runQuery / runMutation / runAction inside an action
SOURCE_HTTP = "http"  # a request to an HTTP action (http.js)
# Runs the scheduler starts, named as Convex's FunctionCaller shows them (its log's
# ``caller``): a scheduled function's job, a cron's slot.
SOURCE_SCHEDULER = "Scheduler"
SOURCE_CRON = "Cron"

_UDF_TYPES = {"query": "Query", "mutation": "Mutation", "action": "Action"}
_TRUNCATED = " (truncated due to length)"
_LEVELS = ("LOG", "DEBUG", "INFO", "WARN", "ERROR")

_log = logging.getLogger("headwater.function_log")

Listener = Callable[["FunctionLogEntry"], None]


@dataclass(frozen=True)
class LogLine:
    """One ``console.*`` line: ``[LEVEL] text`` as the runtime records it, parsed."""

    level: str
    message: str
    is_truncated: bool

    @classmethod
    def parse(cls, raw: str) -> LogLine:
        level, sep, rest = raw.partition("] ")
        name = level[1:] if level.startswith("[") else ""
        if not sep or name not in _LEVELS:
            return cls("LOG", raw, False)
        truncated = rest.endswith(_TRUNCATED)
        return cls(name, rest[: -len(_TRUNCATED)] if truncated else rest, truncated)

    @property
    def text(self) -> str:
        """The line as the runtime wrote it: ``[LOG] 'hello'``."""
        return f"[{self.level}] {self.message}{_TRUNCATED if self.is_truncated else ''}"

    def to_json(self, timestamp_ms: int) -> dict[str, Any]:
        return {
            "messages": [self.message],
            "level": self.level,
            "timestamp": timestamp_ms,
            "isTruncated": self.is_truncated,
        }


@dataclass(frozen=True)
class FunctionLogEntry:
    cursor_ms: float
    udf_type: str  # "Query" | "Mutation" | "Action" | "HttpAction"
    # "messages:send" (".js" dropped, as the reference shows it); an HTTP action's is its
    # route, "GET /hello" or "POST /files/*" (the method and path when none matched)
    identifier: str
    source: str  # one of the SOURCE_* above
    started_s: float  # unix seconds when the call started
    execution_time_s: float
    log_lines: tuple[LogLine, ...]
    error: str | None
    request_id: str
    execution_id: str
    size_bytes: int = field(default=0, compare=False)
    component_path: str | None = None  # a component instance's function (None: the app's)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self, *, structured: bool = True) -> dict[str, Any]:
        """The reference's ``FunctionExecutionJson`` (``kind: "Completion"``) fields a
        client reads; the usage figures we do not measure are zeros. Console lines are
        objects for clients that read them (the CLI, the dashboard), else
        ``"[LEVEL] text"`` strings, as the reference chooses by client."""
        timestamp_ms = int(self.started_s * 1000)
        return {
            "kind": "Completion",
            "udfType": self.udf_type,
            "componentPath": self.component_path,
            "identifier": self.identifier,
            "logLines": [
                line.to_json(timestamp_ms) if structured else line.text for line in self.log_lines
            ],
            "timestamp": self.started_s + self.execution_time_s,
            "executionTimestamp": self.started_s,
            "cachedResult": False,
            "caller": self.source,
            "parentExecutionId": None,
            "executionTime": self.execution_time_s,
            "userExecutionTime": None,
            "success": None,
            "error": self.error,
            "requestId": self.request_id,
            "executionId": self.execution_id,
            "usageStats": dict.fromkeys(_USAGE_FIELDS, 0),
            "returnBytes": None,
            "occInfo": None,
            "willRetry": False,
            "identityType": "",
            "environment": "isolate",
        }


_USAGE_FIELDS = (
    "databaseReadBytes",
    "databaseWriteBytes",
    "databaseIoReadBytes",
    "databaseIoWriteBytes",
    "databaseReadDocuments",
    "databaseWriteDocuments",
    "storageReadBytes",
    "storageWriteBytes",
    "vectorIndexReadBytes",
    "vectorIndexWriteBytes",
    "textIndexQueryBytes",
    "textIndexWriteQueryBytes",
    "vectorIndexReadQueryBytes",
    "vectorIndexWriteQueryBytes",
    "networkEgressBytes",
    "memoryUsedMb",
)


def display_identifier(path: str) -> str:
    """``folder/file.js:name`` → ``folder/file:name``; the default export is the bare
    module, as the executor's errors show it."""
    module, _, export = path.partition(":")
    module = module.removesuffix(".js")
    return module if export in ("", "default") else f"{module}:{export}"


class FunctionLog:
    """The bounded ring of executions, with a cursor and listeners (thread-safe)."""

    def __init__(self, limits: Limits = LIMITS) -> None:
        self._entries_max = max(1, limits.function_log_entries_max)
        self._bytes_max = max(1, limits.function_log_bytes_max)
        self._lock = threading.Lock()
        self._ring: deque[FunctionLogEntry] = deque()
        self._bytes = 0
        self._dropped = 0
        self._appended = 0
        self._last_cursor_ms = 0.0
        self._listeners: list[Listener] = []
        self._next_execution = 0

    # -- writing ----------------------------------------------------------------------

    def record(
        self,
        call: FunctionCall,
        outcome: FunctionOutcome,
        *,
        started_s: float,
        execution_time_s: float,
        nested: bool = False,
    ) -> FunctionLogEntry:
        """Append the entry of one finished call and tell the listeners."""
        kind = outcome.udf_type or call.kind or "query"
        return self._append(
            _UDF_TYPES.get(kind, "Query"),
            display_identifier(call.path),
            SOURCE_ACTION if nested else call.started_by or SOURCE_CLIENT,
            outcome.log_lines,
            None if outcome.error is None else outcome.error.message,
            request_id=call.request_id,
            started_s=started_s,
            execution_time_s=execution_time_s,
            component_path=call.component_path or None,
        )

    def record_http_action(
        self,
        route: str,
        log_lines: tuple[str, ...],
        error: FunctionError | None,
        *,
        request_id: str,
        started_s: float,
        execution_time_s: float,
    ) -> FunctionLogEntry:
        """Append the entry of one HTTP action; ``route`` is its identifier ("GET /hello")."""
        return self._append(
            "HttpAction",
            route,
            SOURCE_HTTP,
            log_lines,
            None if error is None else error.message,
            request_id=request_id,
            started_s=started_s,
            execution_time_s=execution_time_s,
        )

    def _append(
        self,
        udf_type: str,
        identifier: str,
        source: str,
        raw_lines: tuple[str, ...],
        error: str | None,
        *,
        request_id: str,
        started_s: float,
        execution_time_s: float,
        component_path: str | None = None,
    ) -> FunctionLogEntry:
        lines = tuple(LogLine.parse(raw) for raw in raw_lines)
        size = 256 + len(identifier) + len(error or "") + sum(len(x.message) for x in lines)
        with self._lock:
            self._next_execution += 1
            cursor = max(time.time() * 1000, math.nextafter(self._last_cursor_ms, math.inf))
            entry = FunctionLogEntry(
                cursor_ms=cursor,
                udf_type=udf_type,
                identifier=identifier,
                source=source,
                started_s=started_s,
                execution_time_s=execution_time_s,
                log_lines=lines,
                error=error,
                request_id=request_id,
                execution_id=f"{self._next_execution:x}",
                size_bytes=size,
                component_path=component_path,
            )
            self._last_cursor_ms = cursor
            self._ring.append(entry)
            self._bytes += size
            self._appended += 1
            while len(self._ring) > self._entries_max or (
                self._bytes > self._bytes_max and len(self._ring) > 1
            ):
                self._bytes -= self._ring.popleft().size_bytes
                self._dropped += 1
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(entry)
            except Exception:  # a reader's failure (closed stderr) never fails the call
                _log.exception("function log listener failed")
        return entry

    # -- reading ----------------------------------------------------------------------

    def entries_after(self, cursor_ms: float) -> tuple[list[FunctionLogEntry], float]:
        """The kept entries newer than ``cursor_ms`` and the cursor to ask with next
        (``cursor_ms`` itself when there are none)."""
        with self._lock:
            found = [e for e in self._ring if e.cursor_ms > cursor_ms]
        return found, (found[-1].cursor_ms if found else cursor_ms)

    def add_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def statistics(self) -> dict[str, int]:
        with self._lock:
            return {
                "entries": len(self._ring),
                "bytes": self._bytes,
                "appended": self._appended,
                "dropped": self._dropped,
                "listeners": len(self._listeners),
            }
