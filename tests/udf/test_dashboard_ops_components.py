"""The dashboard's function list and deploy history of an app with component instances
(pushed as the CLI pushes them: the app's definition and each component's)."""

from __future__ import annotations

import pytest
from component_configs import config

from engine import Database
from udf.bundler import bundle
from udf.calls import ADMIN, FunctionCall
from udf.component_tree import DefinitionUpload
from udf.executor import Executor
from udf.push import PushRequest, commit_push, prepare_push

LIMITER = "../node_modules/limiter/dist/component"
LIB = """
import { query, mutation } from "./_generated/server";
import { v } from "convex/values";
export const check = query({ args: { key: v.string() }, handler: async () => true });
export const take = mutation({ args: { key: v.string() }, handler: async () => null });
"""
NOTES = """
import { query } from "./_generated/server";
export const list = query({ args: {}, handler: async () => [] });
"""


def _modules(root, name, files):
    folder = root / name / "convex"
    folder.mkdir(parents=True)
    for file, text in files.items():
        (folder / file).write_text(text)
    return bundle(folder).modules


@pytest.fixture(scope="module")
def executor(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("components")
    limiter = _modules(root, "limiter", {"lib.ts": LIB})
    request = PushRequest(
        _modules(root, "app", {"notes.ts": NOTES}),
        app_definition=config("app", uses=[(LIMITER, {}), (LIMITER, {"name": "second"})]),
        app_dependencies=(LIMITER,),
        components=(DefinitionUpload(LIMITER, config("component", "limiter"), (), None, limiter),),
    )
    with Database.open(root / "data") as db:
        ex = Executor(db)
        commit_push(ex, prepare_push(ex, request))
        yield ex
        ex.close()


def _ok(ex, name: str):
    outcome = ex.run(FunctionCall(f"_system/dashboard/{name}", {}, "query", ADMIN))
    assert outcome.error is None, outcome.error.message
    return outcome.value


def test_each_instance_lists_its_definitions_functions_under_its_path(executor):
    by_component: dict[str, set[str]] = {}
    for fn in _ok(executor, "ops:functions"):
        by_component.setdefault(fn["component"], set()).add(fn["identifier"])
    assert by_component == {
        "": {"notes:list"},
        "limiter": {"lib:check", "lib:take"},
        "second": {"lib:check", "lib:take"},
    }


def test_a_deploy_lists_the_component_definitions_modules(executor):
    (deploy,) = _ok(executor, "ops:deploys")
    assert sorted(deploy["modules"]["added"]) == [f"{LIMITER}//lib.js", "notes.js"]
