"""The server under load: ``headwater serve`` started as a child process, or one already running.

The child gets a fresh data folder, free loopback ports, no dashboard and no function log
(printing a line per call would measure the terminal). It is stopped by its own pid —
SIGTERM, then SIGKILL after a bounded wait — also on Ctrl-C or an error in the run.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

APP = Path(__file__).parent / "app" / "convex"
START_TIMEOUT_S = 90.0  # bundling the app and opening LMDB; generous for a busy machine
STOP_TIMEOUT_S = 20.0  # the server drains in-flight requests on SIGTERM
DEPLOY_TIMEOUT_S = 120.0
_READY_PREFIXES = ("Try:", "Deploy functions:")


class ServerError(Exception):
    """The server did not start, or the load app could not be deployed to it."""


def headwater_command() -> list[str]:
    """The console script next to this interpreter, else the module it runs."""
    script = Path(sys.executable).parent / "headwater"
    return [str(script)] if script.exists() else [sys.executable, "-m", "gateway.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalServer:
    """``headwater serve`` with the load app, in a temporary data folder of its own."""

    def __init__(self) -> None:
        self.admin_key = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._data = Path(tempfile.mkdtemp(prefix="headwater-load-"))
        self._output: list[str] = []
        self._ready = threading.Event()
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        command = [
            *headwater_command(), "serve",
            "--data", str(self._data / "data"),
            "--port", str(self.port),
            "--site-port", "0",
            "--dashboard-port", "0",
            "--functions", str(APP),
            "--admin-key", self.admin_key,
            "--log-format", "none",
        ]  # fmt: skip
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=_loopback_env(),
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_ready(START_TIMEOUT_S)

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            if len(self._output) < 200:  # enough to explain a failed start
                self._output.append(line)
            if line.startswith(_READY_PREFIXES):
                self._ready.set()

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        assert self._process is not None
        while not self._ready.wait(0.1):
            if self._process.poll() is not None or time.monotonic() > deadline:
                tail = "".join(self._output[-5:]).strip().replace("\n", " | ")
                raise ServerError(f"headwater serve did not start: {tail or 'no output'}")

    def stop(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(STOP_TIMEOUT_S)
        if self._reader is not None:
            self._reader.join(STOP_TIMEOUT_S)
        if process is not None and process.stdout is not None:
            process.stdout.close()
        shutil.rmtree(self._data, ignore_errors=True)

    def __enter__(self) -> LocalServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def deploy_app(url: str, admin_key: str) -> None:
    """Push the load app to a server that is already running (``--url``)."""
    done = subprocess.run(
        [*headwater_command(), "deploy", str(APP), "--url", url, "--admin-key", admin_key],
        capture_output=True,
        text=True,
        timeout=DEPLOY_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
        env=_loopback_env(),
    )
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise ServerError(f"could not deploy the load app: {lines[-1] if lines else 'no output'}")


def _loopback_env() -> dict[str, str]:
    # A proxy variable would send loopback traffic elsewhere; the run talks to 127.0.0.1 only.
    return {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
