"""V8 started by the executor on the main thread: worker threads may then make
isolates one after another while the earlier ones live (a server restarting with
several live queries) without crashing the process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import sys, threading
from engine import Database
from udf.executor import Executor
from udf.v8_context import V8Context

db = Database.open(sys.argv[1])
executor = Executor(db)
contexts = []
for _ in range(3):
    thread = threading.Thread(target=lambda: contexts.append(V8Context()))
    thread.start()
    thread.join()
print(len(contexts), flush=True)
for context in contexts:
    context.close()
executor.close()
db.close()
"""


def test_isolates_made_by_worker_threads_after_the_executor_starts(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "3"
