"""The CLI's module format end to end: an app importing code beside its functions
folder and a package of its own, chunks shared by modules, pushed-style module
sets compiled and run, "use node" files stored apart and run in Node.js, and bundles
identical to the official CLI's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from engine import Database
from udf import Isolate, bundle
from udf.bundler import BundledModule
from udf.calls import ADMIN, FunctionCall
from udf.codegen import write_generated
from udf.deployment import load_deployment, prepare_modules
from udf.errors import ModuleCompileError
from udf.executor import Executor
from udf.module_compiler import compile_modules, is_library_chunk
from udf.node import JS_DIR

HELPER = """export function shout(text: string): string {
  return text.toUpperCase() + "!";
}

export function explode(): never {
  throw new Error("helper exploded");
}
"""
STATE = """export const counter = { n: 0 };
export function bump(): number {
  counter.n += 1;
  return counter.n;
}
"""
GREETING_PACKAGE = {
    "package.json": json.dumps({"name": "tiny-greeting", "version": "1.0.0", "main": "index.js"}),
    "index.js": 'exports.greet = (name) => "hello " + name;\n',
}
MODULE_A = """import { query } from "./_generated/server";
import { v } from "convex/values";
import { greet } from "tiny-greeting";
import { shout, explode } from "../lib/helper";
import { bump } from "../lib/state";
import { bumpFromB } from "./b";

export const hello = query({
  args: { name: v.string() },
  handler: async (_ctx, { name }) => shout(greet(name)),
});

export const bumpTwice = query({
  args: {},
  handler: async () => [bump(), bumpFromB()],
});

export const fail = query({
  args: {},
  handler: async () => explode(),
});
"""
MODULE_B = """import { query } from "./_generated/server";
import { bump } from "../lib/state";
import { shout } from "../lib/helper";

export function bumpFromB(): number {
  return bump();
}

export const bumpOnce = query({ args: {}, handler: async () => bump() });
export const loud = query({ args: {}, handler: async () => shout("b") });
"""
NODE_MODULE = """"use node";
import { action } from "./_generated/server";

export const viaNode = action({ args: {}, handler: async () => "from node" });
"""


NESTED = """import { query } from "../_generated/server";
import { shout } from "../../lib/helper";
export const tool = query({ args: {}, handler: async () => shout("tool") });
"""
SCHEMA = """import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({ notes: defineTable({ body: v.string() }) });
"""


def make_app(root: Path, *, convex_package: bool = False) -> Path:
    """An app folder: package.json, lib/, node_modules/tiny-greeting and convex/."""
    files = {
        "convex/admin/tools.ts": NESTED,
        "convex/schema.ts": SCHEMA,
        "convex/auth.config.ts": "export default { providers: [] };\n",
        "package.json": json.dumps({"name": "app", "dependencies": {"convex": "1.48.0"}}),
        "lib/helper.ts": HELPER,
        "lib/state.ts": STATE,
        "convex/a.ts": MODULE_A,
        "convex/b.ts": MODULE_B,
        "convex/nodey.ts": NODE_MODULE,
        **{f"node_modules/tiny-greeting/{k}": v for k, v in GREETING_PACKAGE.items()},
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if convex_package:  # what `npm install` would put there (the parts esbuild reads)
        target = root / "node_modules" / "convex"
        shutil.copytree(
            JS_DIR / "node_modules" / "convex" / "dist" / "esm", target / "dist" / "esm"
        )
        shutil.copy(JS_DIR / "node_modules" / "convex" / "package.json", target / "package.json")
    write_generated(root / "convex")
    return root / "convex"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    functions = make_app(tmp_path_factory.mktemp("app"))
    db = Database.open(tmp_path_factory.mktemp("data"))
    ex = Executor(db)
    ex.deploy(functions)
    yield ex, db
    ex.close()
    db.close()


def run(ex, path, args=None, kind="query"):
    return ex.run(FunctionCall(path, args or {}, kind, ADMIN))


def test_modules_import_code_beside_the_functions_folder_and_the_apps_own_packages(deployed):
    ex, _ = deployed
    outcome = run(ex, "a:hello", {"name": "ada"})
    assert outcome.error is None, outcome.error
    assert outcome.value == "HELLO ADA!"
    assert run(ex, "b:loud").value == "B!"


def test_a_chunk_shared_by_two_modules_is_one_instance_per_call_and_none_across_calls(deployed):
    ex, _ = deployed
    assert [run(ex, "a:bumpTwice").value for _ in range(3)] == [[1, 2]] * 3
    assert run(ex, "b:bumpOnce").value == 1


def test_a_stack_through_a_chunk_names_the_helper_file_and_line(deployed):
    ex, _ = deployed
    outcome = run(ex, "a:fail")
    assert outcome.error is not None
    assert outcome.error.message.startswith("Uncaught Error: helper exploded")
    assert "(../lib/helper.ts:6:9)" in outcome.error.message, outcome.error.message


def test_use_node_files_are_stored_for_node_and_run_in_node(deployed):
    ex, db = deployed
    stored = load_deployment(db)
    assert stored is not None
    nodey = stored.module("nodey.js")
    assert nodey is not None and nodey.environment == "node"
    assert "nodey.js" not in {r.path for r in stored.runnable}
    outcome = run(ex, "nodey:viaNode", kind="action")
    assert outcome.error is None, outcome.error
    assert outcome.value == "from node"


def test_a_restart_loads_the_stored_runnable_modules_and_hashes(deployed):
    ex, db = deployed
    stored = load_deployment(db)
    assert stored is not None
    assert stored.modules == ex.deployment.modules
    assert stored.runnable == ex.deployment.runnable
    assert {m.path: m.sha256 for m in stored.modules}["a.js"] == ex.deployment.module("a.js").sha256


def test_a_chunk_of_packages_alone_is_a_library_and_one_with_user_code_is_not(deployed, app_bundle):
    fixture = compile_modules(app_bundle.modules)
    assert [r.path for r in fixture if is_library_chunk(r)] == [
        p for p in app_bundle.paths if p.startswith("_deps/")
    ]
    # Here lib/state.ts shares a chunk with the convex package: fresh per call.
    ex, _ = deployed
    chunks = [r for r in ex.deployment.runnable if r.path.startswith("_deps/")]
    assert chunks and not any(is_library_chunk(r) for r in chunks)
    assert not any(is_library_chunk(r) for r in fixture if not r.path.startswith("_deps/"))


PUSHED_CHUNK = """var n = (e, t) => Object.defineProperty(e, "name", { value: t });

// convex/shared.ts
var c = { n: 0 };
function i() {
  return c.n += 1, c.n;
}
n(i, "tick");

export {
  i as a
};
//# sourceMappingURL=ABCD1234.js.map
"""
PUSHED_CHUNK_MAP = json.dumps(
    {
        "version": 3,
        "sources": ["../../convex/shared.ts"],
        "mappings": ";;;AAAO,IAAM,IAAI,EAAE,GAAG,EAAE;AACjB,SAAS,IAAI;"
        + "AAClB,SAAO,EAAE,KAAK,GAAG,EAAE;AACrB;AAFgB;",
        "names": [],
    }
)


# A query as the convex package builds one, written out so the set needs no package.
FAKE_QUERY = (
    '({ isQuery: !0, isPublic: !0, exportArgs: () => \'{"type":"any"}\', '
    "exportReturns: () => null, invokeQuery: async () => JSON.stringify(%s) })"
)


def test_a_pushed_style_module_set_compiles_and_runs(handler):
    """ESM as the CLI pushes it: a module importing a _deps chunk, a default export too."""
    pushed = BundledModule(
        "ticks.js",
        'import { a as tick } from "./_deps/ABCD1234.js";\n'
        f"var t = {FAKE_QUERY % '[tick(), tick()]'};\n"
        f"var d = {FAKE_QUERY % '42'};\n"
        "export { t as twice, d as default };\n",
        None,
    )
    chunk = BundledModule("_deps/ABCD1234.js", PUSHED_CHUNK, PUSHED_CHUNK_MAP)
    runnable = compile_modules([chunk, pushed])
    assert not is_library_chunk(runnable[0])  # convex/shared.ts is user code
    with Isolate(runnable) as iso:
        analysis = iso.analyze()
        assert {(f.module, f.name) for f in analysis.functions} == {
            ("ticks.js", "twice"),
            ("ticks.js", "default"),
        }
        for _ in range(2):
            outcome = iso.run("query", "ticks.js", "twice", "[{}]", handler, seed=1, now_ms=0)
            assert outcome.error is None, outcome.error
            assert json.loads(outcome.result_json) == [1, 2]
        outcome = iso.run("query", "ticks.js", "default", "[{}]", handler, seed=1, now_ms=0)
        assert json.loads(outcome.result_json) == 42


def test_a_module_that_is_not_javascript_is_refused_naming_it():
    broken = BundledModule("broken.js", "export const x = ;\n", None)
    with pytest.raises(ModuleCompileError, match=r"broken\.js:1:"):
        compile_modules([broken])


def test_prepare_modules_compiles_and_analyzes_a_module_set(app_dir):
    modules = bundle(app_dir).modules
    runnable, analysis = prepare_modules(modules, {})
    assert {r.path for r in runnable} == {m.path for m in modules}
    assert any(f.udf_path == "messages:list" for f in analysis.functions)


def test_sha256_is_the_clis_hash():
    module = BundledModule("a.js", "source", "map")
    import hashlib

    assert module.sha256 == hashlib.sha256(b"sourcemap").hexdigest()
    assert BundledModule("a.js", "source", None).sha256 == hashlib.sha256(b"source").hexdigest()


def _cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    closed = "http://127.0.0.1:9"
    env.update(
        CI="1",
        CONVEX_TELEMETRY_DISABLED="1",
        CONVEX_VERSION_API_ORIGIN=closed,
        CONVEX_PROVISION_HOST=closed,
        CONVEX_SELF_HOSTED_URL=closed,
        CONVEX_SELF_HOSTED_ADMIN_KEY="unused",
    )
    return env


def test_bundles_are_identical_to_the_official_clis(tmp_path):
    """The CLI writes what it would push with --debug-bundle-path (it contacts no server)."""
    functions = make_app(tmp_path / "app", convex_package=True)
    out = tmp_path / "cli-bundle"
    done = subprocess.run(
        [
            str(JS_DIR / "node_modules" / ".bin" / "convex"),
            "deploy",
            "--debug-bundle-path",
            str(out),
            "--typecheck",
            "disable",
            "--codegen",
            "disable",
            "-y",
        ],
        cwd=functions.parent,
        env=_cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    cli = json.loads((out / "fullConfig.json").read_text())["modules"]
    # The CLI's debug bundle leaves out the schema (it is pushed on its own).
    ours = [m for m in bundle(functions).modules if m.path != "schema.js"]
    assert [(m["path"], m["environment"]) for m in cli] == [(m.path, m.environment) for m in ours]
    for theirs, mine in zip(cli, ours, strict=True):
        assert theirs["source"] == mine.source, mine.path
        assert theirs.get("sourceMap") == mine.source_map, mine.path
    # What the CLI pushes runs: compiled, analyzed, called.
    pushed = [
        BundledModule(m["path"], m["source"], m.get("sourceMap"), m["environment"]) for m in cli
    ]
    runnable, analysis = prepare_modules(tuple(pushed), {})
    assert any(f.udf_path == "admin/tools:tool" for f in analysis.functions)
    assert any(f.udf_path == "a:hello" for f in analysis.functions)
    with Isolate(runnable) as iso:
        outcome = iso.run("query", "a.js", "hello", '[{"name": "cli"}]', None, seed=1, now_ms=0)
    assert outcome.error is None, outcome.error
    assert json.loads(outcome.result_json) == "HELLO CLI!"


def test_deploy_modules_installs_a_pushed_set_and_skips_an_unchanged_one(tmp_path, app_dir):
    modules = bundle(app_dir).modules
    with Database.open(tmp_path / "data") as db:
        ex = Executor(db)
        try:
            report = ex.deploy_modules(modules)
            assert "messages:list" in report.functions
            again = ex.deploy_modules(modules)
            assert again.ts == report.ts  # the same code: nothing committed
            assert load_deployment(db).source_hash == ex.deployment.source_hash
        finally:
            ex.close()
