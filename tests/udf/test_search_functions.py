"""Convex functions using withSearchIndex and ctx.vectorSearch, unchanged, over the engine."""

from __future__ import annotations

import shutil
from pathlib import Path

from engine import Database
from udf.calls import FunctionCall
from udf.executor import Executor

APP = Path(__file__).parent / "fixtures" / "search" / "convex"


def test_search_and_vector_search_from_functions(tmp_path):
    app = tmp_path / "convex"
    shutil.copytree(APP, app)
    with Database.open(tmp_path / "d") as db:
        ex = Executor(db)
        ex.deploy(app)
        notes = [
            ("the quick brown fox", "ada", [1.0, 0.0, 0.0]),
            ("a lazy dog sleeps", "bob", [0.0, 1.0, 0.0]),
            ("quick thinking wins", "bob", [0.9, 0.1, 0.0]),
        ]
        ids = []
        for body, author, embedding in notes:
            out = ex.run(
                FunctionCall(
                    "notes:add",
                    {"body": body, "author": author, "embedding": embedding},
                    "mutation",
                )
            )
            assert out.error is None, out.error
            ids.append(out.value)
        found = ex.run(FunctionCall("notes:search", {"text": "quick"}, "query"))
        assert found.error is None, found.error
        assert sorted(found.value) == ["quick thinking wins", "the quick brown fox"]
        prefix = ex.run(FunctionCall("notes:search", {"text": "qui", "author": "bob"}, "query"))
        assert prefix.value == ["quick thinking wins"]
        assert db.wait_for_search_indexes()
        similar = ex.run(FunctionCall("notes:similar", {"vector": [1.0, 0.0, 0.0]}, "action"))
        assert similar.error is None, similar.error
        assert [r["id"] for r in similar.value] == [ids[0], ids[2]]
        assert similar.value[0]["score"] > similar.value[1]["score"]
        only_bob = ex.run(
            FunctionCall("notes:similar", {"vector": [1.0, 0.0, 0.0], "author": "bob"}, "action")
        )
        assert [r["id"] for r in only_bob.value] == [ids[2], ids[1]]
        wrong = ex.run(FunctionCall("notes:similar", {"vector": [1.0, 0.0]}, "action"))
        assert wrong.error is not None and "dimension" in wrong.error.message.lower()
        ex.close()


def test_a_deploy_adding_a_search_index_answers_once_the_index_can_be_queried(tmp_path):
    # First without the indexes, with enough notes that a backfill takes a while...
    app = tmp_path / "convex"
    shutil.copytree(APP, app)
    schema = app / "schema.ts"
    indexed = schema.read_text()
    plain = indexed[: indexed.index(")\n    .searchIndex")] + "),\n});\n"
    schema.write_text(plain)
    with Database.open(tmp_path / "d") as db:
        ex = Executor(db)
        ex.deploy(app)
        notes = [{"body": "note 0 quick", "author": "ada", "embedding": [1.0, 0.0, 0.0]}]
        notes += [
            {"body": f"note {i}", "author": "bob", "embedding": [0.0, 1.0, 0.0]}
            for i in range(3000)
        ]
        db.mutate(lambda tx: [tx.insert("notes", note) for note in notes])
        # ...then a deploy that adds them: a search right after it finds the note.
        schema.write_text(indexed)
        ex.deploy(app)
        found = ex.run(FunctionCall("notes:search", {"text": "quick"}, "query"))
        assert found.error is None, found.error
        assert found.value == ["note 0 quick"]
        ex.close()
