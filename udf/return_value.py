"""The size limit on what a function returns, refused in Convex's words.

A value is measured as stored values are (``engine.values.value_size``); one
past the limit fails the call — a mutation then commits nothing — with
``Function <module>.js:<export> return value is too large (actual: 17 MiB,
limit: 16 MiB)``.
"""

from __future__ import annotations

from typing import Any

from engine.values import value_size

_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def binary_size(n: int) -> str:
    """``n`` bytes in the largest binary unit, two decimals at most, trailing zeros
    dropped: ``512 B``, ``1.5 KiB``, ``17 MiB`` (how Convex prints these sizes)."""
    size = float(n)
    unit = 0
    while size >= 1024 and unit < len(_BINARY_UNITS) - 1:
        size /= 1024
        unit += 1
    if unit == 0:
        return f"{n} B"
    text = f"{size:.2f}".rstrip("0").rstrip(".")
    return f"{text} {_BINARY_UNITS[unit]}"


def return_value_problem(module: str, export: str, value: Any, limit_bytes: int) -> str | None:
    """The error message when ``value`` is too large to return, else None."""
    size = value_size(value)
    if size <= limit_bytes:
        return None
    return (
        f"Function {module}:{export} return value is too large "
        f"(actual: {binary_size(size)}, limit: {binary_size(limit_bytes)})"
    )
