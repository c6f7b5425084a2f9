"""Driving one call through the runtime's evaluations, and the host's syscall handler.

    start(config)   -> user code runs until it first awaits
    poll()          -> {"ops": [[id, op, argsJson], ...]}: run on the handler, in order
    resume(results) -> user code continues with the results
    poll()          -> ... -> {"done": {...}, "reset": "ok"}: the outcome; context reset

User time is measured inside V8 (``udf/js/calls.js``): from the start of each
evaluation that runs user code to the end of the microtasks it started. The
host's time between evaluations — answering syscalls, passing messages to and
from the V8 thread, ~0.5 ms a round trip on a busy machine — is not the
call's. (Inserts in a mutation mostly skip the round trip: the runtime
buffers them, see udf/js/syscalls.js; 16,000 awaited inserts take ~0.8 s in
all.) Every evaluation (``poll`` too: a call may have replaced what it relies
on) is still stopped when it outlasts what is left of the budget plus a host
allowance, and a reply showing the budget spent ends the call. A time or heap
limit ends the call with an outcome error (keeping its log lines); an exception from the handler
other than ``SyscallError`` ends it by propagating. Either way the context is
reset.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from py_mini_racer import JSEvalException

from udf import outcome as oc
from udf.errors import SyscallError
from udf.outcome import CallError, CallOutcome
from udf.v8_context import HeapLimitExceeded, TimeBudgetExceeded, V8Context

# Reading a stopped call's log lines: runtime code, but a call may have replaced what it uses.
_BOOKKEEPING_TIME_LIMIT_S = 0.1
# An evaluation is stopped this long after the call's budget would be spent if it
# were all user code: its wall time also holds the host's messages to and from
# V8's thread (large values, a busy machine's scheduling stalls), which the
# budget does not count. Code that never yields to the host is stopped this late.
_HOST_ALLOWANCE_S = 0.5
# mini-racer's exception text starts "<script>:<line>: <Name>: <message>".
_JS_EXCEPTION = re.compile(r"^[^\n]*?:\d+: (?P<error>[^\n]*)")


class SyscallHandler(Protocol):
    """The host side of async syscalls: JSON text in, JSON text out.

    Raise ``udf.SyscallError`` for a user error (the JS promise rejects with
    its message); any other exception aborts the call. Unknown ops must raise
    ``SyscallError(f"Unknown async operation {op}")``. Called on the V8 loop
    thread, one op at a time, in the order JS issued them.

    An op that waits on the outside world (a fetch) may return an awaitable
    instead: it runs on the V8 loop in the background while user code goes on,
    and its promise settles when it is done (``headwater/cancel`` stops it;
    the call's end cancels what is left).
    """

    def handle(self, op: str, args_json: str) -> str | Awaitable[str]: ...


class CallDriver:
    """The loop of one call: start, then poll / run ops / resume until done."""

    def __init__(
        self,
        v8: V8Context,
        handler: SyscallHandler | None,
        time_limit_s: float,
        map_stack: Callable[[list[dict[str, Any]]], tuple[str, ...]],
        heap_bytes_max: int,
    ):
        self._v8 = v8
        self._handler = handler
        self._map_stack = map_stack
        self._time_limit_s = time_limit_s
        self._heap_bytes_max = heap_bytes_max
        self._user_time_s = 0.0  # as V8 measured it, up to the last reply
        self._waited_s = 0.0  # on timers and background ops: counts toward the budget too
        self._background: dict[int, asyncio.Future[str]] = {}
        self._syscalls = 0
        self.reset_ok = False
        self.context_dead = False

    async def _user_then_poll(self, code: str) -> dict[str, Any]:
        """Run ``code`` (it runs user code), then ``poll`` once its microtasks are
        done — both handed to V8 at once — on what is left of the time budget.
        ``poll`` is budgeted too: a call may have replaced what it relies on."""
        budget_s = self._time_limit_s - self._spent_s() + _HOST_ALLOWANCE_S
        try:
            text, _ = await self._v8.eval_budgeted(code, "__hw.poll()", budget_s=budget_s)
        except (TimeBudgetExceeded, HeapLimitExceeded) as exc:
            self._user_time_s += exc.args[0] if exc.args else 0.0
            raise
        reply: dict[str, Any] = json.loads(text)
        self._user_time_s = reply["userMs"] / 1000
        if "done" in reply:
            self.reset_ok = reply["reset"] == "ok"
        if self._spent_s() > self._time_limit_s:
            raise TimeBudgetExceeded(0.0)
        return reply

    def _spent_s(self) -> float:
        return self._user_time_s + self._waited_s

    async def call(self, start_code: str) -> CallOutcome:
        try:
            reply = await self._user_then_poll(start_code)
            while True:
                if "done" in reply:
                    return self._done(reply["done"])
                if "ops" in reply:
                    results = self._run_ops(reply["ops"])
                    reply = await self._user_then_poll(f"__hw.resume({json.dumps(results)})")
                else:
                    finished = await self._wait(reply["wait"])
                    if finished:
                        code = f"__hw.resume({json.dumps(finished)})"
                    else:
                        code = "__hw.fireTimer()"
                    reply = await self._user_then_poll(code)
        except TimeBudgetExceeded:
            message = f"Function execution timed out (maximum duration: {self._time_limit_s:g}s)"
            return await self._abandon(oc.TIME_LIMIT, message)
        except HeapLimitExceeded:
            self._v8.recover_from_heap_limit()
            # Convex's words; like Convex, "MB" for the MiB of the user heap.
            message = (
                "JavaScript execution ran out of memory "
                f"(maximum memory usage: {self._heap_bytes_max >> 20} MB)"
            )
            return await self._abandon(oc.MEMORY_LIMIT, message)
        except JSEvalException as exc:
            # The runtime's own code threw: only a call that replaced what it
            # relies on (a built-in prototype method...) gets it there.
            match = _JS_EXCEPTION.match(str(exc))
            detail = match["error"] if match else str(exc).splitlines()[0]
            return await self._abandon(oc.UNCAUGHT_ERROR, f"Uncaught {detail}")
        except BaseException:
            self._reset()
            raise
        finally:
            await self._end_background()

    def _reset(self) -> None:
        try:
            self.reset_ok = self._v8.eval("__hw.reset()") == "ok"
        except Exception:  # noqa: BLE001 - any failure here means: rebuild
            self.reset_ok = False

    async def _wait(self, wait_ms: float | None) -> list[list[Any]]:
        """Wait for the next timer (``wait_ms``; None: no timer) or background op;
        the results of the ops that finished. The wait counts toward the budget."""
        left_s = max(0.0, self._time_limit_s - self._spent_s())
        timeout_s = left_s if wait_ms is None else min(left_s, max(0.0, wait_ms) / 1000)
        started = asyncio.get_running_loop().time()
        try:
            if not self._background:
                if wait_ms is None:
                    raise RuntimeError("the runtime waits for background ops, but none is running")
                await asyncio.sleep(timeout_s)
                return []
            await asyncio.wait(
                self._background.values(), timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            self._waited_s += asyncio.get_running_loop().time() - started
        if self._spent_s() > self._time_limit_s:
            raise TimeBudgetExceeded(0.0)
        results: list[list[Any]] = []
        for op_id, task in list(self._background.items()):
            if not task.done():
                continue
            del self._background[op_id]
            exc = task.exception()
            if isinstance(exc, SyscallError):
                results.append([op_id, 0, exc.message, exc.data_json])
            elif exc is not None:
                raise exc
            else:
                results.append([op_id, 1, task.result()])
        return results

    def _cancel(self, args_json: str) -> None:
        task = self._background.pop(json.loads(args_json).get("id"), None)
        if task is not None:
            task.cancel()

    async def _end_background(self) -> None:
        tasks = list(self._background.values())
        self._background.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        close = getattr(self._handler, "aclose", None)
        if close is not None:
            await close()

    def _run_ops(self, ops: list[list[Any]]) -> list[list[Any]]:
        handler = self._handler
        if handler is None:
            raise RuntimeError("this call has no syscall handler")
        results: list[list[Any]] = []
        for op_id, op, args_json in ops:
            self._syscalls += 1
            if op == "headwater/cancel":
                self._cancel(args_json)
                continue
            try:
                text = handler.handle(op, args_json)
            except SyscallError as exc:
                if op_id:
                    results.append([op_id, 0, exc.message, exc.data_json])
                continue
            if inspect.isawaitable(text):
                self._background[op_id] = asyncio.ensure_future(text)
                continue
            if not isinstance(text, str):
                raise TypeError(
                    f"syscall handler returned {type(text).__name__} for {op}, not JSON text"
                )
            if op_id:
                results.append([op_id, 1, text])
        return results

    def _done(self, done: dict[str, Any]) -> CallOutcome:
        raw = done["error"]
        error = None
        if raw is not None:
            error = CallError(
                raw["code"], raw["message"], raw["data"], self._map_stack(raw["frames"])
            )
        if "result" in done:
            result = done["result"]  # small: it came with the reply
        else:
            # Runtime code only: no budget needed to hand over a result of many MiB.
            result = self._v8.eval("__hw.takeResult()")
        return CallOutcome(
            None if error else result,
            error,
            tuple(done["logLines"]),
            self._syscalls,
            self._user_time_s,
        )

    async def _abandon(self, code: str, message: str) -> CallOutcome:
        """End a call the runtime stopped: keep its log lines, reset the context."""
        try:
            text, _ = await self._v8.eval_budgeted(
                "__hw.logs()", budget_s=_BOOKKEEPING_TIME_LIMIT_S
            )
            lines = tuple(json.loads(text))
        except TimeBudgetExceeded:
            # V8 did not answer: user code is still running where termination cannot
            # reach it (mini-racer runs promise continuations after an evaluation has
            # returned). Only discarding the context stops it.
            self.context_dead = True
            self.reset_ok = False
            return CallOutcome(
                None, CallError(code, message), (), self._syscalls, self._user_time_s
            )
        except Exception:  # noqa: BLE001 - the logs are a courtesy after a breach
            lines = ()
        self._reset()
        return CallOutcome(None, CallError(code, message), lines, self._syscalls, self._user_time_s)
