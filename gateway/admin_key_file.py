"""Where a data folder keeps its admin key: ``DIR/admin_key``, one line.

``headwater serve`` writes it on first start; the CLI commands that talk to the
server holding a folder (``run``, ``env``) read it from here. A leaf, so the
CLI can name it without importing the server.
"""

from __future__ import annotations

import os

ADMIN_KEY_FILE = "admin_key"


def admin_key_path(data: str | os.PathLike[str]) -> str:
    return os.path.join(os.fspath(data), ADMIN_KEY_FILE)


def read_stored_admin_key(data: str | os.PathLike[str]) -> str:
    """The stored key; raises ``OSError`` when there is none to read."""
    with open(admin_key_path(data), encoding="utf-8") as f:
        return f.read().strip()
