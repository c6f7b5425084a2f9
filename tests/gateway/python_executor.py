"""A FunctionExecutor whose functions are Python callables over the real engine.

Gateway tests use it to exercise HTTP and the sync protocol against a real
database, real commits and real invalidation, without V8. Functions are
registered as ``path -> PyFunction(kind, handler, public)``; a handler takes
``(tx, args, identity)`` for queries and mutations and ``(executor, args,
identity)`` for actions. Raising ``PyConvexError(data)`` mimics ConvexError.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine import Database, HeadwaterError
from udf.call_errors import not_found_any, not_found_public, wrong_kind
from udf.calls import FunctionCall, FunctionError, FunctionOutcome


class PyConvexError(Exception):
    def __init__(self, data: Any) -> None:
        super().__init__(str(data))
        self.data = data


@dataclass(frozen=True)
class PyFunction:
    kind: str  # "query" | "mutation" | "action"
    handler: Callable[..., Any]
    public: bool = True


def canonical_path(path: str) -> str:
    module, _, export = path.partition(":")
    module = module.removesuffix(".js")
    return f"{module}:{export or 'default'}"


class PythonExecutor:
    def __init__(self, db: Database, functions: dict[str, PyFunction]) -> None:
        self.db = db
        self.functions = {canonical_path(p): f for p, f in functions.items()}
        self._dedupe: dict[tuple[str, int], FunctionOutcome] = {}
        self.calls: list[FunctionCall] = []

    def cached_query(self, call: FunctionCall) -> FunctionOutcome | None:
        return None  # no result cache: every call runs

    def run(self, call: FunctionCall) -> FunctionOutcome:
        self.calls.append(call)
        path = canonical_path(call.path)
        fn = self.functions.get(path)
        if fn is None or (not fn.public and not call.identity.admin):
            return _error(not_found_public(path) if call.kind else not_found_any(path))
        if call.kind is not None and call.kind != fn.kind:
            module, _, export = path.partition(":")
            return _error(wrong_kind(f"{module}.js:{export}", call.kind, fn.kind))
        if call.idempotency_key is not None and call.idempotency_key in self._dedupe:
            return self._dedupe[call.idempotency_key]
        try:
            outcome = self._run(fn, call)
        except PyConvexError as exc:
            outcome = FunctionOutcome(
                error=FunctionError(f"Uncaught ConvexError: {exc}", exc.data, True),
                ts=self.db.latest_ts(),
                udf_type=fn.kind,  # type: ignore[arg-type]
            )
        except (HeadwaterError, ValueError, KeyError, TypeError) as exc:
            outcome = FunctionOutcome(
                error=FunctionError(f"Uncaught Error: {exc}"),
                ts=self.db.latest_ts(),
                udf_type=fn.kind,
            )  # type: ignore[arg-type]
        if call.idempotency_key is not None and outcome.ok and fn.kind == "mutation":
            self._dedupe[call.idempotency_key] = outcome
        return outcome

    def _run(self, fn: PyFunction, call: FunctionCall) -> FunctionOutcome:
        identity = call.identity
        logs = (f"[LOG] '{fn.kind} {canonical_path(call.path)}'",)
        if fn.kind == "query":
            r = self.db.query(lambda tx: fn.handler(tx, call.args, identity), ts=call.ts)
            return FunctionOutcome(r.value, None, logs, r.ts, r.read_set, None, "query")
        if fn.kind == "mutation":
            m = self.db.mutate(lambda tx: fn.handler(tx, call.args, identity))
            return FunctionOutcome(m.value, None, logs, m.ts, None, None, "mutation")
        value = fn.handler(self, call.args, identity)
        return FunctionOutcome(value, None, logs, self.db.latest_ts(), None, None, "action")

    def watch(self, read_set, since_ts, on_invalidated):
        return self.db.watch(read_set, since_ts, on_invalidated)

    def processed_ts(self) -> int:
        return self.db.processed_ts

    def wait_processed(self, ts: int, timeout_s: float = 10.0) -> bool:
        return self.db.wait_processed(ts, timeout_s)

    def latest_ts(self) -> int:
        return self.db.latest_ts()


def _error(message: str) -> FunctionOutcome:
    return FunctionOutcome(error=FunctionError(message))


def chat_functions() -> dict[str, PyFunction]:
    """A tiny chat app: list/send/like messages, an internal clear, an action, whoami."""

    def list_messages(tx, args, identity):
        q = tx.query("messages")
        if "channel" in args:
            q = q.with_index("by_channel", lambda r: r.eq("channel", args["channel"]))
        return q.collect()

    def send(tx, args, identity):
        if not args.get("body"):
            raise PyConvexError({"code": "EMPTY"})
        return tx.insert(
            "messages", {"channel": args.get("channel", "general"), "body": args["body"]}
        )

    def clear(tx, args, identity):
        docs = tx.query("messages").collect()
        for d in docs:
            tx.delete(d["_id"])
        return len(docs)

    def shout(executor, args, identity):
        return str(args.get("text", "")).upper()

    def whoami(tx, args, identity):
        return None if identity.user is None else identity.user.get("subject")

    return {
        "messages:list": PyFunction("query", list_messages),
        "messages:send": PyFunction("mutation", send),
        "messages:clear": PyFunction("mutation", clear, public=False),
        "actions:shout": PyFunction("action", shout),
        "auth:whoami": PyFunction("query", whoami),
    }
