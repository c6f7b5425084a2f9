"""Benchmark: restarting ``headwater serve`` on a data folder of a few thousand documents.

Our figure: spawn to the first ``/version`` answer of a restart with an
unchanged functions folder (3,000 documents), and SIGTERM to exit with an
idle sync client attached. Baselines in the same run: the bare process (an
empty folder, no functions: interpreter, imports, hypercorn), and a restart
that bundles the functions folder again (the stamp removed), as every
restart did before. Best of ``RUNS``. Run: ``python -m bench.bench_restart``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from websockets.sync.client import connect

from bench.common import print_table
from engine import Database
from gateway.functions_stamp import STAMP_FILE

ROOT = Path(__file__).resolve().parents[1]
CHAT_APP = ROOT / "examples" / "chat" / "convex"
DOCUMENTS = 3000
RUNS = 3
READY_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 30.0


def _start(data: Path, functions: Path | None) -> tuple[subprocess.Popen[bytes], str, float]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "gateway.cli", "serve", "--data", str(data)]
    command += ["--port", str(port)]
    if functions is not None:
        command += ["--functions", str(functions)]
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    url = f"http://127.0.0.1:{port}"
    with httpx.Client() as client:
        while time.monotonic() - started < READY_TIMEOUT_S:
            try:
                if client.get(url + "/version", timeout=1).status_code == 200:
                    return process, url, time.monotonic() - started
            except httpx.HTTPError:
                time.sleep(0.01)
    process.kill()
    process.wait()
    raise RuntimeError("the server did not start")


def _stop_with_idle_client(process: subprocess.Popen[bytes], url: str) -> float:
    with connect(url.replace("http://", "ws://") + "/api/sync") as ws:
        connect_message = {
            "type": "Connect",
            "sessionId": "00000000-0000-4000-8000-00000000b001",
            "connectionCount": 0,
            "lastCloseReason": None,
            "maxObservedTimestamp": None,
        }
        ws.send(json.dumps(connect_message))
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(EXIT_TIMEOUT_S)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        return time.monotonic() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        functions = Path(tmp) / "convex"
        shutil.copytree(CHAT_APP, functions, ignore=shutil.ignore_patterns("_generated"))
        data = Path(tmp) / "data"
        process, url, _ = _start(data, functions)
        _stop_with_idle_client(process, url)
        with Database.open(data) as db:
            for start in range(0, DOCUMENTS, 500):
                names = [f"user{i}" for i in range(start, start + 500)]
                db.mutate(lambda tx, names=names: [tx.insert("users", {"name": n}) for n in names])
        bare, restart, rebundle, exits = [], [], [], []
        for run in range(RUNS):
            process, url, ready_s = _start(Path(tmp) / f"empty{run}", None)
            bare.append(ready_s)
            _stop_with_idle_client(process, url)
            process, url, ready_s = _start(data, functions)
            restart.append(ready_s)
            exits.append(_stop_with_idle_client(process, url))
            (data / STAMP_FILE).unlink()
            process, url, ready_s = _start(data, functions)
            rebundle.append(ready_s)
            _stop_with_idle_client(process, url)
    rows = [
        ("restart, unchanged functions (ours)", min(restart), min(restart) / min(bare)),
        ("baseline: bare process, empty folder", min(bare), 1.0),
        ("baseline: restart that re-bundles", min(rebundle), min(rebundle) / min(bare)),
        ("SIGTERM to exit, idle sync client", min(exits), "-"),
    ]
    print_table(
        f"Restart on {DOCUMENTS:,} documents (best of {RUNS})",
        ("what", "seconds", "x bare"),
        rows,
    )


if __name__ == "__main__":
    main()
