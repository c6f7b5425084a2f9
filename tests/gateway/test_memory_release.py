"""Big requests give their memory back: the trim runs once the server is quiet."""

from __future__ import annotations

import time

import httpx

from engine.limits import LIMITS
from gateway.memory_release import BigRequestMiddleware, MemoryReleaser
from gateway.server import run_server_in_thread
from gateway.sync_messages import _version_json


async def _echo_length(scope, receive, send):
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(len(body)).encode()})


def _wait_for(predicate, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_burst_of_big_bodies_is_followed_by_one_trim_and_small_ones_by_none():
    releaser = MemoryReleaser(settle_s=0.3)
    app = BigRequestMiddleware(_echo_length, releaser, bytes_min=1 << 20)
    url, stop = run_server_in_thread(app)
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            for _ in range(20):
                assert client.post("/", content=b"x" * 1000).text == "1000"
            time.sleep(0.5)
            assert releaser.releases == 0
            for _ in range(3):
                assert client.post("/", content=b"x" * (2 << 20)).text == str(2 << 20)
        assert _wait_for(lambda: releaser.releases == 1)
        time.sleep(0.5)
        assert releaser.releases == 1  # the burst settled into one trim
    finally:
        stop()
        releaser.close()


def test_rendered_sync_versions_stop_at_their_bound():
    bound = LIMITS.sync_encoding_cache_entries_max
    for ts in range(bound + 10):
        _version_json(1, 0, ts)
    assert _version_json.cache_info().currsize == bound
