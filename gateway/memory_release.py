"""Giving memory back to the OS after big requests (glibc's allocator keeps it otherwise).

A 15 MB request body is decoded, copied into V8 and parsed; when it is freed,
glibc keeps the pages in the process's heap, and raises its mmap threshold to
the biggest block freed so that later big blocks fragment the heap too. After
a burst of malformed big bodies the server stayed at several times its start
RSS for good. Two remedies, both process-wide and glibc-only (elsewhere they do
nothing):

- ``tune_allocator`` (once, at ``headwater serve`` start): a fixed mmap
  threshold, so big blocks are their own mappings and go back on free, and
  fewer arenas, so worker threads do not each keep a fragmented heap.
- ``MemoryReleaser``: ``request_release`` after a big body or message; its
  thread waits for a quiet moment, runs a full garbage collection and calls
  ``malloc_trim(0)``, which returns every free page of every arena (tens of
  ms; at most once per settle period). The collection matters: a failed call
  leaves reference cycles (exception, traceback, frames) holding its request's
  buffers, and ``headwater serve`` raises the young-generation threshold, so
  without it each 15 MB refusal kept ~30 MB until some later collection.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import threading
from typing import Any

from engine.limits import LIMITS

_M_MMAP_THRESHOLD = -3  # mallopt parameter numbers from glibc's malloc.h
_M_ARENA_MAX = -8
SETTLE_S = 0.2  # after the last big request, before trimming

logger = logging.getLogger("headwater.server")


def _glibc() -> Any | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt  # noqa: B018 - present only in glibc
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _glibc()


def tune_allocator() -> bool:
    """Fix the mmap threshold and cap the arenas (limits.py); False when not glibc."""
    if _LIBC is None:
        return False
    _LIBC.mallopt(_M_MMAP_THRESHOLD, LIMITS.malloc_mmap_threshold_bytes)
    _LIBC.mallopt(_M_ARENA_MAX, LIMITS.malloc_arenas_max)
    return True


def release_free_memory() -> None:
    """Return the free pages of every glibc arena to the OS (no-op elsewhere)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


class MemoryReleaser:
    """A thread that trims the heap once the server is quiet after a big request."""

    def __init__(self, settle_s: float = SETTLE_S) -> None:
        self.settle_s = settle_s
        self.releases = 0
        self._wanted = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(
            target=self._run, name="headwater-memory-release", daemon=True
        )
        self._thread.start()

    def request_release(self) -> None:
        self._wanted.set()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            if self._stopped:
                return
            # Quiet: no new big request for settle_s (each one restarts the wait).
            while True:
                self._wanted.clear()
                if self._wanted.wait(self.settle_s) is False or self._stopped:
                    break
            if self._stopped:
                return
            gc.collect()
            release_free_memory()
            self.releases += 1

    def close(self, timeout_s: float = 1.0) -> None:
        self._stopped = True
        self._wanted.set()
        self._thread.join(timeout_s)


class BigRequestMiddleware:
    """Counts the bytes each HTTP body or WebSocket message brings and asks ``releaser``
    for a trim once a request (or message) of ``bytes_min`` or more is done with."""

    def __init__(self, app: Any, releaser: MemoryReleaser, bytes_min: int) -> None:
        self.app = app
        self.releaser = releaser
        self.bytes_min = bytes_min

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        received = 0

        async def receive_counted() -> dict:
            nonlocal received
            message = await receive()
            kind = message["type"]
            if kind == "http.request":
                received += len(message.get("body", b""))
            elif kind == "websocket.receive":
                size = len(message.get("bytes") or b"") + len(message.get("text") or "")
                if size >= self.bytes_min:
                    self.releaser.request_release()
            return message

        try:
            await self.app(scope, receive_counted, send)
        finally:
            if received >= self.bytes_min:
                self.releaser.request_release()
