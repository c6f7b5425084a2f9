"""Benchmark: uploading and downloading a 100 MiB file through the storage endpoints.

The upload is ``POST /api/storage/upload?token=...`` streamed from a file on disk
(durable: the blob is fsynced and its document committed before the answer); the
download is ``GET /api/storage/<uuid>`` streamed to a file (and fsynced). Both over
loopback from curl to a real server (hypercorn on trio) in this process. Baseline in
the same run: copying the file on the same disk with an fsync. Peak memory growth
shows that the upload streams (it is far below the file's size).
Run: ``python -m bench.bench_storage``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.common import print_table
from engine.file_storage import uuid_of
from gateway.app import create_app
from gateway.backend import Backend
from gateway.server import run_server_in_thread

FILE_BYTES = 100 << 20
CHUNK_BYTES = 1 << 20
MIB = 1 << 20


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _curl(*args: str) -> str:
    """curl in its own process, so the client does not share the server's GIL."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    done = subprocess.run(
        ["curl", "-sS", "--fail", *args], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout


def ours(tmp: Path, source: Path) -> tuple[float, float, float]:
    """(upload MiB/s, download MiB/s, peak memory growth MiB during the upload)."""
    backend = Backend.open(tmp / "data")
    url, stop = run_server_in_thread(backend.app)
    try:
        token = backend.executor.file_storage.issue_upload_token()
        rss_before = _peak_rss_mib()
        started = time.perf_counter()
        answer = _curl(
            "-X", "POST", "--data-binary", f"@{source}",
            "-H", "Content-Type: application/octet-stream",
            f"{url}/api/storage/upload?token={token}",
        )  # fmt: skip
        upload_s = time.perf_counter() - started
        rss_growth = _peak_rss_mib() - rss_before
        storage_id = json.loads(answer)["storageId"]
        target = tmp / "downloaded.bin"
        started = time.perf_counter()
        _curl("-o", str(target), f"{url}/api/storage/{uuid_of(storage_id)}")
        with open(target, "rb+") as f:
            os.fsync(f.fileno())
        download_s = time.perf_counter() - started
        assert target.stat().st_size == FILE_BYTES
    finally:
        stop()
        backend.close()
    return FILE_BYTES / MIB / upload_s, FILE_BYTES / MIB / download_s, rss_growth


async def _drop_body(request: Request) -> Response:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
    return Response(str(received))


def server_drain(tmp: Path, source: Path) -> float:
    """MiB/s of the same server reading and dropping a body: the HTTP layer's own bound."""
    backend = Backend.open(tmp / "drain")
    route = Route("/drain", _drop_body, methods=["POST"])
    app = create_app(
        backend.app.state.context, extra_routes=[route], body_limits={"/drain": 1 << 40}
    )
    url, stop = run_server_in_thread(app)
    try:
        started = time.perf_counter()
        _curl("-X", "POST", "--data-binary", f"@{source}", f"{url}/drain")
        return FILE_BYTES / MIB / (time.perf_counter() - started)
    finally:
        stop()
        backend.close()


def copy_on_disk(source: Path, target: Path) -> float:
    """MiB/s of a plain copy with an fsync (what any durable store must at least do)."""
    started = time.perf_counter()
    shutil.copyfile(source, target)
    with open(target, "rb+") as f:
        os.fsync(f.fileno())
    return FILE_BYTES / MIB / (time.perf_counter() - started)


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        source = tmp / "source.bin"
        with open(source, "wb") as f:
            for _ in range(FILE_BYTES // CHUNK_BYTES):
                f.write(os.urandom(CHUNK_BYTES))
        baseline = copy_on_disk(source, tmp / "copy.bin")
        upload, download, rss_growth = ours(tmp, source)
        drain = server_drain(tmp, source)
    print_table(
        "A 100 MiB file over loopback (durable upload; download written and fsynced)",
        ("direction", "headwater MiB/s", "disk copy MiB/s", "ratio"),
        [
            ("upload", upload, baseline, upload / baseline),
            ("download", download, baseline, download / baseline),
        ],
    )
    print(f"\npeak memory growth during the upload: {rss_growth:.1f} MiB (file: 100 MiB)")
    print(
        f"the same server reading and dropping the body: {drain:,.2f} MiB/s "
        f"(upload / that: {upload / drain:.2f})"
    )


if __name__ == "__main__":
    main()
