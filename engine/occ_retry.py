"""How a mutation that lost an OCC race is retried, with progress guaranteed.

A conflicted mutation runs again from scratch after a jittered, exponentially
growing pause, which spreads contending writers out. Backoff alone can starve
a writer on a hot document (the winners start again at once), so after
``occ_exclusive_after_conflicts`` conflicts an attempt runs *exclusively*:
the ``ContentionGate`` lets the attempts already running finish, holds new
ones back, and so that attempt cannot conflict with another gated mutation.
Both the embedded ``Database.mutate`` and the function runtime use it.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from engine.limits import Limits


@dataclass(frozen=True)
class Attempt:
    pause_s: float  # sleep this long before the attempt
    exclusive: bool  # run it alone (see ContentionGate)


def attempts(limits: Limits) -> Iterator[Attempt]:
    """The first attempt, then one per allowed retry."""
    yield Attempt(0.0, False)
    cap_ms = float(limits.occ_backoff_initial_ms)
    for retry in range(1, limits.occ_retries_max + 1):
        yield Attempt(
            random.uniform(0, cap_ms) / 1000, retry >= limits.occ_exclusive_after_conflicts
        )
        cap_ms = min(cap_ms * 2, float(limits.occ_backoff_max_ms))


class ContentionGate:
    """Lets mutation attempts run concurrently, except an exclusive one, which runs alone."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._running = 0
        self._exclusive = False
        self.exclusive_runs = 0

    @contextmanager
    def attempt(self, exclusive: bool) -> Iterator[None]:
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            if exclusive:
                self._exclusive = True
                self.exclusive_runs += 1
                while self._running:
                    self._cond.wait()
            self._running += 1
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
                if exclusive:
                    self._exclusive = False
                self._cond.notify_all()
