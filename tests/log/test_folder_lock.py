"""The data folder's writer lock: one holder, named when refused, freed when it dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import DataFolderBusyError
from log.folder_lock import FolderLock, read_holder

ROOT = Path(__file__).resolve().parents[2]

HOLDER = """
import sys, time
from log.folder_lock import FolderLock
lock = FolderLock.acquire(sys.argv[1])
lock.set_url("http://127.0.0.1:9")
print("held", flush=True)
time.sleep(60)
"""


def test_one_holder_named_when_refused_and_freed_by_sigkill(tmp_path):
    folder = tmp_path / "data"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(DataFolderBusyError) as busy:
            FolderLock.acquire(folder)
        message = busy.value.message
        assert str(folder) in message and str(holder.pid) in message, message
        assert "http://127.0.0.1:9" in message
        assert read_holder(folder).pid == holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        holder.stdout.close()
    # The operating system dropped the lock with the process: a stale file is harmless.
    lock = FolderLock.acquire(folder)
    try:
        assert read_holder(folder).pid == os.getpid() and read_holder(folder).url is None
    finally:
        lock.release()


def test_a_second_acquire_in_the_same_process_is_refused_until_released(tmp_path):
    first = FolderLock.acquire(tmp_path)
    with pytest.raises(DataFolderBusyError):
        FolderLock.acquire(tmp_path)
    first.set_url("http://127.0.0.1:3210")
    assert read_holder(tmp_path).url == "http://127.0.0.1:3210"
    first.release()
    assert not first.held
    FolderLock.acquire(tmp_path).release()
