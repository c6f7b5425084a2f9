"""A restart skips bundling only when nothing the bundle is made of changed, files
outside the functions folder that its modules import (``../lib/x.ts``) included."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.backend import Backend
from gateway.functions_stamp import STAMP_FILE
from udf.calls import ADMIN, FunctionCall

MODULE = """import { query } from "./_generated/server";
import { word } from "../lib/word";
export const say = query({ args: {}, handler: async () => word() });
"""


def make_app(root: Path, word: str) -> Path:
    (root / "convex").mkdir(parents=True)
    (root / "lib").mkdir()
    (root / "package.json").write_text(json.dumps({"name": "app"}))
    (root / "convex" / "say.ts").write_text(MODULE)
    set_word(root, word)
    return root / "convex"


def set_word(root: Path, word: str) -> None:
    (root / "lib" / "word.ts").write_text(f'export const word = () => "{word}";\n')


def said(data: Path, functions: Path) -> str:
    backend = Backend.open(data, functions_dir=functions)
    try:
        outcome = backend.executor.run(FunctionCall("say:say", {}, "query", ADMIN))
        assert outcome.error is None, outcome.error
        return str(outcome.value)
    finally:
        backend.close()


def test_an_edit_outside_the_functions_folder_is_deployed_on_restart(tmp_path):
    functions = make_app(tmp_path / "app", "first")
    data = tmp_path / "data"
    assert said(data, functions) == "first"
    stamp = json.loads((data / STAMP_FILE).read_text())
    assert list(stamp["outside"]) == [str((tmp_path / "app" / "lib" / "word.ts").resolve())]
    assert said(data, functions) == "first"  # unchanged: the bundling is skipped
    set_word(tmp_path / "app", "second")
    assert said(data, functions) == "second"


def test_the_watcher_knows_the_outside_files_also_when_the_bundling_was_skipped(tmp_path):
    functions = make_app(tmp_path / "app", "first")
    data = tmp_path / "data"
    helper = str((tmp_path / "app" / "lib" / "word.ts").resolve())
    for _ in range(2):  # deploys, then skips the bundling
        backend = Backend.open(data, functions_dir=functions)
        try:
            assert backend.outside_inputs == (helper,)
        finally:
            backend.close()
