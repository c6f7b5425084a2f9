"""Fixtures of the sync endpoint tests: ``start`` (a server with settings),
``server`` (one with the defaults) and ``clients`` (closed at the end)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import pytest
from schemas import CHAT_SCHEMA

sys.path.insert(0, str(Path(__file__).parent))  # the gateway test helpers live beside this file
from sync_harness import Server  # noqa: E402


@pytest.fixture
def start(tmp_path):
    servers: list[Server] = []

    def start_server(**settings) -> Server:
        server = Server(tmp_path / f"data{len(servers)}", **settings)
        server.db.set_schema(CHAT_SCHEMA)
        servers.append(server)
        return server

    yield start_server
    for server in servers:
        server.stop()


@pytest.fixture
def server(start):
    return start()


@pytest.fixture
def clients():
    with contextlib.ExitStack() as stack:
        yield stack
