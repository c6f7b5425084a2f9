"""Fixtures for the function runtime: the fixture app bundled once, an isolate,
and a fake syscall handler that keeps documents in memory and records every
syscall it sees."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.ids import encode_id
from udf import Isolate, SyscallError, bundle
from udf.node import ensure_node_modules

FIXTURE_APP = Path(__file__).parent / "fixtures" / "convex"
TABLES = {"channels": 10001, "messages": 10002}
NOW_MS = 1_700_000_000_000.0
SNAPSHOT_TS = 1_700_000_000_000_000_123


class FakeHandler:
    """An in-memory stand-in for the engine side of the syscalls."""

    def __init__(self) -> None:
        self.raw: list[tuple[str, str]] = []
        self.docs: dict[str, dict[str, Any]] = {}
        self.streams: dict[int, list[dict[str, Any]]] = {}
        self.answers: dict[str, Callable[[dict[str, Any]], Any]] = {}
        self._next = 0

    @property
    def ops(self) -> list[str]:
        return [op for op, _ in self.raw]

    @property
    def calls(self) -> list[tuple[str, Any]]:
        return [(op, json.loads(args)) for op, args in self.raw]

    def new_id(self, table: str) -> str:
        self._next += 1
        return encode_id(TABLES[table], self._next.to_bytes(16, "big"))

    def add(self, table: str, **fields: Any) -> str:
        doc_id = self.new_id(table)
        self.docs[doc_id] = {"_id": doc_id, "_creationTime": float(self._next), **fields}
        return doc_id

    def handle(self, op: str, args_json: str) -> str:
        self.raw.append((op, args_json))
        args = json.loads(args_json)
        if op in self.answers:
            return json.dumps(self.answers[op](args))
        method = getattr(self, "op_" + op.removeprefix("1.0/").replace("/", "_"), None)
        if method is None:
            raise SyscallError(f"Unknown async operation {op}")
        return json.dumps(method(args))

    def _existing(self, doc_id: str) -> dict[str, Any]:
        if doc_id not in self.docs:
            raise SyscallError(f"Update on nonexistent document ID {doc_id}")
        return self.docs[doc_id]

    def op_get(self, args: dict[str, Any]) -> Any:
        return self.docs.get(args["id"])

    def op_insert(self, args: dict[str, Any]) -> Any:
        return {"_id": self.add(args["table"], **args["value"])}

    def op_shallowMerge(self, args: dict[str, Any]) -> Any:
        doc = self._existing(args["id"])
        for key, value in args["value"].items():
            if value == {"$undefined": None}:
                doc.pop(key, None)
            else:
                doc[key] = value
        return doc

    def op_replace(self, args: dict[str, Any]) -> Any:
        doc = self._existing(args["id"])
        self.docs[args["id"]] = {
            "_id": doc["_id"],
            "_creationTime": doc["_creationTime"],
            **args["value"],
        }
        return self.docs[args["id"]]

    def op_remove(self, args: dict[str, Any]) -> Any:
        return self.docs.pop(self._existing(args["id"])["_id"])

    def op_queryStreamNext(self, args: dict[str, Any]) -> Any:
        if "query" in args:
            self.streams[args["queryId"]] = self._scan(args["query"])
        stream = self.streams.get(args["queryId"])
        if stream is None:
            raise SyscallError(f"Query with id {args['queryId']} not found.")
        if not stream:
            del self.streams[args["queryId"]]
            return {"value": None, "done": True}
        return {"value": stream.pop(0), "done": False}

    def op_queryCleanup(self, args: dict[str, Any]) -> Any:
        return self.streams.pop(args["queryId"], None) is not None

    def _scan(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        source = query["source"]
        table = source.get("tableName") or source["indexName"].split(".")[0]
        docs = [d for d in self.docs.values() if self._table_of(d["_id"]) == table]
        for bound in source.get("range", []):
            docs = [d for d in docs if d.get(bound["fieldPath"]) == bound["value"]]
        return docs

    @staticmethod
    def _table_of(doc_id: str) -> str:
        from engine.ids import table_number_of

        number = table_number_of(doc_id)
        return next(name for name, n in TABLES.items() if n == number)


@pytest.fixture(scope="session")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ensure_node_modules()
    target = tmp_path_factory.mktemp("app") / "convex"
    shutil.copytree(FIXTURE_APP, target)
    return target


@pytest.fixture(scope="session")
def app_bundle(app_dir: Path):
    return bundle(app_dir)


@pytest.fixture(scope="session")
def isolate(app_bundle):
    iso = Isolate(app_bundle.modules)
    yield iso
    iso.close()


@pytest.fixture
def handler() -> FakeHandler:
    return FakeHandler()


def split_ref(ref: str) -> tuple[str, str]:
    module, _, name = ref.partition(":")
    return module + ".js", name or "default"


@pytest.fixture
def call(isolate: Isolate, handler: FakeHandler):
    """Run ``"module:export"`` with one args object, with deterministic defaults."""

    def run(kind: str, ref: str, args: dict[str, Any] | None = None, **options: Any):
        module, name = split_ref(ref)
        settings: dict[str, Any] = {
            "seed": 7,
            "now_ms": NOW_MS,
            "table_numbers": TABLES,
            "snapshot_ts": SNAPSHOT_TS,
        }
        settings.update(options)
        on = settings.pop("isolate", isolate)
        with_handler = settings.pop("handler", handler)
        return on.run(kind, module, name, json.dumps([args or {}]), with_handler, **settings)

    return run
