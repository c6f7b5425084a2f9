"""Exactly one process commits to a data folder: `headwater serve` holds it.

A real `headwater serve` runs on a loopback port; beside it, a second server is
refused, `headwater run` sends mutations and actions through the server (its
live subscribers see them, concurrent increments lose nothing), reads run
locally without tracebacks, and import/replay are refused.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from ports import free_port

ROOT = Path(__file__).resolve().parents[2]
APP = Path(__file__).resolve().parent / "fixtures" / "one_writer" / "convex"
CLIENT_ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
ENV = dict(CLIENT_ENV, PYTHONPATH=str(ROOT))


def headwater(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=ROOT,
        env=ENV,
    )


class Server:
    """`headwater serve` as a user starts it."""

    def __init__(self, data: Path, functions: Path) -> None:
        self.data = data
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--data", str(data)]
            + ["--port", str(free_port()), "--functions", str(functions)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=ENV,
            cwd=ROOT,
        )
        self.output: list[str] = []
        ready = threading.Event()

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line)
                if line.startswith("Headwater is serving"):
                    self.url = line.rsplit(" at ", 1)[1].strip()
                if line.startswith("Admin key:"):
                    self.admin_key = line.split(":", 1)[1].strip()
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(90):
            self.stop()
            pytest.fail("headwater serve did not start:\n" + "".join(self.output))

    def call(self, kind: str, path: str, args: dict) -> dict:
        request = urllib.request.Request(
            f"{self.url}/api/{kind}",
            data=json.dumps({"path": path, "args": args, "format": "json"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("one_writer")
    shutil.copytree(APP, root / "convex")
    served = Server(root / "data", root / "convex")
    yield served
    served.stop()
    assert served.process.returncode == 0, "".join(served.output)


def assert_one_clean_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_a_second_server_on_the_folder_is_refused_at_once(server, tmp_path):
    started = time.monotonic()
    second = headwater(
        "serve", "--data", str(server.data), "--port", str(free_port()), timeout_s=60
    )
    assert second.returncode == 1
    assert time.monotonic() - started < 30
    line = assert_one_clean_line(second.stderr)
    assert str(server.data) in line and str(server.process.pid) in line, line
    # The first server is untouched and still serves.
    assert server.call("query", "counters:value", {"name": "none"})["value"] == 0


SUBSCRIBER = """
import json, sys
from convex import ConvexClient
client = ConvexClient(sys.argv[1])
for value in client.subscribe("counters:value", {"name": sys.argv[2]}):
    print(json.dumps(value), flush=True)
"""


def test_run_of_a_mutation_or_action_goes_through_the_server(server):
    subscriber, values = start_subscriber(server.url, "live")
    try:
        assert values.get(timeout=60) == 0
        ran = headwater("run", "counters:increment", '{"name": "live"}', "--data", str(server.data))
        assert ran.returncode == 0, ran.stderr
        assert json.loads(ran.stdout) == 1
        assert values.get(timeout=20) == 1, "the server's subscriber never saw the run"
        twice = headwater(
            "run", "counters:incrementTwice", '{"name": "live"}', "--data", str(server.data)
        )
        assert twice.returncode == 0, twice.stderr
        assert json.loads(twice.stdout) == 3
        seen = values.get(timeout=20)
        while seen != 3:
            seen = values.get(timeout=20)
    finally:
        subscriber.kill()
        subscriber.communicate()


# A second writer that ignores the folder's lock (as another node would write the
# log): read-only opening keeps it off the server's search index files.
FOREIGN_WRITER = """
import sys
from engine import Database
db = Database.open(sys.argv[1], read_only=True)
db.committer._read_only = None
def bump(tx):
    found = tx.query("counters").with_index("by_name", lambda r: r.eq("name", sys.argv[2])).first()
    tx.patch(found["_id"], {"value": found["value"] + 1})
db.mutate(bump)
db.close()
"""


def start_subscriber(url: str, name: str) -> tuple[subprocess.Popen[str], queue.Queue[float]]:
    subscriber = subprocess.Popen(
        [sys.executable, "-c", SUBSCRIBER, url, name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=CLIENT_ENV,
    )
    values: queue.Queue[float] = queue.Queue()

    def read() -> None:
        assert subscriber.stdout is not None
        for line in subscriber.stdout:
            values.put(json.loads(line))

    threading.Thread(target=read, daemon=True).start()
    return subscriber, values


def test_a_live_query_sees_a_commit_another_process_wrote_to_the_log(server):
    assert server.call("mutation", "counters:increment", {"name": "foreign"})["value"] == 1
    subscriber, values = start_subscriber(server.url, "foreign")
    try:
        assert values.get(timeout=60) == 1
        wrote = subprocess.run(
            [sys.executable, "-c", FOREIGN_WRITER, str(server.data), "foreign"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env=ENV,
        )
        assert wrote.returncode == 0, wrote.stderr
        assert values.get(timeout=20) == 2, "the server's subscriber never saw the commit"
        # And the server's own next commit is validated and ordered after it.
        assert server.call("mutation", "counters:increment", {"name": "foreign"})["value"] == 3
        assert values.get(timeout=20) == 3
    finally:
        subscriber.kill()
        subscriber.communicate()


def test_concurrent_increments_over_http_and_run_lose_nothing(server):
    runs, posts = 10, 20  # each `headwater run` is a process start: ~1 s

    def by_http() -> None:
        for _ in range(posts):
            done = server.call("mutation", "counters:increment", {"name": "both"})
            assert done["status"] == "success", done

    def by_run(_: int) -> None:
        ran = headwater("run", "counters:increment", '{"name": "both"}', "--data", str(server.data))
        assert ran.returncode == 0, ran.stderr

    http = ThreadPoolExecutor(1).submit(by_http)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(by_run, range(runs)))
    http.result(timeout=120)
    assert server.call("query", "counters:value", {"name": "both"})["value"] == runs + posts


def test_reads_beside_the_server_work_without_a_traceback(server, tmp_path):
    # The server's search indexer holds the tantivy writer of notes.search_body.
    assert server.call("mutation", "notes:add", {"body": "red apples"})["status"] == "success"
    assert server.call("mutation", "counters:increment", {"name": "past"})["value"] == 1

    exported = headwater("export", "--data", str(server.data), "--out", str(tmp_path / "x.zip"))
    assert exported.returncode == 0 and "Traceback" not in exported.stderr, exported.stderr
    export_ts = exported.stdout.split(" at ts ")[1].split()[0]
    assert server.call("mutation", "counters:increment", {"name": "past"})["value"] == 2

    found = headwater("run", "notes:search", '{"text": "appl"}', "--data", str(server.data))
    now = headwater("run", "counters:value", '{"name": "past"}', "--data", str(server.data))
    then = headwater(
        "run", "counters:value", '{"name": "past"}', "--data", str(server.data), "--ts", export_ts
    )
    for done in (found, now, then):
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr and "LockBusy" not in done.stderr, done.stderr
    assert json.loads(found.stdout) == ["red apples"]
    assert json.loads(now.stdout) == 2 and json.loads(then.stdout) == 1


def test_a_mutation_or_action_with_ts_is_refused(server, tmp_path):
    # Beside the server, and alone on a folder of its own: the same refusal, nothing written.
    alone = tmp_path / "alone"
    shutil.copytree(APP, tmp_path / "convex")  # bundling writes _generated/ beside the code
    deployed = headwater(
        "run", "counters:value", '{"name": "ts"}', "--data", str(alone),
        "--functions", str(tmp_path / "convex"),
    )  # fmt: skip
    assert deployed.returncode == 0, deployed.stderr
    for data in (server.data, alone):
        for path in ("counters:increment", "counters:incrementTwice"):
            done = headwater("run", path, '{"name": "ts"}', "--data", str(data), "--ts", "1")
            assert done.returncode == 1
            line = assert_one_clean_line(done.stderr)
            assert "--ts" in line and "query" in line, line
        value = headwater("run", "counters:value", '{"name": "ts"}', "--data", str(data))
        assert json.loads(value.stdout) == 0


def test_import_and_replay_beside_the_server_are_refused(server, tmp_path):
    # Its own note: the module's server is shared, and another worker may run the others.
    assert server.call("mutation", "notes:add", {"body": "green pears"})["status"] == "success"
    exported = headwater("export", "--data", str(server.data), "--out", str(tmp_path / "x.zip"))
    assert exported.returncode == 0, exported.stderr
    for command in (
        ["import", str(tmp_path / "x.zip"), "--data", str(server.data), "--replace"],
        ["replay", "--data", str(server.data)],
    ):
        done = headwater(*command)
        assert done.returncode == 1, done.stdout
        line = assert_one_clean_line(done.stderr)
        assert str(server.data) in line and str(server.process.pid) in line, line
    assert server.call("query", "notes:search", {"text": "pears"})["value"] == ["green pears"]


# Holds a folder's lock as a server would, publishing a URL nothing listens on.
FAKE_HOLDER = """
import sys, time
from log.folder_lock import FolderLock
lock = FolderLock.acquire(sys.argv[1])
if sys.argv[2]:
    lock.set_url(sys.argv[2])
print("held", flush=True)
time.sleep(60)
"""


def test_a_write_beside_a_holder_that_cannot_take_it_is_refused(tmp_path):
    shutil.copytree(APP, tmp_path / "convex")
    data = tmp_path / "data"
    made = headwater(
        "run", "counters:increment", '{"name": "c"}', "--data", str(data),
        "--functions", str(tmp_path / "convex"),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    (data / "admin_key").write_text("headwater|0\n")  # as `serve` leaves it
    for url, expected in (("http://127.0.0.1:9", "did not answer"), ("", "not a server")):
        holder = subprocess.Popen(
            [sys.executable, "-c", FAKE_HOLDER, str(data), url],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=ENV,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "held\n"
            done = headwater("run", "counters:increment", '{"name": "c"}', "--data", str(data))
            assert done.returncode == 1
            line = assert_one_clean_line(done.stderr)
            assert str(data) in line and str(holder.pid) in line and expected in line, line
            # Reads still work beside it.
            read = headwater("run", "counters:value", '{"name": "c"}', "--data", str(data))
            assert read.returncode == 0 and json.loads(read.stdout) == 1, read.stderr
        finally:
            holder.kill()
            holder.communicate()


def test_run_with_functions_beside_the_server_deploys_through_it(server, tmp_path):
    functions = tmp_path / "convex"
    shutil.copytree(APP, functions)
    (functions / "extra.ts").write_text(
        'import { query } from "./_generated/server";\n'
        "export const hello = query({ args: {}, handler: async () => 'hello' });\n"
    )
    data = str(server.data)
    done = headwater("run", "extra:hello", "--data", data, "--functions", str(functions))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == "hello"
    # The server deployed it (it alone writes the folder) and serves it at once.
    assert server.call("query", "extra:hello", {}) == {"status": "success", "value": "hello"}
