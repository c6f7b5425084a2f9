"""`npx convex data`, `function-spec`, `export` and `import` (the official CLI) against
real `headwater serve` processes: what a Convex user sees, and refusals that change
nothing."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the gateway test helpers live beside this file
from cli_process import ROOT, Serve  # noqa: E402
from convex_cli import make_project, npx_convex  # noqa: E402

pytestmark = pytest.mark.slow
APP = ROOT / "tests" / "gateway" / "fixtures" / "snapshots" / "convex"
INT64_5 = {"$integer": "BQAAAAAAAAA="}
INT64_MIN = {"$integer": "AAAAAAAAAIA="}


def call(server, kind: str, path: str, args: dict):
    """An admin call over the HTTP API; the value in convex encoded JSON."""
    body = {"path": path, "args": args, "format": "convex_encoded_json"}
    request = urllib.request.Request(
        f"{server.url}/api/{kind}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Convex {server.admin_key}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        result = json.loads(response.read())
    assert result["status"] == "success", result
    return result["value"]


def documents(server, table: str) -> list[dict]:
    """Every document of ``table``, oldest first, through `_system/cli/tableData`."""
    page_args = {"cursor": None, "numItems": 1000}
    args = {"table": table, "order": "asc", "paginationOpts": page_args}
    page = call(server, "query", "_system/cli/tableData", args)
    assert page["isDone"]
    return page["page"]


def tables(server) -> list[str]:
    page = call(server, "query", "_system/cli/tables", {"paginationOpts": {"numItems": 10}})
    return sorted(t["name"] for t in page["page"])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("snapshots")
    project = make_project(root, APP, "snapshots-test")
    with Serve(root / "data", "--functions", str(project / "convex")) as running:
        running.project = project
        call(running, "mutation", "messages:send", {"body": "hi", "count": INT64_5})
        args = {"body": "bytes", "count": INT64_MIN, "blob": {"$bytes": "AAEC/w=="}}
        call(running, "mutation", "messages:send", args)
        yield running


@pytest.fixture
def fresh(tmp_path):
    """A second server, with no functions and no data."""
    with Serve(tmp_path / "fresh") as running:
        running.project = make_project(tmp_path, None, "fresh-test")
        yield running


def succeeded(done) -> str:
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done.stdout + done.stderr


def failed(done, *words: str) -> str:
    assert done.returncode == 1, (done.stdout, done.stderr)
    for word in words:
        assert word in done.stderr, done.stderr
    return done.stderr


def test_data_lists_tables_and_prints_documents(server):
    assert succeeded(npx_convex(server, "data")).split() == ["messages", "people"]
    done = npx_convex(server, "data", "messages", "--limit", "1", "--order", "asc")
    out = succeeded(done)
    header, _, row = done.stdout.splitlines()[:3]
    assert [c.strip() for c in header.split("|")] == [
        "_id",
        "_creationTime",
        "author",
        "body",
        "count",
    ]
    assert '"hi"' in row and "5n" in row and "bytes" not in done.stdout
    assert "Showing the 1 oldest created document" in out
    newest = succeeded(npx_convex(server, "data", "messages", "--limit", "1", "--order", "desc"))
    assert 'Bytes("AAEC/w==")' in newest and "-9223372036854775808n" in newest
    both = npx_convex(server, "data", "messages", "--format", "jsonl")
    lines = both.stdout.splitlines()  # newest first, one document a line
    assert len(lines) == 2 and '"body": "bytes"' in lines[0] and '"body": "hi"' in lines[1]
    assert "There are no documents" in npx_convex(server, "data", "nothing").stderr


def test_function_spec_lists_the_deployed_functions(server):
    done = npx_convex(server, "function-spec")
    succeeded(done)
    spec = json.loads(done.stdout)
    found = {f["identifier"]: f for f in spec["functions"]}
    assert spec["url"] == server.url
    assert sorted(found) == ["messages.js:list", "messages.js:send", "messages.js:wipe"]
    send = found["messages.js:send"]
    assert (send["functionType"], send["visibility"]) == ("Mutation", {"kind": "public"})
    assert send["args"]["value"]["count"] == {"fieldType": {"type": "bigint"}, "optional": False}
    assert send["returns"] == {"type": "id", "tableName": "messages"}
    assert found["messages.js:list"]["returns"] == {"type": "any"}  # none declared
    assert found["messages.js:wipe"]["visibility"] == {"kind": "internal"}


def test_export_then_import_into_a_fresh_server_gives_the_same_data(server, fresh, tmp_path):
    out = succeeded(npx_convex(server, "export", "--path", str(tmp_path / "first.zip")))
    assert "Created snapshot export at timestamp" in out
    with zipfile.ZipFile(tmp_path / "first.zip") as zf:
        names = zf.namelist()
        listing = [json.loads(line) for line in zf.read("_tables/documents.jsonl").splitlines()]
        first = {name: zf.read(name) for name in names}
    assert names[:2] == ["README.md", "_tables/documents.jsonl"]
    assert {"messages/documents.jsonl", "messages/generated_schema.jsonl"} <= set(names)
    assert sorted(t["name"] for t in listing) == ["messages", "people"]
    assert first["messages/generated_schema.jsonl"] == b'"uniform"\n'

    out = succeeded(npx_convex(fresh, "import", str(tmp_path / "first.zip"), "-y"))
    assert "Added 4 documents." in out
    assert documents(fresh, "messages") == documents(server, "messages")  # ids, int64, bytes
    assert documents(fresh, "people") == documents(server, "people")
    again_args = ("export", "--include-file-storage", "--path", str(tmp_path / "again.zip"))
    succeeded(npx_convex(fresh, *again_args))  # no files stored: the same ZIP
    with zipfile.ZipFile(tmp_path / "again.zip") as zf:
        again = {name: zf.read(name) for name in zf.namelist()}
    assert again == first  # the same documents, numbers and schema, byte for byte


def test_a_table_from_jsonl_then_append_replace_and_the_refusal(server, tmp_path):
    rows = tmp_path / "guests.jsonl"
    rows.write_text(
        '{"name": "ada", "age": 36}\n{"name": "bob", "n": {"$integer": "AQAAAAAAAAA="}}\n'
    )
    out = succeeded(npx_convex(server, "import", "--table", "guests", str(rows), "-y"))
    assert 'Added 2 documents to table "guests"' in out
    found = documents(server, "guests")
    assert [(d["name"], d.get("age"), d.get("n")) for d in found] == [
        ("ada", 36.0, None),
        ("bob", None, {"$integer": "AQAAAAAAAAA="}),
    ]
    failed(
        npx_convex(server, "import", "--table", "guests", str(rows), "-y"),
        "Table guests already exists. Please choose a new table name or use replace/append modes.",
    )
    assert documents(server, "guests") == found
    succeeded(npx_convex(server, "import", "--table", "guests", str(rows), "--append", "-y"))
    assert len(documents(server, "guests")) == 4
    out = succeeded(npx_convex(server, "import", "--table", "guests", str(rows), "--replace", "-y"))
    assert "guests | 2      | 4 of 4 |" in out  # Convex's change summary
    assert [d["name"] for d in documents(server, "guests")] == ["ada", "bob"]


def test_csv_and_json_array_tables(server, tmp_path):
    (tmp_path / "rows.csv").write_text("name,score, note\nann,1.5,x\nben,-2,\n")
    # Nothing is deleted, so the CLI does not ask: no -y needed.
    succeeded(npx_convex(server, "import", "--table", "scores", str(tmp_path / "rows.csv")))
    rows = [
        {k: v for k, v in d.items() if not k.startswith("_")} for d in documents(server, "scores")
    ]
    assert rows == [
        {"name": "ann", "score": 1.5, "note": "x"},
        {"name": "ben", "score": -2.0, "note": ""},
    ]
    (tmp_path / "rows.json").write_text('[{"a": 1}, {"a": "two", "b": {"$bytes": "AQ=="}}]')
    out = succeeded(
        npx_convex(server, "import", "--table", "arr", str(tmp_path / "rows.json"), "-y")
    )
    assert 'Added 2 documents to table "arr"' in out
    found = documents(server, "arr")
    assert [(d["a"], d.get("b")) for d in found] == [(1.0, None), ("two", {"$bytes": "AQ=="})]


def test_a_bad_line_is_refused_and_changes_nothing(server, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"name": "fine"}\n{"name": oops}\n{"name": "never"}\n')
    before = {t: documents(server, t) for t in tables(server)}
    failed(
        npx_convex(server, "import", "--table", "broken", str(bad), "-y"),
        "Hit an error while importing:",
        "Row 2 wasn't valid JSON",
    )
    failed(npx_convex(server, "import", "--table", "people", str(bad), "--append", "-y"), "Row 2")
    assert {t: documents(server, t) for t in tables(server)} == before
    not_object = tmp_path / "list.jsonl"
    not_object.write_text('{"name": "fine"}\n[1, 2]\n')
    failed(
        npx_convex(server, "import", "--table", "broken", str(not_object), "-y"),
        "Row 2 wasn't an object",
    )
    assert "broken" not in tables(server)


def test_a_document_the_schema_refuses_is_refused_and_changes_nothing(server, tmp_path):
    before = documents(server, "messages")
    rows = tmp_path / "messages.jsonl"
    good = '{"body": "ok", "count": {"$integer": "AQAAAAAAAAA="}}'
    rows.write_text(good + '\n{"body": 5, "count": {"$integer": "AQAAAAAAAAA="}}\n')
    failed(
        npx_convex(server, "import", "--table", "messages", str(rows), "--append", "-y"),
        "Hit an error while importing:",
        'Failed to insert or update a document in table "messages" because it does not match',
    )
    assert documents(server, "messages") == before
    # A float where the schema wants an int64 (every JSON number of a .jsonl is a float).
    rows.write_text('{"body": "n", "count": 1}\n')
    failed(
        npx_convex(server, "import", "--table", "messages", str(rows), "--replace", "-y"),
        "does not match the schema",
    )
    assert documents(server, "messages") == before


def test_a_snapshot_with_a_bad_document_is_refused_whole(server, fresh, tmp_path):
    succeeded(npx_convex(server, "export", "--path", str(tmp_path / "snap.zip")))
    with zipfile.ZipFile(tmp_path / "snap.zip") as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
    entries["people/documents.jsonl"] += b'{"name": 7}\n'  # the schema wants a string
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    failed(
        npx_convex(fresh, "import", str(tmp_path / "bad.zip"), "-y"), "does not match the schema"
    )
    assert tables(fresh) == []


def post(server, route: str, body: bytes, key: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Convex {key}"
    request = urllib.request.Request(server.url + route, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


@pytest.mark.parametrize(
    "route",
    ["/api/export/request/zip", "/api/import/start_upload", "/api/perform_import"],
)
def test_the_endpoints_need_the_admin_key(server, route):
    assert post(server, route, b"{}")[0] == 401
    assert post(server, route, b"{}", key="headwater|wrong")[0] in (400, 401)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ({"format": "zip", "tableName": "t"}, "InvalidName", "ZIP import cannot have table name"),
        ({"format": "csv"}, "InvalidName", "CSV import requires table name"),
        ({"format": "jsonLines", "tableName": "_x"}, "ImportInvalidName", "invalid table name"),
        ({"format": "zip", "mode": "merge"}, "InvalidImportMode", "merge"),
    ],
)
def test_a_bad_import_request_is_refused(server, args, code, message):
    status, started = post(server, "/api/import/start_upload", b"", key=server.admin_key)
    assert status == 200
    body = {"import": args, "uploadToken": started["uploadToken"], "partTokens": []}
    status, error = post(
        server, "/api/import/finish_upload", json.dumps(body).encode(), server.admin_key
    )
    assert (status, error["code"]) == (400, code) and message in error["message"]
    status, error = post(server, "/api/perform_import", b'{"importId": "nope"}', server.admin_key)
    assert (status, error["code"]) == (400, "InvalidImport")


STORAGE_APP = ROOT / "tests" / "gateway" / "fixtures" / "storage_app" / "convex"


def test_stored_files_go_through_export_and_import(tmp_path, fresh):
    project = make_project(tmp_path / "files", STORAGE_APP, "files-test")
    with Serve(tmp_path / "files" / "data", "--functions", str(project / "convex")) as source:
        source.project = project
        upload_url = call(source, "mutation", "files:generateUploadUrl", {})
        data = bytes(range(256)) * 100
        request = urllib.request.Request(
            upload_url, data=data, headers={"Content-Type": "image/png"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            storage_id = json.loads(response.read())["storageId"]
        call(source, "mutation", "files:save", {"storageId": storage_id, "name": "pic"})
        zip_path = tmp_path / "with_files.zip"
        succeeded(npx_convex(source, "export", "--include-file-storage", "--path", str(zip_path)))
    with zipfile.ZipFile(zip_path) as zf:
        assert zf.read(f"_storage/{storage_id}.png") == data
    succeeded(npx_convex(fresh, "import", str(zip_path), "-y"))
    [saved] = documents(fresh, "files")
    assert saved["storageId"] == storage_id
    metadata = zipfile.ZipFile(zip_path).read("_storage/documents.jsonl")
    internal = json.loads(metadata)["internalId"]
    with urllib.request.urlopen(f"{fresh.url}/api/storage/{internal}", timeout=30) as got:
        assert got.read() == data and got.headers["Content-Type"] == "image/png"


def test_a_table_imported_into_a_component_is_that_components(fresh, tmp_path):
    rows = tmp_path / "limits.jsonl"
    rows.write_text('{"name": "send", "value": 1}\n{"name": "read", "value": 2}\n')
    args = ("import", "--component", "limiter", "--table", "rateLimits", str(rows), "-y")
    out = succeeded(npx_convex(fresh, *args))
    assert "Added 2 documents" in out
    assert succeeded(npx_convex(fresh, "data", "--component", "limiter")).split() == ["rateLimits"]
    listed = npx_convex(fresh, "data", "rateLimits", "--component", "limiter", "--format", "jsonl")
    assert sorted(json.loads(line)["name"] for line in succeeded(listed).split("\n") if line) == [
        "read",
        "send",
    ]
    # The app's own tables do not include it.
    assert "rateLimits" not in npx_convex(fresh, "data").stdout
    # A ZIP export puts it under the component's folder.
    succeeded(npx_convex(fresh, "export", "--path", str(tmp_path / "c.zip")))
    with zipfile.ZipFile(tmp_path / "c.zip") as zf:
        assert "_components/limiter/rateLimits/documents.jsonl" in zf.namelist()
