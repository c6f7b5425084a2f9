"""Snapshot ZIPs written by hand in tests: entry name → text."""

from __future__ import annotations

import io
import zipfile


def zip_of(entries: dict[str, str]) -> io.BytesIO:
    """An in-memory ZIP holding ``entries``, positioned at its start."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, text in entries.items():
            zf.writestr(name, text)
    out.seek(0)
    return out
