"""Live queries without sockets: shared executions, invalidation, the subscription limit."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest

from engine.errors import LimitExceededError
from gateway.live_queries import LiveQueryRegistry
from udf.calls import ANONYMOUS

sys.path.insert(0, str(Path(__file__).parent))  # the gateway test helpers live beside this file
from python_executor import PythonExecutor, chat_functions  # noqa: E402


def test_live_queries_share_runs_and_hear_about_invalidation(chat_db):
    executor = PythonExecutor(chat_db, chat_functions())
    registry = LiveQueryRegistry(executor)
    told: list[str] = []

    def ignore() -> None:
        pass

    async def main():
        a = registry.acquire("messages:list", [{}], ANONYMOUS, None, lambda: told.append("a"))
        b = registry.acquire("messages.js:list", [{}], ANONYMOUS, None, lambda: told.append("b"))
        x = registry.acquire("messages:list", [{"channel": "x"}], ANONYMOUS, None, ignore)
        assert a is b and x is not a
        await registry.wait_processed(executor.latest_ts())  # the schema's commit
        ts = executor.processed_ts()
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(registry.result_at, a, ts)
            tg.start_soon(registry.result_at, x, ts)
        assert a.executions == 1 and x.executions == 1
        chat_db.mutate(lambda tx: tx.insert("messages", {"channel": "g", "body": "hi"}))
        await registry.wait_processed(executor.latest_ts())
        with anyio.fail_after(5):
            while sorted(told) != ["a", "b"]:
                await anyio.sleep(0.01)
        new_ts = executor.processed_ts()
        # Channel x was not touched: its result holds at the new ts without a run.
        assert registry.valid_result(x, new_ts) is not None
        # All messages was: the old result is the answer at the old ts only.
        assert registry.valid_result(a, new_ts) is None
        assert registry.valid_result(a, ts) is not None
        result = await registry.result_at(a, new_ts)
        assert '"hi"' in result.body and a.executions == 2 and x.executions == 1
        registry.release(a, told.append)  # not a holder: ignored
        registry.release(x, ignore)
        assert registry.statistics()["live_queries"] == 1
        assert registry.statistics()["subscriptions"] == 2

    anyio.run(main, backend="trio")


def test_the_registry_refuses_past_its_subscription_limit(chat_db):
    registry = LiveQueryRegistry(PythonExecutor(chat_db, chat_functions()), subscriptions_max=1)

    async def main():
        registry.acquire("messages:list", [{}], ANONYMOUS, None, lambda: None)
        with pytest.raises(LimitExceededError, match="TooManySubscriptions"):
            registry.acquire("messages:list", [{}], ANONYMOUS, None, lambda: None)

    anyio.run(main, backend="trio")
