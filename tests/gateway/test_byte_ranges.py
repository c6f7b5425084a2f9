"""Range headers (gateway.byte_ranges) against a model of RFC 9110's single-range rules,
and the bytes a real download serves for any range."""

from __future__ import annotations

import shutil

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.backend import Backend
from gateway.byte_ranges import UNSATISFIABLE, parse_range
from gateway.server import run_server_in_thread

positions = st.integers(min_value=0, max_value=2**64)
sizes = st.integers(min_value=0, max_value=5000)
specs = st.one_of(
    st.tuples(positions, positions).map(lambda p: f"{p[0]}-{p[1]}"),
    positions.map(lambda p: f"{p}-"),
    positions.map(lambda p: f"-{p}"),
)


def model(spec: str, size: int):
    """The range a single spec asks for, written from the RFC, not from the code."""
    if size == 0:
        return None
    first_text, last_text = spec.split("-")
    if not first_text:
        n = int(last_text)
        return UNSATISFIABLE if n == 0 else (max(0, size - n), size - 1)
    first = int(first_text)
    last = int(last_text) if last_text else None
    if last is not None and last < first:
        return None  # invalid: the header is ignored
    if first >= size:
        return UNSATISFIABLE
    return first, size - 1 if last is None else min(last, size - 1)


@given(spec=specs, size=sizes)
@example(spec="0-0", size=1)
@example(spec="1-", size=1)
@example(spec="-1", size=1)
@example(spec="-0", size=10)
@example(spec="5-4", size=10)
@example(spec="0-18446744073709551616", size=3)
def test_one_range_follows_the_rfc(spec, size):
    assert parse_range(f"bytes={spec}", size) == model(spec, size)


@given(first=specs, second=specs, size=st.integers(min_value=1, max_value=5000))
def test_more_than_one_range_is_unsatisfiable_unless_the_header_is_ignored(first, second, size):
    answer = parse_range(f"bytes={first}, {second}", size)
    ignored = model(first, size) is None or model(second, size) is None
    assert answer == (None if ignored else UNSATISFIABLE)


@pytest.mark.parametrize(
    "header", [None, "", "bytes", "bytes=", "bytes=a-b", "pages=0-1", "bytes=--1"]
)
def test_what_does_not_parse_is_ignored(header):
    assert parse_range(header, 100) is None


DATA = bytes((i * 7) % 251 for i in range(3000))


@pytest.fixture(scope="module")
def file_url(tmp_path_factory):
    from pathlib import Path

    app = Path(__file__).parent / "fixtures" / "storage_app" / "convex"
    functions = tmp_path_factory.mktemp("app") / "convex"
    shutil.copytree(app, functions)
    backend = Backend.open(tmp_path_factory.mktemp("data"), functions_dir=functions)
    url, stop = run_server_in_thread(backend.app)
    backend.executor.cloud_url = url
    storage = backend.executor.file_storage
    storage_id = storage.commit_file(storage.store_bytes(DATA), "application/x-test")
    with httpx.Client(base_url=url, trust_env=False, timeout=30) as client:
        found = client.post(
            "/api/query", json={"path": "files:url", "args": {"storageId": storage_id}}
        )
        yield client, found.json()["value"]
    stop()
    backend.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spec=specs)
@example(spec="2999-")
@example(spec="3000-")
@example(spec="-3000")
def test_a_download_serves_exactly_the_range(file_url, spec):
    client, url = file_url
    got = client.get(url, headers={"Range": f"bytes={spec}"})
    wanted = model(spec, len(DATA))
    if wanted == UNSATISFIABLE:
        assert got.status_code == 416 and got.content == b""
        assert got.headers["content-range"] == f"bytes */{len(DATA)}"
    elif wanted is None:
        assert got.status_code == 200 and got.content == DATA
    else:
        first, last = wanted
        assert got.status_code == 206 and got.content == DATA[first : last + 1]
        assert got.headers["content-range"] == f"bytes {first}-{last}/{len(DATA)}"
        assert got.headers["content-length"] == str(last - first + 1)
