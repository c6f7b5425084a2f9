"""The `headwater` command as a user runs it: the installed entry point, in its own process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from ports import free_port

ROOT = Path(__file__).resolve().parents[2]
CHAT_APP = ROOT / "examples" / "chat" / "convex"
_ENTRY_POINT = Path(sys.executable).parent / "headwater"
ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
CONVEX_CLI = ROOT / "js" / "node_modules" / ".bin" / "convex"
CLOSED_PORT_URL = "http://127.0.0.1:9"


def convex_cli_env(url: str, admin_key: str) -> dict[str, str]:
    """The official CLI's environment: this server only, nothing sent elsewhere (Sentry off,
    version and provisioning hosts on a closed loopback port)."""
    return dict(
        ENV,
        CONVEX_SELF_HOSTED_URL=url,
        CONVEX_SELF_HOSTED_ADMIN_KEY=admin_key,
        CONVEX_TELEMETRY_DISABLED="1",
        CI="1",
        CONVEX_VERSION_API_ORIGIN=CLOSED_PORT_URL,
        CONVEX_PROVISION_HOST=CLOSED_PORT_URL,
    )


def headwater_command() -> list[str]:
    """The console script `pip install` made, else the module it runs."""
    if _ENTRY_POINT.exists():
        return [str(_ENTRY_POINT)]
    return [sys.executable, "-m", "gateway.cli"]


def headwater(
    *args: str, cwd: Path = ROOT, timeout_s: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*headwater_command(), *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=cwd,
        env=dict(ENV, PYTHONPATH=str(ROOT)),
        stdin=subprocess.DEVNULL,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> str:
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


class Serve:
    """`headwater serve` on a free loopback port; stopped by its pid on exit."""

    def __init__(
        self,
        data: Path,
        *extra: str,
        startup_timeout_s: float = 90,
        stderr: Any = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [*headwater_command(), "serve", "--data", str(data), "--port", str(self.port), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL if stderr is None else stderr,
            text=True,
            env=dict(ENV, PYTHONPATH=str(ROOT), **(env or {})),
            cwd=ROOT,
        )
        self.output: list[str] = []
        self.admin_key = ""
        self.site_url = ""  # where HTTP actions are served (the site port)
        ready = threading.Event()

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line)
                if line.startswith(("Try:", "Deploy functions:")):
                    ready.set()
                if line.startswith("Admin key:"):
                    self.admin_key = line.split(":", 1)[1].strip()
                if line.startswith("HTTP actions "):
                    self.site_url = line.rsplit(" ", 1)[1].strip()

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        if not ready.wait(startup_timeout_s):
            self.stop()
            raise RuntimeError("headwater serve did not start:\n" + "".join(self.output))

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._reader.join(10)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> Serve:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
