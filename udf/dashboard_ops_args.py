"""Argument checks shared by the dashboard's ops functions, so every bad input gets the
same kind of clear error (code ``BadArgs``) before anything is read or written."""

from __future__ import annotations

import math
from typing import Any

from engine.errors import HeadwaterError

# Every dashboard query may carry ``atTs`` (read by the dispatch, not by the handler).
_ALWAYS_ALLOWED = frozenset({"atTs"})


def bad_args(message: str) -> HeadwaterError:
    return HeadwaterError(message, code="BadArgs")


def check_keys(args: dict[str, Any], allowed: tuple[str, ...], function: str) -> None:
    """Refuse an argument the function does not take (a typo would otherwise be ignored)."""
    for key in args:
        if key not in allowed and key not in _ALWAYS_ALLOWED:
            expected = ", ".join(f"`{k}`" for k in allowed) or "no arguments"
            raise bad_args(f"{function} got an unexpected argument `{key}` (it takes {expected}).")


def string_arg(args: dict[str, Any], name: str, function: str) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value:
        raise bad_args(f"{function} needs `{name}`, a non-empty string; got {value!r}.")
    return value


def limit_arg(args: dict[str, Any], name: str, default: int, highest: int, function: str) -> int:
    value = args.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise bad_args(f"{function}: `{name}` must be a whole number, got {value!r}.")
    if value != int(value):
        raise bad_args(f"{function}: `{name}` must be a whole number, got {value!r}.")
    if not 1 <= value <= highest:
        raise bad_args(f"{function}: `{name}` must be between 1 and {highest}, got {int(value)}.")
    return int(value)


def wall_ms(ts: int) -> float:
    """A commit ts (ns since the epoch) as the milliseconds a browser's Date takes."""
    return ts / 1_000_000
