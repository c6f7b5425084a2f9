"""The command line with ``--store``: clear refusals, ``status``, and moving between stores."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

from cli_process import assert_one_line_error, headwater

from engine import Database
from engine.cluster import ClusterNode
from log.store_url import open_shared_store


def test_an_unreachable_store_is_one_clear_line(tmp_path):
    started = time.monotonic()
    done = headwater(
        "serve",
        "--store",
        "postgresql://postgres@127.0.0.1:9/x",
        "--data",
        str(tmp_path / "d"),
        "--port",
        "0",
    )
    line = assert_one_line_error(done, "postgresql://postgres@127.0.0.1:9/x", "unavailable")
    assert "refused" in line.lower()
    assert time.monotonic() - started < 30


def test_an_unknown_scheme_names_the_known_ones(tmp_path):
    done = headwater("status", "--store", "oracle://db/x")
    assert_one_line_error(done, "oracle", "postgresql://", "mysql://", "sqlite://")


def test_a_password_never_shows_in_a_message(tmp_path):
    done = headwater("status", "--store", "postgresql://postgres:s3cret@127.0.0.1:9/x")
    line = assert_one_line_error(done)
    assert "s3cret" not in line


def test_a_standalone_data_folder_is_refused_and_kept(tmp_path, fresh_postgres_url):
    with Database.open(tmp_path / "real") as db:
        db.mutate(lambda tx: tx.insert("notes", {"text": "precious"}))
    done = headwater(
        "serve", "--store", fresh_postgres_url, "--data", str(tmp_path / "real"), "--port", "0"
    )
    assert_one_line_error(done, "holds a deployment of its own", "export")
    with Database.open(tmp_path / "real") as db:
        assert [d["text"] for d in db.query(lambda tx: tx.query("notes").collect()).value] == [
            "precious"
        ]


def test_status_of_a_store_no_node_serves(fresh_postgres_url):
    done = headwater("status", "--store", fresh_postgres_url)
    assert done.returncode == 0, done.stderr
    assert "Leader: none" in done.stdout


def _documents(zip_path: Path) -> dict[str, list[dict]]:
    with zipfile.ZipFile(zip_path) as archive:
        return {
            name: sorted(
                (json.loads(line) for line in archive.read(name).decode().splitlines() if line),
                key=lambda d: d["_id"],
            )
            for name in archive.namelist()
            if name.endswith("documents.jsonl") and not name.startswith("_")
        }


def test_export_from_sqlite_and_import_into_postgresql_gives_the_same_deployment(
    tmp_path, fresh_postgres_url
):
    sqlite_url = f"sqlite://{tmp_path.resolve()}/deployment.db"
    store = open_shared_store(sqlite_url)
    with Database.open(tmp_path / "cache", cluster=ClusterNode(store)) as db:
        for i in range(50):
            db.mutate(lambda tx, i=i: tx.insert("notes", {"n": i, "text": f"note {i}"}))
        db.mutate(lambda tx: tx.insert("people", {"name": "Ada"}))
    store.close()
    first, second = tmp_path / "from_sqlite.zip", tmp_path / "from_postgres.zip"
    done = headwater("export", "--store", sqlite_url, "--out", str(first))
    assert done.returncode == 0, done.stderr
    done = headwater("import", str(first), "--store", fresh_postgres_url)
    assert done.returncode == 0, done.stderr
    assert "Imported 51 documents in 2 tables" in done.stdout
    done = headwater("export", "--store", fresh_postgres_url, "--out", str(second))
    assert done.returncode == 0, done.stderr
    exported = _documents(first)
    assert sum(len(docs) for docs in exported.values()) == 51
    assert _documents(second) == exported


BANK_APP = Path(__file__).resolve().parents[1] / "e2e" / "bank_app" / "convex"


def test_run_ts_env_and_replay_on_a_store(tmp_path):
    store = f"sqlite://{tmp_path.resolve()}/deployment.db"
    opened = headwater(
        "run",
        "bank:open",
        '{"names": ["x", "y"], "balance": {"$integer": "ZAAAAAAAAAA="}}',
        "--store",
        store,
        "--functions",
        str(BANK_APP),
    )
    assert opened.returncode == 0, opened.stderr
    shown = headwater("run", "bank:balances", "--store", store)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == {
        "x": {"$integer": "ZAAAAAAAAAA="},
        "y": {"$integer": "ZAAAAAAAAAA="},
    }
    latest = headwater("ts", "--store", store)
    assert latest.returncode == 0 and latest.stdout.split()[0].isdigit(), latest.stderr
    assert headwater("env", "set", "GREETING", "hello", "--store", store).returncode == 0
    got = headwater("env", "get", "GREETING", "--store", store)
    assert got.stdout.strip() == "hello", got.stderr
    cache = tmp_path / "cache"
    rebuilt = headwater("replay", "--store", store, "--data", str(cache))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "Rebuilt all projections" in rebuilt.stdout
    with Database.open(tmp_path / "real") as db:
        db.mutate(lambda tx: tx.insert("notes", {"text": "precious"}))
    refused = headwater("replay", "--store", store, "--data", str(tmp_path / "real"))
    assert_one_line_error(refused, "holds a deployment of its own")


def test_cache_snapshot_copies_a_running_nodes_cache_for_a_new_node(tmp_path):
    url = f"sqlite://{tmp_path.resolve()}/deployment.db"
    store = open_shared_store(url)
    with Database.open(tmp_path / "a", cluster=ClusterNode(store)) as a:
        for i in range(20):
            a.mutate(lambda tx, i=i: tx.insert("notes", {"n": i}))
        # Another process copies the cache while this node holds it open and writes on.
        done = headwater(
            "cache-snapshot", "--data", str(tmp_path / "a"), "--out", str(tmp_path / "c")
        )
        assert done.returncode == 0, done.stderr
        assert f"up to ts {a.latest_ts()}" in done.stdout
        a.mutate(lambda tx: tx.insert("notes", {"n": 20}))
        again = headwater(
            "cache-snapshot", "--data", str(tmp_path / "a"), "--out", str(tmp_path / "c")
        )
        assert_one_line_error(again, "not empty")
    other = open_shared_store(url)
    with Database.open(tmp_path / "c", cluster=ClusterNode(other)) as c:
        assert c.cache_state == "kept"
        assert c.committer.statistics()["followed"] == 1
        assert len(c.query(lambda tx: tx.query("notes").collect()).value) == 21
    store.close()
    other.close()
    refused = headwater(
        "cache-snapshot", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "d")
    )
    assert_one_line_error(refused, "not the cache of a store's node")
