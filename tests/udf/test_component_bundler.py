"""Bundling an app that uses components: the push the official CLI would send.

The app's ``convex.config.ts`` uses a component from an npm package in its
``node_modules``; the push carries the app's bundled config, the definition
paths it depends on, and each component definition with its own config, schema
and functions. A config importing a package that is not installed fails with
the bundler's message naming the package.
"""

from __future__ import annotations

import pytest
from component_project import (
    APP_SCHEMA,
    COUNTER_DEFINITION,
    NESTED_CONFIG,
    TWO_COUNTERS_CONFIG,
    WRAPPER_DEFINITION,
    make_component_app,
)

from udf.bundler import bundle
from udf.component_bundler import bundle_app, bundle_folder, has_component_config
from udf.errors import BundleError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def counter_push(tmp_path_factory):
    functions = make_component_app(
        tmp_path_factory.mktemp("app"),
        modules={
            "messages.ts": 'import { query } from "./_generated/server";\n'
            'export const hello = query({ args: {}, handler: async () => "hi" });\n',
            "schema.ts": APP_SCHEMA,
        },
    )
    return bundle_app(functions)


def test_the_push_carries_the_apps_config_and_its_dependency(counter_push):
    assert counter_push.app_definition.path == "convex.config.js"
    assert counter_push.app_dependencies == (COUNTER_DEFINITION,)
    assert [m.path for m in counter_push.changed] == ["messages.js"]
    assert counter_push.schema is not None and counter_push.schema.path == "schema.js"
    assert counter_push.udf_server_version == "1.48.0"


def test_each_component_definition_brings_its_config_schema_and_functions(counter_push):
    (counter,) = counter_push.components
    assert counter.definition_path == COUNTER_DEFINITION
    assert counter.definition is not None and counter.definition.path == "convex.config.js"
    assert counter.dependencies == ()
    assert counter.schema is not None and "counters" in counter.schema.source
    assert [m.path for m in counter.functions] == ["lib.js"]
    assert "by_name" in counter.functions[0].source  # the component's own code, bundled
    assert all(m.environment == "isolate" for m in counter.functions)


def test_two_instances_of_one_component_share_one_definition(tmp_path):
    push = bundle_app(make_component_app(tmp_path, config=TWO_COUNTERS_CONFIG))
    assert push.app_dependencies == (COUNTER_DEFINITION,)
    assert [c.definition_path for c in push.components] == [COUNTER_DEFINITION]
    assert '"second"' in push.app_definition.source  # the second instance's name


def test_a_nested_component_is_a_dependency_of_its_parent(tmp_path):
    push = bundle_app(make_component_app(tmp_path, config=NESTED_CONFIG))
    assert push.app_dependencies == (WRAPPER_DEFINITION,)
    by_path = {c.definition_path: c for c in push.components}
    assert set(by_path) == {COUNTER_DEFINITION, WRAPPER_DEFINITION}
    assert by_path[WRAPPER_DEFINITION].dependencies == (COUNTER_DEFINITION,)
    assert [m.path for m in by_path[WRAPPER_DEFINITION].functions] == ["lib.js"]


def test_a_config_importing_a_missing_package_fails_naming_it(tmp_path):
    config = (
        'import { defineApp } from "convex/server";\n'
        'import limiter from "@acme/not-installed/convex.config";\n'
        "const app = defineApp();\napp.use(limiter);\nexport default app;\n"
    )
    functions = make_component_app(tmp_path, config=config)
    with pytest.raises(BundleError) as caught:
        bundle_app(functions)
    assert "@acme/not-installed/convex.config" in str(caught.value)
    assert not (tmp_path / "push.json").exists()


def test_apps_without_a_config_keep_the_plain_bundler(tmp_path):
    functions = tmp_path / "convex"
    functions.mkdir()
    (functions / "messages.ts").write_text(
        'import { query } from "./_generated/server";\n'
        'export const hello = query({ args: {}, handler: async () => "hi" });\n'
    )
    assert not has_component_config(functions)
    built, parts = bundle_folder(functions)
    assert parts is None
    assert built.paths == bundle(functions).paths


def test_bundle_folder_gives_the_modules_and_the_component_parts(tmp_path):
    functions = make_component_app(
        tmp_path, modules={"schema.ts": APP_SCHEMA, "a.ts": "export {};\n"}
    )
    built, parts = bundle_folder(functions)
    assert "schema.js" in built.paths and "a.js" in built.paths
    assert parts is not None and parts.app_dependencies == (COUNTER_DEFINITION,)
    assert [c.definition_path for c in parts.components] == [COUNTER_DEFINITION]


def test_a_component_folder_inside_the_app_is_its_own_definition(tmp_path):
    config = (
        'import { defineApp } from "convex/server";\n'
        'import local from "./localCounter/convex.config";\n'
        "const app = defineApp();\napp.use(local);\nexport default app;\n"
    )
    local_config = (
        'import { defineComponent } from "convex/server";\n'
        'export default defineComponent("localCounter");\n'
    )
    local_lib = (
        'import { queryGeneric } from "convex/server";\n'
        'export const ping = queryGeneric({ args: {}, handler: async () => "pong" });\n'
    )
    functions = make_component_app(
        tmp_path,
        config=config,
        modules={
            "a.ts": "export {};\n",
            "localCounter/convex.config.ts": local_config,
            "localCounter/lib.ts": local_lib,
        },
    )
    push = bundle_app(functions)
    assert push.app_dependencies == ("localCounter",)
    (local,) = push.components
    assert local.definition_path == "localCounter"
    assert [m.path for m in local.functions] == ["lib.js"]
    assert [m.path for m in push.changed] == ["a.js"]  # the component's modules are its own


def test_files_outside_the_folder_are_reported_as_inputs(tmp_path):
    functions = make_component_app(
        tmp_path,
        modules={
            "a.ts": 'import { greet } from "../lib/greeting";\nexport const g = greet("you");\n'
        },
    )
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "greeting.ts").write_text(
        "export function greet(name: string) {\n  return `hi ${name}`;\n}\n"
    )
    built, _ = bundle_folder(functions)
    assert built.outside_inputs == (str((tmp_path / "lib" / "greeting.ts").resolve()),)
