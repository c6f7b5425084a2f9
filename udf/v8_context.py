"""One V8 isolate (a mini-racer context) driven from its own asyncio loop thread.

mini-racer calls are cheapest from the asyncio loop it was created with (about
0.1-0.15 ms per short ``eval`` there, against ~0.3-0.5 ms from another
thread), so every call into V8 for a function call happens inside one
coroutine on that loop: the caller's thread hops over once per call.

Evaluations that may run user code are cancelable: a timer on the loop
cancels the running coroutine when the time budget is spent, and mini-racer
terminates the script. Only code that provably runs no user code (setup, the
reset guard) uses the cheaper synchronous ``eval`` (~0.05 ms less).

Caveats: mini-racer cannot call into Python synchronously, and runs V8
microtasks only when an evaluation ends; the runtime's protocol
(``udf/js/calls.js``) is built around both. V8 must be initialized on the
main thread: initialized by a worker thread's first context, it crashes the
process when another thread makes a second one (a server restarting with
several live queries to run), so ``start_v8`` is called early, on the main thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from py_mini_racer import JSEvalException, JSOOMException, mini_racer

T = TypeVar("T")
_START_LOCK = threading.Lock()
_started = False


def start_v8() -> None:
    """Initialize V8 now, if called on the main thread and not yet done (see Caveats).

    Elsewhere it does nothing: the first context initializes V8 as before.
    """
    global _started
    if threading.current_thread() is not threading.main_thread():
        return
    with _START_LOCK:
        if not _started:
            V8Context().close()
            _started = True


# What must be closed on a V8 loop before it stops (a fetch client's connections).
_LOOP_CLOSERS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, list[Callable[[], Awaitable[Any]]]
] = weakref.WeakKeyDictionary()


def at_loop_close(close: Callable[[], Awaitable[Any]]) -> None:
    """Await ``close()`` on the running V8 loop when its context closes."""
    _LOOP_CLOSERS.setdefault(asyncio.get_running_loop(), []).append(close)


class TimeBudgetExceeded(Exception):
    """The time budget ran out during an evaluation; JS was terminated.

    ``args[0]``: the seconds the evaluation ran."""


class HeapLimitExceeded(Exception):
    """V8 passed its hard heap limit during an evaluation; JS was terminated.

    ``args[0]``: the seconds the evaluation ran."""


class V8Context:
    """A mini-racer context plus the thread running its asyncio loop."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="headwater-v8", daemon=True
        )
        self._thread.start()
        self._racer_cm = mini_racer(self._loop)
        self._racer = self._racer_cm.__enter__()
        self._closed = False
        self._heap_limit_bytes = 0

    def run(self, coroutine_fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``coroutine_fn()`` on the V8 loop and wait for its result."""

        async def wrapper() -> T:
            return await coroutine_fn()

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result()

    def on_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def eval(self, code: str) -> Any:
        """Evaluate runtime code that runs no user code (call only on the V8 loop)."""
        return self._racer.eval(code)

    async def eval_budgeted(self, *codes: str, budget_s: float) -> tuple[Any, float]:
        """Evaluate code that may run user code; return (value of the last, seconds spent).

        Several pieces of code are handed to V8 at once and run in order, each
        after the microtasks of the one before: one thread round trip instead of
        one each. Raises TimeBudgetExceeded after ``budget_s`` and
        HeapLimitExceeded when the heap limit is passed; both leave the context
        usable.
        """
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("eval_budgeted must run inside a task on the V8 loop")
        timed_out = False

        def on_timeout() -> None:
            nonlocal timed_out
            timed_out = True
            task.cancel()

        handle = self._loop.call_later(max(budget_s, 0.0), on_timeout)
        started = time.perf_counter()
        evaluations = [asyncio.ensure_future(self._racer.eval_cancelable(code)) for code in codes]
        try:
            values = [await evaluation for evaluation in evaluations]
        except asyncio.CancelledError:
            if not timed_out:
                raise
            task.uncancel()
            raise TimeBudgetExceeded(time.perf_counter() - started) from None
        except JSOOMException:
            raise HeapLimitExceeded(time.perf_counter() - started) from None
        finally:
            handle.cancel()
            for evaluation in evaluations:
                if not evaluation.done():
                    evaluation.cancel()
                elif not evaluation.cancelled():
                    evaluation.exception()  # seen: the first failure is the one raised
        if self._racer.was_hard_memory_limit_reached():
            # The limit was hit in a promise continuation of an earlier evaluation:
            # V8 stopped it there, and this evaluation only ran after.
            raise HeapLimitExceeded(time.perf_counter() - started)
        return values[-1], time.perf_counter() - started

    def collect_garbage(self) -> None:
        self._racer.low_memory_notification()

    def heap_used_bytes(self) -> int | None:
        """Bytes on the V8 heap, garbage included (~0.5 ms); None when V8 cannot say
        (mini-racer answers nothing right after the heap limit was hit)."""
        try:
            return int(self._racer.heap_stats()["used_heap_size"])
        except (ValueError, KeyError, TypeError):
            return None

    def set_heap_limit_bytes(self, limit: int) -> None:
        self._heap_limit_bytes = limit
        self._racer.set_hard_memory_limit(limit)

    def recover_from_heap_limit(self) -> None:
        """Free what the stopped script left and re-arm the limit.

        mini-racer keeps a "limit reached" flag once the limit is hit and then
        reports every later exception as out-of-memory; setting the limit
        again clears it.
        """
        self._racer.low_memory_notification()
        self._racer.set_hard_memory_limit(self._heap_limit_bytes)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            # Let callbacks already queued on the loop (they may use V8) finish first.
            self.run(lambda: asyncio.sleep(0))
            closers = _LOOP_CLOSERS.pop(self._loop, [])
            if closers:
                self.run(lambda: asyncio.gather(*(close() for close in closers)))
            self._racer_cm.__exit__(None, None, None)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()


__all__ = ["HeapLimitExceeded", "JSEvalException", "TimeBudgetExceeded", "V8Context"]
