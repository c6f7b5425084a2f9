"""Generated ``_generated/api.d.ts`` of an app with components: ``components.<name>``
typed from the push's analysis, as the official CLI's templates write it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from udf.component_codegen import component_api_files, write_component_api
from udf.errors import BundleError

sys.path.insert(0, str(Path(__file__).parent))  # the component app helper lives beside this file
from component_project import COUNTER_DEFINITION, make_component_app  # noqa: E402

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
