"""One Node.js worker process (``js/node_worker.mjs``) and the host side of its protocol.

The protocol runs on a socket pair, not on stdout: the worker gets its end as
an inherited fd; its stdout goes to /dev/null (user code may print anything
there) and the last lines of its stderr are kept to explain a crash. A frame
is a 4-byte big-endian length and that many bytes of JSON (the message types
are listed in ``js/node_worker.mjs``).

``request`` sends one message and reads frames until its answer, handing the
call's syscalls to a callback meanwhile. It raises ``WorkerFailed`` when the
worker cannot answer any more: it exited (crash, ``process.exit``, out of
memory), the deadline passed, its memory passed the bound, or it wrote
something that is not a frame. The worker is then killed: the caller
discards it and starts another.

Memory: ``--max-old-space-size`` bounds the JavaScript heap (V8 aborts the
process past it); the resident size, which also counts Buffers and native
memory, is checked while a call runs (``/proc``, Linux) against the same bound
plus headroom for Node itself.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from udf.node import JS_DIR, node_executable

WORKER_SCRIPT = JS_DIR / "node_worker.mjs"
_HEADER = struct.Struct(">I")
_RECV_BYTES = 1 << 16
_POLL_S = 0.05
_STDERR_LINES_KEPT = 40
# What Node itself needs besides the user's heap (code, the runtime, buffers in flight).
NODE_BASELINE_BYTES = 128 << 20
_OUT_OF_MEMORY_MARKERS = ("heap out of memory", "Reached heap limit", "Allocation failed")
OUT_OF_MEMORY = "OutOfMemory"
TIMED_OUT = "TimedOut"
EXITED = "Exited"
PROTOCOL = "ProtocolError"


class WorkerFailed(Exception):
    """The worker cannot finish the request; ``kind`` is one of the constants above."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


class NodeWorker:
    """A started worker for one deployment folder. One request at a time."""

    def __init__(
        self,
        deployment_dir: str | os.PathLike[str],
        *,
        memory_bytes_max: int,
        frame_bytes_max: int,
        start_timeout_s: float = 30.0,
    ) -> None:
        self.memory_bytes_max = memory_bytes_max
        self._frame_bytes_max = frame_bytes_max
        self._send_lock = threading.Lock()
        self._inbox = bytearray()
        self._stderr: deque[str] = deque(maxlen=_STDERR_LINES_KEPT)
        self.calls = 0
        self.heap_used_bytes = 0
        ours, theirs = socket.socketpair()
        heap_mb = max(16, memory_bytes_max >> 20)
        try:
            self._process = subprocess.Popen(
                [
                    node_executable(),
                    f"--max-old-space-size={heap_mb}",
                    str(WORKER_SCRIPT),
                    str(deployment_dir),
                    str(theirs.fileno()),
                ],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,  # a terminal's Ctrl-C reaches the server, not the pool
            )
        finally:
            theirs.close()
        self._sock = ours
        threading.Thread(target=self._drain_stderr, daemon=True, name="node-stderr").start()
        try:
            ready = self._read_frame(time.monotonic() + start_timeout_s)
        except WorkerFailed:
            self.kill()
            raise
        if ready.get("type") != "ready":
            self.kill()
            raise WorkerFailed(PROTOCOL, "The Node.js worker did not start properly.")

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def _drain_stderr(self) -> None:
        stream = self._process.stderr
        assert stream is not None
        for raw in stream:
            self._stderr.append(raw.decode("utf-8", "replace").rstrip())
        stream.close()

    # -- frames ---------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        """Send one frame; a worker that is gone ignores it (its request fails on its own)."""
        body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
        with self._send_lock:
            try:
                self._sock.sendall(_HEADER.pack(len(body)) + body)
            except OSError:
                pass

    def _read_frame(self, deadline: float) -> dict[str, Any]:
        while True:
            frame = self._take_frame()
            if frame is not None:
                return frame
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerFailed(TIMED_OUT, "deadline passed")
            self._check_memory()
            self._sock.settimeout(min(_POLL_S, left))
            try:
                chunk = self._sock.recv(_RECV_BYTES)
            except TimeoutError:
                continue
            except OSError as exc:
                raise self._exited() from exc
            if not chunk:
                raise self._exited()
            self._inbox += chunk

    def _take_frame(self) -> dict[str, Any] | None:
        if len(self._inbox) < _HEADER.size:
            return None
        (size,) = _HEADER.unpack_from(self._inbox)
        if size > self._frame_bytes_max:
            raise WorkerFailed(PROTOCOL, f"a frame of {size} bytes")
        if len(self._inbox) < _HEADER.size + size:
            return None
        body = bytes(self._inbox[_HEADER.size : _HEADER.size + size])
        del self._inbox[: _HEADER.size + size]
        try:
            frame = json.loads(body)
        except ValueError:
            raise WorkerFailed(PROTOCOL, "a frame that is not JSON") from None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            raise WorkerFailed(PROTOCOL, "a frame without a type")
        return frame

    def _check_memory(self) -> None:
        rss = _resident_bytes(self._process.pid)
        if rss is not None and rss > self.memory_bytes_max + NODE_BASELINE_BYTES:
            raise WorkerFailed(OUT_OF_MEMORY, f"resident size {rss >> 20} MiB")

    def _exited(self) -> WorkerFailed:
        try:
            code = self._process.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            code = None
        time.sleep(0.05)  # the stderr thread reads the last lines
        tail = "\n".join(self._stderr)
        if any(marker in tail for marker in _OUT_OF_MEMORY_MARKERS):
            return WorkerFailed(OUT_OF_MEMORY, "heap limit")
        if code is None:
            return WorkerFailed(EXITED, "closed its protocol socket")
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        return WorkerFailed(EXITED, how)

    # -- requests -------------------------------------------------------------------

    def request(
        self,
        message: dict[str, Any],
        on_syscall: Callable[[dict[str, Any]], None],
        timeout_s: float,
    ) -> dict[str, Any]:
        """Send ``message`` (with an ``id``) and return its ``done`` frame.

        ``on_syscall`` gets each syscall frame of the call (it answers later with
        ``send``). Raises WorkerFailed; the worker is killed before it does."""
        deadline = time.monotonic() + timeout_s
        self.calls += 1
        self.send(message)
        try:
            while True:
                frame = self._read_frame(deadline)
                kind = frame["type"]
                if kind == "syscall":
                    on_syscall(frame)
                elif kind == "done" and frame.get("id") == message["id"]:
                    self.heap_used_bytes = int(frame.get("heapUsedBytes") or 0)
                    return frame
                elif kind != "done":  # a late answer of an earlier call is dropped
                    raise WorkerFailed(PROTOCOL, f"an unexpected {kind!r} frame")
        except WorkerFailed:
            self.kill()
            raise

    def kill(self) -> None:
        """Stop the process now (SIGKILL) and release its socket."""
        if self._process.poll() is None:
            try:
                os.killpg(self._process.pid, signal.SIGKILL)
            except OSError:
                self._process.kill()
        try:
            self._process.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            pass
        self._sock.close()


def _resident_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
