"""Import uploads: parts in order, bounded, and abandoned files deleted."""

from __future__ import annotations

import os
import time

import pytest

from engine.limits import Limits
from gateway.http_errors import HttpError
from gateway.import_uploads import UploadStore


def test_parts_are_appended_in_order_and_finished(tmp_path):
    store = UploadStore(tmp_path / "up")
    token = store.start(set())
    store.append(token, 1, b"ab")
    store.append(token, 2, b"cd")
    with pytest.raises(HttpError, match="part 3 was expected"):
        store.append(token, 4, b"x")
    name = store.finish(token, ".jsonl")
    assert store.path(name).read_bytes() == b"abcd"
    with pytest.raises(HttpError, match="Unknown or expired"):
        store.append(token, 3, b"late")
    with pytest.raises(HttpError, match="Unknown or expired"):
        store.append("../../etc", 1, b"x")


def test_parts_and_uploads_are_bounded(tmp_path):
    limits = Limits(import_part_bytes_max=4, import_upload_bytes_max=6, import_parts_max=3)
    store = UploadStore(tmp_path / "up", limits)
    token = store.start(set())
    with pytest.raises(HttpError) as refused:
        store.append(token, 1, b"12345")
    assert refused.value.status == 413
    store.append(token, 1, b"1234")
    with pytest.raises(HttpError) as refused:
        store.append(token, 2, b"567")  # 7 bytes in all: the upload is dropped
    assert refused.value.status == 413
    assert list((tmp_path / "up").iterdir()) == []
    token = store.start(set())
    for part in (1, 2, 3):
        store.append(token, part, b"1")
    with pytest.raises(HttpError, match="at most 3 parts"):
        store.append(token, 4, b"1")


def test_abandoned_uploads_are_deleted_unless_an_import_names_them(tmp_path):
    store = UploadStore(tmp_path / "up", Limits(import_upload_age_max_s=60))
    unfinished = store.start(set())
    waiting = store.finish(store.start(set()), ".zip")
    recent = store.start(set())
    old_s = time.time() - 120
    for path in (tmp_path / "up").iterdir():
        if recent not in path.name:
            os.utime(path, (old_s, old_s))
    store.start({waiting})
    names = {p.name for p in (tmp_path / "up").iterdir()}
    assert waiting in names and f"{recent}.part" in names
    assert f"{unfinished}.part" not in names
    with pytest.raises(HttpError, match="Unknown or expired"):
        store.append(unfinished, 1, b"x")
