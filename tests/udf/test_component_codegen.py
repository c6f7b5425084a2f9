"""Generated ``_generated/api.d.ts`` of an app with components: ``components.<name>``
typed from the push's analysis, as the official CLI's templates write it."""

from __future__ import annotations

import json
import subprocess

import pytest
from component_project import COUNTER_DEFINITION, make_component_app

from udf.codegen import write_generated
from udf.component_codegen import component_api_files, write_component_api
from udf.errors import BundleError
from udf.node import JS_DIR, node_executable

NAME_ARG = {"name": {"fieldType": {"type": "string"}, "optional": False}}
COUNT_ARG = {"count": {"fieldType": {"type": "number"}, "optional": False}}


def _function(name: str, udf_type: str, args: dict, returns: dict) -> dict:
    return {
        "name": name,
        "pos": None,
        "udfType": udf_type,
        "visibility": {"kind": "public"},
        "args": json.dumps({"type": "object", "value": args}),
        "returns": json.dumps(returns),
    }


def _leaf(udf_path: str) -> dict:
    return {"type": "leaf", "leaf": f"_reference/function/{udf_path}"}


def _definition(path: str, kind: dict, children: list, exports: list) -> dict:
    return {
        "path": path,
        "definitionType": kind,
        "childComponents": children,
        "httpMounts": {},
        "exports": {"type": "branch", "branch": exports},
        "envVars": [],
    }


# What a server answers start_push for the component app (StartPushResponse.analysis).
START_PUSH = {
    "analysis": {
        "": {
            "definition": _definition(
                "",
                {"type": "app"},
                [{"name": "counter", "path": COUNTER_DEFINITION, "env": None}],
                [],
            ),
            "schema": None,
            "functions": {},
            "udfConfig": {},
        },
        COUNTER_DEFINITION: {
            "definition": _definition(
                COUNTER_DEFINITION,
                {"type": "childComponent", "name": "counter", "args": []},
                [],
                [
                    [
                        "lib",
                        {
                            "type": "branch",
                            "branch": [["add", _leaf("lib:add")], ["get", _leaf("lib:get")]],
                        },
                    ]
                ],
            ),
            "schema": None,
            "functions": {
                "lib.js": {
                    "functions": [
                        _function("add", "Mutation", {**NAME_ARG, **COUNT_ARG}, {"type": "null"}),
                        _function("get", "Query", NAME_ARG, {"type": "number"}),
                    ]
                }
            },
            "udfConfig": {},
        },
    }
}


@pytest.fixture(scope="module")
def api_files(tmp_path_factory):
    functions = make_component_app(tmp_path_factory.mktemp("app"))
    return component_api_files(functions, START_PUSH)


def _squeezed(text: str) -> str:
    return "".join(text.split())


def test_components_are_typed_from_each_childs_exported_functions(api_files):
    dts = _squeezed(api_files["api.d.ts"])
    assert "exportdeclareconstcomponents:{counter:{lib:{" in dts
    assert 'add:FunctionReference<"mutation","internal",{name:string,count:number},null>' in dts
    assert 'get:FunctionReference<"query","internal",{name:string},number>' in dts


def test_api_and_internal_are_typed_from_the_apps_modules(api_files):
    dts = api_files["api.d.ts"]
    assert 'import type * as messages from "../messages.js";' in dts
    assert "export declare const api: FilterApi<typeof fullApi" in dts


def test_api_js_builds_components_at_run_time(api_files):
    assert "export const components = componentsGeneric();" in api_files["api.js"]


def test_written_into_generated_beside_the_server_bindings(tmp_path):
    functions = make_component_app(tmp_path)
    generated = write_component_api(functions, START_PUSH)
    assert (generated / "server.d.ts").is_file()
    assert "counter:" in (generated / "api.d.ts").read_text()


def test_an_analysis_without_the_app_is_refused(tmp_path):
    functions = make_component_app(tmp_path)
    with pytest.raises(BundleError, match="no entry for the app"):
        component_api_files(functions, {"analysis": {}})


def test_a_child_without_analysis_fails_with_the_clis_message(tmp_path):
    functions = make_component_app(tmp_path)
    partial = {"analysis": {"": START_PUSH["analysis"][""]}}
    with pytest.raises(
        BundleError, match=f"No analysis found for child component {COUNTER_DEFINITION}"
    ):
        component_api_files(functions, partial)


def _tsc() -> str:
    """js/'s TypeScript (a dev dependency ``make setup`` installs)."""
    return str(JS_DIR / "node_modules" / ".bin" / "tsc")


def _official_tsconfig() -> str:
    """The tsconfig.json the CLI writes into convex/ (its own template)."""
    template = JS_DIR / "node_modules/convex/dist/esm/cli/codegen_templates/tsconfig.js"
    url = json.dumps(template.as_uri())
    script = f"import({url}).then(m => process.stdout.write(m.tsconfigCodegen()))"
    done = subprocess.run(
        [node_executable(), "-e", script], capture_output=True, text=True, check=True
    )
    return done.stdout


def test_app_code_calling_a_component_type_checks(tmp_path):
    tsc = _tsc()
    functions = make_component_app(tmp_path)
    write_component_api(functions, START_PUSH)
    (functions / "tsconfig.json").write_text(_official_tsconfig())
    done = subprocess.run(
        [tsc, "--noEmit", "-p", str(functions)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # A wrong argument to the component's function is a type error.
    bad = (functions / "messages.ts").read_text().replace("count: 1", 'count: "one"')
    (functions / "messages.ts").write_text(bad)
    done = subprocess.run(
        [tsc, "--noEmit", "-p", str(functions)], capture_output=True, text=True, check=False
    )
    assert done.returncode != 0
    assert "messages.ts" in done.stdout and "not assignable to type 'number'" in done.stdout


def test_the_untyped_generated_files_also_accept_component_calls(tmp_path):
    """Without a push analysis (``headwater codegen``), ``components`` is the CLI's stub type."""
    tsc = _tsc()
    functions = make_component_app(tmp_path)
    write_generated(functions)
    (functions / "tsconfig.json").write_text(_official_tsconfig())
    done = subprocess.run(
        [tsc, "--noEmit", "-p", str(functions)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
