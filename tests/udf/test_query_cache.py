"""The query result cache: a repeated query skips V8 only while its answer is still true."""

from __future__ import annotations

import random
import shutil
import threading
from pathlib import Path

import pytest

from engine import Database
from engine.limits import LIMITS
from engine.read_set import ReadSet
from udf.calls import FunctionCall, FunctionOutcome, Identity
from udf.executor import Executor
from udf.query_cache import QueryCache

STORE_APP = Path(__file__).parent / "fixtures" / "store" / "convex"


def _executor(tmp_path: Path, **limits) -> Executor:
    app = tmp_path / "convex"
    shutil.copytree(STORE_APP, app)
    chosen = LIMITS.__class__(**{**LIMITS.__dict__, **limits})
    ex = Executor(Database.open(tmp_path / "data", limits=chosen), limits=chosen)
    ex.deploy(app)
    return ex


@pytest.fixture
def executor(tmp_path):
    ex = _executor(tmp_path)
    yield ex
    ex.close()
    ex.db.close()


def value(ex, name, identity=None, ts=None):
    call = FunctionCall("counters:value", {"name": name}, "query", identity or Identity(), ts=ts)
    outcome = ex.run(call)
    assert outcome.error is None, outcome.error
    return outcome.value


def increment(ex, name):
    outcome = ex.run(FunctionCall("counters:increment", {"name": name}, "mutation", Identity()))
    assert outcome.error is None, outcome.error
    return outcome


def settled(ex):
    ex.db.wait_processed(ex.db.latest_ts())


def hits(ex):
    return ex.query_cache.statistics()["hits"]


def test_a_repeated_query_is_answered_from_the_cache_until_a_commit_touches_it(executor):
    increment(executor, "a")
    settled(executor)
    assert value(executor, "a") == 1
    before = hits(executor)
    assert value(executor, "a") == 1
    assert hits(executor) == before + 1
    increment(executor, "b")  # another counter: what "a" read is untouched
    settled(executor)
    assert value(executor, "a") == 1
    assert hits(executor) == before + 2
    increment(executor, "a")
    settled(executor)
    assert value(executor, "a") == 2  # re-run, not the cached 1
    assert hits(executor) == before + 2


def test_cached_query_answers_only_what_run_would_and_never_runs_v8(executor):
    """The gateway's event-loop lookup: a hit equals ``run``'s answer and is logged;
    anything else (a miss, a stale result, a call ``run`` would refuse) is None."""
    from udf.function_log import FunctionLog

    executor.function_log = FunctionLog()
    call = FunctionCall("counters:value", {"name": "q"}, "query", Identity())
    increment(executor, "q")
    settled(executor)
    misses = executor.query_cache.statistics()["misses"]
    assert executor.cached_query(call) is None  # never run: nothing kept
    assert executor.query_cache.statistics()["misses"] == misses  # run() counts it
    ran = executor.run(call)
    logged = len(executor.function_log.entries_after(0)[0])
    hit = executor.cached_query(call)
    assert hit is not None and (hit.value, hit.ts) == (ran.value, ran.ts) == (1, ran.ts)
    assert len(executor.function_log.entries_after(0)[0]) == logged + 1
    increment(executor, "q")
    settled(executor)
    assert executor.cached_query(call) is None  # the commit touched what it read
    assert value(executor, "q") == 2
    internal = FunctionCall("teams:secret", {}, "query", Identity())
    assert executor.cached_query(internal) is None
    assert executor.run(internal).error is not None  # refused there, with its message
    mutation = FunctionCall("counters:increment", {"name": "q"}, "mutation", Identity())
    assert executor.cached_query(mutation) is None
    past = FunctionCall("counters:value", {"name": "q"}, "query", Identity(), ts=ran.ts)
    assert executor.cached_query(past) is None  # a past ts is read at that ts


def test_arguments_and_callers_are_cached_apart(executor):
    increment(executor, "x")
    settled(executor)
    ann = Identity(user={"subject": "ann", "issuer": "https://issuer.test"})
    assert value(executor, "x") == 1 and value(executor, "y") == 0
    assert value(executor, "x", ann) == 1
    assert executor.query_cache.statistics()["entries"] == 3


def test_a_past_ts_is_read_at_that_ts_not_from_a_newer_cached_result(executor):
    first = increment(executor, "p").ts
    increment(executor, "p")
    settled(executor)
    assert value(executor, "p") == 2
    assert value(executor, "p", ts=first) == 1


def test_errors_are_not_cached(executor):
    spun = executor.run(FunctionCall("counters:hog", {}, "query", Identity()))
    assert spun.error is not None
    assert executor.query_cache.statistics()["entries"] == 0


def test_a_deploy_empties_the_cache(executor, tmp_path):
    value(executor, "d")
    assert executor.query_cache.statistics()["entries"] == 1
    (tmp_path / "convex" / "extra.ts").write_text(
        'import { query } from "./_generated/server";\n'
        "export const one = query({ args: {}, handler: async () => 1 });\n"
    )
    executor.deploy(tmp_path / "convex")
    assert executor.query_cache.statistics()["entries"] == 0


def test_the_cache_stays_within_its_byte_bound(tmp_path):
    ex = _executor(tmp_path, query_cache_bytes_max=4096)
    try:
        for i in range(200):
            value(ex, f"n{i}")
        stats = ex.query_cache.statistics()
        assert 0 < stats["bytes"] <= 4096 and stats["entries"] < 200
    finally:
        ex.close()
        ex.db.close()


def test_every_answer_equals_the_truth_under_concurrent_writes(executor):
    """Writers increment random counters while readers query them: each answer, read at
    the ts the outcome names, is exactly the count committed by then."""
    names = ["c0", "c1", "c2"]
    commits: list[tuple[int, str]] = []  # (ts, name), from the writers
    answers: list[tuple[int, str, int]] = []
    lock = threading.Lock()

    def write(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(40):
            name = rng.choice(names)
            ts = increment(executor, name).ts
            with lock:
                commits.append((ts, name))

    def read(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(150):
            name = rng.choice(names)
            outcome = executor.run(FunctionCall("counters:value", {"name": name}, "query"))
            assert outcome.error is None
            with lock:
                answers.append((outcome.ts, name, outcome.value))

    threads = [threading.Thread(target=write, args=(s,)) for s in range(2)]
    threads += [threading.Thread(target=read, args=(10 + s,)) for s in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for ts, name, got in answers:
        assert got == sum(1 for c_ts, c_name in commits if c_name == name and c_ts <= ts)
    assert hits(executor) > 0


class _Watch:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_a_hit_needs_every_commit_up_to_its_ts_matched_and_the_watch_unfired():
    """The rules alone, with the matcher's two answers under the test's control."""
    processed = [10]
    watches: list[_Watch] = []

    def watch(read_set, since_ts, on_invalidated):
        watches.append(_Watch())
        return watches[-1]

    cache = QueryCache(watch, lambda: processed[0], 1 << 20)
    key = ("k",)
    cache.put(key, FunctionOutcome(value=5, ts=10, read_set=ReadSet((), ())))
    assert cache.get(key, 9) is None  # before the run: not known to be true then
    assert cache.get(key, 12) is None  # the matcher has not looked at 11 and 12 yet
    processed[0] = 12
    assert cache.get(key, 12) == FunctionOutcome(value=5, ts=12, read_set=ReadSet((), ()))
    watches[0].closed = True  # a commit touched the read set; its callback is on its way
    assert cache.get(key, 12) is None
