"""File storage end to end: uploads through generated URLs (the official client's flow),
files served with ranges, the ctx.storage API in queries, mutations and actions, and
every refused upload leaving nothing behind."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import socket
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from gateway.backend import Backend
from gateway.server import run_server_in_thread

APP = Path(__file__).parent / "fixtures" / "storage_app" / "convex"
DATA = bytes(range(256)) * 40  # 10,240 bytes


class Served:
    def __init__(self, backend: Backend, url: str, client: httpx.Client) -> None:
        self.backend = backend
        self.url = url
        self.client = client

    @property
    def storage(self):
        return self.backend.executor.file_storage

    def call(self, kind: str, path: str, args: dict | None = None):
        answer = self.client.post(f"/api/{kind}", json={"path": path, "args": args or {}})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        if body["status"] != "success":
            raise RuntimeError(body["errorMessage"])
        return body["value"]

    def upload(self, data: bytes, content_type: str | None = "application/octet-stream", **kw):
        upload_url = self.call("mutation", "files:generateUploadUrl")
        headers = {} if content_type is None else {"Content-Type": content_type}
        return self.client.post(upload_url, content=data, headers={**headers, **kw})

    def stored_count(self) -> int:
        return len(self.call("query", "files:stored"))

    def disk_state(self) -> tuple[int, list[str]]:
        root = self.storage.blobs.root
        return self.storage.blobs.statistics()["blobs"], list((root / "incoming").iterdir())


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    functions = tmp_path_factory.mktemp("app") / "convex"
    shutil.copytree(APP, functions)
    backend = Backend.open(tmp_path_factory.mktemp("data"), functions_dir=functions)
    url, stop = run_server_in_thread(backend.app)
    backend.executor.cloud_url = url
    with httpx.Client(base_url=url, trust_env=False, timeout=30) as client:
        yield Served(backend, url, client)
    stop()
    backend.close()


def test_upload_serve_and_metadata(served):
    answer = served.upload(DATA, "image/png")
    assert answer.status_code == 200
    storage_id = answer.json()["storageId"]
    doc = next(d for d in served.call("query", "files:stored") if d["_id"] == storage_id)
    digest = hashlib.sha256(DATA).digest()
    assert doc["sha256"] == base64.b64encode(digest).decode()
    assert (doc["size"], doc["contentType"]) == (len(DATA), "image/png")
    assert set(doc) == {"_id", "_creationTime", "sha256", "size", "contentType"}
    url = served.call("query", "files:url", {"storageId": storage_id})
    assert url.startswith(served.url + "/api/storage/")
    got = served.client.get(url)
    assert got.status_code == 200 and got.content == DATA
    assert got.headers["content-type"] == "image/png"
    assert got.headers["content-length"] == str(len(DATA))
    assert got.headers["accept-ranges"] == "bytes"
    assert got.headers["etag"] == f'"{doc["sha256"]}"'
    assert served.client.get(url, headers={"If-None-Match": got.headers["etag"]}).status_code == 304
    metadata = served.call("query", "files:metadata", {"storageId": storage_id})
    assert metadata == {
        "storageId": storage_id,
        "sha256": digest.hex(),
        "size": len(DATA),
        "contentType": "image/png",
    }
    # The URL's UUID names the file too, as Convex's legacy storage ids do.
    uuid = url.rsplit("/", 1)[1]
    assert served.call("query", "files:url", {"storageId": uuid}) == url


@pytest.mark.parametrize(
    ("range_header", "status", "want"),
    [
        ("bytes=0-9", 206, (0, 9)),
        ("bytes=10240-", 416, None),
        ("bytes=100-", 206, (100, 10239)),
        ("bytes=-5", 206, (10235, 10239)),
        ("bytes=5000-999999", 206, (5000, 10239)),
        ("bytes=0-1,5-6", 416, None),
        ("bytes=-0", 416, None),
        ("bytes=9-3", 200, (0, 10239)),  # does not parse: ignored, the whole file
        ("items=0-3", 200, (0, 10239)),
    ],
)
def test_range_requests(served, range_header, status, want):
    storage_id = served.upload(DATA).json()["storageId"]
    url = served.call("query", "files:url", {"storageId": storage_id})
    got = served.client.get(url, headers={"Range": range_header})
    assert got.status_code == status
    if status == 416:
        assert got.headers["content-range"] == f"bytes */{len(DATA)}"
        return
    first, last = want
    assert got.content == DATA[first : last + 1]
    assert got.headers["content-length"] == str(last - first + 1)
    if status == 206:
        assert got.headers["content-range"] == f"bytes {first}-{last}/{len(DATA)}"


def test_delete_and_a_rolled_back_delete(served):
    storage_id = served.upload(b"short-lived").json()["storageId"]
    url = served.call("query", "files:url", {"storageId": storage_id})
    with pytest.raises(RuntimeError, match="changed my mind"):
        served.call("mutation", "files:removeThenFail", {"storageId": storage_id})
    assert served.client.get(url).content == b"short-lived"  # the failed delete wrote nothing
    served.call("mutation", "files:remove", {"storageId": storage_id})
    assert served.call("query", "files:url", {"storageId": storage_id}) is None
    assert served.call("query", "files:metadata", {"storageId": storage_id}) is None
    gone = served.client.get(url)
    assert gone.status_code == 404 and gone.json()["code"] == "FileNotFound"
    with pytest.raises(RuntimeError, match=f"storage id {storage_id} not found"):
        served.call("mutation", "files:remove", {"storageId": storage_id})


@pytest.mark.parametrize(
    ("path", "args", "message"),
    [
        ("files:url", {"storageId": "not-an-id"}, 'Invalid storage ID: "not-an-id"'),
        ("files:deleteFromQuery", None, "can only be called from a mutation or an action"),
    ],
)
def test_storage_syscall_refusals(served, path, args, message):
    if args is None:
        args = {"storageId": served.upload(b"q").json()["storageId"]}
    with pytest.raises(RuntimeError, match=message):
        served.call("query", path, args)


def test_an_id_of_another_table_is_refused(served):
    storage_id = served.upload(b"x").json()["storageId"]
    file_id = served.call("mutation", "files:save", {"storageId": storage_id, "name": "x"})
    with pytest.raises(RuntimeError, match="cannot be an ID on any table other than '_storage'"):
        served.call("query", "files:url", {"storageId": file_id})


def test_actions_store_get_url_and_delete(served):
    storage_id = served.call(
        "action", "files:storeText", {"text": "from an action", "type": "text/x"}
    )
    assert served.call("action", "files:readText", {"storageId": storage_id}) == {
        "text": "from an action",
        "type": "text/x",
    }
    both = served.call("action", "files:actionUrlAndMetadata", {"storageId": storage_id})
    assert served.client.get(both["url"]).content == b"from an action"
    assert both["metadata"]["size"] == len(b"from an action")
    served.call("action", "files:actionDelete", {"storageId": storage_id})
    assert served.call("action", "files:readText", {"storageId": storage_id}) is None


def _refused_leaves_nothing(served, send):
    before_docs, before_disk = served.stored_count(), served.disk_state()
    answer = send()
    assert served.stored_count() == before_docs
    assert served.disk_state() == before_disk
    return answer


@pytest.mark.parametrize(
    ("token", "code"),
    [("garbage", "StorageTokenInvalid"), ("1.AAAA", "StorageTokenInvalid"), (None, "BadQueryArgs")],
)
def test_a_wrong_token_is_refused(served, token, code):
    query = "" if token is None else f"?token={token}"
    answer = _refused_leaves_nothing(
        served, lambda: served.client.post(f"/api/storage/upload{query}", content=DATA)
    )
    assert answer.json()["code"] == code
    assert answer.status_code == (400 if token is None else 401)


def test_an_expired_token_is_refused(served, monkeypatch):
    upload_url = served.call("mutation", "files:generateUploadUrl")
    storage = served.storage
    monkeypatch.setattr(
        storage, "limits", replace(storage.limits, storage_upload_token_validity_s=0)
    )
    answer = _refused_leaves_nothing(served, lambda: served.client.post(upload_url, content=DATA))
    assert answer.status_code == 401
    assert answer.json() == {
        "code": "StorageTokenExpired",
        "message": "Store File Authorization expired",
    }


def test_an_upload_over_the_limit_is_refused(served, monkeypatch):
    storage = served.storage
    monkeypatch.setattr(storage, "limits", replace(storage.limits, storage_file_bytes_max=4096))
    upload_url = served.call("mutation", "files:generateUploadUrl")

    def chunks():  # no Content-Length: the limit is found while writing
        for _ in range(10):
            yield b"y" * 1024

    answer = _refused_leaves_nothing(
        served, lambda: served.client.post(upload_url, content=chunks())
    )
    assert answer.status_code == 413 and answer.json()["code"] == "PayloadTooLarge"


def test_a_digest_mismatch_is_refused(served):
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    answer = _refused_leaves_nothing(served, lambda: served.upload(DATA, Digest=f"sha-256={wrong}"))
    assert answer.status_code == 400 and answer.json()["code"] == "Sha256Mismatch"
    right = base64.b64encode(hashlib.sha256(DATA).digest()).decode()
    assert served.upload(DATA, Digest=f"sha-256={right}").status_code == 200


def test_a_disconnect_mid_upload_leaves_nothing(served):
    upload_url = urlsplit(served.call("mutation", "files:generateUploadUrl"))

    def cut_upload():
        # The part appears while the body comes, and goes once the server sees the cut.
        deadline = time.monotonic() + 10
        with socket.create_connection((upload_url.hostname, upload_url.port), timeout=5) as sock:
            sock.sendall(
                f"POST {upload_url.path}?{upload_url.query} HTTP/1.1\r\nHost: t\r\n"
                f"Content-Length: {8 << 20}\r\n\r\n".encode()
                + b"z" * (3 << 20)
            )
            while not served.disk_state()[1]:
                assert time.monotonic() < deadline, "the upload never started"
                time.sleep(0.01)
        while served.disk_state()[1]:
            assert time.monotonic() < deadline, "the cut upload's part stayed"
            time.sleep(0.01)

    _refused_leaves_nothing(served, cut_upload)


def test_bad_storage_paths(served):
    bad = served.client.get("/api/storage/not-a-uuid")
    assert bad.status_code == 400 and bad.json()["code"] == "InvalidStoragePath"
    missing = served.client.get("/api/storage/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404 and missing.json()["code"] == "FileNotFound"


@pytest.mark.slow
def test_the_official_client_upload_flow(served, tmp_path):
    from udf.node import JS_DIR, ensure_node_modules, node_executable

    ensure_node_modules()
    file = tmp_path / "picture.bin"
    file.write_bytes(DATA)
    script = Path(__file__).parent / "js" / "storage_client.mjs"
    done = subprocess.run(
        [node_executable(), str(script), served.url, str(JS_DIR), str(file), "image/webp"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["postUrl"].startswith(served.url + "/api/storage/upload?token=")
    assert out["uploadStatus"] == 200
    assert out["listed"]["doc"]["_id"] == out["storageId"]
    assert out["listed"]["doc"]["size"] == len(DATA)
    assert out["full"] == {
        "status": 200,
        "type": "image/webp",
        "length": str(len(DATA)),
        "same": True,
    }
    assert out["part"] == {"status": 206, "range": f"bytes 10-19/{len(DATA)}", "same": True}


def test_a_mutation_stores_in_its_own_transaction(served):
    before = served.stored_count()
    with pytest.raises(RuntimeError, match="rolled back"):
        served.call("mutation", "files:storeInMutation", {"text": "never", "fail": True})
    assert served.stored_count() == before  # the blob is an orphan for the sweep
    stored = served.call("mutation", "files:storeInMutation", {"text": "kept", "fail": False})
    assert stored["text"] == "kept"
    url = served.call("query", "files:url", {"storageId": stored["storageId"]})
    assert served.client.get(url).content == b"kept"
