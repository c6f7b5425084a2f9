"""Bundling a Convex functions folder: which files become modules, source maps,
and clear errors naming the user's file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from udf import BundleError, bundle
from udf.bundler import find_entry_points
from udf.codegen import write_generated

MINIMAL_QUERY = """import { query } from "./_generated/server";
export const ping = query({ args: {}, handler: async () => "pong" });
"""


def make_app(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "convex"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def chunks(result) -> list[str]:
    return [p for p in result.paths if p.startswith("_deps/")]


def test_every_module_of_the_app_is_bundled_by_path(app_bundle):
    assert sorted(p for p in app_bundle.paths if not p.startswith("_deps/")) == [
        "admin/users.js",
        "auth.config.js",
        "crons.js",
        "http.js",
        "messages.js",
        "misbehave.js",
        "schema.js",
    ]
    assert chunks(app_bundle), "code shared by several modules goes to a _deps/ chunk"
    assert all(m.environment == "isolate" for m in app_bundle.modules)


def test_declarations_tests_and_non_modules_are_skipped_with_a_reason(app_bundle):
    reasons = {s.path: s.reason for s in app_bundle.skipped}
    assert set(reasons) == {"helpers.ts", "messages.test.ts", "notes.d.ts"}
    assert "not a module" in reasons["helpers.ts"]
    assert "more than one dot" in reasons["notes.d.ts"]


def test_user_modules_are_esm_importing_the_convex_package_from_a_chunk(app_bundle):
    messages = app_bundle.module("messages.js")
    [chunk] = [
        app_bundle.module(p)
        for p in chunks(app_bundle)
        if "../node_modules/convex/" in (app_bundle.module(p).source_map or "")
    ]
    assert len(messages.source) < 20_000 < len(chunk.source)
    assert f'from "./{chunk.path}"' in messages.source
    assert 'from "../_deps/' in app_bundle.module("admin/users.js").source


def test_source_maps_point_at_the_users_typescript_without_machine_paths(app_bundle):
    sources = json.loads(app_bundle.module("messages.js").source_map)["sources"]
    assert "../convex/messages.ts" in sources
    chunk_maps = [json.loads(app_bundle.module(p).source_map) for p in chunks(app_bundle)]
    chunk_sources = [s for m in chunk_maps for s in m["sources"]]
    assert all(not s.startswith("/") and "../../../" not in s for s in sources + chunk_sources)
    assert any(s.startswith("../../node_modules/convex/") for s in chunk_sources)
    assert all("\n// ../" not in m.source for m in app_bundle.modules)


def test_missing_generated_folder_is_written_before_bundling(tmp_path):
    root = make_app(tmp_path, {"ping.ts": MINIMAL_QUERY})
    result = bundle(root)
    assert (root / "_generated" / "server.js").is_file()
    assert result.paths == ("ping.js",)


def test_generated_files_export_what_user_code_imports(tmp_path):
    out = write_generated(tmp_path)
    server = (out / "server.js").read_text()
    for name in ("query", "mutation", "action", "internalQuery", "internalMutation"):
        assert f"export const {name} = " in server
    assert "export const internalAction = internalActionGeneric;" in server
    assert "export const httpAction = httpActionGeneric;" in server
    api = (out / "api.js").read_text()
    assert "export const api = anyApi;" in api and "export const internal = anyApi;" in api
    assert "AnyDataModel" in (out / "dataModel.d.ts").read_text()  # no schema.ts here
    assert sorted(p.name for p in out.iterdir()) == [
        "api.d.ts",
        "api.js",
        "dataModel.d.ts",
        "server.d.ts",
        "server.js",
    ]


def test_a_syntax_error_names_the_file_and_line(tmp_path):
    broken = (
        MINIMAL_QUERY + "\nexport const oops = query({ handler: async () => { return 1 +; } });\n"
    )
    root = make_app(tmp_path, {"ping.ts": MINIMAL_QUERY, "broken.ts": broken})
    with pytest.raises(BundleError) as info:
        bundle(root)
    assert info.value.code == "BundleFailed"
    assert info.value.file == "broken.ts"
    assert info.value.line == 4
    assert "broken.ts:4:" in str(info.value)


def test_a_missing_import_names_the_importing_file_and_line(tmp_path):
    text = '\nimport { helper } from "./lib/missing";\nexport const x = helper;\n'
    root = make_app(tmp_path, {"uses.ts": text})
    with pytest.raises(BundleError) as info:
        bundle(root)
    assert (info.value.file, info.value.line) == ("uses.ts", 2)
    assert 'Could not resolve "./lib/missing"' in str(info.value)


def test_a_missing_functions_folder_is_a_clear_error(tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        bundle(tmp_path / "nope")


def test_the_deps_folder_is_reserved(tmp_path):
    root = make_app(tmp_path, {"ping.ts": MINIMAL_QUERY, "_deps/x.ts": MINIMAL_QUERY})
    with pytest.raises(BundleError, match="reserved"):
        find_entry_points(root)


def test_component_folders_are_skipped_and_use_node_files_are_entry_points(tmp_path):
    root = make_app(
        tmp_path,
        {
            "ping.ts": MINIMAL_QUERY,
            "nodey.ts": '"use node";\n' + MINIMAL_QUERY,
            "comp/convex.config.ts": "export default {};\n",
            "comp/inner.ts": MINIMAL_QUERY,
            "with space.ts": MINIMAL_QUERY,
            ".hidden.ts": MINIMAL_QUERY,
            "README.md": "# notes\n",
        },
    )
    entries, skipped = find_entry_points(root)
    assert entries == ["nodey.ts", "ping.ts"]
    assert {s.path for s in skipped} == {"comp", "with space.ts", ".hidden.ts"}


def test_use_node_files_are_bundled_for_node_with_their_own_chunks(tmp_path):
    nodey = '"use node";\n' + MINIMAL_QUERY
    root = make_app(tmp_path, {"ping.ts": MINIMAL_QUERY, "one.ts": nodey, "two.ts": nodey})
    result = bundle(root)
    environments = {m.path: m.environment for m in result.modules}
    assert environments["ping.js"] == "isolate"
    assert environments["one.js"] == environments["two.js"] == "node"
    node_chunks = [p for p, e in environments.items() if p.startswith("_deps/node/")]
    assert node_chunks and all(environments[p] == "node" for p in node_chunks)


@pytest.mark.parametrize("name", ["http.ts", "crons.ts"])
def test_use_node_is_refused_where_convex_refuses_it(tmp_path, name):
    root = make_app(tmp_path, {name: '"use node";\n' + MINIMAL_QUERY})
    with pytest.raises(BundleError, match=f'"use node" directive is not allowed for {name}.'):
        bundle(root)


def test_two_auth_configs_are_refused(tmp_path):
    config = "export default { providers: [] };\n"
    root = make_app(tmp_path, {"auth.config.ts": config, "auth.config.js": config})
    with pytest.raises(BundleError, match="choose one"):
        bundle(root)
