"""Waiting in tests for something that happens in the background, bounded in time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout_s: float = 10.0, pause_s: float = 0.02) -> T:
    """The first truthy answer of ``predicate``, asked until ``timeout_s`` has passed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(pause_s)
    raise AssertionError("timed out")
