"""Analysis: what each module registers, with validators, schema, auth, crons, routes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from udf import AnalysisError, Isolate, bundle


@pytest.fixture(scope="module")
def analysis(isolate):
    return isolate.analyze()


def test_every_registered_function_is_found_with_kind_and_visibility(analysis):
    found = {(f.module, f.name): (f.kind, f.visibility) for f in analysis.functions}
    assert found[("messages.js", "list")] == ("query", "public")
    assert found[("messages.js", "send")] == ("mutation", "public")
    assert found[("messages.js", "remove")] == ("mutation", "internal")
    assert found[("messages.js", "summarize")] == ("action", "public")
    assert found[("admin/users.js", "count")] == ("query", "internal")
    assert not any(
        f.module in ("schema.js", "crons.js", "auth.config.js") for f in analysis.functions
    )


def test_udf_paths_drop_the_extension(analysis):
    assert analysis.function("admin/users.js", "count").udf_path == "admin/users:count"


def test_args_validator_json_covers_ids_optionals_nested_objects_int64_and_bytes(analysis):
    send = analysis.function("messages.js", "send")
    assert json.loads(send.args_json) == {
        "type": "object",
        "value": {
            "channel": {"fieldType": {"type": "id", "tableName": "channels"}, "optional": False},
            "body": {"fieldType": {"type": "string"}, "optional": False},
            "author": {"fieldType": {"type": "string"}, "optional": True},
            "meta": {
                "fieldType": {
                    "type": "object",
                    "value": {
                        "likes": {"fieldType": {"type": "bigint"}, "optional": False},
                        "tags": {
                            "fieldType": {"type": "array", "value": {"type": "string"}},
                            "optional": False,
                        },
                    },
                },
                "optional": False,
            },
            "attachment": {"fieldType": {"type": "bytes"}, "optional": True},
        },
    }
    assert json.loads(send.returns_json) == {"type": "id", "tableName": "messages"}


def test_functions_without_validators_export_any_args_and_null_returns(analysis):
    count = analysis.function("admin/users.js", "count")
    assert json.loads(count.args_json) == {"type": "any"}
    assert count.returns_json == "null"


def test_schema_lists_tables_indexes_and_union_of_literals(analysis):
    schema = json.loads(analysis.schema_json)
    tables = {t["tableName"]: t for t in schema["tables"]}
    assert tables["messages"]["indexes"] == [
        {"indexDescriptor": "by_channel", "fields": ["channel"]}
    ]
    assert tables["messages"]["searchIndexes"] == [
        {"indexDescriptor": "search_body", "searchField": "body", "filterFields": ["channel"]}
    ]
    kind = tables["channels"]["documentType"]["value"]["kind"]["fieldType"]
    assert kind == {
        "type": "union",
        "value": [{"type": "literal", "value": "public"}, {"type": "literal", "value": "private"}],
    }
    assert schema["schemaValidation"] is True


def test_auth_config_crons_and_http_routes(analysis):
    assert json.loads(analysis.auth_config_json) == {
        "providers": [{"domain": "https://auth.example.com", "applicationID": "convex"}]
    }
    crons = json.loads(analysis.crons_json)
    assert crons["purge"] == {
        "name": "messages:remove",
        "args": [{"id": "x"}],
        "schedule": {"type": "interval", "minutes": 5},
    }
    assert crons["report"]["schedule"] == {"type": "daily", "hourUTC": 8, "minuteUTC": 30}
    assert [(r.path, r.method) for r in analysis.http_routes] == [("/hello", "GET")]


def test_module_that_throws_at_import_is_an_analysis_error_with_its_location(tmp_path: Path):
    root = tmp_path / "convex"
    root.mkdir()
    (root / "bad.ts").write_text(
        'import { query } from "./_generated/server";\n'
        "\n"
        'if (process.env.FLAG !== "on") throw new Error("FLAG must be on");\n'
        "export const q = query({ handler: async () => 1 });\n"
    )
    with Isolate(bundle(root).modules) as iso:
        with pytest.raises(AnalysisError) as info:
            iso.analyze()
        assert info.value.code == "ModuleAnalysisFailed"
        assert "Failed to analyze bad.js: Uncaught Error: FLAG must be on" in str(info.value)
        assert "../convex/bad.ts:3:" in str(info.value)
        # The environment given to analysis is what module code sees.
        names = [f.name for f in iso.analyze(env={"FLAG": "on"}).functions]
        assert names == ["q"]
