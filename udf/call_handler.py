"""The host side of one function call: every async syscall the function makes.

Database ops go to ``DatabaseSyscalls`` over the call's transaction (queries
and mutations). Auth and metadata ops are answered from the call's context.
Nested calls — ``runUdf`` from queries and mutations (same transaction),
``actions/query|mutation|action`` from actions (each its own transaction) —
go back to the executor one nesting level down. ``ctx.scheduler`` goes to
``udf.scheduling_syscalls``, file storage ops to ``StorageSyscalls``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from engine.commit_ts import uncommitted_json
from engine.convex_json import from_convex_json, to_convex_json
from engine.transaction import Transaction
from udf import subtle_crypto
from udf.call_errors import js_error_text
from udf.calls import FunctionCall, FunctionKind, FunctionOutcome, Identity
from udf.component_calls import FunctionAddress, resolve_address
from udf.component_namespace import ComponentNamespace
from udf.database_syscalls import DatabaseSyscalls
from udf.errors import SyscallError
from udf.fetch_client import FetchOps
from udf.function_handles import create_handle
from udf.scheduling_syscalls import CANCEL_OPS, SCHEDULE_OPS, answer_scheduling
from udf.storage_syscalls import STORAGE_OPS, StorageSyscalls

# Convex's words for what only actions may do.
NOT_IN_QUERIES = (
    "Can't use {what} in queries and mutations. Please consider using an action. "
    "See https://docs.convex.dev/functions/actions for more details."
)
_NOT_YET = {
    "1.0/signJwt": "Signing JWTs",
    "1.0/createServiceToken": "Service tokens",
    "1.0/getServiceUrl": "Service URLs",
}


class FunctionRunner(Protocol):
    """What a call's syscalls need of the executor running it (``udf.executor``
    implements it): nested calls, one nesting level down, and deployment facts."""

    instance_name: str

    def run_at_depth(self, call: FunctionCall, depth: int) -> FunctionOutcome:
        """A call in its own transaction (from an action)."""
        ...

    def run_nested(self, call: FunctionCall, tx: Transaction, depth: int) -> FunctionOutcome:
        """A call inside the caller's transaction (runQuery/runMutation)."""
        ...

    def vector_search(self, args: dict[str, Any]) -> Any: ...

    def fetch_ops(self) -> FetchOps:
        """The fetch ops of one action call (``udf.fetch_client``)."""
        ...

    def storage_syscalls(self, kind: str, tx: Transaction | None) -> StorageSyscalls: ...

    @property
    def deployment(self) -> Any:
        """The deployment in force (its component tree resolves references)."""
        ...


@dataclass(frozen=True)
class CallContext:
    kind: FunctionKind
    udf_path: str  # "messages:send"
    identity: Identity
    request_id: str
    depth: int  # 0 for a call from a client
    scheduled_job_id: str | None = None  # the scheduled job this call runs for, if any
    component_path: str = ""  # the component instance whose function this is


class CallHandler:
    def __init__(
        self,
        executor: FunctionRunner,
        context: CallContext,
        tx: Transaction | None = None,
        *,
        journal: str | None = None,
    ) -> None:
        self._executor = executor
        self._context = context
        self._tx = tx
        self._fetch_ops: FetchOps | None = None
        self._database = (
            None
            if tx is None
            else DatabaseSyscalls(
                tx,
                read_only=context.kind == "query",
                journal=journal,
                namespace=ComponentNamespace(context.component_path),
            )
        )

    @property
    def next_journal(self) -> str | None:
        """The journal this call leaves for the next run of its subscription."""
        return None if self._database is None else self._database.next_journal

    def handle(self, op: str, args_json: str) -> Any:
        if self._database is not None and self._database.handles(op):
            return self._database.handle(op, args_json)
        if op.startswith("headwater/fetch"):
            return self._fetch(op, args_json)
        if op in subtle_crypto.OPS:
            return subtle_crypto.handle(op, args_json, deterministic=self._context.kind != "action")
        try:
            args = json.loads(args_json)
        except ValueError as exc:
            raise SyscallError(f"Syscall {op} received invalid JSON arguments.") from exc
        answer = self._answer(op, args if isinstance(args, dict) else {})
        return json.dumps(answer, separators=(",", ":"), ensure_ascii=False)

    def _answer(self, op: str, args: dict[str, Any]) -> Any:
        ctx = self._context
        if op == "1.0/getUserIdentity":
            if ctx.identity.auth_error is not None and ctx.kind == "action":
                raise SyscallError(ctx.identity.auth_error)
            return ctx.identity.user
        if op == "1.0/getFunctionMetadata":
            return {"name": ctx.udf_path, "componentPath": ctx.component_path}
        if op == "1.0/createFunctionHandle":
            address = self._address(args, "createFunctionHandle")
            deployment = self._executor.deployment
            return create_handle(deployment, address.component_path, address.udf_path)
        if op == "1.0/getDeploymentMetadata":
            return {"name": self._executor.instance_name, "region": None, "class": "s16"}
        if op == "1.0/getRequestMetadata":
            if ctx.kind == "query":
                raise SyscallError("getRequestMetadata is not allowed in queries.")
            return {
                "ip": None,
                "userAgent": None,
                "requestId": ctx.request_id,
                "scheduledFunctionId": ctx.scheduled_job_id,
                "authToken": ctx.identity.token,
            }
        if op == "1.0/runUdf" and self._tx is not None:
            return self._run_nested_in_transaction(args)
        if op in ("1.0/actions/query", "1.0/actions/mutation", "1.0/actions/action"):
            if ctx.kind != "action":
                raise SyscallError(f"Unknown async operation {op}")
            return self._run_from_action(op.rsplit("/", 1)[1], args)
        if op in SCHEDULE_OPS or op in CANCEL_OPS:
            return self._schedule(op, args)
        if op == "1.0/actions/vectorSearch" and ctx.kind == "action":
            return self._executor.vector_search(self._in_own_tables(args))
        if op in STORAGE_OPS:
            return self._executor.storage_syscalls(ctx.kind, self._tx).answer(op, args)
        if op in _NOT_YET:
            raise SyscallError(f"{_NOT_YET[op]} is not supported by Headwater yet ({op}).")
        raise SyscallError(f"Unknown async operation {op}")

    def _in_own_tables(self, args: dict[str, Any]) -> dict[str, Any]:
        """A vector search's ``indexName`` on the calling component's table."""
        query = args.get("query")
        if not isinstance(query, dict) or not isinstance(query.get("indexName"), str):
            return args
        table, dot, index = query["indexName"].partition(".")
        qualified = ComponentNamespace(self._context.component_path).table(table) + dot + index
        return {**args, "query": {**query, "indexName": qualified}}

    def _schedule(self, op: str, args: dict[str, Any]) -> Any:
        from_action = op.startswith("1.0/actions/")
        if from_action != (self._context.kind == "action") or (
            not from_action and (self._tx is None or self._context.kind != "mutation")
        ):
            raise SyscallError(f"Unknown async operation {op}")
        if op in SCHEDULE_OPS:
            address = self._address(args, "scheduler")
            args = {**args, "name": address.udf_path, "component": address.component_path}
        args = {**args, "namespace": self._context.component_path}
        tx = None if from_action else self._tx
        return answer_scheduling(self._executor, op, args, tx)  # type: ignore[arg-type]

    def _address(self, args: dict[str, Any], syscall: str) -> FunctionAddress:
        """The function a syscall names, resolved from this call's component."""
        deployment = self._executor.deployment
        return resolve_address(deployment, self._context.component_path, args, syscall)

    # -- fetch (actions only) ----------------------------------------------------------

    def _fetch(self, op: str, args_json: str) -> Any:
        if self._context.kind != "action":
            raise SyscallError(NOT_IN_QUERIES.format(what="fetch()"))
        if self._fetch_ops is None:
            self._fetch_ops = self._executor.fetch_ops()
        if not self._fetch_ops.handles(op):
            raise SyscallError(f"Unknown async operation {op}")
        return self._fetch_ops.handle(op, args_json)

    async def aclose(self) -> None:
        """End what the call's fetches left open (the driver calls it at the call's end)."""
        if self._fetch_ops is not None:
            await self._fetch_ops.aclose()

    # -- nested calls ---------------------------------------------------------------

    def _nested_call(self, kind: FunctionKind, args: dict[str, Any]) -> FunctionCall:
        if not any(isinstance(args.get(k), str) for k in ("name", "reference", "functionHandle")):
            raise SyscallError("A nested function call needs the function's name.")
        address = self._address(args, "runUdf")
        raw_args = args.get("args", {})
        fn_args = from_convex_json(raw_args, path="args") if raw_args is not None else {}
        if not isinstance(fn_args, dict):
            raise SyscallError("A nested function call's arguments must be an object.")
        ctx = self._context
        return FunctionCall(
            address.udf_path,
            fn_args,
            kind,
            ctx.identity,
            request_id=ctx.request_id,
            scheduled_job_id=ctx.scheduled_job_id,
            component_path=address.component_path,
        )

    def _run_nested_in_transaction(self, args: dict[str, Any]) -> Any:
        assert self._tx is not None
        udf_type = args.get("udfType")
        if udf_type not in ("query", "mutation", "snapshotQuery"):
            raise SyscallError(f"Invalid udfType {udf_type!r} for runUdf.")
        if udf_type == "mutation" and self._context.kind != "mutation":
            raise SyscallError("runMutation can only be called from a mutation.")
        kind: FunctionKind = "mutation" if udf_type == "mutation" else "query"
        call = self._nested_call(kind, args)
        outcome = self._executor.run_nested(call, self._tx, self._context.depth + 1)
        return _result_or_raise(outcome)

    def _run_from_action(self, kind: str, args: dict[str, Any]) -> Any:
        call = self._nested_call(kind, args)  # type: ignore[arg-type]
        outcome = self._executor.run_at_depth(call, self._context.depth + 1)
        return _result_or_raise(outcome)


def _result_or_raise(outcome: FunctionOutcome) -> Any:
    """The callee's value, or its error as Convex hands it to the caller: the whole
    JsError text (message, frames, final newline) as the message, so the caller's own
    "Uncaught Error: " leads it, and a ConvexError's data kept."""
    if outcome.error is None:
        return uncommitted_json(outcome.value)
    data_json = None
    if outcome.error.is_convex_error:
        data_json = json.dumps(to_convex_json(outcome.error.data), separators=(",", ":"))
    raise SyscallError(js_error_text(outcome.error.message), data_json)
