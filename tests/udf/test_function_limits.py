"""What a deployed function sees of time, and the limits on what it may do, with
Convex's words: Date.now(), the return value size, writes per transaction,
user time (the host's time is not the function's) and memory."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest

from engine import Database
from engine.limits import Limits
from gateway.admin_key import generate_admin_key
from gateway.app import create_app
from gateway.auth import HeadwaterAuthenticator
from gateway.context import GatewayContext, GatewaySettings
from gateway.server import run_server_in_thread
from udf.calls import FunctionCall, Identity
from udf.executor import Executor

LIMITS_APP = Path(__file__).parent / "fixtures" / "limits" / "convex"
MIB = 1 << 20


class ManualClock:
    """The database's wall clock, moved by the test (ns since the epoch)."""

    def __init__(self) -> None:
        self.ns = time.time_ns()

    def __call__(self) -> int:
        return self.ns

    def advance(self, seconds: float) -> None:
        self.ns += int(seconds * 1e9)


def _executor(tmp_path_factory, **options) -> tuple[Executor, Database]:
    app = tmp_path_factory.mktemp("app") / "convex"
    shutil.copytree(LIMITS_APP, app)
    db = Database.open(tmp_path_factory.mktemp("data"), **options)
    executor = Executor(db, limits=options.get("limits", db.limits))
    executor.deploy(app)
    return executor, db


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def executor(tmp_path_factory, clock):
    ex, db = _executor(tmp_path_factory, clock=clock)
    yield ex
    ex.close()
    db.close()


SMALL = Limits(documents_written_max=50, written_bytes_max=4 * 1024)


@pytest.fixture(scope="module")
def bulk_executor(tmp_path_factory):
    """The real limits: 16,000 writes, 1 s of user time."""
    ex, db = _executor(tmp_path_factory)
    yield ex
    ex.close()
    db.close()


@pytest.fixture(scope="module")
def small_executor(tmp_path_factory):
    """Write limits small enough to reach quickly."""
    ex, db = _executor(tmp_path_factory, limits=SMALL)
    yield ex
    ex.close()
    db.close()


def run(ex: Executor, path: str, args: dict | None = None):
    return ex.run(FunctionCall(path, args or {}, None, Identity()))


def ok(outcome):
    assert outcome.error is None, outcome.error
    return outcome.value


def failed(outcome) -> str:
    """The error's message, without the stack lines under it."""
    assert outcome.error is not None, outcome.value
    return outcome.error.message.splitlines()[0]


# -- Date.now() -------------------------------------------------------------------


def test_a_mutation_long_after_the_last_commit_sees_the_time_it_started(executor, clock):
    commit_ms = ok(run(executor, "clock:stamp"))
    clock.advance(12.5)  # a quiet app: no commit for 12.5 s
    seen = ok(run(executor, "clock:nowInMutation"))
    now_ms = clock.ns // 1_000_000
    assert seen["first"] == seen["again"] == seen["date"] == now_ms
    assert seen["first"] - commit_ms >= 12_500
    assert seen["snapshotTs"] // 1_000_000 < now_ms - 12_000  # it read the old snapshot
    # `createdAt: Date.now()` as apps write it.
    clock.advance(3)
    assert ok(run(executor, "clock:stamp")) == clock.ns // 1_000_000


def test_a_query_sees_the_time_it_started_too(executor, clock):
    ok(run(executor, "clock:stamp"))
    clock.advance(7)
    seen = ok(run(executor, "clock:nowInQuery"))
    assert seen["first"] == seen["again"] == seen["date"] == clock.ns // 1_000_000
    assert seen["called"].startswith(time.strftime("%a %b %d %Y", time.gmtime(clock.ns / 1e9)))


def test_date_now_is_never_before_the_snapshot_it_reads(executor, clock):
    ok(run(executor, "clock:stamp"))
    clock.advance(-5)  # the clock steps back behind the newest commit
    seen = ok(run(executor, "clock:nowInMutation"))
    assert seen["first"] == seen["again"] == seen["snapshotTs"] // 1_000_000
    clock.advance(5)


# -- return value -------------------------------------------------------------------


def test_a_return_value_at_the_limit_is_returned_and_one_byte_more_is_refused(executor):
    assert len(ok(run(executor, "bulk:bigReturn", {"bytes": float(16 * MIB)}))) == 16 * MIB - 2
    assert failed(run(executor, "bulk:bigReturn", {"bytes": float(17 * MIB)})) == (
        "Function bulk.js:bigReturn return value is too large (actual: 17 MiB, limit: 16 MiB)"
    )
    assert failed(run(executor, "bulk:bigReturn", {"bytes": float(16 * MIB + 1)})).startswith(
        "Function bulk.js:bigReturn return value is too large"
    )


def test_results_on_either_side_of_the_inline_size_come_back_whole(executor):
    # Up to 64 Ki characters a result rides in the runtime's last reply; past it the
    # host takes it in a second evaluation. Either way the caller sees all of it.
    for size in (2, 65_535, 65_536, 65_537, 300_000):
        assert ok(run(executor, "bulk:bigReturn", {"bytes": float(size)})) == "x" * (size - 2)


def test_a_mutation_returning_too_much_writes_nothing(executor):
    before = ok(run(executor, "bulk:count"))
    message = failed(run(executor, "bulk:insertThenBigReturn", {"bytes": float(17 * MIB)}))
    assert "return value is too large" in message
    assert ok(run(executor, "bulk:count")) == before


def test_over_http_a_too_large_return_value_is_a_200_with_status_error(executor):
    key = generate_admin_key("headwater")
    context = GatewayContext(executor, HeadwaterAuthenticator(key, None), GatewaySettings())
    url, stop = run_server_in_thread(create_app(context))
    try:
        with httpx.Client(base_url=url, trust_env=False, timeout=60) as client:
            body = {"path": "bulk:bigReturn", "args": {"bytes": 17 * MIB}, "format": "json"}
            response = client.post("/api/query", json=body)
    finally:
        stop()
    assert response.status_code == 200
    answer = response.json()
    assert answer["status"] == "error"
    assert answer["errorMessage"].endswith(
        " Server Error\n"
        "Function bulk.js:bigReturn return value is too large (actual: 17 MiB, limit: 16 MiB)\n"
    )


# -- writes per transaction -----------------------------------------------------------


def test_16000_awaited_inserts_commit_and_the_16001st_is_refused(bulk_executor):
    """The documented write limit is reachable with one awaited insert after
    another, well within the default second of user time: the runtime buffers
    inserts (no round trip each), and the host's time running them is not user time."""
    ex = bulk_executor
    before = ok(run(ex, "bulk:count"))
    started = time.perf_counter()
    message = ok(run(ex, "bulk:insertOneTooMany", {"n": 16_000.0}))
    elapsed_s = time.perf_counter() - started
    assert message == "Too many writes in a single function execution (limit: 16000)"
    assert ok(run(ex, "bulk:count")) == before + 16_000
    # The same inserts through the embedded engine, in the same run: a round trip
    # per insert made the function ~7x slower than this, buffering ~1.1-1.4x.
    started = time.perf_counter()
    ex.db.mutate(lambda tx: [tx.insert("stamps", {"at": float(i)}) for i in range(16_000)])
    embedded_s = time.perf_counter() - started
    print(f"16,000 awaited inserts: {elapsed_s:.2f} s (embedded {embedded_s:.2f} s)")
    assert elapsed_s < 3 * embedded_s + 0.5


def test_one_write_past_the_limit_fails_the_mutation_and_writes_nothing(small_executor):
    ex = small_executor
    before = ok(run(ex, "bulk:count"))
    assert ok(run(ex, "bulk:insertMany", {"n": 50.0})) == 50
    assert ok(run(ex, "bulk:count")) == before + 50
    assert failed(run(ex, "bulk:insertMany", {"n": 51.0})) == (
        "Uncaught Error: Too many writes in a single function execution (limit: 50)"
    )
    assert ok(run(ex, "bulk:count")) == before + 50


def test_every_write_counts_even_to_the_same_document(small_executor):
    ex = small_executor
    before = ok(run(ex, "bulk:count"))
    assert ok(run(ex, "bulk:patchMany", {"n": 50.0})) == 50
    assert "Too many writes" in failed(run(ex, "bulk:patchMany", {"n": 51.0}))
    assert ok(run(ex, "bulk:count")) == before + 1


def test_bytes_written_past_the_limit_fail_with_the_limit_in_binary_units(small_executor):
    message = failed(run(small_executor, "bulk:insertBig", {"n": 5.0, "bytes": 1000.0}))
    assert message == (
        "Uncaught Error: Too many bytes written in a single function execution (limit: 4 KiB)"
    )


# -- memory -----------------------------------------------------------------------------


def test_running_out_of_memory_after_a_write_says_so_and_writes_nothing(executor):
    before = ok(run(executor, "bulk:count"))
    assert failed(run(executor, "bulk:hogAfterWrite")) == (
        "JavaScript execution ran out of memory (maximum memory usage: 64 MB)"
    )
    assert ok(run(executor, "bulk:count")) == before
    assert ok(run(executor, "bulk:insertMany", {"n": 1.0})) == 1


# -- inserts buffered in the runtime ----------------------------------------------------


def test_the_transaction_reads_its_own_buffered_inserts(bulk_executor):
    answer = ok(run(bulk_executor, "bulk:insertThenRead", {"tag": "own", "n": 300.0}))
    assert answer["last"] == 299
    assert answer["byTag"] == [float(i) for i in range(300)]
    assert answer["distinct"] == 300
    assert answer["count"] >= 300


def test_a_bad_insert_among_buffered_ones_fails_with_todays_words_and_writes_nothing(
    bulk_executor,
):
    ex = bulk_executor
    before = ok(run(ex, "bulk:count"))
    # The first insert of a call is always a round trip: its error is today's.
    first = failed(run(ex, "bulk:insertBadAt", {"n": 1.0, "bad": 0.0, "catchIt": False}))
    assert first.startswith(
        'Uncaught Error: Failed to insert or update a document in table "rows" '
        "because it does not match the schema"
    )
    middle = run(ex, "bulk:insertBadAt", {"n": 500.0, "bad": 400.0, "catchIt": False})
    assert failed(middle) == first
    assert ok(run(ex, "bulk:count")) == before
    # Caught, it is the user's: the inserts before it commit, as they always did.
    caught = ok(run(ex, "bulk:insertBadAt", {"n": 500.0, "bad": 400.0, "catchIt": True}))
    assert "Uncaught Error: " + caught.splitlines()[0] == first
    assert ok(run(ex, "bulk:count")) == before + 400


def test_a_conflict_retry_runs_again_with_fresh_ids(bulk_executor, monkeypatch):
    ex = bulk_executor
    db = ex.db
    original = db.commit
    conflicts = []

    def commit_after_a_rival(tx):
        if not conflicts:
            # A rival commit touches the counter the mutation read: a conflict.
            conflicts.append(None)
            conflicts[0] = ok(run(ex, "bulk:insertAndIncrement", {"n": 0.0}))
        return original(tx)

    monkeypatch.setattr(db, "commit", commit_after_a_rival)
    ids = ok(run(ex, "bulk:insertAndIncrement", {"n": 200.0}))
    monkeypatch.undo()
    assert conflicts == [[]]
    answer = ok(run(ex, "bulk:insertThenRead", {"tag": "retry", "n": 1.0}))
    assert answer["byTag"].count(199.0) == 1  # the first attempt left nothing
    assert len(answer["byTag"]) == 201
    assert len(set(ids)) == 200
    assert all(ok(run(ex, "bulk:exists", {"id": i})) for i in ids[::50])
