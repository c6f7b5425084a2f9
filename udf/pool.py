"""A fixed set of isolates with the same modules, for calls from many threads.

An ``Isolate`` runs one call at a time. The pool hands each call a free
isolate (blocking while all are busy) so calls run in parallel up to its
size; isolates are created lazily, so an idle deployment costs one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from udf.bundler import BundledModule
from udf.isolate import DEFAULT_HEAP_BYTES_MAX, Isolate, runnable_modules
from udf.module_compiler import RunnableModule
from udf.outcome import Analysis, CallOutcome


class IsolatePool:
    def __init__(
        self,
        modules: Iterable[RunnableModule | BundledModule],
        *,
        size: int = 2,
        heap_bytes_max: int = DEFAULT_HEAP_BYTES_MAX,
    ):
        if size < 1:
            raise ValueError(f"an isolate pool needs at least one isolate, not {size}")
        self._modules = runnable_modules(modules)
        self._size = size
        self._heap_bytes_max = heap_bytes_max
        self._closed = False
        self._cond = threading.Condition()
        self._free: list[Isolate] = [self._make()]
        self._created = 1

    def _make(self) -> Isolate:
        return Isolate(self._modules, heap_bytes_max=self._heap_bytes_max)

    @contextmanager
    def isolate(self) -> Iterator[Isolate]:
        """A free isolate for the duration of the ``with`` block."""
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("the isolate pool is closed")
                if self._free:
                    found: Isolate | None = self._free.pop()
                    break
                if self._created < self._size:
                    found = None  # room for one more: create it outside the lock
                    self._created += 1
                    break
                self._cond.wait()
        if found is None:
            try:
                found = self._make()
            except BaseException:
                with self._cond:
                    self._created -= 1
                    self._cond.notify()
                raise
        isolate = found
        try:
            yield isolate
        finally:
            with self._cond:
                if self._closed:
                    isolate.close()
                else:
                    self._free.append(isolate)
                self._cond.notify()

    def run(self, *args: Any, **kwargs: Any) -> CallOutcome:
        """``Isolate.run`` on a free isolate."""
        with self.isolate() as isolate:
            return isolate.run(*args, **kwargs)

    def analyze(self, **kwargs: Any) -> Analysis:
        with self.isolate() as isolate:
            return isolate.analyze(**kwargs)

    def statistics(self) -> dict[str, int]:
        with self._cond:
            return {"size": self._size, "created": self._created, "free": len(self._free)}

    def close(self) -> None:
        with self._cond:
            self._closed = True
            free, self._free = self._free, []
            self._cond.notify_all()
        for isolate in free:
            isolate.close()
